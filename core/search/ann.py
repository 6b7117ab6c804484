"""Approximate nearest-neighbour search over an index's frames (FAISS), tuned by measured recall.

Built when an index reaches ``ANN_MIN_ROWS`` frames (or when asked): it proposes a frame pool
that :func:`hvl.core.search.query.search` rescores exactly. Stored as ``<index>/ann/ann.faiss``
(``faiss.write_index``, no pickle) and ``ann/ann.json`` (what was measured, which shards it covers).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import HVLInputError
from ..io import write_json
from .store import committed_shards, read_index

__all__ = ["ANN_MIN_ROWS", "IVFPQ_MIN_ROWS", "TARGET_RECALL", "ann_kind_for", "build_ann", "exact_topk",
           "load_ann", "recall_at", "refresh_ann", "save_ann", "set_breadth"]

ANN_MIN_ROWS = 100_000      # below this an exact scan takes a few ms: no approximate index
IVFPQ_MIN_ROWS = 20_000_000  # above this fp16 vectors no longer fit comfortably in memory: compress (PQ)
TARGET_RECALL = 0.95


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
    idx = read_index(root)
    idx.ann, idx.ann_meta = load_ann(root, names, len(idx.emb))
    chosen = ann_kind_for(len(idx.emb)) if kind == "auto" else kind
    if chosen == "flat":
        return None
    if idx.ann is not None and idx.ann_meta.get("kind") == chosen:
        return idx.ann_meta
    index, meta = build_ann(idx.emb, chosen, row_video=idx.row_video)
    save_ann(root, index, meta, names)
    return meta


