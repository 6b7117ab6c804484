"""`hvl search`: the three aggregations on hand-made scores, the JSON it prints, and the
approximate (FAISS) path against exact search."""
import json
from pathlib import Path

import numpy as np
import pytest
from hvl.core.cli import main
from hvl.core.errors import HVLInputError
from hvl.core.io import file_sha256, write_json
from hvl.core.search.ann import build_ann, exact_topk, recall_at, refresh_ann
from hvl.core.search.query import aggregate, load_index, search
from hvl.core.search.store import FORMAT
from index_helpers import tiny_checkpoint

# ------------------------------------------------------------------ aggregation
# Three videos; frame rows 0-2 are video 0, 3-6 video 1, 7 video 2.
SCORES = np.array([0.90, 0.10, 0.20, 0.60, 0.58, 0.57, 0.56, 0.30])
ROW_VIDEO = np.array([0, 0, 0, 1, 1, 1, 1, 2])
ROWS = np.arange(8)


def test_max_ranks_by_best_frame_and_reports_it():
    r = aggregate(SCORES, ROWS, ROW_VIDEO, "max")
    assert r.video.tolist() == [0, 1, 2]
    assert r.score.tolist() == pytest.approx([0.90, 0.60, 0.30])
    assert r.best_row.tolist() == [0, 3, 7]


def test_topk_mean_prefers_consistently_good_videos():
    r = aggregate(SCORES, ROWS, ROW_VIDEO, "topk-mean", topk=2)
    # video 0: (0.9 + 0.2) / 2 = 0.55; video 1: (0.6 + 0.58) / 2 = 0.59; video 2 has one frame: 0.3
    assert r.video.tolist() == [1, 0, 2]
    assert r.score.tolist() == pytest.approx([0.59, 0.55, 0.30])
    assert r.best_row.tolist() == [3, 0, 7]  # still the best single frame


def test_count_counts_frames_in_the_pool_and_breaks_ties_by_best_frame():
    r = aggregate(SCORES, ROWS, ROW_VIDEO, "count", pool=4)
    # pool = rows 0, 3, 4, 5 -> video 1 has 3, video 0 has 1, video 2 none (ranked last by its best frame)
    assert r.video.tolist() == [1, 0, 2] and r.count.tolist() == [3, 1, 0]
    tie = aggregate(SCORES, ROWS, ROW_VIDEO, "count", pool=1000)  # everything pooled: 3 vs 4 vs 1
    assert tie.video.tolist() == [1, 0, 2]
    even = aggregate(np.array([0.5, 0.9, 0.4, 0.8]), np.arange(4), np.array([0, 1, 0, 1]), "count", pool=4)
    assert even.video.tolist() == [1, 0]  # 2 each: the better best frame wins


def test_aggregation_over_a_subset_of_rows_and_bad_arguments():
    rows = np.array([3, 7])
    r = aggregate(SCORES[rows], rows, ROW_VIDEO, "max")
    assert r.video.tolist() == [1, 2] and r.best_row.tolist() == [3, 7]
    with pytest.raises(HVLInputError, match="--agg 'median' is unknown"):
        aggregate(SCORES, ROWS, ROW_VIDEO, "median")
    with pytest.raises(HVLInputError, match="must be >= 1"):
        aggregate(SCORES, ROWS, ROW_VIDEO, "topk-mean", topk=0)


# ------------------------------------------------------------------ a hand-written index
def write_index(root: Path, videos: list[tuple[str, str, np.ndarray]], ckpt: Path, dim: int,
                shard_videos: int = 2) -> Path:
    """Write the documented format by hand: index.json + shards/<name>.npy (float16) + .jsonl; version 1, whose
    lines call a video's group ``game`` (indexes built before search was domain-neutral keep loading)."""
    write_json(root / "index.json", {"format": FORMAT, "version": 1, "checkpoint": str(ckpt),
                                     "checkpoint_sha256": file_sha256(ckpt), "level": "clip", "dim": dim,
                                     "fps": 1.0, "image_size": 32, "dtype": "float16", "videos_root": "/x"})
    (root / "shards").mkdir(exist_ok=True)
    for s in range(0, len(videos), shard_videos):
        part = videos[s:s + shard_videos]
        emb = np.concatenate([e for _, _, e in part]).astype(np.float16)
        np.save(root / "shards" / f"s{s:05d}.npy", emb)
        lines, row = [], 0
        for vid, game, e in part:
            lines.append(json.dumps({"key": f"{game}/{vid}.mp4", "video_id": vid, "game": game,
                                     "path": f"/x/{game}/{vid}.mp4", "row": row, "t": [float(i) for i in range(len(e))]}))
            row += len(e)
        (root / "shards" / f"s{s:05d}.jsonl").write_text("\n".join(lines) + "\n")
    return root


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


def test_search_json_schema_and_exact_ranking(tmp_path, ckpt, capsys):
    from hvl.core.models.checkpoint import load_model
    from hvl.core.search.query import embed_queries

    model, _ = load_model(ckpt)
    q = embed_queries(model, ["a car falling through the floor"], "clip")[0]
    rng = np.random.default_rng(0)
    videos = []
    for v in range(7):  # video v has 3-6 frames; v3 holds the query itself at t=2
        e = unit(rng.normal(size=(3 + v % 4, 32)))
        if v == 3:
            e[2] = q
        videos.append((f"vid{v}", "gameA" if v % 2 else "gameB", e))
    root = write_index(tmp_path / "idx", videos, ckpt, dim=32)

    assert main(["search", "a car falling through the floor", "--index", str(root), "--k", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"query", "index", "level", "agg", "k", "pool", "group", "method", "frames", "videos", "results"}
    assert out["method"] == "exact" and out["frames"] == sum(len(e) for *_, e in videos) and out["videos"] == 7
    res = out["results"]
    assert [r["rank"] for r in res] == [1, 2, 3, 4]
    for r in res:
        assert set(r) == {"rank", "video_id", "group", "path", "score", "best_time", "best_score", "pool_count", "moments", "meta"}
        assert r["moments"][0]["t"] == r["best_time"] and r["moments"][0]["score"] == pytest.approx(r["best_score"])
        assert [m["score"] for m in r["moments"]] == sorted((m["score"] for m in r["moments"]), reverse=True)
    assert res[0]["video_id"] == "vid3" and res[0]["best_time"] == 2.0 and res[0]["score"] == pytest.approx(1.0, abs=2e-3)
    # exactly the brute-force ranking by best frame
    best = {vid: float((e.astype(np.float16).astype(np.float32) @ q).max()) for vid, _, e in videos}
    assert [r["video_id"] for r in res] == sorted(best, key=best.get, reverse=True)[:4]
    assert [r["score"] for r in res] == pytest.approx(sorted(best.values(), reverse=True)[:4], abs=1e-5)

    assert main(["search", "a car falling through the floor", "--index", str(root), "--game", "gameA",
                 "--agg", "count", "--pool", "5", "--json"]) == 0
    game_out = json.loads(capsys.readouterr().out)
    assert {r["group"] for r in game_out["results"]} == {"gameA"} and game_out["agg"] == "count"
    assert sum(r["pool_count"] for r in game_out["results"]) == 5

    assert main(["search", "a car", "--index", str(root)]) == 0  # the text table
    table = capsys.readouterr().out
    assert "rank" in table and "vid" in table
    # --json PATH: the table, and the JSON in the file; --json -: the JSON alone on stdout, as the bare --json was
    assert main(["search", "a car", "--index", str(root), "--json", str(tmp_path / "hits.json")]) == 0
    assert capsys.readouterr().out == table + f"wrote {tmp_path / 'hits.json'}\n"
    assert main(["search", "a car", "--index", str(root), "--json", "-"]) == 0
    piped = capsys.readouterr()
    assert json.loads(piped.out) == json.loads((tmp_path / "hits.json").read_text()) and "deprecated" not in piped.err

    assert main(["search", "x", "--index", str(root), "--game", "nope"]) == 2
    assert "--group 'nope' is not in the index" in capsys.readouterr().err
    assert main(["search", "x", "--index", str(root), "--group", "gameB", "--json"]) == 0  # the new spelling
    assert {r["group"] for r in json.loads(capsys.readouterr().out)["results"]} == {"gameB"}
    assert main(["search", "x", "--index", str(tmp_path / "none")]) == 2
    assert "not an hvl index" in capsys.readouterr().err


# ------------------------------------------------------------------ approximate path
def clustered(n_videos: int, frames: int, dim: int, seed: int = 0) -> np.ndarray:
    """Frames near their video's centre, videos near one of a few topics (as real footage)."""
    rng = np.random.default_rng(seed)
    topics = unit(rng.normal(size=(20, dim)))
    centres = unit(topics[rng.integers(0, 20, n_videos)] + 0.5 * unit(rng.normal(size=(n_videos, dim))))
    return unit(np.repeat(centres, frames, 0) + 0.3 * unit(rng.normal(size=(n_videos * frames, dim))))


@pytest.mark.slow
def test_ivf_reaches_target_recall_and_search_matches_exact(tmp_path, ckpt):
    emb = clustered(600, 10, 32)
    index, meta = build_ann(emb, "ivf")
    assert meta["kind"] == "ivf" and meta["factory"].startswith("IVF") and meta["recall_at_10"] >= 0.95
    rng = np.random.default_rng(1)
    queries = unit(emb[rng.choice(len(emb), 50)] + 0.1 * rng.normal(size=(50, 32)))
    found = index.search(queries, 10)[1]
    assert recall_at(found, exact_topk(emb, queries, 10)) >= 0.9
    assert recall_at(exact_topk(emb, queries, 10), exact_topk(emb, queries, 10)) == 1.0

    videos = [(f"v{i:04d}", f"g{i % 3}", emb[i * 10:(i + 1) * 10]) for i in range(600)]
    root = write_index(tmp_path / "idx", videos, ckpt, dim=32, shard_videos=200)
    meta = refresh_ann(root, kind="ivf")
    assert meta is not None and (root / "ann" / "ann.faiss").is_file()
    approx, exact = load_index(root), load_index(root, use_ann=False)
    assert approx.ann is not None and exact.ann is None
    same = 0
    for q in queries[:20]:
        a, e = search(approx, q, k=5), search(exact, q, k=5)
        assert "ivf" in a["method"] and e["method"] == "exact"
        same += [r["video_id"] for r in a["results"]] == [r["video_id"] for r in e["results"]]
    assert same >= 18  # candidates are rescored exactly: rankings agree unless a video misses the pool

    # one more shard makes the stored ANN stale: search falls back to exact, never to a wrong answer
    extra = write_index(tmp_path / "more", [("late", "g9", emb[:5])], ckpt, dim=32)
    for f in (extra / "shards").iterdir():
        f.rename(root / "shards" / f"z_{f.name}")
    assert load_index(root).ann is None
