"""`hvl search`: text query → ranked videos and their best moments, from an `hvl index` folder.

Frames are scored by inner product with the query embedding (both L2-normalised: cosine).
Frame scores become a video ranking by one of three aggregations:

* ``max``: a video's best frame (GamePhysics' "Top-K": the first hit per video);
* ``topk-mean``: the mean of a video's ``topk`` best frames (less swayed by one odd frame);
* ``count``: how many of the ``pool`` best frames of the whole index belong to the video
  (GamePhysics' "Majority"; favours long videos).

Ties, and under ``count`` videos with no frame in the pool, are ordered by the best frame.

Exact search scores every frame (a float32 matmul; or only the frames of one ``--group``, like
GamePhysics' per-game index). Indexes of ``ANN_MIN_ROWS`` frames or more also get an
approximate FAISS index (``<index>/ann/``, chosen by measured recall and latency, see :mod:`.ann`): it
proposes candidate videos (:mod:`.candidates`: a frame pool gathered until it holds enough distinct videos,
whatever their length), and every frame of the best of them is then rescored exactly, so scores and moments
are exact and only a video the candidates miss can be lost. Its recall@10 against a full scan is measured when
it is built and stored in ``ann/ann.json``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import HVLInputError
from .ann import load_ann
from .candidates import backend_videos, propose_videos
from .store import FrameIndex, read_index, score_rows

__all__ = ["AGGREGATIONS", "Ranking", "aggregate", "embed_queries", "load_index", "model_for_index", "rank_all",
           "search", "search_many"]

AGGREGATIONS = ("max", "topk-mean", "count")


# ------------------------------------------------------------------ aggregation (pure numpy)
@dataclass
class Ranking:
    """Videos (ids into the index's video table), best first, with their score and best frame row."""

    video: np.ndarray
    score: np.ndarray
    best_row: np.ndarray
    best_score: np.ndarray
    count: np.ndarray


def aggregate(scores: np.ndarray, rows: np.ndarray, row_video: np.ndarray, agg: str = "max", topk: int = 3,
              pool: int = 1000) -> Ranking:
    """Rank the videos of ``rows`` (frame rows with ``scores``) by ``agg``; every video present is ranked."""
    if agg not in AGGREGATIONS:
        raise HVLInputError(f"--agg '{agg}' is unknown; use one of {AGGREGATIONS}")
    if topk < 1 or pool < 1:
        raise HVLInputError(f"--topk and --pool must be >= 1 (got {topk}, {pool})")
    scores = np.asarray(scores, np.float64)
    vid = row_video[rows]
    order = np.lexsort((-scores, vid))                # grouped by video, best frame first in each group
    v_sorted, s_sorted = vid[order], scores[order]
    starts = np.flatnonzero(np.r_[True, v_sorted[1:] != v_sorted[:-1]])
    lengths = np.diff(np.r_[starts, len(order)])
    videos, best = v_sorted[starts], s_sorted[starts]
    best_row = rows[order[starts]]
    in_pool = np.zeros(len(scores), bool)
    in_pool[np.argsort(-scores, kind="stable")[:pool]] = True
    count = np.add.reduceat(in_pool[order].astype(np.int64), starts)
    if agg == "max":
        key = best
    elif agg == "topk-mean":
        m = np.minimum(lengths, topk)
        cs = np.r_[0.0, np.cumsum(s_sorted)]
        key = (cs[starts + m] - cs[starts]) / m
    else:
        key = count.astype(np.float64)
    rank = np.lexsort((videos, -best, -key))
    return Ranking(videos[rank], key[rank], best_row[rank], best[rank], count[rank])


class _OneAtATime:
    """A vector database handle shared by a server's threads: one search at a time (an embedded engine's
    handle is not documented as thread-safe)."""

    def __init__(self, backend: Any):
        import threading

        self.backend, self.lock = backend, threading.Lock()

    def search(self, *args: Any, **kw: Any):
        with self.lock:
            return self.backend.search(*args, **kw)

    def propose(self, *args: Any, **kw: Any):
        with self.lock:
            return self.backend.propose(*args, **kw)


def load_index(path: str | Path, use_ann: bool = True, backend_url: str | None = None) -> FrameIndex:
    """The index at ``path``, with its approximate index when one covers exactly its shards (or, for an index
    whose vectors are in a vector database, that database: a server only at ``backend_url``, the user's
    ``--backend-url``, which must be the one ``index.json`` records; see :func:`.backends.server_url`)."""
    idx = read_index(path)
    name = idx.header.get("backend", "faiss")
    if use_ann and name != "faiss":
        from .backends import open_backend

        idx.ann = _OneAtATime(open_backend(idx.root, idx.header, backend_url=backend_url))
        idx.ann_meta = {"kind": "backend", "factory": name, "where": backend_url or "embedded"}
    elif backend_url is not None:  # exact search connects to nothing, but another index's --backend-url is a mistake
        from .backends import server_url

        server_url(idx.root, idx.header, backend_url)
    elif use_ann:
        idx.ann, idx.ann_meta = load_ann(idx.root, idx.shards, len(idx.emb))
    return idx


# ------------------------------------------------------------------ search
def _candidate_rows(idx: FrameIndex, queries: np.ndarray, k: int, pool: int, group: str | None,
                    exact: bool, agg: str = "max", topk: int = 3) -> tuple[list[np.ndarray | None], str]:
    """Per query, the rows to score exactly (None: every row), and how they were chosen. The approximate index
    is asked for all queries at once (FAISS batches them)."""
    if idx.ann is not None and not exact and idx.ann_meta.get("kind") == "backend":
        # the database gathers videos and their nearest frames (filtered by group); hvl ranks them by those frames
        # scored exactly and rescores the best whole, as for a FAISS frame pool (see .candidates.backend_videos)
        return ([idx.video_rows(backend_videos(idx, q, k, agg, topk, pool, group)) for q in queries],
                f"{idx.ann_meta['factory']} ({idx.ann_meta['where']}) + exact rescoring")
    if group is not None:
        rows = np.flatnonzero(np.array([v["group"] == group for v in idx.videos])[idx.row_video])
        if not len(rows):
            groups = sorted({v["group"] for v in idx.videos})
            raise HVLInputError(f"--group '{group}' is not in the index; it has {groups[:20]}")
        return [rows] * len(queries), "exact (group)"
    if idx.ann is None or exact:
        return [None] * len(queries), "exact"
    m = idx.ann_meta
    method = f"{m['kind']} ({m['factory']}) + exact rescoring"
    # candidate videos, not a fixed number of frames: a few long videos would fill a frame pool (see .candidates)
    found = propose_videos(idx.ann, m, idx.emb, idx.row_video, queries, k, agg, topk, pool)
    return [idx.video_rows(v) for v in found], method


def _ranked(idx: FrameIndex, q: np.ndarray, rows: np.ndarray | None, k: int, agg: str, topk: int, pool: int,
            group: str | None, method: str, moments: int, scores: np.ndarray | None = None) -> dict[str, Any]:
    """Rank the videos of ``rows`` (ascending; None: every row, scored here unless ``scores`` holds them) exactly."""
    if rows is None:
        rows = np.arange(len(idx.emb))
        scores = idx.emb @ q if scores is None else scores
    else:
        scores = score_rows(idx.emb, rows, q)
    r = aggregate(scores, rows, idx.row_video, agg, topk, pool)
    results = []
    for rank in range(min(k, len(r.video))):
        v = idx.videos[int(r.video[rank])]
        vr = np.arange(v["start"], v["start"] + v["n"])
        at = int(np.searchsorted(rows, v["start"]))  # rows are ascending and whole videos: its scores are there
        whole = at + v["n"] <= len(rows) and rows[at] == vr[0] and rows[at + v["n"] - 1] == vr[-1]
        vs = scores[at:at + v["n"]] if whole else idx.emb[vr] @ q
        top = np.argsort(-vs, kind="stable")[:moments]
        results.append({"rank": rank + 1, "video_id": v["video_id"], "group": v["group"], "path": v["path"],
                        "meta": dict(v.get("meta") or {}),
                        "score": round(float(r.score[rank]), 6), "best_time": float(idx.row_time[r.best_row[rank]]),
                        "best_score": round(float(r.best_score[rank]), 6), "pool_count": int(r.count[rank]),
                        "moments": [{"t": float(idx.row_time[vr[j]]), "score": round(float(vs[j]), 6)} for j in top]})
    return {"agg": agg, "k": k, "topk": topk, "pool": pool, "group": group, "method": method,
            "frames": int(len(idx.emb)), "videos": len(idx.videos), "results": results}


def search(idx: FrameIndex, query: np.ndarray, k: int = 10, agg: str = "max", topk: int = 3, pool: int = 1000,
           group: str | None = None, exact: bool = False, moments: int = 3) -> dict[str, Any]:
    """Top ``k`` videos for one L2-normalised query embedding, each with its best moments."""
    q = np.asarray(query, np.float32).reshape(-1)
    (rows,), method = _candidate_rows(idx, q[None], k, pool, group, exact, agg, topk)
    return _ranked(idx, q, rows, k, agg, topk, pool, group, method, moments)


def search_many(idx: FrameIndex, queries: np.ndarray, k: int = 10, agg: str = "max", topk: int = 3,
                pool: int = 1000, group: str | None = None, exact: bool = False, moments: int = 3
                ) -> list[dict[str, Any]]:
    """:func:`search` for each row of ``queries`` ``[Q, D]``, the same answers; the approximate index is asked
    once for all of them (one batched FAISS search instead of Q single ones)."""
    qs = np.asarray(queries, np.float32).reshape(len(queries), -1)
    rows, method = _candidate_rows(idx, qs, k, pool, group, exact, agg, topk)
    if exact and group is None and len(qs) > 1:  # one pass over the frames for every query
        all_scores = idx.emb @ qs.T
        return [_ranked(idx, q, None, k, agg, topk, pool, group, method, moments, scores=all_scores[:, i])
                for i, q in enumerate(qs)]
    return [_ranked(idx, q, r, k, agg, topk, pool, group, method, moments) for q, r in zip(qs, rows)]


def rank_all(idx: FrameIndex, query: np.ndarray, agg: str = "max", topk: int = 3, pool: int = 1000) -> Ranking:
    """Every video of the index ranked exactly (evaluation wants the full ranking)."""
    q = np.asarray(query, np.float32).reshape(-1)
    return aggregate(idx.emb @ q, np.arange(len(idx.emb)), idx.row_video, agg, topk, pool)


def embed_queries(model, texts: list[str], level: str) -> np.ndarray:
    import torch

    with torch.no_grad():
        e = model.embed_text(list(texts), level).float()
        return torch.nn.functional.normalize(e, dim=-1).cpu().numpy()


def format_table(query: str, res: dict[str, Any]) -> str:
    lines = [f"query: {query!r}   agg={res['agg']}   {res['method']}   {res['frames']} frames / {res['videos']} videos",
             f"{'rank':>4}  {'video':<20}{'group':<16}{'score':>8}{'best @':>9}   moments (t: score)"]
    for r in res["results"]:
        mom = ", ".join(f"{m['t']:.1f}s: {m['score']:.3f}" for m in r["moments"])
        lines.append(f"{r['rank']:>4}  {r['video_id']:<20.20}{r['group']:<16.16}{r['score']:>8.3f}"
                     f"{r['best_time']:>8.1f}s   {mom}")
    return "\n".join(lines)


def model_for_index(idx: FrameIndex, ckpt: str | None = None, model: str | None = None,
                    text_model: str | None = None, trust_remote_code: bool = False):
    """The model whose embeddings the index holds: the one its header names, or the same one at another path
    (checked by fingerprint: another model's text embeddings would not match the frames)."""
    from ..models.checkpoint import fingerprint, load_for_eval, preprocess_of
    from ..models.spec import parse_model_spec

    h = idx.header
    if ckpt is None and model is None:
        ckpt, model, text_model = h.get("checkpoint"), h.get("model"), text_model or h.get("text_model")
        src = ckpt or model
        if not src or not Path(parse_model_spec(src).path if model else src).exists():
            raise HVLInputError(f"{src}: the model the index was built with is gone; pass the same model with "
                                "--ckpt or --model")
    if fingerprint(ckpt or model) != h["checkpoint_sha256"]:
        raise HVLInputError(f"{ckpt or model}: not the model the index was built with (sha256 differs, see "
                            f"{idx.root / 'index.json'}); its text embeddings would not match the frames")
    net, meta = load_for_eval(ckpt, model, text_model, trust_remote_code)
    if "preprocess" in h and preprocess_of(meta).model_dump(mode="json") != h["preprocess"]:
        raise HVLInputError(f"{idx.root / 'index.json'}: field 'preprocess' differs from the model's; rebuild the index")
    return net
