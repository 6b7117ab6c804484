"""The candidate stage of an approximate search: which videos are rescored exactly, from an approximate index.

One function, :func:`propose_videos`, serves :func:`hvl.core.search.query.search` and the chooser that tunes the
index (:mod:`.ann_measure`), so the recall the chooser measures is the recall search gets.

A frame pool (the approximate index's nearest frames) is a pool of *frames*, and an archive of long videos fills
it with a few videos: the best 256 frames of an archive of 10-minute recordings at 1 fps are often all one
recording's, and a pool of the best 2,000 frames held a median of 27 distinct videos, as few as 4 (1M frames,
600-frame videos). So the stage gathers *videos*: a pool that holds fewer than :func:`wanted_videos` distinct
videos is searched again, four times as wide, until it does (:func:`pool_search`); of each video only its best
few pooled frames are scored exactly (:data:`PER_VIDEO`), which bounds what a pool of thousands of frames costs;
and the videos with the best exactly scored frames are rescored whole (:func:`pool_videos`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .ann_specs import set_breadth
from .store import score_rows

# pooled frames of one video scored exactly to rank it (its best by the approximate index): on 600-frame videos
# (100k x 512 per_video, PQ256x4fs) the 20 videos rescored whole held 0.988 of the true top 10 with 4, 0.9975 with 16
PER_VIDEO = 16
# topk-mean: one or two pooled frames of a video say little about its best `topk` (on 10-frame isotropic videos,
# 20 videos ranked by them held 0.52 of the true top 10), so pooled videos are rescored whole, best first, while
# they hold at most this many frames (every video of a short-video pool), and at least as many as for `max`
TOPK_MEAN_ROWS = 4096
POOL_LIMIT = 16_384    # the widest frame pool: at 200k x 512 a fast scan for 16,384 frames takes 3.5x 4,096's time


def rescored_videos(k: int) -> int:
    """How many videos of a frame pool are rescored whole for a top ``k`` (see :func:`pool_videos`)."""
    return max(2 * k, 20)


def wanted_videos(k: int) -> int:
    """Distinct videos a frame pool must hold for a top ``k``: as many as are rescored whole. (Twice as many: 600-frame
    videos, 200k x 512 per_video, PQ256x4fs: 4,096-frame pools instead of 1,024 for recall 0.9965 instead of 0.987;
    the chooser widens the pool where the target needs it.)"""
    return rescored_videos(k)


def pool_search(index: Any, queries: np.ndarray, breadth: int, row_video: np.ndarray, want: int,
                limit: int = POOL_LIMIT) -> list[np.ndarray]:
    """Each query's frame pool (row ids, best first): ``index``'s ``breadth`` nearest frames, searched again four
    times as wide while the pool holds fewer than ``want`` distinct videos, up to ``limit`` frames (or every
    frame the index returns: an IVF index at a small ``nprobe`` may hold fewer)."""
    q = np.ascontiguousarray(queries, np.float32)
    n = int(index.ntotal)
    k = max(1, min(int(breadth), n))
    found = list(index.search(q, k)[1])
    todo = np.arange(len(q))
    while True:
        todo = np.array([i for i in todo if (found[i] >= 0).all()
                         and len(np.unique(row_video[found[i]])) < want], np.int64)
        if not len(todo) or k >= min(limit, n):
            return found
        k = min(k * 4, limit, n)
        for i, f in zip(todo, index.search(q[todo], k)[1]):
            found[i] = f


def typical_pool(index: Any, queries: np.ndarray, breadth: int, row_video: np.ndarray, k: int = 10) -> int:
    """The frame pool most of ``queries`` end with (:func:`pool_search` from ``breadth``: the median, to a power of
    two): asked for from the start, one search holds enough videos where a smaller pool is searched again."""
    sizes = [len(f) for f in pool_search(index, queries, breadth, row_video, wanted_videos(k))]
    return max(int(breadth), 1 << int(np.ceil(np.log2(max(float(np.median(sizes)), 1.0)))))


def pool_videos(x: Any, q: np.ndarray, found: np.ndarray, row_video: np.ndarray, m: int, agg: str = "max",
                topk: int = 3, per_video: int = PER_VIDEO) -> np.ndarray:
    """The ``m`` videos (ascending ids) of the pool ``found`` (row ids, best first) whose pooled frames score
    highest exactly: by the best frame, or for ``topk-mean`` by the mean of the best ``topk`` (and then as many
    more as hold :data:`TOPK_MEAN_ROWS` frames in all).

    Why not every video of the pool: a pool of thousands of frames touches hundreds of videos, and rescoring all
    their frames costs their length (a 1-hour recording at 1 fps is 3,600 frames). Each video's best
    ``per_video`` pooled frames (best by the approximate index: the pool lists them first) scored exactly give a
    lower bound of its best frame; the true top ``k`` are among the ``m`` best bounds whenever one of their best
    frames is among them, and those ``m`` are then rescored whole (exact scores and moments). What that costs in
    recall is what the chooser measures: it tunes the pool with this same function."""
    f = found[found >= 0]
    if not len(f):
        return f.astype(np.int64)
    vid = row_video[f]
    order = np.argsort(vid, kind="stable")  # grouped by video, each video's frames in pool order (best first)
    vs = vid[order]
    first = np.flatnonzero(np.r_[True, vs[1:] != vs[:-1]])
    place = np.arange(len(vs)) - np.repeat(first, np.diff(np.r_[first, len(vs)]))
    rows = np.sort(f[order[place < max(per_video, topk if agg == "topk-mean" else 1)]])
    scores = score_rows(x, rows, np.asarray(q, np.float32)).astype(np.float64)
    v = row_video[rows]
    cut = np.flatnonzero(np.r_[True, v[1:] != v[:-1]])  # rows ascending: a video's rows are together
    if agg == "topk-mean":
        run = np.repeat(np.arange(len(cut)) * 4.0, np.diff(np.r_[cut, len(v)]))  # scores lie in [-1, 1]
        desc = run - np.sort(run - scores)  # each video's scores, best first
        cs = np.r_[0.0, np.cumsum(desc)]
        n = np.minimum(np.diff(np.r_[cut, len(v)]), topk)
        key = (cs[cut + n] - cs[cut]) / n
    else:
        key = np.maximum.reduceat(scores, cut)
    ranked = v[cut][np.argsort(-key, kind="stable")]
    if agg == "topk-mean":
        frames = np.searchsorted(row_video, ranked, side="right") - np.searchsorted(row_video, ranked, side="left")
        m = max(m, int(np.searchsorted(np.cumsum(frames), TOPK_MEAN_ROWS, side="right")))
    return np.sort(ranked[:m])


def propose_videos(index: Any, meta: dict[str, Any], x: Any, row_video: np.ndarray, queries: np.ndarray,
                   k: int = 10, agg: str = "max", topk: int = 3, pool: int = 1000) -> list[np.ndarray]:
    """Per query, the videos (ascending ids) an approximate ``index`` described by ``meta`` (``ann.json``: kind,
    param, pool_value, pool) proposes for exact rescoring of a top ``k`` by ``agg``.

    * two-stage (one vector per video): the ``pool_value`` nearest videos;
    * a frame index: a frame pool (:func:`pool_search`; for a fast scan its breadth is ``pool_value`` frames, else
      the index is set to ``pool_value`` and asked for ``max(pool, 10 k, meta pool)`` frames), of which
      :func:`pool_videos` picks what is rescored; ``count`` adds every video among the pool's best ``pool``
      frames (the frames it counts)."""
    q = np.ascontiguousarray(queries, np.float32).reshape(len(queries), -1)
    if meta.get("kind") == "two_stage":
        found = index.search(q, max(1, min(int(index.ntotal), int(meta["pool_value"]))))[1]
        return [np.unique(f[f >= 0]) for f in found]
    if "pool_value" in meta:
        set_breadth(index, meta["param"], int(meta["pool_value"]))
    breadth = int(meta["pool_value"]) if meta.get("param") == "pool" else max(pool, 10 * k, int(meta.get("pool", 0)))
    if agg == "count":
        breadth = max(breadth, pool)
    found = pool_search(index, q, breadth, row_video, wanted_videos(k))
    out = []
    for qq, f in zip(q, found):
        vids = pool_videos(x, qq, f, row_video, rescored_videos(k), agg, topk)
        if agg == "count":
            counted = f[:pool]
            vids = np.union1d(vids, row_video[counted[counted >= 0]])
        out.append(vids)
    return out


def backend_videos(idx: Any, q: np.ndarray, k: int = 10, agg: str = "max", topk: int = 3, pool: int = 1000,
                   group: str | None = None) -> np.ndarray:
    """The videos (ascending ids into ``idx.videos``) a vector database behind ``idx`` (``idx.ann``: its backend)
    proposes for exact rescoring of a top ``k`` by ``agg``: the same stage as for a FAISS frame pool.

    The database gathers *videos* (``propose``: at least ``3 k`` (30 for a top 10) distinct videos and each one's
    :data:`PER_VIDEO` nearest frames, by its grouping by video), those frames are scored exactly from the
    shards and :func:`pool_videos` keeps the videos to rescore whole; ``count`` adds every video among the
    ``pool`` nearest frames (the database returns them too: its groups are only the best videos)."""
    pos = idx.video_index()
    if not hasattr(getattr(idx.ann, "backend", idx.ann), "propose"):  # a backend with search() only: its best videos
        hits = idx.ann.search(q, k=max(3 * k, 30), moments=1, group=group)
        return np.array(sorted(pos[h.video_id] for h in hits if h.video_id in pos), np.int64)
    rows = []
    counted = pool if agg == "count" else 0
    # more videos gathered than rescored, as the backend's own search() does: the engine's nearest frames are
    # approximate (int8, HNSW), and on 3,600-frame recordings at 1M frames gathering only the 20 rescored held
    # video recall@10 0.928 where the backend's search, gathering 30, held 0.978 (benchmarks/README.md)
    for video_id, t in idx.ann.propose(q, max(3 * k, wanted_videos(k)), PER_VIDEO, group, frames=counted):
        v = pos.get(video_id)
        if v is None:  # in the database, no longer in the shards (mirrored at the next `hvl index`)
            continue
        lo, n = int(idx.video_start[v]), int(idx.video_len[v])
        rows.append(lo + min(int(np.searchsorted(idx.row_time[lo:lo + n], t - 1e-6)), n - 1))
    found = np.array(rows, np.int64)
    vids = pool_videos(idx.emb, q, found, idx.row_video, rescored_videos(k), agg, topk)
    if agg == "count":
        vids = np.union1d(vids, idx.row_video[found])
    return vids
