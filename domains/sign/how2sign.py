"""How2Sign on disk: the realigned sentence table and either sentence clips or full videos.

``how2sign_realigned_<split>.csv`` is tab-separated with the header
``VIDEO_ID VIDEO_NAME SENTENCE_ID SENTENCE_NAME START_REALIGNED END_REALIGNED SENTENCE``.
Sentence clips are ``<clips_dir>/<SENTENCE_NAME>.mp4`` (the released ``<split>_rgb_front_clips/raw_videos``);
full videos are ``<videos_dir>/<VIDEO_NAME>.mp4``, cut to ``[START_REALIGNED, END_REALIGNED)`` seconds
through the record's ``span``.

Poses: How2Sign's 2D keypoint archive extracts to ``openpose_output/json/<SENTENCE_NAME>/`` (one
``<SENTENCE_NAME>_<frame:012d>_keypoints.json`` per frame of the sentence clip); extracted beside the clips'
``raw_videos/`` that is ``<split>_rgb_front_clips/openpose_output/json`` (``poses_dir`` names another folder).
Where a sentence has no JSON folder, a ``.pose`` file beside its clip (``<SENTENCE_NAME>.pose``) is used. A
record names what it found in ``pose`` (in ``mode='full'`` starting at ``START_REALIGNED`` of the full video).
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Literal

from hvl.core.data.schema import PoseSource, VideoRecord
from hvl.core.errors import HVLInputError

from .pose_formats import find_pose_beside

COLUMNS = ["VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME", "START_REALIGNED", "END_REALIGNED", "SENTENCE"]
SPLITS = ("train", "val", "test")


def _time(path: Path, n: int, field: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise HVLInputError(f"{path}, line {n}: field '{field}': {raw!r} is not a time in seconds (≥ 0); "
                            "fix the row or restore the released table")
    return value


def read_how2sign_table(path: str | Path) -> list[dict[str, str | float | int]]:
    """Rows of a realigned table, validated; each keeps its line number for later errors."""
    path = Path(path)
    if not path.is_file():
        raise HVLInputError(f"{path}: How2Sign table not found; point dataset.options.table at "
                            "how2sign_realigned_<split>.csv")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    header = lines[0].split("\t") if lines else []
    if [h.strip() for h in header] != COLUMNS:
        raise HVLInputError(f"{path}, line 1: header must be the {len(COLUMNS)} tab-separated columns "
                            f"{' '.join(COLUMNS)}; got {(lines[0] if lines else '')[:120]!r}")
    rows, seen = [], {}
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t", len(COLUMNS) - 1)  # a sentence never splits: it is the last column
        if len(parts) != len(COLUMNS):
            raise HVLInputError(f"{path}, line {n}: expected {len(COLUMNS)} tab-separated fields, got {len(parts)}; "
                                "is the file tab-separated?")
        row: dict[str, str | float | int] = dict(zip(COLUMNS, (p.strip() for p in parts)))
        for f in ("VIDEO_NAME", "SENTENCE_NAME", "SENTENCE"):
            if not row[f]:
                raise HVLInputError(f"{path}, line {n}: field '{f}' is empty")
        start = _time(path, n, "START_REALIGNED", str(row["START_REALIGNED"]))
        end = _time(path, n, "END_REALIGNED", str(row["END_REALIGNED"]))
        if start >= end:
            raise HVLInputError(f"{path}, line {n}: field 'END_REALIGNED': {end} must be after "
                                f"START_REALIGNED {start}")
        name = str(row["SENTENCE_NAME"])
        if name in seen:
            raise HVLInputError(f"{path}, line {n}: field 'SENTENCE_NAME': '{name}' repeats line {seen[name]}")
        seen[name] = n
        row.update(START_REALIGNED=start, END_REALIGNED=end, line=n)
        rows.append(row)
    if not rows:
        raise HVLInputError(f"{path}: no sentence rows after the header")
    return rows


def read_how2sign(root: str | Path, split: str = "test", mode: Literal["clips", "full"] = "clips",
                  table: str | None = None, clips_dir: str | None = None, videos_dir: str | None = None,
                  limit: int | None = None, poses_dir: str | None = None) -> list[tuple[VideoRecord, Path]]:
    """One record per sentence: ``texts = [SENTENCE]`` (grouped by sentence at retrieval).

    ``mode='clips'`` reads ``<SENTENCE_NAME>.mp4``; ``mode='full'`` reads ``<VIDEO_NAME>.mp4`` and sets
    ``span`` to the realigned times. Paths are relative to ``root`` unless absolute; every file is
    checked to exist so that a missing one is reported with its table line before any model loads.
    Poses are optional: a sentence without any is read without (and counted in one warning).
    """
    root = Path(root)
    if split not in SPLITS:
        raise HVLInputError(f"how2sign split '{split}' is unknown; use one of {list(SPLITS)}")
    if mode not in ("clips", "full"):
        raise HVLInputError(f"how2sign mode '{mode}' is unknown; use 'clips' (sentence clips) or 'full' "
                            "(full videos cut by START/END_REALIGNED)")
    table_path = root / (table or f"how2sign_realigned_{split}.csv")
    clips = root / (clips_dir or f"{split}_rgb_front_clips/raw_videos")
    folder = clips if mode == "clips" else root / (videos_dir or f"{split}_raw_videos/raw_videos")
    poses = root / poses_dir if poses_dir else clips.parent / "openpose_output" / "json"
    if poses_dir and not poses.is_dir():
        raise HVLInputError(f"how2sign option poses_dir: {poses} is not a folder; extract the 2D keypoint archive "
                            "there (its openpose_output/json) or drop the option")
    out, without_poses = [], []
    for row in read_how2sign_table(table_path)[:limit]:
        name = row["SENTENCE_NAME"] if mode == "clips" else row["VIDEO_NAME"]
        path = folder / f"{name}.mp4"
        if not path.is_file():
            field = "SENTENCE_NAME" if mode == "clips" else "VIDEO_NAME"
            raise HVLInputError(f"{table_path}, line {row['line']}: field '{field}': video {path} not found; "
                                f"download it, fix the {'clips_dir' if mode == 'clips' else 'videos_dir'} option, "
                                "or remove the row")
        meta = {k.lower(): row[k] for k in ("VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID")}
        span = (float(row["START_REALIGNED"]), float(row["END_REALIGNED"])) if mode == "full" else None
        pose = _sentence_pose(poses, clips, str(row["SENTENCE_NAME"]), span[0] if span else 0.0)
        if pose is None:
            without_poses.append(str(row["SENTENCE_NAME"]))
        rec = VideoRecord(video_id=str(row["SENTENCE_NAME"]), path=str(path.resolve()), texts=[str(row["SENTENCE"])],
                          span=span, meta=meta, pose=pose)
        out.append((rec, path))
    if without_poses and len(without_poses) < len(out):   # some have poses: the others' are missing, say which
        warnings.warn(f"how2sign {split}: {len(without_poses)} of {len(out)} sentences have no poses (neither "
                      f"{poses}/<SENTENCE_NAME>/ nor <SENTENCE_NAME>.pose beside the clip), e.g. "
                      f"{', '.join(without_poses[:5])}; they are read without", stacklevel=2)
    return out


def _sentence_pose(poses: Path, clips: Path, name: str, start: float) -> PoseSource | None:
    """The sentence clip's OpenPose JSON folder, else a ``.pose`` beside the clip. Their frames are the clip's,
    at its frame rate (left to the video: the JSON records none)."""
    folder = poses / name
    if folder.is_dir():
        return PoseSource(path=str(folder.resolve()), start=start)
    beside = find_pose_beside(clips / f"{name}.mp4")
    return PoseSource(path=str(beside.resolve()), start=start) if beside else None
