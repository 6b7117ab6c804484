"""A timeline as plain tables: ``json`` (``segments.json``: the segments as a JSON list), ``csv``
(``segments.csv``: ``start,end,label,confidence``, one row per segment) and ``frames-csv`` (``frames.csv``: per
sampled frame its time, predicted and smoothed class, and one probability column per class).

Readers back: :func:`read_segments_json` and :func:`read_segments_csv` return the segments.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ...errors import HVLInputError
from ...io import atomic_write_bytes, read_json
from ..timeline import Segment, Timeline

__all__ = ["FRAMES_CSV", "SEGMENTS_CSV", "SEGMENTS_JSON", "WRITERS", "read_segments_csv", "read_segments_json",
           "write_frames_csv", "write_segments_csv", "write_segments_json"]

SEGMENTS_JSON, SEGMENTS_CSV, FRAMES_CSV = "segments.json", "segments.csv", "frames.csv"
SEGMENT_COLUMNS = ["start", "end", "label", "confidence"]


def _csv_bytes(rows: list[list]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


def write_segments_json(timeline: Timeline, folder: Path) -> Path:
    path = Path(folder) / SEGMENTS_JSON
    data = [s.model_dump(mode="json") for s in timeline.segments]
    atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode())
    return path


def write_segments_csv(timeline: Timeline, folder: Path) -> Path:
    path = Path(folder) / SEGMENTS_CSV
    rows = [SEGMENT_COLUMNS] + [[repr(s.start), repr(s.end), s.label, "" if s.confidence is None else repr(s.confidence)]
                                for s in timeline.segments]
    atomic_write_bytes(path, _csv_bytes(rows))
    return path


def write_frames_csv(timeline: Timeline, folder: Path) -> Path:
    path = Path(folder) / FRAMES_CSV
    c = timeline.classes
    rows = [["t", "pred", "smoothed", *(f"p_{n}" for n in c)]]
    rows += [[repr(t), c[p], c[s], *(repr(x) for x in pr)]
             for t, p, s, pr in zip(timeline.t, timeline.pred, timeline.smoothed, timeline.probs)]
    atomic_write_bytes(path, _csv_bytes(rows))
    return path


def read_segments_json(path: str | Path) -> list[Segment]:
    data = read_json(path, what="a list of segments", fix="write it again with `hvl predict --format json`", top=list)
    try:
        return [Segment.model_validate(s) for s in data]
    except ValueError as e:
        raise HVLInputError(f"{path}: not a list of segments ({str(e).splitlines()[0]})") from None


def read_segments_csv(path: str | Path) -> list[Segment]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    try:
        return [Segment(start=float(r["start"]), end=float(r["end"]), label=r["label"],
                        confidence=float(r["confidence"]) if r["confidence"] else None) for r in rows]
    except (KeyError, TypeError, ValueError) as e:
        raise HVLInputError(f"{path}: expected the columns {','.join(SEGMENT_COLUMNS)} ({e})") from None


WRITERS = {"json": write_segments_json, "csv": write_segments_csv, "frames-csv": write_frames_csv}
