"""Where evaluation videos come from (a manifest, or a domain's reader for a published layout)
and whether each can be read, checked before any model is loaded."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import HVLInputError
from ..registry import get_domain
from .schema import Manifest, VideoRecord, load_manifest
from .video import Video, open_source

__all__ = ["DatasetSpec", "Resolved", "check_videos", "load_videos", "manifest_videos", "probe_video",
           "probe_videos"]

Resolved = tuple[VideoRecord, Path]  # a record and its frame source on disk


class DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reader: str = Field("manifest", description="'manifest' (a .jsonl) or a reader of the domain, e.g. 'cholec80'")
    path: str
    options: dict[str, Any] = Field(default_factory=dict, description="reader keyword arguments (e.g. split)")


def manifest_videos(path: str | Path) -> list[Resolved]:
    m = load_manifest(path)
    return [(r, m.resolve(r)) for r in m.videos]


def load_videos(dataset: DatasetSpec, domain: str | None) -> list[Resolved]:
    """The records of ``dataset``: a manifest, or ``domain``'s reader named by ``dataset.reader``."""
    if dataset.reader == "manifest":
        return manifest_videos(dataset.path)
    if not domain:
        raise HVLInputError(f"dataset.reader '{dataset.reader}' belongs to a domain: set 'domain' in the config")
    d = get_domain(domain)
    if dataset.reader not in d.readers:
        raise HVLInputError(f"domain '{domain}' has no reader '{dataset.reader}'; it has {sorted(d.readers)}")
    return d.readers[dataset.reader](dataset.path, **dataset.options)


def probe_video(rec: VideoRecord, path: str | Path) -> str | None:
    """Why ``rec``'s video is unusable, or None: opens it, decodes its last frame (catches
    truncation) and checks that the record's times fit in it."""
    try:
        v = Video(open_source(path))
        v.source.get([v.num_frames - 1])
    except HVLInputError as e:
        msg = str(e)
        return msg.split(": ", 1)[-1] if msg.startswith(str(path)) else msg
    last = max([s.end for s in (*rec.phases, *rec.clips)] + ([rec.span[1]] if rec.span else []), default=0.0)
    if last > v.duration + 1.0 / v.fps:
        return (f"segments run to {last:.2f}s but the video lasts {v.duration:.2f}s; "
                "fix the times or the 'duration' field")
    return None


def check_videos(videos: list[Resolved]) -> None:
    """Stop at the first unusable video, naming it: data errors are cheaper to find than a model is to load."""
    for rec, path in videos:
        reason = probe_video(rec, path)
        if reason:
            raise HVLInputError(f"{path}: {reason}")


def probe_videos(manifest: Manifest) -> tuple[list[VideoRecord], list[dict[str, str]]]:
    """The usable records, and for the others which video and why not."""
    good, bad = [], []
    for rec in manifest.videos:
        try:
            path = str(manifest.resolve(rec))
            reason = probe_video(rec, path)
        except HVLInputError as e:
            path, reason = rec.path, str(e)
        if reason:
            bad.append({"video_id": rec.video_id, "path": path, "reason": reason})
        else:
            good.append(rec)
    return good, bad
