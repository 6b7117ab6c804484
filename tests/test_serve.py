"""`hvl serve`'s API on a small gameplay demo index: every endpoint against what the library computes,
every bad input with its 4xx, traversal attempts, the token, and concurrent query-set saves."""
import csv
import http.client
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
import torch
import yaml
from fastapi.testclient import TestClient
from hvl.core.cli import main
from hvl.core.data.schema import load_manifest
from hvl.core.data.video import Video, open_source
from hvl.core.errors import HVLInputError
from hvl.core.evaluation.metrics import phase_metrics
from hvl.core.evaluation.temporal import smooth_mode
from hvl.core.search.evaluate import load_queries
from hvl.core.search.query import embed_queries, search
from hvl.core.search.serve.queryset import QuerySetStore, query_id
from PIL import Image
from serve_helpers import LOCAL, LiveServer, build_app, serve_data


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return serve_data(tmp_path_factory)


@pytest.fixture(scope="module")
def app(data, tmp_path_factory):
    return build_app(data, tmp_path_factory.mktemp("app"))


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app, base_url=LOCAL)


@pytest.fixture(scope="module")
def engine(app):
    return app.state.engine


def text_search(client, **body):
    r = client.post("/api/search", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


# ------------------------------------------------------------------ search
@pytest.mark.parametrize("opts", [{"agg": "max"}, {"agg": "topk-mean", "topk": 2}, {"agg": "count", "pool": 12},
                                  {"agg": "max", "group": "moon_base", "k": 2}])
def test_text_search_is_hvl_search_with_one_encoder_pass(client, engine, opts):
    calls = engine.text_calls
    out = text_search(client, query="a red car next to a blue box", **opts)
    assert engine.text_calls == calls + 1  # the text encoder runs once per query
    q = embed_queries(engine.model, ["a red car next to a blue box"], engine.level)[0]
    want = search(engine.idx, q, **{"k": 12, **opts})
    assert out["kind"] == "text" and out["agg"] == opts["agg"] and out["method"] == want["method"]
    assert [r["video_id"] for r in out["results"]] == [r["video_id"] for r in want["results"]]
    for got, ref in zip(out["results"], want["results"]):
        assert got["score"] == pytest.approx(ref["score"], abs=1e-6) and got["moments"] == ref["moments"]
        assert got["clip"] == Path(ref["path"]).name and "path" not in got  # no server path leaves the app
    if "group" in opts:
        assert {r["group"] for r in out["results"]} == {"moon_base"} and len(out["results"]) == 2
        old = text_search(client, query="a red car next to a blue box", game="moon_base", k=2)  # the old field name
        assert [r["video_id"] for r in old["results"]] == [r["video_id"] for r in out["results"]]


def test_frame_search_finds_its_own_frame_first(client, engine):
    v = engine.idx.videos[3]
    t = float(engine.idx.row_time[v["start"] + 2])
    out = client.post("/api/search/frame", json={"video_id": v["video_id"], "t": t, "k": 3}).json()
    top = out["results"][0]
    assert out["kind"] == "frame" and top["video_id"] == v["video_id"] and top["best_time"] == t
    assert top["best_score"] == pytest.approx(1.0, abs=1e-3)
    r = client.post("/api/search/frame", json={"video_id": v["video_id"], "t": t + 0.25})
    assert r.status_code == 404 and "no indexed frame at" in r.json()["detail"]
    r = client.post("/api/search/frame", json={"video_id": "nope", "t": 0})
    assert r.status_code == 404 and "'nope' is not in the index" in r.json()["detail"]


def test_image_search_embeds_an_upload_as_index_does_its_frames(client, engine):
    v = engine.idx.videos[5]
    row = v["start"] + 4
    size = engine.image_size
    src = Video(open_source(v["path"], size=(size, size)))  # decoded exactly as `hvl index` decodes
    frame = src.source.get([src.index_at(float(engine.idx.row_time[row]))])[0].numpy()
    emb = engine.embed_image(frame)
    assert float(emb @ engine.idx.emb[row]) == pytest.approx(1.0, abs=2e-3)  # fp16 storage
    r = client.post("/api/search/image", files={"file": ("frame.png", png(frame), "image/png")}, data={"k": "3"})
    assert r.status_code == 200, r.text
    top = r.json()["results"][0]
    assert r.json()["kind"] == "image" and top["video_id"] == v["video_id"]
    assert top["best_time"] == float(engine.idx.row_time[row])


def test_image_upload_bad_inputs(client, app):
    frame = np.zeros((16, 16, 3), np.uint8)
    cases = [
        (("a.txt", b"hello", "text/plain"), {}, 415, "not accepted"),
        (("a.jpg", png(frame), "image/jpeg"), {}, 422, "holds PNG"),
        (("a.png", b"\x89PNG\r\n\x1a\nnot really", "image/png"), {}, 422, "not a readable"),
        (("a.png", png(frame), "image/png"), {"k": "0"}, 422, "field 'k'"),
        (("a.png", png(frame), "image/png"), {"agg": "median"}, 422, "field 'agg'"),
    ]
    for file, form, status, message in cases:
        r = client.post("/api/search/image", files={"file": file}, data=form)
        assert r.status_code == status and message in r.json()["detail"], (file[0], form, r.text)
    r = client.post("/api/search/image", data={"k": "3"})
    assert r.status_code == 422 and "field 'file'" in r.json()["detail"]
    big = os.urandom(app.state.limits.max_upload_bytes + 10)
    r = client.post("/api/search/image", files={"file": ("big.png", big, "image/png")})
    assert r.status_code == 413 and "upload over" in r.json()["detail"]


@pytest.mark.parametrize("body, field", [
    ({"query": "x" * 501}, "query"), ({"query": ""}, "query"), ({"query": "a car", "k": 0}, "k"),
    ({"query": "a car", "k": 101}, "k"), ({"query": "a car", "pool": 10**6}, "pool"),
    ({"query": "a car", "topk": 0}, "topk"), ({"query": "a car", "agg": "median"}, "agg"),
    ({"query": "a car", "limit": 3}, "limit"), ({"k": 3}, "query")])
def test_search_bounds_are_422_naming_the_field(client, body, field):
    r = client.post("/api/search", json=body)
    assert r.status_code == 422 and f"field '{field}'" in r.json()["detail"], r.text


def test_search_errors_that_are_not_schema_errors(client, app):
    r = client.post("/api/search", json={"query": "a car", "game": "no_such_game"})
    assert r.status_code == 400 and "--group 'no_such_game' is not in the index" in r.json()["detail"]
    r = client.post("/api/search", json={"query": "   "})
    assert r.status_code == 422 and "blank" in r.json()["detail"]
    r = client.post("/api/search", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    huge = b'{"query": "' + b"x" * (app.state.limits.max_body_bytes + 1) + b'"}'
    r = client.post("/api/search", content=huge, headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_info(client, engine, data):
    info = client.get("/api/info").json()
    assert info["videos"] == len(engine.idx.videos) == 8 and info["frames"] == len(engine.idx.emb)
    assert info["groups"] == sorted({p.parent.name for p in data.videos.glob("*/*.mp4")})
    assert info["review"] is True and info["limits"]["k"] == 100
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404  # CDN scripts: CSP-blocked
    schema = client.get("/openapi.json").json()
    assert {"/api/search", "/api/search/frame", "/api/search/image", "/api/thumbnail/{video_id}",
            "/api/video/{video_id}", "/api/export", "/api/queries", "/api/judgements", "/api/review",
            "/api/review/{video_id}", "/api/review/{video_id}/video"} <= set(schema["paths"])


# ------------------------------------------------------------------ export
def test_export_json_and_csv_hold_the_results(client):
    res = text_search(client, query="a yellow ball", k=5)
    r = client.post("/api/export", json={"format": "json", "response": res})
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    assert json.loads(r.content) == res
    r = client.post("/api/export", json={"format": "csv", "response": res})
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["video_id"] for row in rows] == [x["video_id"] for x in res["results"]]
    for row, x in zip(rows, res["results"]):
        assert float(row["score"]) == pytest.approx(x["score"]) and float(row["best_time"]) == x["best_time"]
        assert [float(m.split(":")[0]) for m in row["moments"].split()] == [m["t"] for m in x["moments"]]
        assert row["query"] == "a yellow ball" and row["clip"] == x["clip"]
    assert client.post("/api/export", json={"format": "xml", "response": res}).status_code == 422
    assert client.post("/api/export", json={"format": "csv", "response": {"results": []}}).status_code == 422


# ------------------------------------------------------------------ media
def test_thumbnail_decoded_once_cached_and_is_the_frame(client, app, engine):
    v = engine.idx.videos[1]
    t = float(engine.idx.row_time[v["start"] + 3])
    before = app.state.thumbs.decoded
    first = client.get(f"/api/thumbnail/{v['video_id']}", params={"t": t})
    second = client.get(f"/api/thumbnail/{v['video_id']}", params={"t": t})
    assert first.status_code == second.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    assert first.content == second.content and app.state.thumbs.decoded == before + 1
    assert app.state.thumbs.path_for(v["key"], t).read_bytes() == first.content
    src = Video(open_source(v["path"]))
    want = src.source.get([src.index_at(t)])[0].numpy().astype(float)
    got = np.asarray(Image.open(io.BytesIO(first.content)).convert("RGB"), float)
    assert got.shape == want.shape and np.abs(got - want).mean() < 6  # JPEG of that very frame
    other = src.source.get([src.index_at(0.0)])[0].numpy().astype(float)
    assert np.abs(got - want).mean() < np.abs(got - other).mean() or t == 0.0
    assert client.get(f"/api/thumbnail/{v['video_id']}", params={"t": t + 0.1}).status_code == 404
    assert client.get(f"/api/thumbnail/{v['video_id']}", params={"t": -1}).status_code == 422
    assert client.get(f"/api/thumbnail/{v['video_id']}").status_code == 422
    assert client.get("/api/thumbnail/nope", params={"t": 0}).status_code == 404


def test_video_is_streamed_with_range_requests(client, engine):
    v = engine.idx.videos[0]
    raw = Path(v["path"]).read_bytes()
    full = client.get(f"/api/video/{v['video_id']}")
    assert full.status_code == 200 and full.content == raw and full.headers["content-type"] == "video/mp4"
    assert full.headers["accept-ranges"] == "bytes"
    part = client.get(f"/api/video/{v['video_id']}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == raw[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(raw)}"
    tail = client.get(f"/api/video/{v['video_id']}", headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == raw[-50:]
    assert client.get(f"/api/video/{v['video_id']}", headers={"Range": f"bytes={len(raw) + 5}-"}).status_code == 416
    assert client.get("/api/video/nope").status_code == 404


def test_only_listed_files_are_served(client, data, engine, tmp_path):
    """Traversal in every spelling reaches no file: ids are dictionary keys, static files are the package's."""
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"SECRET-BYTES" * 10)
    game_dir = data.videos / engine.idx.videos[0]["group"]
    link = game_dir / "linked_secret.mp4"
    link.symlink_to(secret)
    try:
        listed_dir = Path(engine.idx.videos[0]["path"]).parent
        attempts = [
            "/api/video/..%2F..%2F..%2Fetc%2Fpasswd", "/api/video/%2Fetc%2Fpasswd", "/api/video/..",
            "/api/video/%2e%2e%2findex.json", "/api/video/linked_secret", "/api/video/linked_secret.mp4",
            f"/api/video/{'%2F'.join(str(secret).split('/'))}", f"/api/video/..%2F{secret.name}",
            "/api/video/%252e%252e%252fsecret", "/api/thumbnail/..%2Findex.json?t=0",
            "/api/thumbnail/linked_secret?t=0", "/api/review/..%2F..%2Fpredictions.json",
            "/api/review/linked_secret/video", "/api/review/..%2Fsecret/video",
            "/static/..%2F..%2Fapp.py", "/static/%2e%2e/app.py", "/static/..%2f..%2f..%2findex.json",
            f"/static/{'%2F'.join(['..'] * 8)}%2Fetc%2Fpasswd", f"/static/{secret}",
            f"/api/video/{listed_dir.name}%2F{link.name}",
        ]
        for url in attempts:
            r = client.get(url)
            assert r.status_code in (404, 422), (url, r.status_code)
            assert b"SECRET" not in r.content and b"root:" not in r.content and b"checkpoint" not in r.content, url
        srv = LiveServer(client.app)  # raw paths, which no client library normalises first
        try:
            for raw in ("/api/video/../../../../etc/passwd", "/static/../app.py", "/static/../../../../etc/passwd",
                        f"/api/video/../{listed_dir.name}/{link.name}", f"/static/../../{secret}"):
                conn = http.client.HTTPConnection("127.0.0.1", int(srv.url.rsplit(":", 1)[1]), timeout=10)
                conn.request("GET", raw)
                r = conn.getresponse()
                body = r.read()
                conn.close()
                assert r.status == 404 and b"root:" not in body and b"SECRET" not in body, raw
        finally:
            srv.close()
    finally:
        link.unlink()


# ------------------------------------------------------------------ query set
def test_judgements_grow_a_query_set_bugsearch_eval_reads(data, tmp_path, engine):
    ids = [v["video_id"] for v in engine.idx.videos]
    demo_queries = yaml.safe_load((data.root / "demo" / "queries.yaml").read_text())["queries"][:3]
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump({"queries": demo_queries}))
    app = build_app(data, tmp_path)  # a query set that already exists is taken over
    c = TestClient(app, base_url=LOCAL)

    def judge(video, relevant, query="A red car   stuck in a tree", type_="bug"):
        r = c.post("/api/judgements", json={"query": query, "type": type_, "video_id": video, "relevant": relevant})
        assert r.status_code == 200, r.text
        return r.json()

    judge(ids[0], True)
    judge(ids[1], True)
    q = judge(ids[2], False)
    assert q["id"] == query_id("a red car stuck in a tree") and q["relevant"] == ids[:2] and q["not_relevant"] == ids[2:3]
    judge(ids[1], None)                            # taken back
    judge(ids[3], True, query="a red car stuck in a TREE")  # the same query, however it is typed
    qs = load_queries(tmp_path / "queries.yaml")   # what `hvl bugsearch-eval` reads
    by_id = {x.id: x for x in qs.queries}
    mine = by_id[q["id"]]
    assert mine.type == "bug" and mine.text == "A red car stuck in a tree" and mine.relevant == [ids[0], ids[3]]
    for d in demo_queries:
        assert by_id[d["id"]].relevant == d["relevant"] and by_id[d["id"]].text == d["text"]
    saved = json.loads((tmp_path / "queries.judgements.json").read_text())
    assert next(x for x in saved["queries"] if x["id"] == q["id"])["not_relevant"] == [ids[2]]
    listed = c.get("/api/queries").json()
    assert listed["path"] == str(tmp_path / "queries.yaml") and q["id"] in {x["id"] for x in listed["queries"]}
    # a query with only "not relevant" verdicts stays out of the evaluation file (it needs a relevant video)
    judge(ids[4], False, query="a flying horse", type_="simple")
    assert "a flying horse" not in {x.text for x in load_queries(tmp_path / "queries.yaml").queries}
    for body, status in [({"query": "x", "video_id": "nope", "relevant": True}, 404),
                         ({"query": "x", "video_id": ids[0], "relevant": True, "type": "funny"}, 422),
                         ({"query": " ", "video_id": ids[0], "relevant": True}, 422),
                         ({"query": "x", "video_id": ids[0]}, 422)]:
        assert c.post("/api/judgements", json=body).status_code == status, body


def test_broken_query_set_is_reported_at_startup(tmp_path):
    (tmp_path / "q.yaml").write_text("queries:\n  - {id: a, type: bug, text: x, relevant: []}\n")
    with pytest.raises(HVLInputError, match=r"(?s)q.yaml.*queries\[0\].relevant"):
        QuerySetStore(tmp_path / "q.yaml")
    with pytest.raises(HVLInputError, match="is YAML"):
        QuerySetStore(tmp_path / "q.json")


def test_concurrent_saves_from_two_tabs_and_two_servers_lose_nothing(data, tmp_path, engine):
    """Real HTTP (uvicorn threads): 2 tabs x 2 queries x every video, plus a second store on the same file."""
    srv = LiveServer(build_app(data, tmp_path))
    ids = [v["video_id"] for v in engine.idx.videos]
    jobs = [(query, vid) for query in ("tab one query", "tab two query") for vid in ids]
    other = QuerySetStore(tmp_path / "queries.yaml")  # another process would hold its own store

    def post(job):
        query, vid = job
        with requests.Session() as s:
            r = s.post(f"{srv.url}/api/judgements", json={"query": query, "video_id": vid, "relevant": True}, timeout=30)
        return r.status_code

    def side(i):
        other.judge("side query", "simple", ids[i % len(ids)], True)

    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(post, j) for j in jobs] + [pool.submit(side, i) for i in range(len(ids))]
            results = [f.result() for f in futures]
    finally:
        srv.close()
    assert results[:len(jobs)] == [200] * len(jobs)
    qs = {q.text: set(q.relevant) for q in load_queries(tmp_path / "queries.yaml").queries}
    assert qs == {"tab one query": set(ids), "tab two query": set(ids), "side query": set(ids)}
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files behind


# ------------------------------------------------------------------ zero-shot review
def test_review_is_what_zeroshot_predicted(client, data):
    metrics = json.loads((data.root / "zs.json").read_text())
    listing = client.get("/api/review").json()
    classes = listing["classes"]
    assert [v["video_id"] for v in listing["videos"]] == [r["video_id"] for r in metrics["per_video"]]
    for v, row in zip(listing["videos"], metrics["per_video"]):  # `hvl zeroshot --json` is unchanged by it
        assert v["metrics"] == {k: row[k] for k in ("accuracy", "f1_macro", "jaccard")}
    assert listing["metrics"]["accuracy"] == pytest.approx(metrics["accuracy"])
    records = {r.video_id: r for r in load_manifest(data.root / "demo" / "test.jsonl").videos}
    for v in listing["videos"]:
        d = client.get(f"/api/review/{v['video_id']}").json()
        rec = records[v["video_id"]]
        assert d["t"] == [k / 2.0 for k in range(len(d["t"]))] and len(d["t"]) == v["n_frames"] == 10
        assert d["truth"] == [classes.index(rec.label_at(t)) for t in d["t"]]
        assert d["pred"] == [int(np.argmax(p)) for p in d["probs"]]
        assert all(abs(sum(p) - 1) < 1e-3 for p in d["probs"])
        assert d["smoothed"] == smooth_mode(d["pred"], 5, len(classes)).tolist()
        for key, seq in (("metrics", d["pred"]), ("smoothed_metrics", d["smoothed"])):
            want = phase_metrics(torch.tensor(seq), torch.tensor(d["truth"]), len(classes))
            assert d[key] == pytest.approx(want)
        r = client.get(f"/api/review/{v['video_id']}/video", headers={"Range": "bytes=0-9"})
        assert r.status_code == 206 and len(r.content) == 10
    assert client.get("/api/review/nope").status_code == 404
    assert client.get("/api/review/nope/video").status_code == 404
    assert client.get("/review").status_code == 200


def test_no_review_without_zeroshot(data, tmp_path):
    from hvl.core.search.serve.app import create_app
    from hvl.core.search.serve.media import ThumbnailCache

    from_app = build_app(data, tmp_path).state
    c = TestClient(create_app(from_app.engine, ThumbnailCache(tmp_path / "t"), from_app.queries), base_url=LOCAL)
    assert c.get("/review").status_code == 404 and c.get("/api/review").status_code == 404
    assert c.get("/api/info").json()["review"] is False and c.get("/").status_code == 200


def test_zeroshot_rejects_an_even_window_before_loading(data, capsys):
    rc = main(["zeroshot", "--config", str(data.root / "zs.yaml"), "--ckpt", str(data.root / "missing.ckpt"),
               "--predictions", str(data.root / "never"), "--smooth-window", "4", "--no-mlflow"])
    assert rc == 2 and "--smooth-window" in capsys.readouterr().err and not (data.root / "never").exists()


def test_broken_predictions_are_reported(data, tmp_path):
    from hvl.core.search.serve.review import load_review

    bad = tmp_path / "zs"
    bad.mkdir()
    with pytest.raises(HVLInputError, match="predictions.json: not found"):
        load_review(bad)
    manifest = json.loads((data.predictions / "predictions.json").read_text())
    manifest["videos"][0]["file"] = "../../../etc/passwd"
    (bad / "predictions.json").write_text(json.dumps(manifest))
    with pytest.raises(HVLInputError, match="outside"):
        load_review(bad)
    manifest["format"] = "something-else"
    (bad / "predictions.json").write_text(json.dumps(manifest))
    with pytest.raises(HVLInputError, match="field 'format'"):
        load_review(bad)


# ------------------------------------------------------------------ security
def test_token_required_off_loopback(data, tmp_path, capsys):
    with pytest.raises(HVLInputError, match="--token"):
        build_app(data, tmp_path, host="0.0.0.0")
    assert main(["serve", "--index", str(data.index), "--host", "192.168.1.20"]) == 2
    assert "pass --token" in capsys.readouterr().err
    with pytest.raises(HVLInputError, match="at least 8"):
        build_app(data, tmp_path, host="0.0.0.0", token="short")
    c = TestClient(build_app(data, tmp_path, host="0.0.0.0", token="s3cret-token"), base_url=LOCAL)
    vid = c.app.state.engine.idx.videos[0]["video_id"]
    for url in ("/", "/review", "/api/info", f"/api/video/{vid}", "/static/app.js", "/docs", "/openapi.json"):
        r = c.get(url)
        assert r.status_code == 401 and "token is required" in r.json()["detail"], url
    assert c.post("/api/search", json={"query": "a car"}).status_code == 401
    assert c.get("/api/info", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    assert c.get("/api/info", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert c.get("/api/info", headers={"X-HVL-Token": "s3cret-token"}).status_code == 200
    page = c.get("/?token=s3cret-token")  # the page is opened once with the token; its requests carry the cookie
    assert page.status_code == 200 and "hvl_token" in page.headers["set-cookie"]
    assert "httponly" in page.headers["set-cookie"].lower()
    assert c.get(f"/api/video/{vid}").status_code == 200
    c.cookies.clear()
    assert c.get("/api/info").status_code == 401


def test_loopback_needs_no_token(client):
    assert client.get("/api/info").status_code == 200


def test_serve_command_binds_loopback_by_default():
    from hvl.core.cli import build_parser

    args = build_parser("serve").parse_args(["serve", "--index", "idx"])
    assert args.host == "127.0.0.1" and args.token is None and args.port == 8000


def test_the_text_encoders_cache_stays_bounded(client, engine, monkeypatch):
    from hvl.core.search.serve import engine as engine_mod

    monkeypatch.setattr(engine_mod, "TEXT_CACHE_LIMIT", 3)
    for i in range(8):
        text_search(client, query=f"query number {i}", k=1)
        assert len(engine.model.text._cache) <= 4
