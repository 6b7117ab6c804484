"""What hvl sees in each video, without training (`hvl probe <folder|manifest|video>`: :func:`run_probe`).

Per video: container, codec, size as displayed, rotation, constant or variable frame rate, duration
and the decoder ``video_backend`` picks for it (and why) — the table a training run prints at setup
and stores as ``data/video_probe.json``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..errors import HVLInputError
from .records import describe_video, manifest_videos

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")


def find_videos(source: str | Path) -> list[tuple[str | None, Path]]:
    """``(video_id, path)`` of a manifest's records, or of every video file under a folder."""
    source = Path(source)
    if source.is_file() and source.suffix == ".jsonl":
        return [(rec.video_id, path) for rec, path in manifest_videos(source)]
    if source.is_dir():
        found = sorted(p for p in source.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()
                       and ".part" not in p.suffixes)
        if not found:
            raise HVLInputError(f"{source}: no videos ({'/'.join(VIDEO_SUFFIXES)}) under this folder")
        return [(None, p) for p in found]
    if source.is_file():
        return [(None, source)]
    raise HVLInputError(f"{source}: not found; give a video folder, a manifest (.jsonl) or a video file")


def probe(source: str | Path, backend: str = "auto", size: tuple[int, int] | None = None,
          progress: bool = False) -> list[dict[str, Any]]:
    """One row per video (:func:`describe_video`); an unreadable one gets an ``error`` instead."""
    rows = []
    for vid, path in tqdm(find_videos(source), desc="probing", unit="video", disable=not progress):
        head = {"video_id": vid} if vid is not None else {}
        try:
            rows.append({**head, **describe_video(path, backend, size)})
        except HVLInputError as e:
            rows.append({**head, "path": str(path), "error": str(e).split(": ", 1)[-1]})
    return rows


@dataclass(frozen=True)
class ProbeOptions:
    """``hvl probe``: what to probe, the decoder choice and decode size of the run, and ``--json``."""

    source: str
    video_backend: str = "auto"
    image_size: int | None = None  # auto's choice can depend on it
    json: str | None = None
    progress: bool = True


def run_probe(opts: ProbeOptions) -> list[dict[str, Any]]:
    """The table (and ``--json``) of :func:`probe`; an unreadable video is an error once the table is out."""
    from ..outputs import emit
    from .records import format_probe_table

    size = (opts.image_size, opts.image_size) if opts.image_size else None
    rows = probe(opts.source, opts.video_backend, size, progress=opts.progress)
    emit({"source": str(opts.source), "videos": rows}, format_probe_table(rows), opts.json)
    bad = [r for r in rows if "error" in r]
    if bad:
        raise HVLInputError(f"{len(bad)} of {len(rows)} video(s) unreadable, first: {bad[0]['path']}: "
                            f"{bad[0]['error']}")
    sys.stdout.flush()
    return rows
