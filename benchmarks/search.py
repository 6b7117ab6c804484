"""Search latency and recall at scale, on three data shapes: every candidate approximate index vs exact search, same run.

Data (seeded, synthetic, L2-normalised, 1M x 512 by default), three shapes, because how well an
index does depends on how clustered the embeddings are and nobody knows that in advance:

* ``clustered``: 1,000 topics (random unit vectors: "a car in GTA", ...); each video around one
  topic, ``centre = unit(topic + 0.8 * unit(noise))``; frames ``unit(centre + 0.5 * unit(noise))``;
* ``per_video``: one topic per video (``centre`` = a random unit vector), frames as above: the
  same 1M frames with less structure shared between videos;
* ``isotropic``: random video centres and frames ``unit(centre + 1.5 * unit(noise))``: frames of one
  video barely resemble each other (cosine ~0.3), the whole set is close to uniform on the sphere:
  the worst case;
* queries are not index points: ``unit(centre of a random video + 1.0 * unit(noise))``.

The candidates with exact refinement (fast-scan PQ, the two-stage video -> frame index) are measured as
``hvl index`` measures them (recall after rescoring what they propose; their frame search = proposal +
rescoring). For each shape, baselines first: ``exact_flat`` (FAISS ``IndexFlatIP``, a full fp32 scan) and
``search()`` exact. Then every candidate :func:`hvl.core.search.ann.candidate_factories` lists
(IVF over fp16 / 8-bit vectors with two list counts, IVF-PQ, HNSW with M 16 / 32), each built
and tuned exactly as ``hvl index`` does (breadth = the smallest nprobe / efSearch / pool reaching frame
recall@10 >= 0.95 and top-10-video recall >= 0.95 among the candidates search() takes, on 100 perturbed index
frames and 100 topic queries, then checked and widened on 200 others: not on these queries). Per candidate:
build time, index size, peak RSS during the build (sampled every 20 ms, minus the RSS before it), then on these
queries, one at a time (as `hvl search` runs): frame recall@10 and p50 / p95 at the tuned ``value``;
``search()`` end to end at the tuned ``pool_value`` (candidate videos, exact rescoring) with its video recall@10
against the full scan (every video's best frame over every frame, ``exact_videos``; exact ``search()`` agrees
with it and is timed on ``--exact-queries``). ``chosen`` is the candidate ``hvl index`` would keep (same rule:
``tuned.meets_target`` and ``within_memory``, then the lowest tuned p50). ``meets_target`` per
shape is the issue's target instead, on these queries: ``search()`` p50 <= 10 ms at video
recall@10 >= 0.95, index <= 1.5 GiB per 1M x 512 frames (scaled to the run's size).

HNSW on more than ``--hnsw-max-rows`` frames (default ``HNSW_MAX_ROWS``, 2M) is skipped, with that reason in
the JSON (its graph build for 1M x 512 on 2 cores: 65-236 s, M 16 / 32, by data shape; growing ~n^1.2).
``--only FACTORY ...`` measures just those candidates (rows to add to an earlier run).

    python benchmarks/search.py [--quick] [--shape clustered per_video isotropic] > search.json
"""
from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path
from typing import Any, Self

import numpy as np
import psutil
from common import emit, log, machine

SHAPES = ("clustered", "per_video", "isotropic")


def unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return x


def unit_noise(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return unit(rng.standard_normal((n, dim), dtype=np.float32))


def make_data(shape: str, n_videos: int, frames: int, dim: int, topics: int, n_queries: int, seed: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames ``[n_videos * frames, dim]``, their video ids, and queries ``[n_queries, dim]``."""
    rng = np.random.default_rng(seed)
    if shape == "clustered":
        topic = unit_noise(rng, topics, dim)
        centres = unit(topic[rng.integers(0, topics, n_videos)] + 0.8 * unit_noise(rng, n_videos, dim))
    else:
        centres = unit_noise(rng, n_videos, dim)
    spread = 1.5 if shape == "isotropic" else 0.5
    emb = np.empty((n_videos * frames, dim), np.float32)
    step = 50_000
    for s in range(0, len(emb), step):  # chunked: the noise for 1M x 512 at once would double peak memory
        rows = np.arange(s, min(s + step, len(emb)))
        emb[rows] = unit(centres[rows // frames] + spread * unit_noise(rng, len(rows), dim))
    queries = unit(centres[rng.integers(0, n_videos, n_queries)] + 1.0 * unit_noise(rng, n_queries, dim))
    return emb, np.repeat(np.arange(n_videos), frames), queries


def latencies(fn, queries: np.ndarray) -> tuple[dict[str, float], list[Any]]:
    fn(queries[0])  # warm-up
    times, out = [], []
    for q in queries:
        t0 = time.perf_counter()
        out.append(fn(q))
        times.append((time.perf_counter() - t0) * 1000)
    t = np.array(times)
    return {"p50_ms": round(float(np.percentile(t, 50)), 3), "p95_ms": round(float(np.percentile(t, 95)), 3),
            "queries": len(t)}, out


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled), minus what it was before."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc, self.peak, self._stop = proc, 0, threading.Event()

    def __enter__(self) -> Self:
        self.start = self.peak = self.proc.memory_info().rss
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        self.delta_mib = round((self.peak - self.start) / 2**20, 1)


def run_shape(shape: str, a: argparse.Namespace, proc: psutil.Process) -> dict[str, Any]:
    import faiss
    from hvl.core.search import ann as A
    from hvl.core.search.query import _candidate_rows, search
    from hvl.core.search.store import FrameIndex

    log(f"[{shape}] data: {a.videos} videos x {a.frames} frames x {a.dim} ...")
    emb, row_video, queries = make_data(shape, a.videos, a.frames, a.dim, a.topics, a.queries, a.seed)
    flat = faiss.IndexFlatIP(a.dim)
    flat.add(emb)
    truth = flat.search(queries, 10)[1]  # batched: the ground truth, not a timing
    exact, _ = latencies(lambda q: flat.search(q[None], 10), queries[: a.exact_queries])
    videos = [{"video_id": f"v{i}", "group": "g", "path": "", "key": str(i), "start": i * a.frames, "n": a.frames}
              for i in range(a.videos)]
    times = np.tile(np.arange(a.frames, dtype=float), a.videos)
    exact_idx = FrameIndex(Path("."), {"dim": a.dim, "level": "clip"}, emb, row_video, times, videos, ["synthetic"])
    ve, _ = latencies(lambda q: search(exact_idx, q, k=10, moments=1), queries[: a.exact_queries])
    # the reference: every video's best frame over every frame (a full scan), for every query
    ref = [[f"v{v}" for v in top] for top in A.exact_videos(emb, row_video, queries, 10)[0]]
    log(f"[{shape}] exact: frame {exact}, search() {ve}")

    # tuned and checked as `hvl index` does: perturbed index frames and topic queries, never these queries
    tuning, held = A.tuning_truths(emb, row_video, np.random.default_rng(a.seed))
    specs, skipped = A.candidate_factories(len(emb), a.dim, "auto", a.hnsw_max_rows)
    if a.only:
        unknown = [s for s in a.only if s not in specs and s not in skipped]
        if unknown:
            raise SystemExit(f"search.py: --only {' '.join(unknown)}: not a candidate at this size; "
                             f"the candidates are {', '.join([*specs, *skipped])}")
        specs, skipped = list(a.only), {}
    budget = A.memory_budget(a.memory, len(emb), a.dim)
    records: list[dict[str, Any]] = [{"factory": s, "skipped": why} for s, why in skipped.items()]
    for spec in specs:
        log(f"[{shape}] {spec} ...")
        measure = A.measure_refined if A.refined(spec) else A.measure_candidate
        with PeakRSS(proc) as rss:
            index, rec = measure(spec, emb, tuning, seed=a.seed, held=held)
        rec |= {"index_mib": round(rec["index_bytes"] / 2**20, 1), "build_peak_rss_delta_mib": rss.delta_mib,
                "within_memory": rec["index_bytes"] <= budget}
        A.set_breadth(index, rec["param"], rec["value"])
        approx = FrameIndex(exact_idx.root, exact_idx.header, emb, row_video, times, videos, ["synthetic"], index,
                            {k: rec[k] for k in ("kind", "factory", "param", "value", "pool", "pool_value")})
        if A.refined(spec):  # its frames are ranked by rescoring what it proposes, as search() does
            def frames(q, ix=approx):
                (rows,), _ = _candidate_rows(ix, q[None], 10, 1000, None, False)
                return rows[np.argsort(-(emb[rows] @ q), kind="stable")[:10]]
        else:
            def frames(q, ix=index):
                return ix.search(q[None], 10)[1][0]
        fs, found = latencies(frames, queries)
        fs["recall_at_10"] = round(float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])), 4)
        vs, res = latencies(lambda q, ix=approx: [r["video_id"] for r in search(ix, q, k=10, moments=1)["results"]],
                            queries)
        vs["video_recall_at_10_vs_exact"] = round(float(np.mean([len(set(x) & set(y)) / 10
                                                                 for x, y in zip(res, ref)])), 4)
        vs["recall_queries"] = len(ref)
        records.append({"factory": spec, "tuned": rec, "frame_search": fs, "video_search": vs,
                        "frame_speedup_p50_vs_exact": round(exact["p50_ms"] / max(fs["p50_ms"], 1e-6), 1),
                        "search_speedup_p50_vs_exact": round(ve["p50_ms"] / max(vs["p50_ms"], 1e-6), 1)})
        log(f"[{shape}] {spec}: {records[-1]}")
    measured = [r for r in records if "tuned" in r]
    ok = [r for r in measured if A.eligible(r["tuned"])]
    chosen = min(ok, key=lambda r: A.rank_key(r["tuned"]))["factory"] if ok else None
    target = {"search_p50_ms": 10.0, "video_recall_at_10": 0.95, "index_gib_per_1m_x_512": 1.5}

    def meets(r: dict[str, Any]) -> bool:
        scale = 1e6 * 512 / (len(emb) * a.dim)
        return (r["video_search"]["p50_ms"] <= target["search_p50_ms"]
                and r["video_search"]["video_recall_at_10_vs_exact"] >= target["video_recall_at_10"]
                and r["tuned"]["index_bytes"] * scale / 2**30 <= target["index_gib_per_1m_x_512"])

    return {"data": {"videos": a.videos, "frames_per_video": a.frames, "rows": len(emb), "dim": a.dim,
                     "topics": a.topics if shape == "clustered" else a.videos if shape == "per_video" else None,
                     "queries": a.queries, "shape": shape},
            "exact_flat": exact, "exact_search": ve, "candidates": records, "chosen": chosen,
            "target": target, "meets_target": {r["factory"]: meets(r) for r in measured}}


def main() -> None:
    import faiss
    from hvl.core.search.ann import ANN_MEMORY_DEFAULT, HNSW_MAX_ROWS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1,000 videos x 10 frames x 128, every shape, for CI")
    p.add_argument("--shape", nargs="+", choices=SHAPES, default=list(SHAPES))
    p.add_argument("--videos", type=int, default=100_000)
    p.add_argument("--frames", type=int, default=10, help="frames per video")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--topics", type=int, default=1000, help="topics of the clustered shape")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--exact-queries", type=int, default=50, help="queries timed on the exact baselines (slow)")
    p.add_argument("--hnsw-max-rows", type=int, default=HNSW_MAX_ROWS, help="skip HNSW above this many frames")
    p.add_argument("--memory", default=str(ANN_MEMORY_DEFAULT), help="memory budget of `hvl index --ann-memory`")
    p.add_argument("--only", nargs="+", metavar="FACTORY",
                   help="measure only these candidates (e.g. HNSW16,SQfp16), to add rows to an earlier run")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.quick:
        a.videos, a.dim, a.topics, a.queries, a.exact_queries = 1000, 128, 50, 30, 10
    proc = psutil.Process(os.getpid())
    shapes = {}
    for shape in a.shape:
        shapes[shape] = run_shape(shape, a, proc)
    emit({"benchmark": "search", "machine": machine() | {"faiss": faiss.__version__,
                                                         "faiss_threads": faiss.omp_get_max_threads(),
                                                         "load_average": [round(x, 2) for x in os.getloadavg()]},
          "quick": a.quick, "seed": a.seed, "hnsw_max_rows": a.hnsw_max_rows, "memory_budget": a.memory,
          "only": a.only,
          "shapes": shapes, "peak_rss_mib": round(proc.memory_info().rss / 2**20, 1)})


if __name__ == "__main__":
    main()
