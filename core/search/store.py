"""The on-disk frame index: header, shards of frame embeddings, and reading them back.

On-disk format (``FORMAT``, version 2)::

    <index>/index.json        header: format, version, checkpoint (path + sha256), level, dim,
                              fps, image_size, dtype, videos_root
    <index>/shards/<name>.npy     float16 [rows, dim]: one L2-normalised embedding per frame
    <index>/shards/<name>.jsonl   one line per video, in row order:
                              {"key": "<group>/<id>.mp4", "video_id", "group", "path", "row", "t": [s, ...],
                               "meta": {...} (optional: e.g. yt-dlp's title, uploader, upload_date)}
                              (rows row .. row+len(t)-1 of the .npy are that video's frames at times t)
    <index>/ann/                  optional approximate index (see :mod:`hvl.core.search.ann`)

A ``group`` is the folder a video sits in (GamePhysics: its game; a hospital's: its site) and what
``--group`` filters on. Version 1 called it ``game``; version-1 indexes are read as they are, and an
index extended by this hvl has its header moved to version 2 (its old lines keep ``game``, read alike).

Pruning: a video whose file moved or disappeared is taken out of its shard by writing the shard's next
generation (``<name>.g<N>``: the same videos minus the gone ones, committed like any shard) and then
deleting the old one; a committed later generation supersedes an earlier one, so a crash between the
two leaves no duplicate.

Crash safety: a shard holds whole videos only. Its ``.npy`` is written to a temporary file,
fsynced and renamed, then its ``.jsonl`` the same way; the ``.jsonl`` is the commit record,
so a shard without one (a ``kill -9`` between the renames) is ignored and later removed. A
re-run indexes exactly the videos that no committed shard lists: no duplicates, no half
videos. Everything is read back with ``np.load(allow_pickle=False)`` and ``json``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import HVLInputError
from ..io import atomic_write_bytes, confined_dir, read_json, read_npy, remove_inside, write_json, write_npy

__all__ = ["FORMAT", "VERSION", "FrameIndex", "FrameRows", "as_float32", "one_blas_thread", "score_rows", "committed_shards", "ensure_header", "indexed_keys",
           "prune", "read_header", "read_index", "read_shard_embeddings", "read_shard_meta", "remove_orphans",
           "shards_dir", "write_shard"]

FORMAT, VERSION = "hvl-frame-index", 2
DEFAULT_SHARD_ROWS = 16384  # frames per committed shard: a kill loses at most this much embedding work
READABLE_VERSIONS = (1, 2)


def read_header(index_dir: str | Path) -> dict[str, Any]:
    path = Path(index_dir) / "index.json"
    if not path.is_file():
        raise HVLInputError(f"{path}: not an hvl index (no index.json); build one with `hvl index <videos> --out {index_dir}`")
    h = read_json(path, what="an hvl index header", fix="rebuild the index")
    if h.get("format") != FORMAT or h.get("version") not in READABLE_VERSIONS:
        raise HVLInputError(f"{path}: field 'format'/'version' is {h.get('format')!r}/{h.get('version')!r}, "
                            f"expected {FORMAT!r}/{' or '.join(map(str, READABLE_VERSIONS))}; rebuild the index "
                            "with this hvl")
    return h


def _generation(name: str) -> tuple[str, int]:
    """``abc-r0-00001.g2`` -> (``abc-r0-00001``, 2); a shard never pruned is generation 0."""
    base, dot, gen = name.rpartition(".g")
    return (base, int(gen)) if dot and gen.isdigit() else (name, 0)


def shards_dir(index_dir: str | Path, create: bool = False) -> Path:
    """``<index>/shards``, refused when it is a link or lies outside the index (a shared folder's
    ``shards -> ..`` would have hvl delete and write next to the index)."""
    return confined_dir(index_dir, "shards", create=create)


def _all_committed(index_dir: str | Path) -> list[str]:
    d = shards_dir(index_dir)
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.jsonl") if not p.name.startswith(".") and p.with_suffix(".npy").is_file())


def group_of(line: dict[str, Any]) -> str:
    """A shard line's group (version 1 lines call it ``game``)."""
    return str(line.get("group", line.get("game", "")))


def committed_shards(index_dir: str | Path) -> list[str]:
    """Names of committed shards (both files present, not superseded by a later generation), sorted."""
    names = _all_committed(index_dir)
    latest: dict[str, int] = {}
    for n in names:
        base, gen = _generation(n)
        latest[base] = max(gen, latest.get(base, -1))
    return [n for n in names if _generation(n)[1] == latest[_generation(n)[0]]]


def read_shard_meta(index_dir: str | Path, name: str) -> list[dict[str, Any]]:
    path = shards_dir(index_dir) / f"{name}.jsonl"
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise HVLInputError(f"{path}, line {n}: corrupt shard metadata ({e.msg}); delete this shard "
                                "(its .npy and .jsonl) and re-run `hvl index` to re-embed its videos") from None
    return rows


def read_shard_embeddings(index_dir: str | Path, name: str, mmap: bool = False) -> np.ndarray:
    path = shards_dir(index_dir) / f"{name}.npy"
    try:
        return read_npy(path, mmap=mmap)
    except (ValueError, OSError) as e:
        raise HVLInputError(f"{path}: unreadable shard ({e}); delete it and its .jsonl, then re-run `hvl index`") from None


def write_shard(index_dir: Path, name: str, emb: np.ndarray, lines: list[str]) -> None:
    """``.npy`` first, then the ``.jsonl`` that commits it (a shard without one is an orphan)."""
    shards = shards_dir(index_dir, create=True)
    write_npy(shards / f"{name}.npy", emb)
    atomic_write_bytes(shards / f"{name}.jsonl", ("\n".join(lines) + "\n").encode())


def indexed_keys(index_dir: str | Path) -> set[str]:
    keys = set()
    for name in committed_shards(index_dir):
        try:
            keys |= {v["key"] for v in read_shard_meta(index_dir, name)}
        except FileNotFoundError:  # superseded and removed by another rank's prune meanwhile
            continue
    return keys


def _delete_shard(shards: Path, name: str) -> None:
    remove_inside(shards, f"{name}.jsonl")  # the commit record first: never a .jsonl without rows
    remove_inside(shards, f"{name}.npy")


def remove_orphans(index_dir: str | Path) -> list[str]:
    """Delete what killed runs left: temporary files, ``.npy`` shards that were never committed, and shards
    superseded by a later generation."""
    d = shards_dir(index_dir)
    gone = []
    for p in list(d.glob(".*.tmp")) + [p for p in d.glob("*.npy") if not p.with_suffix(".jsonl").is_file()]:
        if remove_inside(d, p.name):  # a link is removed as a link
            gone.append(p.name)
    live = set(committed_shards(index_dir))
    for name in set(_all_committed(index_dir)) - live:
        _delete_shard(d, name)
        gone.append(name)
    return gone


def prune(index_dir: str | Path, keep: set[str]) -> list[dict[str, Any]]:
    """Take every video whose ``key`` is not in ``keep`` (its file moved or is gone) out of the index.

    1. For each committed shard that lists such a video, write its next generation without those videos
       (rows and ``row`` offsets recomputed), committed ``.npy`` then ``.jsonl`` as any shard;
    2. delete the old shard (a crash before that leaves it superseded, see :func:`committed_shards`);
    3. a shard left with no video is deleted.
    Returns the pruned videos' metadata lines."""
    root = Path(index_dir)
    shards = shards_dir(root)
    pruned: list[dict[str, Any]] = []
    for name in committed_shards(root):
        meta = read_shard_meta(root, name)
        gone = [m for m in meta if m["key"] not in keep]
        if not gone:
            continue
        pruned += gone
        stay = [m for m in meta if m["key"] in keep]
        if stay:
            emb = read_shard_embeddings(root, name)
            rows, lines, row = [], [], 0
            for m in stay:
                rows.append(emb[m["row"]:m["row"] + len(m["t"])])
                lines.append(json.dumps(m | {"row": row}))
                row += len(m["t"])
            base, gen = _generation(name)
            write_shard(root, f"{base}.g{gen + 1}", np.concatenate(rows), lines)
        _delete_shard(shards, name)
    return pruned


def ensure_header(index_dir: Path, want: dict[str, Any]) -> dict[str, Any]:
    """Create ``index.json``, or check that an existing index was built the same way (else its
    shards would mix embedding spaces)."""
    path = index_dir / "index.json"
    if not path.is_file():
        write_json(path, want)
        return want
    have = read_header(index_dir)
    for key in ("checkpoint_sha256", "level", "dim", "fps", "image_size", "preprocess"):
        if key == "preprocess" and key not in have:  # indexes written before preprocessing was recorded: square
            continue
        if have.get(key) != want.get(key):
            raise HVLInputError(f"{path}: field '{key}' is {have.get(key)!r} but this run has {want.get(key)!r}; "
                                "an index holds one model's embeddings at one setting: use a new --out, "
                                "or the same --ckpt/--model/--level/--fps")
    if have.get("version") != VERSION:  # new shards name groups as this version does
        have = have | {"version": VERSION}
        write_json(path, have)
    return have


# ------------------------------------------------------------------ the loaded index
_FP16: dict[int, Any] = {}
_BLAS: Any = None


def one_blas_thread() -> Any:
    """A context in which numpy's BLAS runs on one thread. Rescoring a few thousand candidate frames gains nothing
    from more, and OpenBLAS's idle threads keep spinning after a call: on 2 cores they took the cores from the
    next query's FAISS threads (1M isotropic frames: 17 -> 10 ms a query, benchmarks/README)."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def score_rows(emb: Any, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Inner products of the frames ``rows`` of ``emb`` (frames on disk or an array) with ``q``, exactly."""
    with one_blas_thread():
        return emb.score(rows, q) if isinstance(emb, FrameRows) else emb[rows] @ q


def as_float32(block: np.ndarray) -> np.ndarray:
    """fp16 rows as float32, exactly (every fp16 value, checked in tests), by FAISS's vectorised fp16 decoder:
    numpy's cast was most of the cost of rescoring candidates (2,560 x 512: 1.2 ms against 0.5 ms)."""
    if block.dtype != np.float16 or block.ndim != 2 or not block.size:
        return np.asarray(block, np.float32)
    import faiss

    dim = block.shape[1]
    if dim not in _FP16:
        _FP16[dim] = faiss.ScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16)
    return _FP16[dim].decode(np.ascontiguousarray(block).view(np.uint8))


class FrameRows:
    """The index's frame embeddings as one ``[N, D]`` matrix, kept on disk: the fp16 shards memory-mapped.

    A search process reads only the rows it scores (a candidate video's frames, or a chunk of a full scan)
    and the kernel may drop those pages again: the frames cost page cache, not the process's own memory
    (``RssAnon``). Indexing returns float32 rows, and ``rows @ q`` scores rows against a query, as a float32
    array would; :meth:`materialize` reads everything (building an approximate index does)."""

    SCAN_CHUNK = 1 << 16  # rows converted to float32 at a time by a full scan: bounded temporary memory
    # rows decoded and scored at a time by :meth:`score`: 8 MiB of float32 stays in cache between the decode and the
    # product (20 candidates of 3,600 frames: 30 ms against 40-51 ms for one gather of all 72,000 rows)
    SCORE_BLOCK = 4096

    def __init__(self, parts: list[np.ndarray]):
        self.parts = parts
        self.offsets = np.cumsum([0] + [len(p) for p in parts])
        self.dim = int(parts[0].shape[1]) if parts else 0
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def shape(self) -> tuple[int, int]:
        return len(self), self.dim

    @property
    def ndim(self) -> int:
        return 2

    def _rows(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        if not len(rows):
            return np.empty((0, self.dim), np.float32)
        part = np.searchsorted(self.offsets, rows, side="right") - 1
        if part[0] == part[-1] and np.all(part == part[0]):  # one shard (the usual case for a video's rows)
            return as_float32(self._take(int(part[0]), rows - self.offsets[part[0]]))
        out = np.empty((len(rows), self.dim), np.float32)
        for s in np.unique(part):
            sel = np.flatnonzero(part == s)
            out[sel] = as_float32(self._take(int(s), rows[sel] - self.offsets[s]))
        return out

    def _take(self, s: int, local: np.ndarray) -> np.ndarray:
        lo, hi = int(local[0]), int(local[-1]) + 1
        if hi - lo == len(local) and np.all(np.diff(local) == 1):  # a run of rows: one slice, no gather
            return self.parts[s][lo:hi]
        return np.take(self.parts[s].view(np.ndarray), local, axis=0)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self._rows(np.array([int(key) % len(self)]))[0]
        if isinstance(key, slice):
            return self._rows(np.arange(*key.indices(len(self))))
        return self._rows(np.asarray(key))

    def score(self, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
        """``self[rows] @ q`` without first gathering every row into one float32 array: a run of consecutive rows
        (a video's frames, as rescoring whole candidates asks for) is decoded from the memory map in place, and
        everything is decoded and scored :attr:`SCORE_BLOCK` rows at a time. The values are those of one product
        to float32's last bit (BLAS sums the last few rows of each call in another order; so does a full scan's
        chunking)."""
        rows = np.asarray(rows, np.int64)
        q = np.asarray(q, np.float32)
        out = np.empty((len(rows),) + q.shape[1:], np.float32)
        if not len(rows):
            return out
        part = np.searchsorted(self.offsets, rows, side="right") - 1
        cut = np.r_[0, np.flatnonzero((np.diff(rows) != 1) | (np.diff(part) != 0)) + 1, len(rows)]
        if len(cut) - 1 > len(rows) // 64:  # scattered rows (a frame pool): a Python loop per run would cost more
            for i in range(0, len(rows), self.SCORE_BLOCK):
                out[i:i + self.SCORE_BLOCK] = self._rows(rows[i:i + self.SCORE_BLOCK]) @ q
            return out
        for lo, hi in zip(cut[:-1].tolist(), cut[1:].tolist()):
            shard, first = self.parts[part[lo]], int(rows[lo] - self.offsets[part[lo]])
            for i in range(lo, hi, self.SCORE_BLOCK):
                j = min(i + self.SCORE_BLOCK, hi)
                out[i:j] = as_float32(shard[first + i - lo:first + j - lo]) @ q
        return out

    def __matmul__(self, q: np.ndarray) -> np.ndarray:
        """Every row's score against ``q`` (``[D]`` or ``[D, Q]``), a chunk at a time."""
        q = np.asarray(q, np.float32)
        out = np.empty((len(self),) + q.shape[1:], np.float32)
        for s, part in enumerate(self.parts):
            base = int(self.offsets[s])
            for i in range(0, len(part), self.SCAN_CHUNK):
                block = as_float32(part[i:i + self.SCAN_CHUNK])
                out[base + i:base + i + len(block)] = block @ q
        return out

    def materialize(self) -> np.ndarray:
        """All rows as one float32 array in memory."""
        out = np.empty((len(self), self.dim), np.float32)
        for s, part in enumerate(self.parts):
            for i in range(0, len(part), self.SCAN_CHUNK):
                block = as_float32(part[i:i + self.SCAN_CHUNK])
                out[self.offsets[s] + i:self.offsets[s] + i + len(block)] = block
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = self.materialize()
        return a if dtype is None else a.astype(dtype, copy=False)


@dataclass
class FrameIndex:
    """All committed shards of an index; videos' rows are contiguous. ``emb`` is a :class:`FrameRows` (on disk)
    when read by :func:`read_index`, or any float32 ``[N, D]`` array (benchmarks, tests)."""

    root: Path
    header: dict[str, Any]
    emb: Any                             # FrameRows | float32 [N, D]
    row_video: np.ndarray                # int64 [N]: row -> video table index
    row_time: np.ndarray                 # float64 [N]: seconds
    videos: list[dict[str, Any]]         # video_id, group, path, key, start, n
    shards: list[str]
    ann: Any = None
    ann_meta: dict[str, Any] = field(default_factory=dict)
    video_start: np.ndarray | None = None  # int64 [V]: first row of each video (for rescoring whole videos)
    video_len: np.ndarray | None = None    # int64 [V]

    def __post_init__(self) -> None:
        if self.video_start is None:
            self.video_start = np.array([v["start"] for v in self.videos], np.int64)
            self.video_len = np.array([v["n"] for v in self.videos], np.int64)

    @property
    def dim(self) -> int:
        return int(self.header["dim"])

    def close(self) -> None:
        """Let go of a vector database the index opened (an embedded one has one user at a time)."""
        backend = getattr(self.ann, "backend", None)
        if backend is not None:
            backend.close()

    def video_index(self) -> dict[str, int]:
        """video id -> its position in the video table (built once)."""
        if not hasattr(self, "_video_index"):
            self._video_index = {v["video_id"]: i for i, v in enumerate(self.videos)}
        return self._video_index

    def video_rows(self, vids: np.ndarray) -> np.ndarray:
        """Every row of the videos ``vids`` (video table indices), video by video."""
        vids = np.asarray(vids, np.int64)
        if len(vids) == 0:
            return np.zeros(0, np.int64)
        starts, lens = self.video_start[vids], self.video_len[vids]
        offs = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
        return np.arange(int(lens.sum()), dtype=np.int64) + offs


def read_index(path: str | Path, mmap: bool = True) -> FrameIndex:
    """Every committed shard, checked against the header; no approximate index (see
    :func:`hvl.core.search.query.load_index`). ``mmap``: the frames stay on disk (:class:`FrameRows`); else they
    are read into one float32 array."""
    root = Path(path)
    header = read_header(root)
    names = committed_shards(root)
    if not names:
        raise HVLInputError(f"{root}: index has no committed shards; run `hvl index <videos> --out {root}` first")
    parts, videos, vid_of_row, times = [], [], [], []
    row = 0
    for name in names:
        e = read_shard_embeddings(root, name, mmap=True)
        if e.ndim != 2 or e.shape[1] != header["dim"]:
            raise HVLInputError(f"{root}/shards/{name}.npy: shape {e.shape} does not match dim {header['dim']} "
                                "of index.json; delete the shard and re-run `hvl index`")
        meta = read_shard_meta(root, name)
        n = sum(len(m["t"]) for m in meta)
        if n != len(e):
            raise HVLInputError(f"{root}/shards/{name}.jsonl: lists {n} frames but {name}.npy has {len(e)} rows; "
                                "delete the shard and re-run `hvl index`")
        for m in meta:
            videos.append({"video_id": m["video_id"], "group": group_of(m), "path": m["path"], "key": m["key"],
                           "start": row + m["row"], "n": len(m["t"]), "meta": m.get("meta") or {}})
            vid_of_row.append(np.full(len(m["t"]), len(videos) - 1, np.int64))
            times.append(np.asarray(m["t"], np.float64))
        parts.append(e)
        row += len(e)
    emb = FrameRows(parts)
    return FrameIndex(root, header, emb if mmap else emb.materialize(), np.concatenate(vid_of_row),
                      np.concatenate(times), videos, names)
