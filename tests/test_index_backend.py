"""`hvl index --backend qdrant`: the vectors in a real vector database (Qdrant Edge, in-process), mirrored from
the committed shards; `hvl search`, `hvl serve` and `hvl search-eval` answer as with the FAISS files."""
import json
import shutil

import pytest
import yaml
from fastapi.testclient import TestClient
from hvl.core.cli import main
from hvl.core.search.query import load_index, search
from serve_helpers import LOCAL, serve_data


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return serve_data(tmp_path_factory)


@pytest.fixture(scope="module")
def qindex(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("qdrant") / "idx"
    assert main(["index", str(data.videos), "--ckpt", str(data.ckpt), "--out", str(out), "--fps", "2",
                 "--backend", "qdrant", "--num-workers", "0", "--no-progress"]) == 0
    return out


def test_search_answers_like_exact_search_on_the_gameplay_demo(qindex, data, capsys):
    header = json.loads((qindex / "index.json").read_text())
    assert header["backend"] == "qdrant" and (qindex / "qdrant").is_dir() and not (qindex / "ann").exists()
    state = json.loads((qindex / "backend.json").read_text())
    for query in ("a red car stuck in a tree", "a box falling through the floor", "a car flying in the air"):
        capsys.readouterr()
        assert main(["search", query, "--index", str(qindex), "--k", "5", "--json"]) == 0
        got = json.loads(capsys.readouterr().out)
        assert got["method"].startswith("qdrant (embedded) + exact rescoring")
        assert main(["search", query, "--index", str(qindex), "--k", "5", "--json", "--exact"]) == 0
        want = json.loads(capsys.readouterr().out)
        assert [r["video_id"] for r in got["results"]] == [r["video_id"] for r in want["results"]]
        assert [r["score"] for r in got["results"]] == pytest.approx([r["score"] for r in want["results"]], abs=1e-6)
    idx, exact = load_index(qindex), load_index(qindex, use_ann=False)
    assert sum(len(v) for v in state["shards"].values()) == len(idx.videos)
    groups = sorted({v["group"] for v in idx.videos})
    q = idx.emb[0]
    only = search(idx, q, k=10, group=groups[0])
    assert {r["group"] for r in only["results"]} == {groups[0]}
    assert [r["video_id"] for r in only["results"]] == [r["video_id"] for r in search(exact, q, k=10, group=groups[0])["results"]]
    idx.close()


def test_serve_on_a_qdrant_index(qindex, tmp_path):
    import argparse

    from hvl.core.cli.serve import add_arguments, build

    p = argparse.ArgumentParser()
    add_arguments(p)
    app = build(p.parse_args(["--index", str(qindex), "--queries", str(tmp_path / "q.yaml")]))
    c = TestClient(app, base_url=LOCAL)
    r = c.post("/api/search", json={"query": "a red car", "k": 3})
    assert r.status_code == 200 and "qdrant" in r.json()["method"] and len(r.json()["results"]) == 3
    app.state.engine.idx.close()


def test_a_moved_video_leaves_the_database_too(data, tmp_path):
    videos = tmp_path / "videos"
    shutil.copytree(data.videos, videos)
    out = tmp_path / "idx"
    args = ["index", str(videos), "--ckpt", str(data.ckpt), "--out", str(out), "--fps", "1", "--backend", "qdrant",
            "--num-workers", "0", "--no-progress"]
    assert main(args) == 0
    first = min(videos.glob("*/*.mp4"))
    first.unlink()
    assert main(args) == 0
    idx = load_index(out)
    assert first.stem not in {v["video_id"] for v in idx.videos}
    assert first.stem not in {h.video_id for h in idx.ann.search(idx.emb[0], k=50, moments=1)}
    assert idx.ann.backend.count() == len(idx.emb)  # the database holds exactly the shards' frames
    idx.close()
    assert main(["index", str(videos), "--ckpt", str(data.ckpt), "--out", str(out), "--fps", "1",
                 "--num-workers", "0", "--no-progress"]) == 2  # the same folder without --backend: refused


def test_search_eval_on_the_database(data, tmp_path, monkeypatch):
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(yaml.safe_dump({"domain": "gameplay", "dataset": {"reader": "gamephysics", "path": str(data.videos)},
                                   "queries": str(data.root / "demo" / "queries.yaml"), "index": str(tmp_path / "ev"),
                                   "fps": 1.0, "num_workers": 0, "backend": "qdrant"}))
    assert main(["search-eval", "--config", str(cfg), "--ckpt", str(data.ckpt), "--json", str(tmp_path / "m.json"),
                 "--no-mlflow", "--no-progress"]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["overall"]["n_queries"] > 0
    assert any(p.name.endswith("_qdrant") for p in (tmp_path / "ev").iterdir())
