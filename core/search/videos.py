"""What `hvl index` indexes: the videos of a folder laid out as ``<root>/<group>/<id>.<ext>``.

A file named as yt-dlp names it (``<title> [<id>].mp4``) is video ``<id>``, with the title, uploader and
upload date of the ``.info.json`` beside it (``<title> [<id>].info.json``) as its metadata, shown by the
search page: a folder downloaded with yt-dlp indexes as it is.

Torch-free, so that a domain reader (GamePhysics' ``<root>/<game>/<id>.mp4``) can list a folder without
pulling in the model stack.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    meta: dict[str, Any] = field(default_factory=dict, compare=False)  # e.g. yt-dlp's title, uploader, upload_date


YTDLP_META = ("title", "uploader", "upload_date")


def ytdlp_identity(p: Path) -> tuple[str, dict[str, Any]] | None:
    """``(id, metadata)`` of a video file yt-dlp named (``<title> [<id>].mp4``), else None."""
    from ..data.prepare.ytdlp import read_info_json, split_ytdlp_name

    parts = split_ytdlp_name(p.name)
    if parts is None or parts[2] != p.suffix:  # ".f137.mp4": a format yt-dlp has not merged yet
        return None
    title, vid, _ = parts
    meta: dict[str, Any] = {"title": title}
    info = p.with_suffix(".info.json")
    if info.is_file():
        try:
            data = read_info_json(info)
        except HVLInputError as e:  # the video still indexes; only its metadata is missing
            print(f"hvl index: {e}; indexing {p.name} without it", file=sys.stderr)
        else:
            meta |= {k: str(data[k]) for k in YTDLP_META if data.get(k)}
    return vid, meta


def scan_videos(root: str | Path, refused: list[dict[str, str]] | None = None) -> list[VideoEntry]:
    """``<root>/<group>/<id>.<ext>`` (and ``<root>/<id>.<ext>``), sorted by key; ids must be unique. A file whose
    name gives an id no video may have ('..', from 'Title [..].mp4') is left out with a warning, and added to
    ``refused`` (``{key, path, reason}``)."""
    from ..data.prepare.ytdlp import unusable_id

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
        vid, meta = ytdlp_identity(p) or (p.stem, {})
        if why := unusable_id(vid):  # ids name thumbnails, URLs and frame folders
            print(f"hvl index: skipping {p}: {why}; rename the file", file=sys.stderr)
            if refused is not None:
                refused.append({"key": rel.as_posix(), "path": str(p), "reason": f"{why}; rename the file"})
            continue
        if vid in seen:
            raise HVLInputError(f"{p}: video id '{vid}' is also used by {seen[vid]}; "
                                "video ids (file names without extension) must be unique; rename one")
        seen[vid] = str(p)
        out.append(VideoEntry(key=rel.as_posix(), video_id=vid, group=group, path=str(p.resolve()), meta=meta))
    if outside:
        print(f"hvl index: skipped {len(outside)} link(s) to files outside {root} ({', '.join(map(str, outside[:3]))}"
              f"{' ...' if len(outside) > 3 else ''}); copy or move such videos into the folder", file=sys.stderr)
    if not out:
        raise HVLInputError(f"{root}: no videos ({'/'.join(VIDEO_SUFFIXES)}) found; expected <root>/<group>/<id>.mp4")
    return out
