"""`hvl serve` in a real browser: headless Chromium (Selenium) against the real command on a loopback port.

Search page: type a query and press Enter, thumbnails load, a moment chip seeks the video to that moment,
"more like this" searches by a frame, a result marked relevant lands in the saved query set, an error
shows on the page. Review page: clicking the ribbon seeks, and the playhead and frame readout follow.
Screenshots go to the test's folder (and to ``$HVL_SCREENSHOTS`` when set, as for docs/).

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them and sets
``HVL_REQUIRE_BROWSER=1``, which turns a missing browser into a failure instead of a skip).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from hvl.core.search.evaluate import load_queries
from PIL import Image
from serve_helpers import serve_data

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
VIDEO_FPS = 10  # the demo clips' frame rate: "within a frame" is 0.1 s

if not (CHROMIUM and DRIVER):
    if os.environ.get("HVL_REQUIRE_BROWSER") == "1":
        raise RuntimeError("chromium / chromedriver not found: apt-get install -y chromium chromium-driver")
    pytest.skip("no chromium + chromedriver (apt-get install chromium chromium-driver)", allow_module_level=True)

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`hvl serve --index ... --zeroshot ...` as a user runs it, in its own process."""
    data = serve_data(tmp_path_factory)
    work = tmp_path_factory.mktemp("browser")
    with serving(work, "--index", str(data.index), "--zeroshot", str(data.predictions)) as url:
        yield url, work, data


@contextmanager
def serving(work: Path, *args: str, ready: str = "/api/info"):
    """`hvl serve *args` on a free loopback port in its own process, until the block ends (``ready`` answers)."""
    port = free_port()
    cmd = [sys.executable, "-m", "hvl.core.cli", "serve", *args, "--port", str(port),
           "--queries", str(work / "queries.yaml"), "--cache", str(work / "thumbs")]
    log = open(work / "serve.log", "w")  # noqa: SIM115 (open while the server runs, closed at teardown)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(f"{url}{ready}", timeout=2).ok:
                break
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"hvl serve did not start:\n{(work / 'serve.log').read_text()[-3000:]}")
        time.sleep(0.3)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800",
              "--mute-audio"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


def wait(drv, cond, timeout=30, what="condition"):
    return WebDriverWait(drv, timeout).until(lambda d: cond(d), message=f"timed out waiting for {what}")


def js(drv, script, *args):
    return drv.execute_script(script, *args)


def screenshot(drv, tmp: Path, name: str) -> Path:
    path = tmp / name
    drv.save_screenshot(str(path))
    if os.environ.get("HVL_SCREENSHOTS"):
        out = Path(os.environ["HVL_SCREENSHOTS"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, out / name)
    with Image.open(path) as im:  # a real rendering, not a blank page
        assert im.size == (1280, 800) or im.size[0] >= 1000
        assert len(im.convert("RGB").getcolors(1 << 20) or []) > 200
    return path


def seeked(drv, timeout=30):
    """The player's currentTime when its last seek completed (set by the page's 'seeked' listener)."""
    wait(drv, lambda d: js(d, "return document.getElementById('player').dataset.seekedAt") is not None,
         timeout, "the video to seek")
    return float(js(drv, "return document.getElementById('player').dataset.seekedAt"))


def test_search_page(server, browser, tmp_path):
    url, work, _ = server
    drv = browser
    drv.get(url + "/")
    wait(drv, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1", what="the page")
    games = [o.get_attribute("value") for o in drv.find_elements(By.CSS_SELECTOR, "#group option")]
    assert games == ["", "desert_drive", "hill_racer", "moon_base"]

    box = drv.find_element(By.ID, "q")
    box.send_keys("a red car", Keys.ENTER)  # keyboard: Enter searches
    wait(drv, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".card")) == 8, what="results")
    status = drv.find_element(By.ID, "status").text
    assert status.startswith('8 videos for "a red car"'), status
    wait(drv, lambda d: js(d, "return [...document.querySelectorAll('img.thumb')].every(i => i.complete && i.naturalWidth > 0)"),
         what="thumbnails")
    assert js(drv, "return [...document.querySelectorAll('img.thumb')].map(i => i.naturalWidth)") == [64] * 8

    # the API's ranking is what the page shows
    api = requests.post(f"{url}/api/search", json={"query": "a red car", "k": 12}).json()
    cards = drv.find_elements(By.CSS_SELECTOR, ".card")
    assert [c.get_attribute("data-video") for c in cards] == [r["video_id"] for r in api["results"]]

    # a moment chip plays the clip from that moment
    first = api["results"][0]
    chip = cards[0].find_elements(By.CSS_SELECTOR, ".chip")[1]
    t = float(chip.get_attribute("data-t"))
    assert t == first["moments"][1]["t"]
    chip.click()
    at = seeked(drv)
    assert abs(at - t) <= 1 / VIDEO_FPS, (at, t)
    player = js(drv, "const v = document.getElementById('player'); return {id: v.dataset.video, err: v.error, rs: v.readyState, ct: v.currentTime}")
    assert player["id"] == first["video_id"] and player["err"] is None and player["rs"] >= 1
    assert player["ct"] >= t - 1 / VIDEO_FPS

    # a chip of another clip switches the video and seeks again
    js(drv, "delete document.getElementById('player').dataset.seekedAt")
    chip = cards[2].find_elements(By.CSS_SELECTOR, ".chip")[2]
    t2 = float(chip.get_attribute("data-t"))
    chip.click()
    assert abs(seeked(drv) - t2) <= 1 / VIDEO_FPS
    assert js(drv, "return document.getElementById('player').dataset.video") == api["results"][2]["video_id"]

    # marking results: relevant and not relevant are saved in bugsearch-eval's format
    cards[1].find_element(By.CSS_SELECTOR, ".mark.yes").click()
    wait(drv, lambda d: "1 relevant" in d.find_element(By.ID, "saved").text, what="the save")
    cards[3].find_element(By.CSS_SELECTOR, ".mark.no").click()
    wait(drv, lambda d: "1 not" in d.find_element(By.ID, "saved").text, what="the second save")
    assert "relevant" in cards[1].get_attribute("class").split()
    saved = {q.text: q for q in load_queries(work / "queries.yaml").queries}
    assert saved["a red car"].relevant == [api["results"][1]["video_id"]] and saved["a red car"].type == "bug"
    judged = json.loads((work / "queries.judgements.json").read_text())["queries"]
    assert judged[0]["not_relevant"] == [api["results"][3]["video_id"]]
    screenshot(drv, tmp_path, "serve_search.png")

    # the verdicts come back with the next search for that text
    box.clear()
    box.send_keys("a red car", Keys.ENTER)
    wait(drv, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".card.relevant")) == 1, what="verdicts to reload")
    assert drv.find_element(By.CSS_SELECTOR, ".card.relevant").get_attribute("data-video") == api["results"][1]["video_id"]

    # more like this: the clicked frame's own video comes first
    target = drv.find_elements(By.CSS_SELECTOR, ".card")[4]
    vid = target.get_attribute("data-video")
    target.find_element(By.CSS_SELECTOR, ".more").click()
    wait(drv, lambda d: d.find_element(By.ID, "status").text.startswith("8 videos for frame of"), what="frame search")
    assert drv.find_elements(By.CSS_SELECTOR, ".card")[0].get_attribute("data-video") == vid

    # errors are shown on the page, not as a blank grid
    js(drv, "document.getElementById('k').value = 500")
    box.send_keys(Keys.ENTER)
    wait(drv, lambda d: d.find_element(By.ID, "status").text.startswith("Error"), what="the error")
    assert "field 'k'" in drv.find_element(By.ID, "status").text
    assert "field 'k'" in drv.find_element(By.CSS_SELECTOR, "#results .error-box").text


def test_review_page(server, browser, tmp_path):
    url = server[0]
    drv = browser
    drv.get(url + "/review")
    wait(drv, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1", what="the review page")
    listing = requests.get(f"{url}/api/review").json()
    # a video whose ground truth changes class (a bug happens in it)
    details = {v["video_id"]: requests.get(f"{url}/api/review/{v['video_id']}").json() for v in listing["videos"]}
    vid = next(v for v, d in details.items() if len(set(d["truth"])) > 1)
    d = details[vid]
    Select(drv.find_element(By.ID, "video-select")).select_by_value(vid)
    wait(drv, lambda x: x.find_element(By.TAG_NAME, "body").get_attribute("data-video") == vid, what="the video")
    wait(drv, lambda x: js(x, "return document.getElementById('player').readyState") >= 1, what="video metadata")

    runs = sum(1 for i, y in enumerate(d["truth"]) if i == 0 or y != d["truth"][i - 1])
    assert len(drv.find_elements(By.CSS_SELECTOR, "#ribbon-truth .seg")) == runs
    legend = [e.text for e in drv.find_elements(By.CSS_SELECTOR, "#legend .key")]
    assert legend == listing["classes"]
    cells = [e.text for e in drv.find_elements(By.CSS_SELECTOR, "#video-metrics td")]
    assert cells[0] == f"{100 * d['metrics']['accuracy']:.1f}"

    span = d["t"][-1] + 1 / d["fps"]
    for frac, ribbon in ((0.7, "ribbon-pred"), (0.25, "ribbon-truth")):
        el = drv.find_element(By.ID, ribbon)
        width = el.size["width"]
        js(drv, "delete document.getElementById('player').dataset.seekedAt")
        ActionChains(drv).move_to_element_with_offset(el, int((frac - 0.5) * width), 0).click().perform()
        t = frac * span
        at = seeked(drv)
        assert abs(at - t) <= 1 / VIDEO_FPS + span / width, (at, t)  # a frame, plus a pixel's worth of time
        k = min(len(d["t"]) - 1, int(at * d["fps"] + 1e-6))
        want = f"truth {listing['classes'][d['truth'][k]]}"
        wait(drv, lambda x, want=want: want in x.find_element(By.ID, "frame-info").text,
             what="the frame readout")
        left = js(drv, "return parseFloat(document.getElementById('playhead').style.left)")
        assert abs(left - 100 * at / span) < 1.0
    # the ribbon follows playback
    js(drv, "const v = document.getElementById('player'); v.currentTime = 1.0")
    wait(drv, lambda x: abs(js(x, "return parseFloat(document.getElementById('playhead').style.left)") - 100 / span) < 1,
         what="the playhead")
    js(drv, f"const v = document.getElementById('player'); v.currentTime = {0.7 * span}")
    wait(drv, lambda x: abs(js(x, "return parseFloat(document.getElementById('playhead').style.left)") - 70) < 1,
         what="the playhead")
    screenshot(drv, tmp_path, "serve_review.png")


# ------------------------------------------------------------------ shared files and other pages (issue 26)
XSS = '<img src=x onerror="document.body.dataset.pwned=1">'


@pytest.fixture(scope="module")
def model_server(tmp_path_factory):
    """`hvl serve` on an index built with `--model` (a pretrained CLIP: "checkpoint": null in index.json), with
    a predictions folder someone else crafted: a class named like markup."""
    from hvl.core.cli import main
    from pretrained_helpers import make_clip

    data = serve_data(tmp_path_factory)
    work = tmp_path_factory.mktemp("model_browser")
    clip = make_clip(work / "clip")
    assert main(["index", str(data.videos), "--model", str(clip), "--out", str(work / "idx"), "--fps", "1",
                 "--no-progress", "--num-workers", "0"]) == 0
    assert json.loads((work / "idx" / "index.json").read_text())["checkpoint"] is None
    crafted = work / "zs"
    shutil.copytree(data.predictions, crafted)
    for f in crafted.rglob("*.json"):
        doc = json.loads(f.read_text())
        if "classes" in doc:
            doc["classes"][0] = XSS
        f.write_text(json.dumps(doc))
    with serving(work, "--index", str(work / "idx"), "--zeroshot", str(crafted)) as url:
        yield url, work


def test_serve_on_an_index_built_with_model(model_server, browser):
    url, _ = model_server
    drv = browser
    drv.get(url + "/")
    wait(drv, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1", what="the page")
    drv.find_element(By.ID, "q").send_keys("a red car", Keys.ENTER)
    wait(drv, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".card")) == 8, what="results")
    api = requests.post(f"{url}/api/search", json={"query": "a red car", "k": 12}).json()
    cards = drv.find_elements(By.CSS_SELECTOR, ".card")
    assert [c.get_attribute("data-video") for c in cards] == [r["video_id"] for r in api["results"]]
    wait(drv, lambda d: js(d, "return [...document.querySelectorAll('img.thumb')].every(i => i.complete && i.naturalWidth > 0)"),
         what="thumbnails")


def test_class_names_from_a_predictions_file_are_text_not_markup(model_server, browser):
    url, _ = model_server
    drv = browser
    drv.get(url + "/review")
    wait(drv, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1", what="the review page")
    time.sleep(0.5)  # an onerror handler would have run by now (the image fails at once)
    assert js(drv, "return document.body.dataset.pwned") is None
    assert drv.find_elements(By.CSS_SELECTOR, "#legend img") == []
    assert drv.find_elements(By.CSS_SELECTOR, "#legend .key")[0].text == XSS


def test_another_sites_page_cannot_drive_the_server(model_server, browser, tmp_path):
    """A page on another origin posts a multipart form (a "simple" request: no CORS preflight) to the server."""
    import http.server
    import threading

    url, _ = model_server
    (tmp_path / "attack.html").write_text(f"""<!doctype html>
<form id="f" method="post" enctype="multipart/form-data" action="{url}/api/search/image">
<input name="k" value="3"></form><script>document.getElementById('f').submit()</script>""")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    attacker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    try:
        drv = browser
        drv.get(f"http://localhost:{attacker.server_address[1]}/attack.html")  # another origin than the server's
        wait(drv, lambda d: d.current_url.startswith(url), what="the form to post")
        wait(drv, lambda d: "detail" in d.find_element(By.TAG_NAME, "body").text, what="the server's answer")
        assert "cross-origin request refused" in drv.find_element(By.TAG_NAME, "body").text
    finally:
        attacker.shutdown()


def test_another_sites_page_cannot_embed_thumbnails_or_videos(server, browser, tmp_path):
    """A page on another origin embeds ``<img src=http://127.0.0.1:PORT/api/thumbnail/...>`` and a ``<video>``: the
    browser sends ``Sec-Fetch-Site: cross-site`` and gets 403 (and CORP forbids the bytes anyway), so the page
    learns nothing and the server decodes and caches nothing."""
    import http.server
    import threading

    url, work, _ = server
    hit = requests.post(f"{url}/api/search", json={"query": "a box falling", "k": 1}).json()["results"][0]
    t = hit["moments"][-1]["t"]
    media = {"img": f"{url}/api/thumbnail/{hit['video_id']}?t={t}", "video": f"{url}/api/video/{hit['video_id']}"}
    (tmp_path / "embed.html").write_text(f"""<!doctype html><body>
<img src="{media['img']}" onload="document.body.dataset.img='loaded'" onerror="document.body.dataset.img='refused'">
<video src="{media['video']}" preload="metadata" onloadedmetadata="document.body.dataset.video=this.duration"
 onerror="document.body.dataset.video='refused'"></video></body>""")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    attacker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    cached = set((work / "thumbs").glob("*.jpg"))
    try:
        drv = browser
        drv.get(f"http://localhost:{attacker.server_address[1]}/embed.html")  # another site than 127.0.0.1
        wait(drv, lambda d: js(d, "return document.body.dataset.img && document.body.dataset.video"),
             what="the embedded media to load or fail")
        assert js(drv, "return document.body.dataset.img") == "refused"
        assert js(drv, "return document.body.dataset.video") == "refused"
        assert set((work / "thumbs").glob("*.jpg")) == cached  # no decode, no cache write
        for what, src in media.items():  # the server's own page may still show them
            assert requests.get(src, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200, what
    finally:
        attacker.shutdown()


# ------------------------------------------------------------------ timelines of `hvl predict` (issue 37)
def scenes_video(path: Path, seconds: int = 60, fps: int = 5, size: int = 96) -> Path:
    """Four scenes in turn (a background colour each, a square moving across): frames the model tells apart, so the
    timeline has segments of more than one class."""
    import numpy as np
    from hvl.core.data.video import write_video

    backgrounds = [(40, 60, 90), (150, 60, 50), (60, 130, 70), (200, 190, 120)]
    n = seconds * fps
    frames = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        frames[i] = backgrounds[4 * i // n]
        x = int(i * (size - 30) / (n - 1))
        frames[i, size // 3:size // 3 + 30, x:x + 30] = (230, 230, 230)
    return write_video(path, frames, fps)


@pytest.fixture(scope="module")
def predict_server(tmp_path_factory):
    """`hvl predict` on a folder of unlabelled videos, then `hvl serve --zeroshot <its out> --videos <folder>`: no index,
    no labels."""
    from hvl.core.cli import main
    from index_helpers import tiny_checkpoint

    work = tmp_path_factory.mktemp("predict_review")
    videos = work / "recordings"
    scenes_video(videos / "recording_01.mp4")
    ckpt = tiny_checkpoint(work / "tiny.ckpt", seed=3)
    assert main(["predict", str(videos), "--ckpt", str(ckpt), "--prompts", "surgical:demo", "--level", "clip",
                 "--out", str(work / "timelines"), "--no-progress", "--num-workers", "0"]) == 0
    with serving(work, "--zeroshot", str(work / "timelines"), "--videos", str(videos), ready="/api/review") as url:
        yield url, work


def test_review_page_of_unlabelled_timelines(predict_server, browser, tmp_path):
    """The review page draws an `hvl predict` timeline: prediction and smoothed ribbons (one block per run of a
    class), no ground-truth ribbon, "no ground truth" where the metrics would be; the screenshot of docs/predict.md."""
    url, work = predict_server
    drv = browser
    drv.get(url + "/review")
    wait(drv, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1", what="the review page")
    timeline = json.loads((work / "timelines" / "recording_01" / "timeline.json").read_text())

    def runs(seq):
        return sum(1 for i, y in enumerate(seq) if i == 0 or y != seq[i - 1])

    assert len(set(timeline["smoothed"])) > 1  # a timeline worth looking at
    assert len(drv.find_elements(By.CSS_SELECTOR, "#ribbon-pred .seg")) == runs(timeline["pred"])
    assert len(drv.find_elements(By.CSS_SELECTOR, "#ribbon-smoothed .seg")) == runs(timeline["smoothed"])
    assert not drv.find_element(By.ID, "ribbon-truth").is_displayed()
    assert drv.find_element(By.ID, "video-metrics").text == "no ground truth"
    assert [e.text for e in drv.find_elements(By.CSS_SELECTOR, "#legend .key")] == timeline["classes"]
    wait(drv, lambda x: js(x, "return document.getElementById('player').readyState") >= 2, what="the video")
    js(drv, "const v = document.getElementById('player'); delete v.dataset.seekedAt; v.currentTime = 35.0")
    assert abs(seeked(drv) - 35.0) < 0.5
    wait(drv, lambda x: js(x, "const v = document.getElementById('player'); return !v.seeking && v.readyState >= 3"),
         what="the frame at the playhead")
    wait(drv, lambda x: "predicted" in x.find_element(By.ID, "frame-info").text
         and "truth" not in x.find_element(By.ID, "frame-info").text, what="the frame readout")
    wait(drv, lambda x: abs(js(x, "return parseFloat(document.getElementById('playhead').style.left)")
                            - 100 * 35.0 / (timeline["t"][-1] + 1)) < 1, what="the playhead")
    # Chromium's controls keep a loading spinner on a paused video until it has played: a moment of play, for the
    # picture only
    js(drv, "const v = document.getElementById('player'); v.play().then(() => { v.pause(); v.currentTime = 35.0; })")
    wait(drv, lambda x: js(x, "const v = document.getElementById('player'); "
                              "return v.paused && !v.seeking && v.readyState >= 3 && Math.abs(v.currentTime - 35) < 0.01"),
         what="the video paused at 35 s")
    screenshot(drv, tmp_path, "predict_review.png")
