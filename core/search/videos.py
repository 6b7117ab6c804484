"""What `hvl index` indexes: the videos of a folder laid out as ``<root>/<group>/<id>.<ext>``.

Torch-free, so that a domain reader (GamePhysics' ``<root>/<game>/<id>.mp4``) can list a folder without
pulling in the model stack.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import HVLInputError

__all__ = ["VIDEO_SUFFIXES", "VideoEntry", "scan_videos"]

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi")


@dataclass(frozen=True)
class VideoEntry:
    """One video to index; ``key`` (path under the root) is its identity for incremental runs."""

    key: str
    video_id: str
    group: str
    path: str


def scan_videos(root: str | Path) -> list[VideoEntry]:
    """``<root>/<group>/<id>.<ext>`` (and ``<root>/<id>.<ext>``), sorted by key; ids must be unique."""
    root = Path(root)
    if not root.is_dir():
        raise HVLInputError(f"{root}: video folder not found; expected <root>/<group>/<id>.mp4")
    out: list[VideoEntry] = []
    seen: dict[str, str] = {}
    real_root, outside = root.resolve(), []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in VIDEO_SUFFIXES or not p.is_file() or ".part" in p.suffixes:
            continue
        if not p.resolve().is_relative_to(real_root):  # a link out of the folder: hvl serve would expose its target
            outside.append(p)
            continue
        rel = p.relative_to(root)
        if len(rel.parts) > 2:
            raise HVLInputError(f"{p}: too deeply nested; videos go in <root>/<group>/<id>{p.suffix}")
        group = rel.parts[0] if len(rel.parts) == 2 else ""
        if p.stem in seen:
            raise HVLInputError(f"{p}: video id '{p.stem}' is also used by {seen[p.stem]}; "
                                "video ids (file names without extension) must be unique; rename one")
        seen[p.stem] = str(p)
        out.append(VideoEntry(key=rel.as_posix(), video_id=p.stem, group=group, path=str(p.resolve())))
    if outside:
        print(f"hvl index: skipped {len(outside)} link(s) to files outside {root} ({', '.join(map(str, outside[:3]))}"
              f"{' ...' if len(outside) > 3 else ''}); copy or move such videos into the folder", file=sys.stderr)
    if not out:
        raise HVLInputError(f"{root}: no videos ({'/'.join(VIDEO_SUFFIXES)}) found; expected <root>/<group>/<id>.mp4")
    return out
