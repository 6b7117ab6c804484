"""Approximate nearest-neighbour search over an index's frames (FAISS), chosen by measured recall.

Built when an index reaches ``ANN_MIN_ROWS`` frames (or when asked): it proposes candidate videos (the
videos of a frame pool, or, for the two-stage index, videos directly) whose every frame
:func:`hvl.core.search.query.search` then rescores exactly from the memory-mapped shards. Which index is built is not decided by
size alone: how well IVF lists or an HNSW graph fit depends on how clustered the embeddings are,
which nobody knows in advance. So every candidate (IVF with a few list counts over fp16 or 8-bit
vectors, IVF-PQ, HNSW, 4-bit fast-scan PQ, a two-stage video -> frame index) is built on the index's own frames,
its search breadth tuned on perturbed frames and topic queries and checked on held-out ones of both kinds, its
latency measured, and the fastest one reaching ``TARGET_RECALL`` (frame recall@10 and the recall of the top 10
videos of a full scan, :func:`~.ann_measure.exact_videos`) within the memory budget wins.
Stored as ``<index>/ann/ann.faiss`` (``faiss.write_index``, no pickle) and ``ann/ann.json`` (every
candidate's measurements, why the winner won, which shards it covers).

The two families "with exact refinement" are measured as :func:`~hvl.core.search.query.search` uses them,
since their codes alone are too coarse to rank (4 bits a sub-vector) and exact rescoring is what repairs them:

* ``PQ<m>x4fs`` (fast-scan PQ, SIMD look-up tables in registers): one pass over ``m / 2`` bytes a frame; its
  breadth is the frame pool (``pool``), gathered until it holds enough videos (:mod:`.candidates`);
  ``IVF<n>,PQ<m>x4fs`` scans only ``nprobe`` lists for its pool (clustered frames, millions of them);
* ``VideoMean,PQ<m>x4fs`` (two-stage): one vector per video (the mean of its frames), searched by fast scan;
  its breadth is the number of videos (``videos``) whose frames are rescored.

Their ``recall_at_10`` / ``video_recall_at_10`` are after that rescoring (the share of the exact top 10 frames
/ videos among the rescored videos), and their ``p50_ms`` is proposal plus rescoring, one query at a time.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..errors import HVLInputError, format_validation_error
from ..io import atomic_writer, confined_dir, read_json, remove_inside, write_json
from .ann_measure import (  # noqa: F401  (re-exported: what benchmarks and tests import from here)
    SCAN_CHUNK,
    Truth,
    _chunks,
    exact_topk,
    exact_videos,
    measure_candidate,
    measure_refined,
    pool_videos,
    recall_at,
    rescored_videos,
    tuning_queries,
    tuning_truths,
    video_bounds,
    video_means,
)
from .ann_specs import (  # noqa: F401
    ANN_MEMORY_DEFAULT,
    ANN_MEMORY_FLOOR,
    ANN_MEMORY_SHARE,
    FASTSCAN_FLAT_MAX_ROWS,
    HNSW_MAX_ROWS,
    KINDS,
    PART_MIN_ROWS,
    TARGET_RECALL,
    candidate_factories,
    estimate_bytes,
    index_parts,
    join_parts,
    kind_of,
    memory_budget,
    parse_memory,
    parts_for,
    refined,
    set_breadth,
)
from .store import committed_shards, read_index

ANN_MIN_ROWS = 100_000       # below this an exact scan takes a few ms: no approximate index


def ann_kind_for(n: int) -> str:
    """``flat`` (exact search, no approximate index) below ``ANN_MIN_ROWS``; else ``auto``: chosen by measurement."""
    return "flat" if n < ANN_MIN_ROWS else "auto"


__all__ = ["ANN_MEMORY_DEFAULT", "ANN_MIN_ROWS", "HNSW_MAX_ROWS", "TARGET_RECALL", "Truth", "ann_kind_for",
           "build_ann", "candidate_factories", "eligible", "estimate_bytes", "exact_topk", "load_ann",
           "measure_candidate", "parse_memory", "rank_key", "recall_at", "refresh_ann", "save_ann", "set_breadth",
           "tuning_queries"]


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
    on ``tune_queries`` (default: 100 perturbed frames of ``emb`` and, with ``row_video``, 100 topic queries:
    :func:`~.ann_measure.query_families`), check its breadth on 200 held-out queries of the same families
    (widened until each family reaches ``target``: :func:`~.ann_measure.hold_out`), and keep the fastest meeting
    ``target``. Video recall is against a full scan (:func:`~.ann_measure.exact_videos`).

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
    # tuned on one draw of queries; the breadth must hold on another, of every family, before its recall is believed
    truth, held = tuning_truths(x, row_video, rng, pool, tune_queries)
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
        index, rec = measure(spec, x, truth, target, seed, train_size, held=held)
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
              f"recall@10 >= {target} (frames and videos; videos on held-out queries of every family too) "
              f"within {budget / 2**30:.2f} GiB")
    meta = {k: v for k, v in rec.items() if k not in ("meets_target", "within_memory")}
    meta |= {"rows": n, "dim": dim, "target_recall": target, "memory_budget_bytes": budget,
             "tuning_queries": len(truth.tq), "seed": seed, "reason": reason, "candidates": records}
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


# the names hvl's own builds give their files in ann/ (``ann.faiss``, ``<build>.<i>.faiss``) and the temporary
# files of a killed build (``.<name>.<random>.tmp``): the only files a rebuild deletes there
OWN_FILE = re.compile(r"(?:ann|[0-9a-f]{8}\.\d+)\.faiss")
OWN_TEMP = re.compile(r"\.(?:ann|[0-9a-f]{8}\.\d+)\.faiss\.[A-Za-z0-9_]+\.tmp")


def ann_dir(root: str | Path, create: bool = False) -> Path:
    """``<index>/ann``, refused when it is a link or lies outside the index: a shared folder's ``ann -> DIR``
    would have a rebuild write and delete ``.faiss`` files in DIR."""
    return confined_dir(root, "ann", create=create)


def _write_faiss(index: Any, path: Path) -> None:
    """FAISS's own format, streamed into :func:`~hvl.core.io.atomic_writer` (no second copy in memory)."""
    import faiss

    with atomic_writer(path) as f:
        faiss.write_index(index, faiss.PyCallbackIOWriter(f.write))


def save_ann(root: Path, index: Any, meta: dict[str, Any], shards: list[str]) -> dict[str, Any]:
    """``ann/ann.faiss`` (faiss.write_index, no pickle) + ``ann/ann.json`` naming the shards it covers. A split
    index (row ranges searched in parallel) is one file per part, ``ann/<build>.<i>.faiss``, listed in ``files``.

    The files are written first, then ``ann.json`` (the commit record: a crash before it leaves the previous
    index in use, since a split build never overwrites a file the previous ``ann.json`` lists), then files no
    longer listed are deleted: only names hvl's builds write (:data:`OWN_FILE`, :data:`OWN_TEMP`)."""
    import secrets

    d = ann_dir(root, create=True)
    parts = index_parts(index)
    build = secrets.token_hex(4)
    files = ["ann.faiss"] if len(parts) == 1 else [f"{build}.{i}.faiss" for i in range(len(parts))]
    for part, name in zip(parts, files):
        _write_faiss(part, d / name)
    written = meta | {"shards": shards, "files": files}
    write_json(d / "ann.json", written)
    for old in sorted(p.name for p in d.iterdir()):
        if (OWN_FILE.fullmatch(old) and old not in files) or OWN_TEMP.fullmatch(old):
            remove_inside(d, old)
    return written


def _files(meta: dict[str, Any]) -> list[str]:
    """The index files ``ann.json`` lists (indexes written before splitting: ``ann.faiss``), as plain names."""
    files = meta.get("files", ["ann.faiss"])
    if not isinstance(files, list) or not files or not all(
            isinstance(f, str) and f.endswith(".faiss") and Path(f).name == f and not f.startswith(".") for f in files):
        return []  # a name with a folder in it is not one hvl wrote: no approximate index rather than reading it
    return files


class _AnnRecord(BaseModel):
    """The fields of ``ann/ann.json`` that loading and searching act on, checked before any is used (the file
    travels with a shared index); the measurements beside them are kept as they are."""

    model_config = ConfigDict(extra="allow")
    kind: StrictStr
    factory: StrictStr
    rows: StrictInt = Field(ge=1)
    shards: list[StrictStr]
    files: list[StrictStr] = Field(default_factory=lambda: ["ann.faiss"])
    param: Literal["nprobe", "efSearch", "pool", "videos"] | None = None
    value: StrictInt | None = Field(None, ge=1)
    pool_value: StrictInt | None = Field(None, ge=1)
    pool: StrictInt = Field(0, ge=0)
    refined: StrictBool = False
    target_recall: float = Field(TARGET_RECALL, gt=0, le=1)

    @field_validator("value", "pool_value", "pool")
    @classmethod
    def _a_breadth_hvl_could_have_chosen(cls, v: int | None, info: ValidationInfo) -> int | None:
        # hvl measures breadths up to the index's frames (efSearch up to 4096): a larger one only costs time or memory
        limit = max(info.data.get("rows", 0), 4096)
        if v is not None and v > limit:
            raise ValueError(f"{v} is more than an index of {info.data.get('rows')} frames is searched with "
                             f"(at most {limit})")
        return v

    @model_validator(mode="after")
    def _breadth_given(self) -> _AnnRecord:
        if self.param is not None and self.value is None:
            raise ValueError(f"'param' {self.param!r} comes with a 'value'")
        if self.param in ("pool", "videos") and self.pool_value is None:
            raise ValueError(f"'param' {self.param!r} comes with a 'pool_value'")
        return self


def _read_meta(root: Path) -> dict[str, Any]:
    meta_path = ann_dir(root) / "ann.json"
    if not meta_path.is_file():
        return {}
    fix = f"delete {meta_path.parent} and re-run `hvl index` to rebuild it"
    meta = read_json(meta_path, what="the approximate index's record", fix=fix)
    try:
        _AnnRecord.model_validate(meta)
    except ValidationError as e:
        raise HVLInputError(f"{format_validation_error(e, meta_path)}\n{fix}") from None
    files = _files(meta)
    if not files or not all((meta_path.parent / f).is_file() for f in files):
        return {}
    return meta


def _read_faiss(path: Path) -> Any:
    """One index file, or one error naming it: a damaged or crafted file makes FAISS's reader raise RuntimeError
    (a failed check) or MemoryError (a length under FAISS's limit that is still more than this machine holds)."""
    import faiss

    try:
        return faiss.read_index(str(path))
    except (RuntimeError, MemoryError, OverflowError, ValueError) as e:
        why = (str(e).splitlines() or [type(e).__name__])[-1][:200]
        raise HVLInputError(f"{path}: unreadable approximate index ({type(e).__name__}: {why}); "
                            f"delete {path.parent} and re-run `hvl index` to rebuild it") from None


def load_ann(root: Path, shards: list[str], rows: int) -> tuple[Any, dict[str, Any]]:
    """The stored approximate index if it covers exactly the committed shards; else (None, {})."""
    meta = _read_meta(root)
    if not meta:
        return None, {}
    if meta.get("shards") != shards or meta.get("rows") != rows:
        print(f"hvl search: {root / 'ann'} is stale (the index changed since it was built); searching exactly. "
              "Re-run `hvl index` to rebuild it.", file=sys.stderr)
        return None, {}
    index = join_parts([_read_faiss(ann_dir(root) / f) for f in _files(meta)])
    if "param" in meta:
        set_breadth(index, meta["param"], meta["value"])
    return index, meta


def _try_add(root: Path, emb: np.ndarray, row_video: np.ndarray, meta: dict[str, Any], seed: int
             ) -> tuple[Any, dict[str, Any]] | None:
    """Add the frames after ``meta['rows']`` to the stored index; keep it if, on a sample of the *new*
    frames, recall at the stored breadths still meets the target. None: the data drifted, rebuild."""
    if meta.get("refined"):  # a fast-scan or two-stage index rebuilds in a fraction of the embedding time
        meta["_drift"] = {"added_rows": len(emb) - meta["rows"], "reason": "fast-scan / two-stage: rebuilt, not added"}
        return None
    old = meta["rows"]
    index = _read_faiss(ann_dir(root) / _files(meta)[0])
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
        vrec = truth.video_recall(index, meta["param"])
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
            return save_ann(root, *added, names)
        drift = meta.pop("_drift")
    index, new = build_ann(idx.emb, kind, seed=seed, row_video=idx.row_video, memory=memory)
    if drift is not None:
        new["rebuilt_because"] = drift | {"action": "rebuilt", "target_recall": meta.get("target_recall", TARGET_RECALL)}
    return save_ann(root, index, new, names)
