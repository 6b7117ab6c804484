"""Rescoring candidate videos whole from the fp16 shards on disk (issue 35): what a search on long recordings pays
after its candidate stage, and the main part of its p50 on 3,600-frame videos.

The candidates' frames are scored two ways, in one run and on the same rows:

* ``gather`` (the baseline, hvl before this benchmark): every candidate row gathered into one float32 array, then
  one matrix-vector product (``FrameRows[rows] @ q``);
* ``in_place`` (:meth:`hvl.core.search.store.FrameRows.score`, what ``search()`` does now): each video's run of
  rows decoded from the memory map in place, a block of 4,096 rows at a time, each block multiplied while in cache.

The frames are unit vectors written as fp16 ``.npy`` shards (as ``hvl index`` writes them) under ``--work`` and
read through the page cache; each query picks ``--videos`` random videos of ``--frames`` frames. Times are the
median over queries (one BLAS thread, as ``search()`` scores). ``max_abs_diff`` is the largest difference between
the two (float32 rounding: BLAS sums a call's last rows in another order).

    python benchmarks/rescore.py [--quick] > rescore.json
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_WORK, emit, log, machine


def write_shards(work: Path, rows: int, dim: int, shard_rows: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    parts = []
    for s in range(0, rows, shard_rows):
        n = min(shard_rows, rows - s)
        a = np.lib.format.open_memmap(work / f"shard_{s // shard_rows:04d}.npy", "w+", np.float16, (n, dim))
        for i in range(0, n, 65536):
            x = rng.standard_normal((min(65536, n - i), dim), dtype=np.float32)
            a[i:i + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
        a.flush()
        del a
        parts.append(np.load(work / f"shard_{s // shard_rows:04d}.npy", mmap_mode="r"))
    return parts


def measure(frames: int, videos: int, queries: int, rows: int, dim: int, shard_rows: int, work: Path, seed: int):
    from hvl.core.search.store import FrameRows, one_blas_thread

    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=work))
    try:
        emb = FrameRows(write_shards(tmp, rows, dim, shard_rows, seed))
        rng = np.random.default_rng(seed + 1)
        times: dict[str, list[float]] = {"gather": [], "in_place": []}
        diff = 0.0
        with one_blas_thread():
            for _ in range(queries):
                starts = np.sort(rng.choice(rows // frames, videos, replace=False)) * frames
                cand = (starts[:, None] + np.arange(frames)).ravel()
                q = rng.standard_normal(dim, dtype=np.float32)
                q /= np.linalg.norm(q)
                t0 = time.perf_counter()
                a = emb[cand] @ q
                t1 = time.perf_counter()
                b = emb.score(cand, q)
                t2 = time.perf_counter()
                times["gather"].append(t1 - t0)
                times["in_place"].append(t2 - t1)
                diff = max(diff, float(np.abs(a - b).max()))
        med = {k: round(1e3 * float(np.median(v)), 3) for k, v in times.items()}
        return {"frames_per_video": frames, "videos": videos, "rows_scored": frames * videos,
                "gather_ms": med["gather"], "in_place_ms": med["in_place"],
                "speedup": round(med["gather"] / med["in_place"], 2), "max_abs_diff": diff}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100,000 rows, 10 queries a shape (CI)")
    ap.add_argument("--rows", type=int, default=None, help="frames on disk (default 1,000,000; quick 100,000)")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--shapes", nargs="+", default=["600x20", "3600x20", "10x20"],
                    help="frames-per-video x candidate videos (search() rescores 20 for a top 10)")
    ap.add_argument("--queries", type=int, default=None, help="default 100 (quick 10)")
    ap.add_argument("--shard-rows", type=int, default=100_000, help="rows per shard (hvl index writes ~this)")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK / "rescore")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rows = a.rows or (100_000 if a.quick else 1_000_000)
    queries = a.queries or (10 if a.quick else 100)
    out = []
    for shape in a.shapes:
        frames, videos = map(int, shape.split("x"))
        r = measure(frames, videos, queries, rows, a.dim, a.shard_rows, a.work, a.seed)
        log(f"{shape}: {r}")
        out.append(r)
    emit({"benchmark": "rescore", "quick": a.quick,
          "config": {"rows": rows, "dim": a.dim, "queries": queries, "shard_rows": a.shard_rows,
                     "baseline": "gather"},
          "machine": machine(), "shapes": out})


if __name__ == "__main__":
    main()
