"""The video records an evaluation reads (:data:`Resolved`: a manifest row and its frame source on disk): where
they come from (a manifest, or a domain's reader for a published layout, :class:`DatasetSpec`) and whether each
can be read, checked before any model is loaded; what hvl sees in a video (:func:`describe_video`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import HVLInputError
from ..registry import get_domain
from .decoders import choose_backend, stream_info
from .schema import Manifest, VideoRecord, load_manifest
from .video import Video, open_source

__all__ = ["DatasetSpec", "Resolved", "check_videos", "describe_video", "format_probe_table", "load_videos",
           "manifest_videos", "probe_video", "probe_videos"]

Resolved = tuple[VideoRecord, Path]  # a record and its frame source on disk


class DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reader: str = Field("manifest", description="'manifest' (a .jsonl), 'activitynet' / 'paragraphs' (long-form "
                        "corpora, :mod:`.longform`) or a reader of the domain, e.g. 'cholec80'")
    path: str
    options: dict[str, Any] = Field(default_factory=dict, description="reader keyword arguments (e.g. split)")


def manifest_videos(path: str | Path) -> list[Resolved]:
    m = load_manifest(path)
    return [(r, m.resolve(r)) for r in m.videos]


def load_videos(dataset: DatasetSpec, domain: str | None) -> list[Resolved]:
    """The records of ``dataset``: a manifest, or ``domain``'s reader named by ``dataset.reader``."""
    if dataset.reader == "manifest":
        return manifest_videos(dataset.path)
    from .longform import CORPUS_READERS, read_corpus

    if dataset.reader in CORPUS_READERS:  # published corpora of no one domain (long-form video ↔ paragraph)
        return read_corpus(CORPUS_READERS[dataset.reader], dataset)
    if not domain:
        raise HVLInputError(f"dataset.reader '{dataset.reader}' belongs to a domain: set 'domain' in the config")
    d = get_domain(domain)
    if dataset.reader not in d.readers:
        raise HVLInputError(f"domain '{domain}' has no reader '{dataset.reader}'; it has {sorted(d.readers)}")
    return d.readers[dataset.reader](dataset.path, **dataset.options)


def probe_video(rec: VideoRecord, path: str | Path, backend: str = "auto",
                size: tuple[int, int] | None = None) -> str | None:
    """Why ``rec``'s video is unusable, or None: opens it with the decoder that will read it, decodes
    its last frame (catches truncation) and checks that the record's times fit in it."""
    try:
        v = Video(open_source(path, size=size, backend=backend))
        v.source.get([v.num_frames - 1])
    except HVLInputError as e:
        msg = str(e)
        return msg.split(": ", 1)[-1] if msg.startswith(str(path)) else msg
    last = max([s.end for s in (*rec.phases, *rec.clips)] + ([rec.span[1]] if rec.span else []), default=0.0)
    if last > v.duration + 1.0 / v.fps:
        return (f"segments run to {last:.2f}s but the video lasts {v.duration:.2f}s; "
                "fix the times or the 'duration' field")
    return None


def check_videos(videos: list[Resolved], backend: str = "auto", size: tuple[int, int] | None = None) -> None:
    """Stop at the first unusable video, naming it: data errors are cheaper to find than a model is to load."""
    for rec, path in videos:
        reason = probe_video(rec, path, backend, size)
        if reason:
            raise HVLInputError(f"{path}: {reason}")


def describe_video(path: str | Path, backend: str = "auto", size: tuple[int, int] | None = None) -> dict[str, Any]:
    """What hvl sees in one video: container, codec, displayed size, rotation, constant or variable
    frame rate, duration, and which decoder reads it (and why). Raises :class:`HVLInputError`."""
    path = Path(path)
    if path.is_dir():
        v = Video(open_source(path, size=size))
        h, w = size or tuple(int(x) for x in v.source.get([0]).shape[1:3])
        return {"path": str(path), "container": "folder", "codec": "images", "width": w, "height": h,
                "rotation": 0, "rate": "constant", "fps": round(v.fps, 3), "frames": v.num_frames,
                "duration": round(v.duration, 3), "backend": "frames", "why": "image folder"}
    info = stream_info(path)
    backend_used, why = choose_backend(path, backend, size)
    return {"path": str(path), "container": info.container, "codec": info.codec, "pix_fmt": info.pix_fmt,
            "width": info.width, "height": info.height, "rotation": info.rotation,
            "rate": "constant" if info.constant_rate else "variable", "fps": round(info.fps, 3),
            "frames": len(info), "duration": round(info.duration, 3), "backend": backend_used, "why": why}


def format_probe_table(rows: list[dict[str, Any]], limit: int | None = None) -> str:
    """One line per video (the first ``limit``), then how many videos each decoder reads."""
    head = f"{'video':<36}{'container':<10}{'codec':<8}{'size':>10}{'rot':>5}{'rate':>10}{'fps':>8}{'seconds':>9}  backend"
    lines = [head]
    for r in rows[:limit]:
        if "error" in r:
            lines.append(f"{_tail(r['path']):<36}unreadable: {r['error']}")
            continue
        lines.append(f"{_tail(r['path']):<36}{r['container']:<10}{r['codec']:<8}{str(r['width']) + 'x' + str(r['height']):>10}"
                     f"{r['rotation']:>5}{r['rate']:>10}{r['fps']:>8.2f}{r['duration']:>9.1f}  {r['backend']}"
                     + ("" if r["backend"] == "decord" or r["why"] in ("requested", "image folder")
                        else f" ({r['why']})"))
    if limit is not None and len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.get("backend", "unreadable")] = counts.get(r.get("backend", "unreadable"), 0) + 1
    lines.append(f"{len(rows)} video(s): " + ", ".join(f"{n} read by {b}" for b, n in sorted(counts.items())))
    return "\n".join(lines)


def _tail(path: str, width: int = 35) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1):]


def probe_videos(manifest: Manifest, backend: str = "auto", size: tuple[int, int] | None = None,
                 report: list[dict[str, Any]] | None = None) -> tuple[list[VideoRecord], list[dict[str, str]]]:
    """The usable records, and for the others which video and why not; ``report`` (when given)
    receives :func:`describe_video` of each usable video."""
    good, bad = [], []
    for rec in manifest.videos:
        try:
            path = str(manifest.resolve(rec))
            reason = probe_video(rec, path, backend, size)
            if not reason and report is not None:
                report.append({"video_id": rec.video_id, **describe_video(path, backend, size)})
        except HVLInputError as e:
            path, reason = rec.path, str(e)
        if reason:
            bad.append({"video_id": rec.video_id, "path": path, "reason": reason})
        else:
            good.append(rec)
    return good, bad
