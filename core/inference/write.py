"""A video's outputs in its folder: each asked format, then ``timeline.json`` last, every file atomically.

``timeline.json`` is the commit mark of a video: it is written after its formats, and it records the key of what
produced it (``settings["key"]``), so a run that was killed before it is rewritten and a finished one is skipped
(:func:`finished_timeline`).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from ..errors import HVLInputError, format_validation_error
from ..io import read_json, write_json
from .formats import writer
from .timeline import Timeline

__all__ = ["TIMELINE_FILE", "finished_timeline", "read_timeline", "write_formats", "write_timeline"]

TIMELINE_FILE = "timeline.json"


def write_formats(timeline: Timeline, folder: str | Path, formats: Sequence[str] = ()) -> list[Path]:
    """Each of ``formats`` (names of :data:`hvl.core.inference.formats.FORMATS`) written into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [writer(name)(timeline, folder) for name in dict.fromkeys(formats)]


def write_timeline(timeline: Timeline, folder: str | Path, formats: Sequence[str] = ()) -> list[Path]:
    """``formats`` into ``folder``, then ``folder/timeline.json``: the files written, ``timeline.json`` last."""
    files = write_formats(timeline, folder, formats)
    return files + [write_json(Path(folder) / TIMELINE_FILE, timeline.model_dump(mode="json"))]


def read_timeline(path: str | Path) -> Timeline:
    """A ``timeline.json``; errors name the file, the field and the fix."""
    path = Path(path)
    fix = "delete it and re-run `hvl predict` (the video is predicted again)"
    data = read_json(path, what="an `hvl predict` timeline", fix=fix)
    try:
        t = Timeline.model_validate(data)
    except ValidationError as e:
        raise HVLInputError(format_validation_error(e, path)) from None
    if not t.is_current():
        raise HVLInputError(f"{path}: field 'format'/'version' is {t.format!r}/{t.version}, not one this hvl reads; "
                            f"{fix}")
    return t


def finished_timeline(folder: str | Path, key: str) -> Timeline | None:
    """The timeline in ``folder`` when it was made with ``key`` (the video's content and the run's settings), else
    None: nothing there yet, an unreadable file, or another video or setting."""
    path = Path(folder) / TIMELINE_FILE
    if not path.is_file() or path.is_symlink():
        return None
    try:
        t = read_timeline(path)
    except HVLInputError:
        return None
    return t if t.settings.get("key") == key else None
