"""Was a pool of the best frames the right reference? The videos of a pool against the full scan, same queries.

Before issue 35, ``search_scale.py``'s reference for video recall@10 was the videos of each query's best 2,000
frames, and the chooser's tuning truth the videos of the best 1,000. For each shape this script writes the
archive as ``search_scale.py`` does (same data, same queries), then ranks the top 10 videos two ways for each
ranking hvl has (``max``, ``topk-mean`` with topk 3, ``count`` with pool 1,000):

* the full scan (``ann_measure.exact_videos``: every frame of every video);
* a pool of the best ``P`` frames (``--pools``), its videos ranked by :func:`hvl.core.search.query.aggregate`
  over the pool's frames only (what the old reference did for ``max``: the first 10 distinct videos).

It reports the agreement (mean over queries of |pool top 10 ∩ full top 10| / 10, and the share of queries whose
two sets are equal) and, for ``max``, the worst rank of a query's 10th video's best frame among all frames: at
most ``9 F + 1`` for videos of at most ``F`` frames (each frame above it belongs to one of the 9 videos above).

    python benchmarks/reference_pool.py [--rows 200000] [--frames 10] [--shapes clustered per_video isotropic]
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from common import emit, log, machine

AGGS = ("max", "topk-mean", "count")


def pool_top(emb: Any, row_video: np.ndarray, q: np.ndarray, rows: np.ndarray, agg: str) -> np.ndarray:
    """The top 10 videos of one query ranked by ``agg`` over the frames ``rows`` only."""
    from hvl.core.search.query import aggregate

    rows = np.sort(rows)
    scores = np.asarray(emb[rows], np.float32) @ q
    return aggregate(scores, rows, row_video, agg, 3, 1000).video[:10]


def check(shape: str, a: argparse.Namespace, work: Path) -> dict[str, Any]:
    from hvl.core.search.ann_measure import exact_topk, exact_videos
    from hvl.core.search.store import read_index
    from search_scale import queries_for, write_index

    root = work / shape
    centres, lengths = write_index(root, shape, a.rows, a.frames, a.dim, a.topics, a.seed)
    queries = queries_for(centres, a.queries, a.seed, lengths)
    idx = read_index(root)
    emb = idx.emb.materialize()
    out: dict[str, Any] = {"videos": len(lengths), "max_frames": int(lengths.max()),
                           "bound_rank_max": int(9 * lengths.max() + 1), "aggs": {}}
    pools = {p: exact_topk(emb, queries, p) for p in a.pools}
    for agg in AGGS:
        full, key = exact_videos(emb, idx.row_video, queries, 10, agg, 3, 1000)
        rec: dict[str, Any] = {}
        for p, top in pools.items():
            got = [pool_top(emb, idx.row_video, q, t, agg) for q, t in zip(queries, top)]
            inter = np.array([len(set(g.tolist()) & set(f.tolist())) / 10 for g, f in zip(got, full)])
            rec[f"pool={p}"] = {"agreement": round(float(inter.mean()), 4),
                                "queries_equal": round(float((inter == 1).mean()), 4),
                                "worst_query": round(float(inter.min()), 2)}
        if agg == "max":  # the rank of each query's 10th video's best frame among every frame
            tenth = key[:, 9]
            above = np.zeros(len(queries), np.int64)
            for s in range(0, len(emb), 1 << 16):
                above += ((queries @ emb[s: s + (1 << 16)].T) > tenth[:, None] + 1e-7).sum(1)
            rec["tenth_best_frame_rank"] = {"max": int(above.max() + 1), "median": float(np.median(above + 1))}
        out["aggs"][agg] = rec
        log(f"[{shape}] {agg}: {rec}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--frames", default="10", help="frames per video, or mixed (as search_scale.py)")
    p.add_argument("--shapes", nargs="+", default=["clustered", "per_video", "isotropic"])
    p.add_argument("--pools", nargs="+", type=int, default=[1000, 2000], help="frames in the old references' pools")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--topics", type=int, default=1000)
    p.add_argument("--queries", type=int, default=1000, help="search_scale.py's queries (its recall used 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="20,000 x 64, 100 queries")
    p.add_argument("--work", help="folder for the archives (default: a temporary folder)")
    a = p.parse_args()
    a.frames = a.frames if a.frames == "mixed" else int(a.frames)
    if a.quick:
        a.rows, a.dim, a.queries = 20_000, 64, 100
    with tempfile.TemporaryDirectory(dir=a.work) as d:
        shapes = {s: check(s, a, Path(d)) for s in a.shapes}
    emit({"benchmark": "reference_pool", "machine": machine() | {"load_average": list(os.getloadavg())},
          "rows": a.rows, "frames": a.frames, "dim": a.dim, "queries": a.queries, "seed": a.seed,
          "pools": a.pools, "shapes": shapes})


if __name__ == "__main__":
    main()
