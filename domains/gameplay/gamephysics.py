"""GamePhysics on disk: ``<root>/<game>/<id>.mp4`` (r/GamePhysics post id as file name) plus an optional
metadata CSV with at least ``post_id`` and ``title`` columns.

Titles are kept in ``meta`` for display only: hvl ranks by video content, as the paper does.
"""
from __future__ import annotations

import csv
from pathlib import Path

from hvl.core.data.schema import VideoRecord
from hvl.core.errors import HVLInputError
from hvl.core.search.videos import scan_videos

REQUIRED_COLUMNS = ("post_id", "title")


def read_metadata(path: Path) -> dict[str, dict[str, str]]:
    """``post_id -> row``; the header must name ``post_id`` and ``title``; ids unique and non-empty."""
    if not path.is_file():
        raise HVLInputError(f"{path}: metadata CSV not found; pass metadata=null to read the videos without it")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise HVLInputError(f"{path}: not UTF-8 text (byte {e.start}); save the CSV as UTF-8") from None
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise HVLInputError(f"{path}, line 1: header {header} lacks column(s) {missing}; "
                            f"the first line must name at least {list(REQUIRED_COLUMNS)}")
    rows: dict[str, dict[str, str]] = {}
    first_line: dict[str, int] = {}
    for n, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise HVLInputError(f"{path}, line {n}: has {len(row) - (None in row)} fields where the header has "
                                f"{len(header)}; quote titles that contain commas")
        pid = row["post_id"].strip()
        if not pid:
            raise HVLInputError(f"{path}, line {n}: field 'post_id' is empty; every row needs the post id "
                                "(the video's file name without extension)")
        if pid in rows:
            raise HVLInputError(f"{path}, line {n}: field 'post_id': '{pid}' repeats line {first_line[pid]}; "
                                "post ids must be unique")
        rows[pid], first_line[pid] = row, n
    return rows


def read_gamephysics(root: str | Path, metadata: str | None = "metadata.csv",
                     games: list[str] | None = None) -> list[tuple[VideoRecord, Path]]:
    """Every video under ``root`` (optionally only ``games``), with game, key and CSV fields in ``meta``.

    ``metadata`` is relative to ``root`` unless absolute; the default ``metadata.csv`` may be
    absent, an explicitly named file may not. Videos without a CSV row are still read.
    """
    root = Path(root)
    entries = scan_videos(root)
    meta_rows: dict[str, dict[str, str]] = {}
    if metadata:
        mpath = Path(metadata) if Path(metadata).is_absolute() else root / metadata
        if mpath.is_file() or metadata != "metadata.csv":
            meta_rows = read_metadata(mpath)
    if games is not None:
        unknown = sorted(set(games) - {e.group for e in entries})
        if unknown:
            raise HVLInputError(f"{root}: game folder(s) {unknown} not found; options.games must name folders under it")
        entries = [e for e in entries if e.group in games]
    out = []
    for e in entries:
        row = meta_rows.get(e.video_id, {})
        meta = {"game": e.group, "group": e.group, "key": e.key} | {k: v for k, v in row.items() if k != "post_id"}
        out.append((VideoRecord(video_id=e.video_id, path=e.path, meta=meta), Path(e.path)))
    return out
