"""What ``hvl predict`` reads: video files, folders of videos and manifests, each video with the name of the one
output folder its results go to.

A video's id and its file name are data: an output folder name is made of safe characters only, never a path,
and two videos that would get the same name (``a/x.mp4`` and ``b/x.mp4`` passed by themselves, or ids that differ
only in characters left out) are numbered in the order the inputs list them, so every process of a run computes
the same names.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data.records import Resolved, manifest_videos
from ..data.schema import VideoRecord
from ..errors import HVLInputError

__all__ = ["MANIFEST_SUFFIXES", "VIDEO_SUFFIXES", "VideoInput", "find_videos", "folder_name"]

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg")
MANIFEST_SUFFIXES = (".jsonl",)
_MAX_NAME = 100  # far below every file system's limit, with room for "-<n>"


@dataclass(frozen=True)
class VideoInput:
    """One video to predict: its record (no labels needed), its file, and its output folder's name."""

    record: VideoRecord
    path: Path
    folder: str

    @property
    def video_id(self) -> str:
        return self.record.video_id

    @property
    def resolved(self) -> Resolved:
        return self.record, self.path


def folder_name(video_id: str, taken: set[str]) -> str:
    """A plain folder name for ``video_id`` (any characters) not yet in ``taken`` (compared case-insensitively: a
    folder may land on a case-insensitive file system); added to ``taken``."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", video_id).lstrip(".")[:_MAX_NAME] or "video"
    name, n = stem, 1
    while name.lower() in taken:
        name, n = f"{stem}-{n}", n + 1
    taken.add(name.lower())
    return name


def _folder_videos(root: Path) -> list[tuple[str, Path]]:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    return [(p.relative_to(root).with_suffix("").as_posix(), p) for p in files]


def find_videos(inputs: Sequence[str | Path]) -> list[VideoInput]:
    """The videos ``inputs`` name, in their order: a file (a video, or a ``.jsonl`` manifest whose records' labels
    are ignored), or a folder (every video file under it, sorted; id = the path under the folder without its
    suffix). A file named twice is predicted once."""
    found: list[tuple[VideoRecord, Path]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found += [(VideoRecord(video_id=vid, path=str(f)), f) for vid, f in _folder_videos(p)]
        elif p.suffix.lower() in MANIFEST_SUFFIXES:
            found += [(rec.model_copy(update={"phases": [], "clips": []}), path) for rec, path in manifest_videos(p)]
        elif p.is_file():
            found.append((VideoRecord(video_id=p.stem or "video", path=str(p)), p))
        else:
            raise HVLInputError(f"{p}: no such video file, folder of videos or manifest; check the path")
    seen: set[Path] = set()
    taken: set[str] = set()
    out = []
    for rec, path in found:
        real = path.resolve()
        if real in seen:
            continue
        seen.add(real)
        out.append(VideoInput(rec, path, folder_name(rec.video_id, taken)))
    if not out:
        raise HVLInputError(f"no video found in {', '.join(map(str, inputs))} (video files end in "
                            f"{', '.join(VIDEO_SUFFIXES)}; a manifest in .jsonl)")
    return out
