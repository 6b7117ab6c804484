"""Measuring a candidate approximate index on an index's own frames: exact answers for tuning queries, the
smallest breadth reaching the recall target, latency one query at a time (see :mod:`.ann`)."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .ann_specs import TARGET_RECALL, index_parts, join_parts, kind_of, parts_for, set_breadth

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

    def coverage(self, proposed: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Per query, (frame recall@10, video recall@10) once every frame of the ``proposed`` videos is rescored
        exactly: a true top frame or video is found exactly when its video was proposed."""
        frames = [float(np.isin(self.row_video[f], c).mean()) for f, c in zip(self.frames, proposed)]
        videos = [len(set(v) & set(c.tolist())) / max(len(v), 1) for v, c in zip(self.videos, proposed)]
        return np.array(frames), np.array(videos)

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


def rescored_videos(k: int) -> int:
    """How many videos of a frame pool are rescored whole for a top ``k`` (see :func:`pool_videos`)."""
    return max(2 * k, 20)


def pool_videos(x: Any, q: np.ndarray, found: np.ndarray, row_video: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` videos (ascending ids) whose best frame *in the pool* ``found`` scores highest, exactly.

    Why not every video of the pool: a pool of thousands of frames touches hundreds of videos, and rescoring all
    their frames costs their length (a 1-hour recording at 1 fps is 3,600 frames). The pool's own frames scored
    exactly give each video a lower bound of its best frame; the true top ``k`` are among the ``m`` best bounds
    whenever their best frames are in the pool, and those ``m`` are then rescored whole (exact scores and moments).
    What that costs in recall is what the chooser measures: it tunes the pool with this same function."""
    from .store import score_rows

    rows = np.unique(found[found >= 0])
    if not len(rows):
        return rows
    scores = score_rows(x, rows, np.asarray(q, np.float32))
    vid = row_video[rows]
    cut = np.flatnonzero(np.r_[True, vid[1:] != vid[:-1]])  # rows ascending: a video's rows are together
    best = np.maximum.reduceat(scores, cut)
    return np.sort(vid[cut][np.argsort(-best, kind="stable")[:m]])


def _rescore_top10(x: Any, q: np.ndarray, vids: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """What search() does with candidate videos: every frame scored exactly, videos ranked by best frame."""
    if not len(vids):
        return vids
    ln = lens[vids]
    rows = np.arange(int(ln.sum())) + np.repeat(starts[vids] - np.r_[0, np.cumsum(ln)[:-1]], ln)
    sc = x[rows] @ q
    best = np.maximum.reduceat(sc, np.r_[0, np.cumsum(ln)[:-1]])
    return vids[np.argsort(-best, kind="stable")[:10]]


def index_bytes(index: Any) -> int:
    import faiss

    return sum(int(faiss.serialize_index(p).nbytes) for p in index_parts(index))


def split_add(trained: Any, data: Any, parts: int | None = None) -> Any:
    """Add ``data`` to ``parts`` copies of the ``trained`` index, each a range of rows (see ``PART_MIN_ROWS``), joined
    for threaded search; one part: ``trained`` itself with every row."""
    import faiss

    n = len(data)
    parts = parts_for(n) if parts is None else max(1, min(parts, n))
    out = []
    for p in range(parts):
        index = trained if p == parts - 1 else faiss.clone_index(trained)
        lo, hi = p * n // parts, (p + 1) * n // parts
        for i in range(lo, hi, SCAN_CHUNK):
            index.add(np.ascontiguousarray(data[i:min(i + SCAN_CHUNK, hi)], np.float32))
        out.append(index)
    return join_parts(out)


def surely(recalls: np.ndarray) -> float:
    """The recall a breadth is credited with: the mean over the tuning queries less 1.645 standard errors (a
    one-sided 95 % bound). A breadth that only just reaches the target on 200 tuning queries does not reach it on
    other queries as often (1M per-video frames: 0.9525 when tuned, 0.9445 on the benchmark's queries)."""
    if len(recalls) < 2:
        return float(np.mean(recalls)) if len(recalls) else 0.0
    return float(recalls.mean() - 1.645 * recalls.std(ddof=1) / np.sqrt(len(recalls)))


def measure_refined(spec: str, x: Any, truth: Truth, target: float = TARGET_RECALL, seed: int = 0,
                    train_size: int = 100_000, timed_queries: int = 50, parts: int | None = None
                    ) -> tuple[Any, dict[str, Any]]:
    """Build a fast-scan or two-stage ``spec`` and tune its breadth by recall after exact rescoring.

    ``value``: the smallest breadth (frames of the pool, or videos) whose rescored videos (for a frame pool: its
    :func:`pool_videos`, as search() takes them) surely (:func:`surely`) hold ``target`` of the true top 10 frames; ``pool_value``: the
    smallest also holding ``target`` of the true top 10 videos. Latency
    is timed at ``pool_value``, proposal plus rescoring of the candidates' frames, one query at a time. The index
    is split into ``parts`` row ranges searched by a thread each (default: :func:`~.ann_specs.parts_for`)."""
    import faiss

    rng = np.random.default_rng(seed)
    rv = truth.row_video
    starts, lens = video_bounds(rv)
    t0 = time.perf_counter()
    two_stage = kind_of(spec) == "two_stage"
    base = spec.split(",", 1)[1] if two_stage else spec
    data = video_means(x, rv) if two_stage else x
    index = faiss.index_factory(x.shape[1], base, faiss.METRIC_INNER_PRODUCT)
    if base.startswith("IVF"):  # k-means wants ~40 points a list
        train_size = max(train_size, 40 * faiss.extract_index_ivf(index).nlist)
    index.train(np.ascontiguousarray(data[np.sort(rng.choice(len(data), min(len(data), train_size), replace=False))],
                                     np.float32))
    ivf = spec.startswith("IVF")
    nlist = faiss.extract_index_ivf(index).nlist if ivf else 0
    index = split_add(index, data, parts)
    build_s = time.perf_counter() - t0
    if ivf:
        param, limit = "nprobe", nlist
    else:
        param, limit = ("videos", len(data)) if two_stage else ("pool", min(len(data), 16384))
    frame_pool = min(truth.pool, len(data))

    def propose(q: np.ndarray, breadth: int) -> list[np.ndarray]:
        if ivf:
            set_breadth(index, "nprobe", int(breadth))
        found = index.search(np.ascontiguousarray(q, np.float32), frame_pool if ivf else int(breadth))[1]
        if two_stage:
            return [f[f >= 0] for f in found]
        return [pool_videos(x, qq, f, rv, rescored_videos(10)) for qq, f in zip(q, found)]

    value = pool_value = None
    breadth = min(1 if ivf else 16 if two_stage else 64, limit)
    while True:
        frames, videos = truth.coverage(propose(truth.tq, breadth))
        frec, vrec = float(frames.mean()), float(videos.mean())
        if value is None and (surely(frames) >= target or breadth >= limit):
            value, rec_at = breadth, frec
        if surely(videos) >= target or breadth >= limit:
            pool_value, vrec_low = breadth, surely(videos)
            break
        breadth = min(breadth * 2, limit)
    times = []
    for q in truth.tq[:timed_queries]:
        t1 = time.perf_counter()
        _rescore_top10(x, q, propose(q[None], pool_value)[0], starts, lens)
        times.append((time.perf_counter() - t1) * 1000)
    rec = {"kind": kind_of(spec), "factory": spec, "build_seconds": round(build_s, 2),
           "index_bytes": index_bytes(index), "parts": len(index_parts(index)), "param": param, "value": int(value),
           "recall_at_10": round(rec_at, 4), "pool": int(frame_pool if ivf else pool_value), "pool_value": int(pool_value),
           "video_recall_at_10": round(vrec, 4), "video_recall_at_10_lower": round(vrec_low, 4), "refined": True,
           "p50_ms": round(float(np.percentile(times, 50)), 3), "p95_ms": round(float(np.percentile(times, 95)), 3)}
    rec["meets_target"] = rec_at >= target and vrec >= target
    return index, rec
