"""What approximate indexes `hvl index` may build: the candidate families, their sizes, their breadth settings.

The constants and rules :mod:`.ann` chooses by and :mod:`.ann_measure` measures with (see :mod:`.ann` for the
whole story).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import HVLInputError

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
# A fast-scan or two-stage index is split into row ranges searched by one thread each (faiss.IndexShards): one
# query's scan of 1M x 128-byte codes takes ~14 ms on one core and ~7 ms on two (benchmarks/README). A part
# holds at least this many rows (below it a thread costs more than it saves), and there are at most
# MAX_PARTS (one per core of the machine that builds the index).
PART_MIN_ROWS = 1 << 17
MAX_PARTS = 8
KINDS = ("auto", "ivf", "ivfpq", "hnsw", "fastscan", "two_stage")


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


def parts_for(rows: int, cores: int | None = None) -> int:
    """How many row ranges a fast-scan or two-stage index of ``rows`` vectors is split into (see ``PART_MIN_ROWS``)."""
    import os

    if not cores:  # the cores this process may run on (Linux), else the machine's
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, MAX_PARTS, rows // PART_MIN_ROWS))


def index_parts(index: Any) -> list[Any]:
    """The indexes a split index (faiss.IndexShards) searches, or ``[index]``."""
    import faiss

    if isinstance(index, faiss.IndexShards):
        return [faiss.downcast_index(index.at(i)) for i in range(index.count())]
    return [index]


def join_parts(parts: list[Any]) -> Any:
    """One index searching ``parts`` (row ranges, in order) with a thread each; row ids as in one index."""
    import faiss

    if len(parts) == 1:
        return parts[0]
    joined = faiss.IndexShards(parts[0].d, True, True)  # threaded, successive ids
    for part in parts:
        joined.add_shard(part)  # faiss keeps a reference to each part
    return joined


def set_breadth(index: Any, param: str, value: int) -> None:
    """nprobe (IVF) or efSearch (HNSW); a fast-scan pool or a number of videos is the search's ``k``, not a setting."""
    import faiss

    if param in ("pool", "videos"):
        return
    if len(parts := index_parts(index)) > 1:
        for part in parts:
            set_breadth(part, param, value)
        return
    if param == "nprobe":
        faiss.extract_index_ivf(index).nprobe = value
    else:
        faiss.downcast_index(index).hnsw.efSearch = value
