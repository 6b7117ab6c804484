"""`hvl search`: text query → ranked videos and their best moments, from an `hvl index` folder.

Frames are scored by inner product with the query embedding (both L2-normalised: cosine).
Frame scores become a video ranking by one of three aggregations:

* ``max``: a video's best frame (GamePhysics' "Top-K": the first hit per video);
* ``topk-mean``: the mean of a video's ``topk`` best frames (less swayed by one odd frame);
* ``count``: how many of the ``pool`` best frames of the whole index belong to the video
  (GamePhysics' "Majority"; favours long videos).

Ties, and under ``count`` videos with no frame in the pool, are ordered by the best frame.

Exact search scores every frame (a float32 matmul; or only the frames of ``--game``, like
GamePhysics' per-game index). Indexes of ``ANN_MIN_ROWS`` frames or more also get an
approximate FAISS index (``<index>/ann/``, chosen by size, see :func:`ann_kind_for`): it
proposes a frame pool, and every frame of the videos in that pool is then rescored exactly,
so only a video whose frames all miss the pool can be lost. Its recall@10 against exact
search is measured when it is built and stored in ``ann/ann.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .index import committed_shards, read_header, read_shard_embeddings, read_shard_meta, write_json
from .schema import HVLInputError

AGGREGATIONS = ("max", "topk-mean", "count")
ANN_MIN_ROWS = 100_000      # below this an exact scan takes a few ms: no approximate index
IVFPQ_MIN_ROWS = 20_000_000  # above this fp16 vectors no longer fit comfortably in memory: compress (PQ)
TARGET_RECALL = 0.95


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


# ------------------------------------------------------------------ the loaded index
@dataclass
class FrameIndex:
    """All committed shards of an index, concatenated; videos' rows are contiguous."""

    root: Path
    header: dict[str, Any]
    emb: np.ndarray                      # float32 [N, D]
    row_video: np.ndarray                # int64 [N]: row -> video table index
    row_time: np.ndarray                 # float64 [N]: seconds
    videos: list[dict[str, Any]]         # video_id, game, path, key, start, n
    shards: list[str]
    ann: Any = None
    ann_meta: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.header["dim"])

    def video_rows(self, vids: np.ndarray) -> np.ndarray:
        if len(vids) == 0:
            return np.zeros(0, np.int64)
        return np.concatenate([np.arange(self.videos[v]["start"], self.videos[v]["start"] + self.videos[v]["n"])
                               for v in vids])


def load_index(path: str | Path, use_ann: bool = True) -> FrameIndex:
    root = Path(path)
    header = read_header(root)
    names = committed_shards(root)
    if not names:
        raise HVLInputError(f"{root}: index has no committed shards; run `hvl index <videos> --out {root}` first")
    embs, videos, vid_of_row, times = [], [], [], []
    row = 0
    for name in names:
        e = read_shard_embeddings(root, name)
        if e.ndim != 2 or e.shape[1] != header["dim"]:
            raise HVLInputError(f"{root}/shards/{name}.npy: shape {e.shape} does not match dim {header['dim']} "
                                "of index.json; delete the shard and re-run `hvl index`")
        meta = read_shard_meta(root, name)
        n = sum(len(m["t"]) for m in meta)
        if n != len(e):
            raise HVLInputError(f"{root}/shards/{name}.jsonl: lists {n} frames but {name}.npy has {len(e)} rows; "
                                "delete the shard and re-run `hvl index`")
        for m in meta:
            videos.append({k: m[k] for k in ("video_id", "game", "path", "key")} | {"start": row + m["row"],
                                                                                   "n": len(m["t"])})
            vid_of_row.append(np.full(len(m["t"]), len(videos) - 1, np.int64))
            times.append(np.asarray(m["t"], np.float64))
        embs.append(e)
        row += len(e)
    idx = FrameIndex(root, header, np.concatenate(embs).astype(np.float32), np.concatenate(vid_of_row),
                     np.concatenate(times), videos, names)
    if use_ann:
        idx.ann, idx.ann_meta = load_ann(root, names, len(idx.emb))
    return idx


# ------------------------------------------------------------------ approximate index (FAISS)
def ann_kind_for(n: int) -> str:
    """``flat`` (exact) below ``ANN_MIN_ROWS``; IVF over fp16 vectors up to ``IVFPQ_MIN_ROWS``; IVF-PQ beyond.

    IVF rather than HNSW: on 2 cores HNSW's graph build for 1M x 512 takes tens of minutes,
    IVF's k-means on a sample well under a minute, and its probe count trades recall for time.
    """
    if n < ANN_MIN_ROWS:
        return "flat"
    return "ivf" if n < IVFPQ_MIN_ROWS else "ivfpq"


def _factory(kind: str, n: int, dim: int) -> str:
    nlist = int(min(65536, max(64, 2 ** round(np.log2(2 * np.sqrt(n))))))
    if kind == "ivf":
        return f"IVF{nlist},SQfp16"
    if kind == "ivfpq":
        return f"IVF{nlist},PQ{max(8, dim // 8)}"
    if kind == "hnsw":
        return "HNSW32,Flat"
    if kind == "flat":
        return "Flat"
    raise HVLInputError(f"--ann '{kind}' is unknown; use auto, none, flat, ivf, ivfpq or hnsw")


def exact_topk(emb: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    import faiss

    flat = faiss.IndexFlatIP(emb.shape[1])
    flat.add(np.ascontiguousarray(emb, np.float32))
    return flat.search(np.ascontiguousarray(queries, np.float32), k)[1]


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


def build_ann(emb: np.ndarray, kind: str = "auto", train_size: int = 100_000, seed: int = 0,
              target: float = TARGET_RECALL, tune_queries: np.ndarray | None = None,
              row_video: np.ndarray | None = None, pool: int = 1000) -> tuple[Any, dict[str, Any]]:
    """Build a FAISS index of ``emb`` and tune its search breadth (nprobe / efSearch) on
    ``tune_queries`` (default: 200 frames of the index, perturbed so that they are not index points):

    * ``value``: the smallest breadth reaching ``target`` frame recall@10 against exact search;
    * ``pool_value`` (with ``row_video``): the smallest reaching ``target`` recall of the top 10
      *videos* (by best frame) within a ``pool``-frame answer: a frame pool must reach further
      than the 10 nearest frames, which often come from one or two videos.
    """
    import faiss

    n, dim = emb.shape
    kind = ann_kind_for(n) if kind == "auto" else kind
    spec = _factory(kind, n, dim)
    x = np.ascontiguousarray(emb, np.float32)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        sample = x[np.sort(rng.choice(n, min(n, train_size), replace=False))]
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.niter = 10            # k-means iterations: 10 get most of the benefit of 25 at 40 % of the time
        ivf.cp.seed = seed
        ivf.cp.max_points_per_centroid = 10**9  # we already subsampled; don't let faiss resample
        index.train(sample)
    index.add(x)
    build_s = time.perf_counter() - t0
    if tune_queries is None:
        # a text query lies far from any frame (cosine ~0.3-0.6 in trained models): perturb by a vector
        # as long as the frame itself, or the probe count is tuned on too easy queries
        m = min(n, 200)
        q = x[rng.choice(n, m, replace=False)] + rng.normal(0, 1 / np.sqrt(dim), (m, dim)).astype(np.float32)
        tune_queries = q / np.linalg.norm(q, axis=1, keepdims=True)
    tq = np.ascontiguousarray(tune_queries, np.float32)
    meta: dict[str, Any] = {"kind": kind, "factory": spec, "rows": n, "dim": dim, "build_seconds": round(build_s, 2)}
    if kind == "flat":
        return index, meta | {"recall_at_10": 1.0}
    param = "nprobe" if kind in ("ivf", "ivfpq") else "efSearch"
    limit = faiss.extract_index_ivf(index).nlist if param == "nprobe" else 4096
    truth = exact_topk(x, tq, 10)

    def smallest(score) -> tuple[int, float]:
        value = 1
        while True:
            set_breadth(index, param, value)
            rec = score()
            if rec >= target or value >= limit:
                return value, rec
            value = min(value * 2, limit)

    value, rec = smallest(lambda: recall_at(index.search(tq, 10)[1], truth))
    meta |= {"param": param, "value": value, "recall_at_10": round(rec, 4)}
    if row_video is not None:
        pool = min(pool, n)
        video_truth = [_first_videos(r, row_video, 10) for r in exact_topk(x, tq, pool)]

        def video_recall() -> float:
            got = index.search(tq, pool)[1]
            return float(np.mean([len(set(_first_videos(g, row_video, 10)) & set(t)) / max(len(t), 1)
                                  for g, t in zip(got, video_truth)]))

        pool_value, vrec = smallest(video_recall)
        meta |= {"pool": pool, "pool_value": max(pool_value, value), "video_recall_at_10": round(vrec, 4)}
    set_breadth(index, param, value)
    return index, meta


def set_breadth(index: Any, param: str, value: int) -> None:
    import faiss

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


def load_ann(root: Path, shards: list[str], rows: int) -> tuple[Any, dict[str, Any]]:
    """The stored approximate index if it covers exactly the committed shards; else (None, {})."""
    import faiss

    meta_path, path = root / "ann" / "ann.json", root / "ann" / "ann.faiss"
    if not meta_path.is_file() or not path.is_file():
        return None, {}
    meta = json.loads(meta_path.read_text())
    if meta.get("shards") != shards or meta.get("rows") != rows:
        print(f"hvl search: {path} is stale (the index changed since it was built); searching exactly. "
              "Re-run `hvl index` to rebuild it.", file=sys.stderr)
        return None, {}
    index = faiss.read_index(str(path))
    if "param" in meta:
        set_breadth(index, meta["param"], meta["value"])
    return index, meta


def refresh_ann(root: str | Path, kind: str = "auto") -> dict[str, Any] | None:
    """(Re)build ``ann/`` when the index is big enough (or ``kind`` forces it) and it is missing or stale."""
    root = Path(root)
    names = committed_shards(root)
    if kind == "none" or not names:
        return None
    idx = load_index(root, use_ann=True)
    chosen = ann_kind_for(len(idx.emb)) if kind == "auto" else kind
    if chosen == "flat":
        return None
    if idx.ann is not None and idx.ann_meta.get("kind") == chosen:
        return idx.ann_meta
    index, meta = build_ann(idx.emb, chosen, row_video=idx.row_video)
    save_ann(root, index, meta, names)
    return meta


# ------------------------------------------------------------------ search
def search(idx: FrameIndex, query: np.ndarray, k: int = 10, agg: str = "max", topk: int = 3, pool: int = 1000,
           game: str | None = None, exact: bool = False, moments: int = 3) -> dict[str, Any]:
    """Top ``k`` videos for one L2-normalised query embedding, each with its best moments."""
    q = np.asarray(query, np.float32).reshape(-1)
    if game is not None:
        rows = np.flatnonzero(np.array([v["game"] == game for v in idx.videos])[idx.row_video])
        if not len(rows):
            games = sorted({v["game"] for v in idx.videos})
            raise HVLInputError(f"--game '{game}' is not in the index; it has {games[:20]}")
        method = "exact (game)"
    elif idx.ann is not None and not exact:
        m = idx.ann_meta
        if "pool_value" in m:  # a frame pool reaches across more of the index than the 10 nearest frames
            set_breadth(idx.ann, m["param"], m["pool_value"])
        _, found = idx.ann.search(q[None], min(len(idx.emb), max(pool, k * 10)))
        cand = np.unique(idx.row_video[found[0][found[0] >= 0]])
        rows = idx.video_rows(cand)
        method = f"{idx.ann_meta['kind']} ({idx.ann_meta['factory']}) + exact rescoring"
    else:
        rows = np.arange(len(idx.emb))
        method = "exact"
    scores = idx.emb[rows] @ q if len(rows) < len(idx.emb) else idx.emb @ q
    r = aggregate(scores, rows, idx.row_video, agg, topk, pool)
    results = []
    for rank in range(min(k, len(r.video))):
        v = idx.videos[int(r.video[rank])]
        vr = np.arange(v["start"], v["start"] + v["n"])
        vs = idx.emb[vr] @ q
        top = np.argsort(-vs, kind="stable")[:moments]
        results.append({"rank": rank + 1, "video_id": v["video_id"], "game": v["game"], "path": v["path"],
                        "score": round(float(r.score[rank]), 6), "best_time": float(idx.row_time[r.best_row[rank]]),
                        "best_score": round(float(r.best_score[rank]), 6), "pool_count": int(r.count[rank]),
                        "moments": [{"t": float(idx.row_time[vr[j]]), "score": round(float(vs[j]), 6)} for j in top]})
    return {"agg": agg, "k": k, "topk": topk, "pool": pool, "game": game, "method": method,
            "frames": int(len(idx.emb)), "videos": len(idx.videos), "results": results}


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
             f"{'rank':>4}  {'video':<20}{'game':<16}{'score':>8}{'best @':>9}   moments (t: score)"]
    for r in res["results"]:
        mom = ", ".join(f"{m['t']:.1f}s: {m['score']:.3f}" for m in r["moments"])
        lines.append(f"{r['rank']:>4}  {r['video_id']:<20.20}{r['game']:<16.16}{r['score']:>8.3f}"
                     f"{r['best_time']:>8.1f}s   {mom}")
    return "\n".join(lines)


# ------------------------------------------------------------------ CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", help="text, e.g. \"a car falling through the floor\"")
    p.add_argument("--index", required=True, help="folder written by `hvl index`")
    p.add_argument("--k", type=int, default=10, help="videos to return")
    p.add_argument("--game", help="search only this game's videos (exact)")
    p.add_argument("--agg", choices=AGGREGATIONS, default="max", help="frame scores -> video score")
    p.add_argument("--topk", type=int, default=3, help="frames averaged by --agg topk-mean")
    p.add_argument("--pool", type=int, default=1000, help="frame pool for --agg count (GamePhysics: 1000)")
    p.add_argument("--exact", action="store_true", help="ignore the approximate index")
    p.add_argument("--ckpt", help="checkpoint for the text encoder (default: the one in index.json)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from .checkpoint import load_model
    from .index import file_sha256

    if args.k < 1:
        raise HVLInputError(f"--k must be >= 1 (got {args.k})")
    idx = load_index(args.index, use_ann=not args.exact)
    ckpt = args.ckpt or idx.header["checkpoint"]
    if not Path(ckpt).is_file():
        raise HVLInputError(f"{ckpt}: the index's checkpoint is gone; pass the same model with --ckpt")
    if args.ckpt and file_sha256(ckpt) != idx.header["checkpoint_sha256"]:
        raise HVLInputError(f"{ckpt}: not the checkpoint the index was built with (sha256 differs, see "
                            f"{Path(args.index) / 'index.json'}); its text embeddings would not match the frames")
    model, _ = load_model(ckpt)
    q = embed_queries(model, [args.query], idx.header["level"])[0]
    res = search(idx, q, k=args.k, agg=args.agg, topk=args.topk, pool=args.pool, game=args.game, exact=args.exact)
    res = {"query": args.query, "index": str(args.index), "level": idx.header["level"]} | res
    print(json.dumps(res, indent=2) if args.json else format_table(args.query, res))
    return res
