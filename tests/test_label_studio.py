"""hvl's timelines through a real Label Studio server on a loopback port, and back (issue 37's loop: predict →
annotators correct → adapt).

The server is the ``label-studio`` package from PyPI, run as its own command from its own environment
(``.venv-ls``: its pins would downgrade numpy in hvl's; ``.ci/run`` installs it and sets
``HVL_REQUIRE_LABEL_STUDIO=1``, which turns a missing Label Studio into a failure instead of a skip). The test
creates a project with hvl's labelling config, imports hvl's tasks with their predictions through the HTTP API,
exports them untouched (a snapshot with the predictions), accepts them as they are (an annotation equal to the
prediction, what submitting in the editor saves) and moves one boundary (an annotation as an annotator's
correction), exports with the API's JSON export and reads every export back with hvl's reader.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
from hvl.core.data.schema import load_manifest
from hvl.core.inference.formats import label_studio as ls
from hvl.core.inference.timeline import label_at
from timeline_helpers import CLASSES, make_timeline, spans

ROOT = Path(__file__).resolve().parents[1]
# the environment .ci/run installs it into, else one named by HVL_LABEL_STUDIO, else one on PATH
LABEL_STUDIO = next((str(p) for p in (os.environ.get("HVL_LABEL_STUDIO"), ROOT / ".venv-ls/bin/label-studio")
                     if p and Path(p).is_file()), None) or shutil.which("label-studio")
INSTALL = "python3 -m venv .venv-ls && .venv-ls/bin/pip install 'label-studio>=1.23,<2' (what .ci/run does)"

if LABEL_STUDIO is None:
    if os.environ.get("HVL_REQUIRE_LABEL_STUDIO") == "1":
        raise RuntimeError(f"Label Studio is not installed: {INSTALL}")
    pytest.skip(f"Label Studio is not installed: {INSTALL}", allow_module_level=True)

pytestmark = [pytest.mark.server, pytest.mark.slow]

TOKEN = "hvl-test-token-0123456789"  # a legacy API token the server gives its first user at start
STARTUP_S = 900  # a first start migrates a new SQLite database: minutes on a loaded 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabelStudio:
    """The REST API of one server, as its token's user."""

    def __init__(self, url: str):
        self.url = url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Token {TOKEN}"

    def call(self, method: str, path: str, **kw) -> requests.Response:
        r = self.http.request(method, f"{self.url}{path}", timeout=120, **kw)
        assert r.ok, f"{method} {path}: HTTP {r.status_code}: {r.text[:2000]}"
        return r

    def project(self, classes) -> int:
        return self.call("POST", "/api/projects", json={"title": "hvl", "label_config":
                                                        ls.labeling_config(classes)}).json()["id"]

    def tasks(self, project: int) -> list[dict]:
        return self.call("GET", "/api/tasks", params={"project": project, "fields": "all"}).json()["tasks"]

    def snapshot(self, project: int, out: Path) -> Path:
        """Every task with its predictions in full (an export snapshot; the plain export lists prediction ids)."""
        snap = self.call("POST", f"/api/projects/{project}/exports/",
                         json={"serialization_options": {"predictions": {"only_id": False}}}).json()
        deadline = time.monotonic() + 120
        while snap["status"] != "completed":
            assert snap["status"] != "failed" and time.monotonic() < deadline, snap
            time.sleep(0.5)
            snap = self.call("GET", f"/api/projects/{project}/exports/{snap['id']}").json()
        out.write_bytes(self.call("GET", f"/api/projects/{project}/exports/{snap['id']}/download",
                                  params={"exportType": "JSON"}).content)
        return out

    def export(self, project: int, out: Path) -> Path:
        """Export → JSON, as the project page downloads it: the annotated tasks."""
        out.write_bytes(self.call("GET", f"/api/projects/{project}/export", params={"exportType": "JSON"}).content)
        return out


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    """``label-studio start`` on a free loopback port with a new data folder, until the module ends."""
    work = tmp_path_factory.mktemp("label_studio")
    port = free_port()
    # the first start's cost is its migrations, hundreds of SQLite transactions each waiting for its fsync: on a
    # memory file system (where there is one) they wait for nothing, which halves the start
    ram = Path("/dev/shm")
    db_dir = Path(tempfile.mkdtemp(prefix="hvl-ls-", dir=ram if ram.is_dir() and os.access(ram, os.W_OK) else work))
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(work / "data"), "HOME": str(work / "home"),
           "DATABASE_NAME": str(db_dir / "label_studio.sqlite3"),
           # no error reports, usage analytics or version checks leave the machine
           "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "COLLECT_ANALYTICS": "false", "LATEST_VERSION_CHECK": "false"}
    cmd = [LABEL_STUDIO, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
           "--username", "hvl@example.org", "--password", "hvl-test-password", "--user-token", TOKEN,
           "--enable-legacy-api-token"]
    log = open(work / "server.log", "w")  # noqa: SIM115 (open while the server runs, closed at teardown)
    # its own session: the server and whatever it starts are stopped together, by this process group's id
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        while True:
            try:
                if requests.get(f"{url}/health", timeout=2).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still starting
                pass
            if proc.poll() is not None or time.monotonic() - started > STARTUP_S:
                raise RuntimeError(f"label-studio did not start:\n{(work / 'server.log').read_text()[-4000:]}")
            time.sleep(1)
        print(f"label-studio started in {time.monotonic() - started:.0f}s")
        yield LabelStudio(url)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
        shutil.rmtree(db_dir, ignore_errors=True)


def _timelines():
    """Two videos: 25 fps, and 29.97 fps where a sampled boundary falls between two frames."""
    first = make_timeline()
    second = make_timeline(labels=(2, 2, 1, 1, 1, 0, 0, 2), fps=2.0, video_fps=30000 / 1001, duration=4.2)
    return first, second.model_copy(update={"video_id": "case02", "path": "/videos/case02.mp4"})


def assert_same_timeline(got, tl):
    """Equal segments where every boundary is a whole frame (25 fps); at 29.97 fps each boundary moves to the
    frame on screen at its time, less than a frame earlier, and every sampled time keeps its label."""
    assert got.duration == tl.duration and [s.label for s in got.segments] == [s.label for s in tl.segments]
    if tl.video_fps == 25:
        assert spans(got.segments) == spans(tl.segments)
    for a, b in zip(got.segments, tl.segments):
        assert b.start - 1 / tl.video_fps < a.start <= b.start and b.end - 1 / tl.video_fps < a.end <= b.end
    assert [label_at(got.segments, t) for t in tl.t] == [CLASSES[y] for y in tl.smoothed]


def test_untouched_and_accepted_predictions_come_back_as_the_same_timelines(label_studio, tmp_path):
    timelines = _timelines()
    project = label_studio.project(CLASSES)
    label_studio.call("POST", f"/api/projects/{project}/import", json=[ls.task(tl) for tl in timelines])

    # untouched: the snapshot holds hvl's predictions, confidences included
    back, problems = ls.read_export(label_studio.snapshot(project, tmp_path / "snapshot.json"))
    assert problems == []
    by_id = {tl.video_id: tl for tl in back}
    for tl in timelines:
        got = by_id[tl.video_id]
        assert_same_timeline(got, tl)
        assert [s.confidence for s in got.segments] == pytest.approx([s.confidence for s in tl.segments])
        assert got.settings["source"] == "label-studio prediction"

    # accepted: an annotator submits each prediction unchanged
    for task in label_studio.tasks(project):
        (prediction,) = task["predictions"]
        label_studio.call("POST", f"/api/tasks/{task['id']}/annotations",
                          json={"result": prediction["result"], "parent_prediction": prediction["id"]})
    back, problems = ls.read_export(label_studio.export(project, tmp_path / "export.json"))
    assert problems == [] and len(back) == 2
    for got in back:
        assert_same_timeline(got, next(t for t in timelines if t.video_id == got.video_id))
        assert got.settings["source"] == "label-studio annotation"


def test_a_corrected_boundary_comes_back_and_becomes_the_labels_hvl_adapts_on(label_studio, tmp_path):
    """The annotator moves the Preparation → Dissection boundary of case01 from 3 s to 4 s (frame 76 → 101);
    everything else stays hvl's."""
    timelines = _timelines()
    project = label_studio.project(CLASSES)
    label_studio.call("POST", f"/api/projects/{project}/import", json=[ls.task(tl) for tl in timelines])
    task = next(t for t in label_studio.tasks(project) if t["data"]["hvl"]["video_id"] == "case01")
    (prediction,) = task["predictions"]
    regions = [dict(r, value=dict(r["value"], ranges=[dict(r["value"]["ranges"][0])])) for r in prediction["result"]]
    assert [r["value"]["ranges"][0] for r in regions[:2]] == [{"start": 1, "end": 75}, {"start": 76, "end": 175}]
    regions[0]["value"]["ranges"][0]["end"], regions[1]["value"]["ranges"][0]["start"] = 100, 101
    label_studio.call("POST", f"/api/tasks/{task['id']}/annotations", json={"result": regions})

    export = label_studio.export(project, tmp_path / "export.json")
    (got,), problems = ls.read_export(export)  # case02 has no annotation: not in the project's export
    assert problems == [] and got.video_id == "case01"
    expected = spans(timelines[0].segments)
    expected[0], expected[1] = (0.0, 4.0, CLASSES[0]), (4.0, 7.0, CLASSES[1])
    assert spans(got.segments) == expected

    manifest, problems = ls.export_to_manifest(export, tmp_path / "corrected.jsonl")
    (rec,) = load_manifest(manifest).videos
    assert [rec.label_at(float(s)) for s in range(10)] == [CLASSES[y] for y in (0, 0, 0, 0, 1, 1, 1, 2, 2, 2)]
