"""Approximate nearest-neighbour search over an index's frames (FAISS), chosen by measured recall.

Built when an index reaches ``ANN_MIN_ROWS`` frames (or when asked): it proposes candidate videos (the
videos of a frame pool, or, for the two-stage index, videos directly) whose every frame
:func:`hvl.core.search.query.search` then rescores exactly from the memory-mapped shards. Which index is built is not decided by
size alone: how well IVF lists or an HNSW graph fit depends on how clustered the embeddings are,
which nobody knows in advance. So every candidate (IVF with a few list counts over fp16 or 8-bit
vectors, IVF-PQ, HNSW, 4-bit fast-scan PQ, a two-stage video -> frame index) is built on the index's own frames, its search breadth tuned on a held-out
perturbed sample, its latency measured, and the fastest one reaching ``TARGET_RECALL`` (frame
recall@10 and the recall of the top 10 videos of a frame pool) within the memory budget wins.
Stored as ``<index>/ann/ann.faiss`` (``faiss.write_index``, no pickle) and ``ann/ann.json`` (every
candidate's measurements, why the winner won, which shards it covers).

The two families "with exact refinement" are measured as :func:`~hvl.core.search.query.search` uses them,
since their codes alone are too coarse to rank (4 bits a sub-vector) and exact rescoring is what repairs them:

* ``PQ<m>x4fs`` (fast-scan PQ, SIMD look-up tables in registers): one pass over ``m / 2`` bytes a frame; its
  breadth is the frame pool (``pool``), the frames whose videos are rescored; ``IVF<n>,PQ<m>x4fs`` scans only
  ``nprobe`` lists for a 1,000-frame pool (clustered frames, millions of them);
* ``VideoMean,PQ<m>x4fs`` (two-stage): one vector per video (the mean of its frames), searched by fast scan;
  its breadth is the number of videos (``videos``) whose frames are rescored.

Their ``recall_at_10`` / ``video_recall_at_10`` are after that rescoring (the share of the exact top 10 frames
/ videos among the rescored videos), and their ``p50_ms`` is proposal plus rescoring, one query at a time.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import HVLInputError
from ..io import write_json
from .store import committed_shards, read_index

__all__ = ["ANN_MEMORY_DEFAULT", "ANN_MIN_ROWS", "HNSW_MAX_ROWS", "TARGET_RECALL", "Truth", "ann_kind_for",
           "build_ann", "candidate_factories", "eligible", "estimate_bytes", "exact_topk", "load_ann",
           "measure_candidate", "parse_memory", "rank_key", "recall_at", "refresh_ann", "save_ann", "set_breadth",
           "tuning_queries"]

ANN_MIN_ROWS = 100_000       # below this an exact scan takes a few ms: no approximate index
# The index lives in the search process's own memory while the frames stay on disk: by default it may take a
# fifth of what the frames would take as float32 (the process's anonymous memory stays under ~0.3 of that),
# and never less than 256 MiB (small indexes: any candidate fits).
ANN_MEMORY_DEFAULT = "auto"
ANN_MEMORY_FLOOR = 256 * 2**20
ANN_MEMORY_SHARE = 0.2
# HNSW's graph build grows ~n^1.2: 65-236 s for 1M x 512 on 2 cores (M 16 / 32, by data shape; benchmarks/README);
# above this auto does not try it (~10 minutes or more a build).
HNSW_MAX_ROWS = 2_000_000
# A flat fast scan reads every frame's codes: ~15 ms a query for 1M x 512 at 128 bytes on 2 cores
# (../shared/REFERENCES.md, benchmarks/README): above this, auto measures only the IVF fast scan.
FASTSCAN_FLAT_MAX_ROWS = 2_000_000
TARGET_RECALL = 0.95
KINDS = ("auto", "ivf", "ivfpq", "hnsw", "fastscan", "two_stage")


def ann_kind_for(n: int) -> str:
    """``flat`` (exact search, no approximate index) below ``ANN_MIN_ROWS``; else ``auto``: chosen by measurement."""
    return "flat" if n < ANN_MIN_ROWS else "auto"


def memory_budget(memory: int | str, rows: int, dim: int) -> int:
    """``--ann-memory`` in bytes; ``auto``: ``ANN_MEMORY_SHARE`` of the frames as float32, at least the floor."""
    if str(memory).strip().lower() == "auto":
        return max(ANN_MEMORY_FLOOR, int(ANN_MEMORY_SHARE * rows * dim * 4))
    return parse_memory(memory)


def parse_memory(text: str | float) -> int | str:
    """``2GiB``, ``512MiB``, ``1.5G`` or a byte count -> bytes (``--ann-memory``); ``auto`` stays ``auto``
    (sized by :func:`memory_budget` once the index's size is known)."""
    if isinstance(text, (int, float)):
        return int(text)
    if text.strip().lower() == "auto":
        return "auto"
    s = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(s[-1:], 1)
    try:
        value = float(s[:-1] if mult > 1 else s)
    except ValueError:
        raise HVLInputError(f"--ann-memory '{text}' is not a size; use e.g. 2GiB, 512MiB or a byte count") from None
    if value <= 0:
        raise HVLInputError(f"--ann-memory must be > 0 (got '{text}')")
    return int(value * mult)


def _nlist(n: int, factor: float = 1.0) -> int:
    return int(min(65536, max(16, 2 ** round(np.log2(factor * 2 * np.sqrt(n))))))


def candidate_factories(n: int, dim: int, kind: str = "auto", hnsw_max_rows: int = HNSW_MAX_ROWS
                        ) -> tuple[list[str], dict[str, str]]:
    """FAISS factory strings worth measuring for ``n`` x ``dim`` frames, and those skipped (with why).

    More IVF lists = fewer vectors scanned per probe (faster on spread-out data, slower to train);
    SQ8 halves SQfp16's memory at a small loss of precision; PQ compresses 8-16x (recall is then
    limited by the code, which exact rescoring of the pool partly repairs); HNSW needs no training
    and copes with unclustered data, but its graph build is slow.
    """
    if kind not in KINDS:
        raise HVLInputError(f"--ann '{kind}' is unknown; use one of {', '.join(KINDS)} or none")
    base, more = _nlist(n), _nlist(n, 2)
    m = max(4, dim // 8)  # 8 dims a sub-quantiser: 4 would train twice as many codebooks, slowly
    while dim % m:
        m //= 2
    fs = max(8, dim // 2)  # fast scan: 4 bits per 2 dims, a quarter byte a dimension
    while dim % fs:
        fs //= 2
    fams = {"ivf": [f"IVF{base},SQfp16", f"IVF{more},SQfp16", f"IVF{more},SQ8"],
            "ivfpq": [f"IVF{more},PQ{m}np"],  # np: no polysemous training (slow, and only for Hamming filtering)
            "hnsw": ["HNSW16,SQfp16", "HNSW32,SQfp16"],
            "fastscan": [f"PQ{fs}x4fs", f"PQ{fs // 2}x4fs", f"IVF{min(base, 4096)},PQ{fs}x4fs"],
            "two_stage": [f"VideoMean,PQ{fs}x4fs"]}
    chosen = [s for f, specs in fams.items() if kind in ("auto", f) for s in specs]
    skipped: dict[str, str] = {}
    if n > hnsw_max_rows and kind == "auto":
        for s in fams["hnsw"]:
            chosen.remove(s)
            skipped[s] = (f"{n} rows > {hnsw_max_rows}: an HNSW graph build of this size takes ~10 minutes or more "
                          "on 2 cores; pass --ann hnsw to build it anyway")
    if n > FASTSCAN_FLAT_MAX_ROWS and kind in ("auto", "fastscan"):
        for s in fams["fastscan"][:2]:
            chosen.remove(s)
            skipped[s] = (f"{n} rows > {FASTSCAN_FLAT_MAX_ROWS}: one pass over every frame's codes takes longer "
                          "than the 10 ms target; the IVF fast scan reads only the nearest lists")
    return chosen, skipped


def kind_of(spec: str) -> str:
    if spec.startswith("VideoMean"):
        return "two_stage"
    if spec.endswith("x4fs"):
        return "fastscan"
    return "hnsw" if spec.startswith("HNSW") else "ivfpq" if ",PQ" in spec else "ivf" if spec.startswith("IVF") else "flat"


def refined(spec: str) -> bool:
    """Whether ``spec`` is measured with exact refinement of its candidates (fast scan, two-stage)."""
    return kind_of(spec) in ("fastscan", "two_stage")


def estimate_bytes(spec: str, n: int, dim: int) -> int:
    """Index size before building it (vectors + ids / graph links + centroids), to skip what cannot fit."""
    code = 2 * dim if "SQfp16" in spec else dim if "SQ8" in spec else 4 * dim
    if spec.endswith("x4fs"):
        code = int(spec.rsplit("PQ", 1)[1].removesuffix("x4fs")) // 2 + 1
        if spec.startswith("VideoMean"):
            return n // 4 * code  # one vector a video: a few frames a video at the least
        return n * code
    if ",PQ" in spec:
        code = int(spec.rsplit("PQ", 1)[1].removesuffix("np"))
    if spec.startswith("HNSW"):
        m = int(spec[4:].split(",")[0])
        return n * (code + 2 * m * 4 + 8)
    nlist = int(spec[3:].split(",")[0]) if spec.startswith("IVF") else 0
    return n * (code + 8) + nlist * dim * 4


SCAN_CHUNK = 1 << 16  # rows read at a time from frames on disk (exact truth, adding to an index, video means)


def _chunks(emb: Any, step: int = SCAN_CHUNK):
    for i in range(0, len(emb), step):
        yield i, np.ascontiguousarray(emb[i:i + step], np.float32)


def exact_topk(emb: Any, queries: np.ndarray, k: int) -> np.ndarray:
    """Row ids of each query's ``k`` best frames by inner product, exactly; ``emb`` is read a chunk at a time
    (frames on disk need not fit in memory)."""
    q = np.ascontiguousarray(queries, np.float32)
    k = min(k, len(emb))
    best_s = np.full((len(q), 0), -np.inf, np.float32)
    best_i = np.zeros((len(q), 0), np.int64)
    for i, block in _chunks(emb):
        sc = q @ block.T                                           # [Q, b]
        kk = min(k, sc.shape[1])
        top = np.argpartition(-sc, kk - 1, axis=1)[:, :kk]
        cand_s = np.concatenate([best_s, np.take_along_axis(sc, top, 1)], 1)
        cand_i = np.concatenate([best_i, top + i], 1)
        keep = np.argpartition(-cand_s, min(k, cand_s.shape[1]) - 1, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, keep, 1), np.take_along_axis(cand_i, keep, 1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_i, order, 1)


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over queries of |approximate top-k ∩ exact top-k| / k."""
    k = truth.shape[1]
    return float(np.mean([len(set(f[:k]) & set(t)) / k for f, t in zip(found, truth)]))


def _first_videos(rows: np.ndarray, row_video: np.ndarray, k: int) -> list[int]:
    """The first ``k`` distinct videos of a frame ranking = the top ``k`` videos by best frame."""
    seen: dict[int, None] = {}
    for r in rows:
        if r >= 0:
            seen.setdefault(int(row_video[r]), None)
            if len(seen) == k:
                break
    return list(seen)


def tuning_queries(x: np.ndarray, rng: np.random.Generator, m: int = 200, rows: np.ndarray | None = None) -> np.ndarray:
    """``m`` frames of ``x`` (of ``rows`` when given), each perturbed by a vector as long as itself.

    A text query lies far from any frame (cosine ~0.3-0.6 in trained models): unperturbed frames
    would tune the breadth on too easy queries."""
    pick = rng.choice(len(x) if rows is None else rows, min(m, len(x) if rows is None else len(rows)), replace=False)
    q = x[pick] + rng.normal(0, 1 / np.sqrt(x.shape[1]), (len(pick), x.shape[1])).astype(np.float32)
    return np.ascontiguousarray(q / np.linalg.norm(q, axis=1, keepdims=True), np.float32)


class Truth:
    """Exact answers for the tuning queries: frame top 10 and, with ``row_video``, the top 10 videos."""

    def __init__(self, x: Any, tq: np.ndarray, row_video: np.ndarray | None, pool: int) -> None:
        self.tq, self.row_video, self.pool = tq, row_video, min(pool, len(x))
        top = exact_topk(x, tq, self.pool if row_video is not None else 10)
        self.frames = top[:, :10]
        self.videos = None if row_video is None else [_first_videos(r, row_video, 10) for r in top]

    def coverage(self, proposed: list[np.ndarray]) -> tuple[float, float]:
        """(frame recall@10, video recall@10) once every frame of the ``proposed`` videos (per query) is rescored
        exactly: a true top frame or video is found exactly when its video was proposed."""
        frames = [float(np.isin(self.row_video[f], c).mean()) for f, c in zip(self.frames, proposed)]
        videos = [len(set(v) & set(c.tolist())) / max(len(v), 1) for v, c in zip(self.videos, proposed)]
        return float(np.mean(frames)), float(np.mean(videos))

    def frame_recall(self, index: Any) -> float:
        return recall_at(index.search(self.tq, 10)[1], self.frames)

    def video_recall(self, index: Any) -> float:
        got = index.search(self.tq, self.pool)[1]
        return float(np.mean([len(set(_first_videos(g, self.row_video, 10)) & set(t)) / max(len(t), 1)
                              for g, t in zip(got, self.videos)]))


def _train_and_add(spec: str, x: Any, rng: np.random.Generator, train_size: int, seed: int) -> Any:
    import faiss

    index = faiss.index_factory(x.shape[1], spec, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        if spec.startswith("IVF"):
            ivf = faiss.extract_index_ivf(index)
            train_size = max(train_size, 40 * ivf.nlist)  # k-means wants ~40 points a list
            if ",PQ" in spec:
                faiss.downcast_index(ivf).pq.cp.niter = 10  # as the coarse k-means: most of the gain, 40 % of the time
            ivf.cp.niter = 10            # k-means iterations: 10 get most of the benefit of 25 at 40 % of the time
            ivf.cp.seed = seed
            ivf.cp.max_points_per_centroid = 10**9  # we already subsampled; don't let faiss resample
        index.train(np.ascontiguousarray(x[np.sort(rng.choice(len(x), min(len(x), train_size), replace=False))],
                                         np.float32))
    for _, block in _chunks(x):
        index.add(block)
    return index


def _param_limit(index: Any, spec: str) -> tuple[str, int]:
    import faiss

    return ("nprobe", faiss.extract_index_ivf(index).nlist) if spec.startswith("IVF") else ("efSearch", 4096)


def _smallest(index: Any, param: str, limit: int, score: Callable[[], float], target: float, start: int = 1
              ) -> tuple[int, float]:
    """The smallest power-of-two breadth (from ``start``) whose ``score`` reaches ``target``, or the limit."""
    value = max(1, min(start, limit))
    while True:
        set_breadth(index, param, value)
        rec = score()
        if rec >= target or value >= limit:
            return value, rec
        value = min(value * 2, limit)


def _latency_ms(index: Any, queries: np.ndarray, k: int) -> dict[str, float]:
    index.search(queries[:1], k)  # warm-up
    t = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q[None], k)
        t.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(float(np.percentile(t, 50)), 3), "p95_ms": round(float(np.percentile(t, 95)), 3)}


def measure_candidate(spec: str, x: np.ndarray, truth: Truth, target: float = TARGET_RECALL, seed: int = 0,
                      train_size: int = 100_000, timed_queries: int = 50) -> tuple[Any, dict[str, Any]]:
    """Build ``spec`` on ``x``, tune its breadth on ``truth``'s queries, time it one query at a time.

    ``value``: the smallest breadth reaching ``target`` frame recall@10; ``pool_value``: the smallest
    also reaching ``target`` recall of the top 10 videos within the frame pool that search() asks for
    (a pool must reach further than the 10 nearest frames, which often come from one or two videos).
    Latency is timed at ``pool_value`` with the pool's size: what one `hvl search` costs."""
    import faiss

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    index = _train_and_add(spec, x, rng, train_size, seed)
    build_s = time.perf_counter() - t0
    param, limit = _param_limit(index, spec)
    value, rec = _smallest(index, param, limit, lambda: truth.frame_recall(index), target)
    rec_out: dict[str, Any] = {"kind": kind_of(spec), "factory": spec, "build_seconds": round(build_s, 2),
                               "index_bytes": int(faiss.serialize_index(index).nbytes),
                               "param": param, "value": value, "recall_at_10": round(rec, 4)}
    k = 10
    if truth.videos is not None:
        pool_value, vrec = _smallest(index, param, limit, lambda: truth.video_recall(index), target, start=value)
        rec_out |= {"pool": truth.pool, "pool_value": pool_value, "video_recall_at_10": round(vrec, 4)}
        k = truth.pool
        set_breadth(index, param, pool_value)
    else:
        set_breadth(index, param, value)
    rec_out |= _latency_ms(index, truth.tq[:timed_queries], k)
    rec_out["meets_target"] = rec >= target and rec_out.get("video_recall_at_10", 1.0) >= target
    set_breadth(index, param, value)
    return index, rec_out


def video_bounds(row_video: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First row and row count of each video (rows are grouped by video, as an index stores them)."""
    starts = np.flatnonzero(np.r_[True, row_video[1:] != row_video[:-1]])
    return starts, np.diff(np.r_[starts, len(row_video)])


def video_means(x: Any, row_video: np.ndarray) -> np.ndarray:
    """One L2-normalised vector per video: the mean of its frames (the two-stage index's first stage)."""
    starts, _ = video_bounds(row_video)
    sums = np.zeros((len(starts), x.shape[1]), np.float64)
    for i, block in _chunks(x):
        rv = row_video[i:i + len(block)]
        cut = np.flatnonzero(np.r_[True, rv[1:] != rv[:-1]])
        np.add.at(sums, rv[cut], np.add.reduceat(block, cut, axis=0))
    out = sums.astype(np.float32)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def _rescore_top10(x: Any, q: np.ndarray, vids: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """What search() does with candidate videos: every frame scored exactly, videos ranked by best frame."""
    if not len(vids):
        return vids
    ln = lens[vids]
    rows = np.arange(int(ln.sum())) + np.repeat(starts[vids] - np.r_[0, np.cumsum(ln)[:-1]], ln)
    sc = x[rows] @ q
    best = np.maximum.reduceat(sc, np.r_[0, np.cumsum(ln)[:-1]])
    return vids[np.argsort(-best, kind="stable")[:10]]


def measure_refined(spec: str, x: Any, truth: Truth, target: float = TARGET_RECALL, seed: int = 0,
                    train_size: int = 100_000, timed_queries: int = 50) -> tuple[Any, dict[str, Any]]:
    """Build a fast-scan or two-stage ``spec`` and tune its breadth by recall after exact rescoring.

    ``value``: the smallest breadth (frames of the pool, or videos) whose rescored videos hold ``target`` of the
    true top 10 frames; ``pool_value``: the smallest also holding ``target`` of the true top 10 videos. Latency
    is timed at ``pool_value``, proposal plus rescoring of the candidates' frames, one query at a time."""
    import faiss

    rng = np.random.default_rng(seed)
    rv = truth.row_video
    starts, lens = video_bounds(rv)
    t0 = time.perf_counter()
    two_stage = kind_of(spec) == "two_stage"
    base = spec.split(",", 1)[1] if two_stage else spec
    data = video_means(x, rv) if two_stage else x
    index = faiss.index_factory(x.shape[1], base, faiss.METRIC_INNER_PRODUCT)
    index.train(np.ascontiguousarray(data[np.sort(rng.choice(len(data), min(len(data), train_size), replace=False))],
                                     np.float32))
    for _, block in _chunks(data):
        index.add(block)
    build_s = time.perf_counter() - t0
    ivf = spec.startswith("IVF")
    if ivf:
        param, limit = "nprobe", faiss.extract_index_ivf(index).nlist
    else:
        param, limit = ("videos", len(data)) if two_stage else ("pool", min(len(data), 16384))
    frame_pool = min(truth.pool, len(data))

    def propose(q: np.ndarray, breadth: int) -> list[np.ndarray]:
        if ivf:
            faiss.extract_index_ivf(index).nprobe = int(breadth)
        found = index.search(np.ascontiguousarray(q, np.float32), frame_pool if ivf else int(breadth))[1]
        return [f[f >= 0] if two_stage else np.unique(rv[f[f >= 0]]) for f in found]

    value = pool_value = None
    breadth, frec, vrec = min(1 if ivf else 16 if two_stage else 64, limit), 0.0, 0.0
    while True:
        frec, vrec = truth.coverage(propose(truth.tq, breadth))
        if value is None and (frec >= target or breadth >= limit):
            value, rec_at = breadth, frec
        if vrec >= target or breadth >= limit:
            pool_value = breadth
            break
        breadth = min(breadth * 2, limit)
    times = []
    for q in truth.tq[:timed_queries]:
        t1 = time.perf_counter()
        _rescore_top10(x, q, propose(q[None], pool_value)[0], starts, lens)
        times.append((time.perf_counter() - t1) * 1000)
    rec = {"kind": kind_of(spec), "factory": spec, "build_seconds": round(build_s, 2),
           "index_bytes": int(faiss.serialize_index(index).nbytes), "param": param, "value": int(value),
           "recall_at_10": round(rec_at, 4), "pool": int(frame_pool if ivf else pool_value), "pool_value": int(pool_value),
           "video_recall_at_10": round(vrec, 4), "refined": True,
           "p50_ms": round(float(np.percentile(times, 50)), 3), "p95_ms": round(float(np.percentile(times, 95)), 3)}
    rec["meets_target"] = rec_at >= target and vrec >= target
    return index, rec


def eligible(rec: dict[str, Any]) -> bool:
    """A measured candidate that reaches the target and fits the budget."""
    return bool(rec.get("meets_target")) and bool(rec.get("within_memory"))


def rank_key(rec: dict[str, Any]) -> tuple[float, int]:
    """Among eligible candidates: lowest measured p50 per pool search, then the smaller index."""
    return rec["p50_ms"], rec["index_bytes"]


def build_ann(emb: np.ndarray, kind: str = "auto", train_size: int = 100_000, seed: int = 0,
              target: float = TARGET_RECALL, tune_queries: np.ndarray | None = None,
              row_video: np.ndarray | None = None, pool: int = 1000, memory: int | str = ANN_MEMORY_DEFAULT,
              hnsw_max_rows: int = HNSW_MAX_ROWS, progress: bool = False) -> tuple[Any, dict[str, Any]]:
    """Build every candidate of ``kind`` (``auto``: all families) that fits ``memory`` bytes, measure each
    on ``tune_queries`` (default: 200 perturbed frames of ``emb``) and keep the fastest meeting ``target``.

    Returns the chosen index (breadth set for frame recall) and its meta: the winner's measurements,
    ``candidates`` (all of them, with skipped ones and why) and ``reason``. Raises HVLInputError naming
    what would work when nothing meets the target within the budget."""
    n, dim = emb.shape
    budget = memory_budget(memory, n, dim)
    x = emb if not isinstance(emb, np.ndarray) else np.ascontiguousarray(emb, np.float32)  # frames on disk stay there
    rng = np.random.default_rng(seed)
    if kind == "flat":
        import faiss

        index = faiss.IndexFlatIP(dim)
        for _, block in _chunks(x):
            index.add(block)
        return index, {"kind": "flat", "factory": "Flat", "rows": n, "dim": dim, "recall_at_10": 1.0}
    specs, skipped = candidate_factories(n, dim, kind, hnsw_max_rows)
    tq = tuning_queries(x, rng) if tune_queries is None else np.ascontiguousarray(tune_queries, np.float32)
    truth = Truth(x, tq, row_video, pool)
    records: list[dict[str, Any]] = [{"factory": s, "skipped": why} for s, why in skipped.items()]
    best: tuple[Any, dict[str, Any]] | None = None
    for spec in specs:
        est = estimate_bytes(spec, n, dim)
        if est > budget:
            records.append({"factory": spec, "skipped": f"estimated {est / 2**30:.2f} GiB > --ann-memory "
                                                         f"{budget / 2**30:.2f} GiB", "estimated_bytes": est})
            continue
        if refined(spec) and row_video is None:
            records.append({"factory": spec, "skipped": "needs the video of each frame (row_video)"})
            continue
        if progress:
            print(f"hvl index: measuring {spec} on {n} frames ...", file=sys.stderr)
        measure = measure_refined if refined(spec) else measure_candidate
        index, rec = measure(spec, x, truth, target, seed, train_size)
        rec["within_memory"] = rec["index_bytes"] <= budget
        records.append(rec)
        if eligible(rec) and (best is None or rank_key(rec) < rank_key(best[1])):
            best = (index, rec)
        else:
            del index
    if best is None:
        _refuse(records, budget, target, n)
    index, rec = best
    reason = (f"lowest measured p50 ({rec['p50_ms']} ms per pool search) among the "
              f"{sum(map(eligible, records))} candidates reaching "
              f"recall@10 >= {target} (frames and videos) within {budget / 2**30:.2f} GiB")
    meta = {k: v for k, v in rec.items() if k not in ("meets_target", "within_memory")}
    meta |= {"rows": n, "dim": dim, "target_recall": target, "memory_budget_bytes": budget,
             "tuning_queries": len(tq), "seed": seed, "reason": reason, "candidates": records}
    return index, meta


def _refuse(records: list[dict[str, Any]], budget: int, target: float, n: int) -> None:
    reaching = [r for r in records if r.get("meets_target")]
    lines = [(f"no approximate index reaches recall@10 >= {target} within --ann-memory {budget / 2**30:.2f} GiB "
              f"on these {n} frames. Measured:")]
    for r in records:
        lines.append(f"  {r['factory']}: " + (r["skipped"] if "skipped" in r else
                     f"recall {r['recall_at_10']}, video recall {r.get('video_recall_at_10', '-')}, "
                     f"{r['index_bytes'] / 2**30:.2f} GiB"))
    fix = []
    if reaching:
        need = min(r["index_bytes"] for r in reaching)
        fix.append(f"--ann-memory {int(np.ceil(need / 2**20))}MiB (the smallest candidate that reaches it)")
    elif any("estimated_bytes" in r for r in records):
        fix.append(f"--ann-memory {int(np.ceil(max(r.get('estimated_bytes', 0) for r in records) / 2**20))}MiB "
                   "(to also measure the candidates skipped for memory)")
    fix.append("--ann none (exact search: always right, slower)")
    raise HVLInputError("\n".join(lines) + "\nUse " + " or ".join(fix) + ".")


def set_breadth(index: Any, param: str, value: int) -> None:
    """nprobe (IVF) or efSearch (HNSW); a fast-scan pool or a number of videos is the search's ``k``, not a setting."""
    import faiss

    if param in ("pool", "videos"):
        return
    if param == "nprobe":
        faiss.extract_index_ivf(index).nprobe = value
    else:
        faiss.downcast_index(index).hnsw.efSearch = value


def save_ann(root: Path, index: Any, meta: dict[str, Any], shards: list[str]) -> None:
    """``ann/ann.faiss`` (faiss.write_index, no pickle) + ``ann/ann.json`` naming the shards it covers."""
    import faiss

    d = root / "ann"
    d.mkdir(exist_ok=True)
    tmp = d / ".ann.faiss.tmp"
    faiss.write_index(index, str(tmp))
    tmp.replace(d / "ann.faiss")
    write_json(d / "ann.json", meta | {"shards": shards})


def _read_meta(root: Path) -> dict[str, Any]:
    meta_path, path = root / "ann" / "ann.json", root / "ann" / "ann.faiss"
    if not meta_path.is_file() or not path.is_file():
        return {}
    return json.loads(meta_path.read_text())


def load_ann(root: Path, shards: list[str], rows: int) -> tuple[Any, dict[str, Any]]:
    """The stored approximate index if it covers exactly the committed shards; else (None, {})."""
    import faiss

    meta = _read_meta(root)
    if not meta:
        return None, {}
    path = root / "ann" / "ann.faiss"
    if meta.get("shards") != shards or meta.get("rows") != rows:
        print(f"hvl search: {path} is stale (the index changed since it was built); searching exactly. "
              "Re-run `hvl index` to rebuild it.", file=sys.stderr)
        return None, {}
    index = faiss.read_index(str(path))
    if "param" in meta:
        set_breadth(index, meta["param"], meta["value"])
    return index, meta


def _try_add(root: Path, emb: np.ndarray, row_video: np.ndarray, meta: dict[str, Any], seed: int
             ) -> tuple[Any, dict[str, Any]] | None:
    """Add the frames after ``meta['rows']`` to the stored index; keep it if, on a sample of the *new*
    frames, recall at the stored breadths still meets the target. None: the data drifted, rebuild."""
    import faiss

    if meta.get("refined"):  # a fast-scan or two-stage index rebuilds in a fraction of the embedding time
        meta["_drift"] = {"added_rows": len(emb) - meta["rows"], "reason": "fast-scan / two-stage: rebuilt, not added"}
        return None
    old = meta["rows"]
    index = faiss.read_index(str(root / "ann" / "ann.faiss"))
    for _, block in _chunks(emb[old:] if isinstance(emb, np.ndarray) else emb[np.arange(old, len(emb))]):
        index.add(block)
    x = emb
    rng = np.random.default_rng(seed + len(meta.get("updates", [])) + 1)
    truth = Truth(x, tuning_queries(x, rng, rows=np.arange(old, len(x))), row_video, meta.get("pool", 1000))
    target = meta.get("target_recall", TARGET_RECALL)
    set_breadth(index, meta["param"], meta["value"])
    rec = truth.frame_recall(index)
    vrec = None
    if "pool_value" in meta:
        set_breadth(index, meta["param"], meta["pool_value"])
        vrec = truth.video_recall(index)
        set_breadth(index, meta["param"], meta["value"])
    update = {"added_rows": len(x) - old, "recall_at_10_new_sample": round(rec, 4),
              "video_recall_at_10_new_sample": None if vrec is None else round(vrec, 4)}
    if rec < target or (vrec is not None and vrec < target):
        meta["_drift"] = update
        return None
    return index, meta | {"rows": len(x), "updates": [*meta.get("updates", []), update | {"action": "added"}]}


def refresh_ann(root: str | Path, kind: str = "auto", memory: int | str = ANN_MEMORY_DEFAULT,
                seed: int = 0) -> dict[str, Any] | None:
    """(Re)build ``ann/`` when the index is big enough (or ``kind`` forces it) and it is missing or stale.

    New shards since the last build are added to the stored index when recall measured on a sample
    of the new frames still meets the target; otherwise (the data drifted) the choice is re-measured."""
    root = Path(root)
    names = committed_shards(root)
    if kind == "none" or not names:
        return None
    idx = read_index(root)
    n = len(idx.emb)
    if kind == "auto" and ann_kind_for(n) == "flat":
        return None
    meta = _read_meta(root)
    same_kind = bool(meta) and (kind == "auto" or meta.get("kind") == kind)
    if same_kind and meta.get("shards") == names and meta.get("rows") == n:
        return meta
    drift = None
    grown = meta.get("rows", n + 1) < n and names[:len(meta.get("shards", []))] == meta.get("shards")
    if same_kind and "param" in meta and grown:
        added = _try_add(root, idx.emb, idx.row_video, meta, seed)
        if added is not None:
            save_ann(root, *added, names)
            return added[1] | {"shards": names}
        drift = meta.pop("_drift")
    index, new = build_ann(idx.emb, kind, seed=seed, row_video=idx.row_video, memory=memory)
    if drift is not None:
        new["rebuilt_because"] = drift | {"action": "rebuilt", "target_recall": meta.get("target_recall", TARGET_RECALL)}
    save_ann(root, index, new, names)
    return new | {"shards": names}
