"""Search past one machine's RAM: a real on-disk index at 1M / 5M / 10M x 512 frames, searched by a separate process.

For each size (clustered shape, as ``benchmarks/search.py`` defines it: 1,000 topics, videos of ``--frames``
frames around one, frames near their video), for the hard shapes (``per_video``, ``isotropic``) at the
first size, and for the long-video shapes (``--long-shapes``, ``shape:frames``) at the first size: 600-frame
(10 minutes at 1 fps) and 3,600-frame (1 hour) videos, and ``mixed``: half the frames in 10-frame clips, half in
3,600-frame recordings, in random order (its queries are drawn half near clips, half near recordings):

1. the index folder is written as ``hvl index`` writes it (fp16 ``.npy`` shards + ``.jsonl`` lines + header),
   generated a shard at a time (10M x 512 float32 would be 20 GB in memory);
2. ``refresh_ann`` chooses the approximate index as ``hvl index`` does (``--ann`` family, ``--ann-memory auto``),
   its build time and the candidates' measurements recorded;
3. a fresh Python process (the "search process", as ``hvl search`` / ``hvl serve`` would be, without the model)
   loads the index (frames memory-mapped), runs ``--queries`` text-like queries one at a time through
   ``search()``, then the same through ``search_many`` (throughput, same run), and reports p50 / p95 and its
   anonymous resident memory (``RssAnon``: what the kernel cannot drop, unlike the mapped frames) after them;
4. video recall@10 of those answers against the full scan: every video's best frame over every frame on disk
   (``hvl.core.search.ann_measure.exact_videos``, a span of whole videos at a time), for 200 of the queries.

The bound for a shape the target cannot reach (every shape but 10-frame clustered): one fast-scan pass over the
smallest codes the chooser found to keep recall >= 0.95 (``PQ<m>x4fs`` at its tuned pool, split into row ranges
searched in parallel as the chosen index is), timed in the same search process; p50 is reported as a ratio to it.

    python benchmarks/search_scale.py [--sizes 1000000 5000000 10000000] [--quick] > search_scale.json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import emit, log, machine

DIM = 512
# what archives of recordings hold: 10-minute and 1-hour videos at 1 fps, and clips beside recordings
LONG_SHAPES = ["clustered:600", "per_video:600", "clustered:3600", "per_video:3600", "clustered:mixed",
               "per_video:mixed"]
QUICK_LONG = ["per_video:200"]  # --quick (20k frames): 100 videos of 200 frames


def unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return x


def video_lengths(rows: int, frames: int | str, rng: np.random.Generator) -> np.ndarray:
    """Frames of each video, in index order: ``frames`` each, or ``mixed``: half the rows in 3,600-frame recordings,
    the rest in 10-frame clips, shuffled."""
    if frames != "mixed":
        return np.full(rows // int(frames), int(frames), np.int64)
    long = rows // 2 // 3600
    lengths = np.r_[np.full(long, 3600), np.full((rows - long * 3600) // 10, 10)]
    return lengths[rng.permutation(len(lengths))]


def write_index(root: Path, shape: str, rows: int, frames: int | str, dim: int, topics: int, seed: int,
                shard_rows: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """An index folder as `hvl index` writes it, generated shard by shard; returns the video centres (queries are
    drawn near them) and each video's frame count."""
    from hvl.core.io import write_json
    from hvl.core.search.store import FORMAT, VERSION, write_shard

    rng = np.random.default_rng(seed)
    lengths = video_lengths(rows, frames, rng)
    n_videos = len(lengths)
    topic = unit(rng.standard_normal((topics, dim), dtype=np.float32))
    centres = np.empty((n_videos, dim), np.float32)
    for s in range(0, n_videos, 100_000):
        m = min(100_000, n_videos - s)
        noise = unit(rng.standard_normal((m, dim), dtype=np.float32))
        centres[s:s + m] = (unit(topic[rng.integers(0, topics, m)] + 0.8 * noise) if shape == "clustered" else noise)
    spread = 1.5 if shape == "isotropic" else 0.5
    (root / "shards").mkdir(parents=True, exist_ok=True)
    write_json(root / "index.json", {"format": FORMAT, "version": VERSION, "checkpoint": None, "model": "synthetic",
                                     "checkpoint_sha256": "synthetic", "level": "clip", "dim": dim, "fps": 1.0,
                                     "image_size": 224, "dtype": "float16", "videos_root": str(root / "videos")})
    ends = np.cumsum(lengths)
    s = 0
    while s < n_videos:  # whole videos, about shard_rows frames a shard
        e = max(s + 1, int(np.searchsorted(ends, (ends[s - 1] if s else 0) + shard_rows, side="right")))
        vids = np.arange(s, e)
        c = np.repeat(centres[vids], lengths[vids], axis=0)
        emb = unit(c + spread * unit(rng.standard_normal(c.shape, dtype=np.float32))).astype(np.float16)
        first = np.r_[0, np.cumsum(lengths[vids])[:-1]]
        lines = [json.dumps({"key": f"g/v{v}.mp4", "video_id": f"v{v}", "group": "g", "path": "", "row": int(r),
                             "t": [float(i) for i in range(lengths[v])]}) for v, r in zip(vids, first)]
        write_shard(root, f"s{s:09d}", emb, lines)
        s = e
    return centres, lengths


def queries_for(centres: np.ndarray, n: int, seed: int, lengths: np.ndarray | None = None) -> np.ndarray:
    """Text-like queries: near a video's centre, far from each of its frames. Videos of one length are picked
    uniformly; of mixed lengths, in proportion to their frames (half near clips, half near recordings)."""
    rng = np.random.default_rng(seed + 1)
    if lengths is None or lengths.min() == lengths.max():
        pick = rng.integers(0, len(centres), n)
    else:
        pick = rng.choice(len(centres), n, p=lengths / lengths.sum())
    return unit(centres[pick] + 1.0 * unit(rng.standard_normal((n, centres.shape[1]), dtype=np.float32)))


SEARCH_PROCESS = r'''
import json, sys, time
import numpy as np
from hvl.core.search.query import load_index, search, search_many
root, qfile, bound_spec, bound_pool = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
q = np.load(qfile)
t0 = time.perf_counter()
idx = load_index(root)
load_s = time.perf_counter() - t0
search(idx, q[0], k=10, moments=1)
times, answers = [], []
for x in q:
    t = time.perf_counter()
    answers.append([r["video_id"] for r in search(idx, x, k=10, moments=1)["results"]])
    times.append((time.perf_counter() - t) * 1000)
t = time.perf_counter()
many = search_many(idx, q, k=10, moments=1)
many_s = time.perf_counter() - t
assert [[r["video_id"] for r in m["results"]] for m in many] == answers
bound = None
if bound_spec != "-":  # one fast-scan pass over the smallest codes that keep recall: the floor for a frame scan
    import faiss
    from hvl.core.search.ann_measure import split_add
    ix = faiss.index_factory(idx.emb.shape[1], bound_spec, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)
    ix.train(np.ascontiguousarray(idx.emb[np.sort(rng.choice(len(idx.emb), min(len(idx.emb), 100000), replace=False))]))
    ix = split_add(ix, idx.emb)  # split into row ranges searched in parallel, as the chosen index is
    ix.search(q[:1], bound_pool)
    bt = []
    for x in q[:200]:
        t = time.perf_counter(); ix.search(x[None], bound_pool); bt.append((time.perf_counter() - t) * 1000)
    bound = {"spec": bound_spec, "pool": bound_pool, "p50_ms": round(float(np.percentile(bt, 50)), 3)}
    del ix
status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
kib = lambda k: int(status[k].split()[0])
print(json.dumps({"load_seconds": round(load_s, 2), "method": search(idx, q[0], k=10)["method"],
                  "p50_ms": round(float(np.percentile(times, 50)), 3), "p95_ms": round(float(np.percentile(times, 95)), 3),
                  "queries": len(q), "one_at_a_time_qps": round(len(q) / (sum(times) / 1000), 1),
                  "search_many_qps": round(len(q) / many_s, 1), "rss_anon_mib": round(kib("RssAnon") / 1024, 1),
                  "rss_file_mib": round(kib("RssFile") / 1024, 1), "bound": bound, "answers": answers}))
'''


def exact_videos(root: Path, queries: np.ndarray, k: int = 10) -> list[list[str]]:
    """Exact top ``k`` videos (by best frame) of each query: every frame on disk scored, a span of whole videos at
    a time (not the videos of a pool of best frames, which a few long videos fill)."""
    from hvl.core.search.ann_measure import exact_videos as full_scan
    from hvl.core.search.store import read_index

    idx = read_index(root)
    top, _ = full_scan(idx.emb, idx.row_video, queries, k)
    return [[idx.videos[v]["video_id"] for v in t if v >= 0] for t in top]


def run(shape: str, rows: int, frames: int | str, a: argparse.Namespace, work: Path) -> dict[str, Any]:
    from hvl.core.search.ann import refresh_ann

    name = f"{shape} {rows}" + ("" if frames == 10 else f" x{frames}")
    root = work / name.replace(" ", "_")
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.perf_counter()
    centres, lengths = write_index(root, shape, rows, frames, a.dim, a.topics, a.seed)
    write_s = time.perf_counter() - t0
    disk = sum(f.stat().st_size for f in (root / "shards").iterdir())
    log(f"[{name}] written in {write_s:.0f} s ({disk / 2**30:.2f} GiB); choosing the ANN ({a.ann}) ...")
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    meta = refresh_ann(root, kind=a.ann)
    ann_s = time.perf_counter() - t0
    log(f"[{name}] chose {meta['factory']} in {ann_s:.0f} s")
    queries = queries_for(centres, a.queries, a.seed, lengths)
    qfile = work / "queries.npy"
    np.save(qfile, queries)
    fast = [c for c in meta["candidates"] if c.get("kind") == "fastscan" and c.get("param") == "pool"
            and c.get("meets_target")]
    smallest = min(fast, key=lambda c: c["index_bytes"]) if fast else None
    easy = shape == "clustered" and frames == 10  # the one shape that meets the target without the bound
    bound = [smallest["factory"], str(smallest["pool_value"])] if smallest and not easy else ["-", "0"]
    proc = subprocess.run([sys.executable, "-c", SEARCH_PROCESS, str(root), str(qfile), *bound],
                          capture_output=True, text=True, check=True)
    res = json.loads(proc.stdout)
    answers = res.pop("answers")
    truth = exact_videos(root, queries[: a.recall_queries])
    recall = float(np.mean([len(set(x) & set(y)) / 10 for x, y in zip(answers, truth)]))
    f32 = rows * a.dim * 4
    out = {"shape": shape, "rows": rows, "frames_per_video": frames, "videos": len(lengths), "dim": a.dim,
           "disk_gib": round(disk / 2**30, 2),
           "float32_gib": round(f32 / 2**30, 2), "write_seconds": round(write_s, 1), "load_average": round(load, 2),
           "ann": {k: meta.get(k) for k in ("kind", "factory", "param", "value", "pool", "pool_value", "index_bytes",
                                              "recall_at_10", "video_recall_at_10", "held_out_video_recall_at_10",
                                              "widened_from", "p50_ms", "build_seconds")},
           "ann_seconds": round(ann_s, 1),
           "candidates": [{k: c.get(k) for k in ("factory", "skipped", "index_bytes", "recall_at_10", "pool",
                                                  "pool_value", "video_recall_at_10", "held_out_video_recall_at_10",
                                                  "widened_from", "p50_ms", "meets_target")}
                          for c in meta["candidates"]],
           "search": res | {"video_recall_at_10": round(recall, 4), "recall_queries": len(truth),
                            "rss_anon_over_float32": round(res["rss_anon_mib"] * 2**20 / f32, 3)}}
    if res.get("bound"):
        out["search"]["p50_over_bound"] = round(res["p50_ms"] / max(res["bound"]["p50_ms"], 1e-6), 2)
    out["meets_target"] = {"p50_le_10ms": res["p50_ms"] <= 10.0, "video_recall_ge_0.95": recall >= 0.95,
                           "rss_anon_le_0.3_float32": out["search"]["rss_anon_over_float32"] <= 0.3}
    log(f"[{name}] {json.dumps(out['search'])}")
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000, 10_000_000])
    p.add_argument("--hard-shapes", nargs="*", default=["per_video", "isotropic"],
                   help="shapes measured at the first size besides clustered")
    p.add_argument("--frames", type=int, default=10, help="frames per video (clustered and hard shapes)")
    p.add_argument("--long-shapes", nargs="*", metavar="SHAPE:FRAMES",
                   help="long-video shapes measured at the first size: frames per video, or mixed (10-frame clips "
                        f"and 3,600-frame recordings); default {' '.join(LONG_SHAPES)} ({' '.join(QUICK_LONG)} "
                        "with --quick); none: --long-shapes with no value")
    p.add_argument("--dim", type=int, default=DIM)
    p.add_argument("--topics", type=int, default=1000)
    p.add_argument("--queries", type=int, default=1000, help="queries the search process answers")
    p.add_argument("--recall-queries", type=int, default=200, help="of those, checked against exact search")
    p.add_argument("--ann", default="auto", help="the family `hvl index --ann` chooses from")
    p.add_argument("--work", help="folder for the indexes (default: a temporary folder; GBs at scale)")
    p.add_argument("--keep", action="store_true", help="keep the index folders")
    p.add_argument("--quick", action="store_true", help="20k x 64 frames, 100 queries, one long shape, for CI")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.quick:
        a.sizes, a.dim, a.topics, a.queries, a.recall_queries = [20_000], 64, 50, 100, 50
    if a.long_shapes is None:
        a.long_shapes = QUICK_LONG if a.quick else LONG_SHAPES
    from hvl.core.search import ann

    ann.ANN_MIN_ROWS = min(ann.ANN_MIN_ROWS, min(a.sizes))
    work = Path(a.work or tempfile.mkdtemp(prefix="hvl_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    runs = [run("clustered", n, a.frames, a, work) for n in a.sizes]
    runs += [run(shape, a.sizes[0], a.frames, a, work) for shape in a.hard_shapes]
    for spec in a.long_shapes:
        shape, _, frames = spec.partition(":")
        runs.append(run(shape, a.sizes[0], frames if frames == "mixed" else int(frames), a, work))
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)
    emit({"benchmark": "search_scale", "machine": machine() | {"load_average": [round(x, 2) for x in os.getloadavg()]},
          "quick": a.quick, "seed": a.seed, "ann": a.ann, "runs": runs})


if __name__ == "__main__":
    main()
