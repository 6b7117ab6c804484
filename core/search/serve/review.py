"""Zero-shot predictions written by ``hvl zeroshot --predictions <dir>``, or the timelines ``hvl predict --out
<dir>`` writes (no ground truth), loaded for the review page.

The format is :mod:`hvl.core.data.predictions` (the models zero-shot writes through); a timeline is read as its
predictions without truth, keyed by its folder's name (folder names are unique and plain; video ids need not be). Everything is read and
validated at startup; the videos the review page may play are the ``path`` fields of these files, admitted by
the server's one served folder (:mod:`.files`), looked up by video id."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ...data.predictions import (
    MANIFEST_FILE,
    PREDICTIONS_FORMAT,
    PREDICTIONS_VERSION,
    PredictionEntry,
    PredictionsManifest,
    Smoothing,
    VideoPredictions,
)
from ...errors import HVLInputError, format_validation_error
from ...io import read_json


@dataclass
class ReviewSet:
    root: Path
    manifest: PredictionsManifest
    videos: dict[str, VideoPredictions]

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        return {"classes": m.classes, "level": m.level, "fps": m.fps, "smoothing": m.smoothing.model_dump(),
                "metrics": _dump(m.metrics), "videos": [{"video_id": e.video_id, "n_frames": e.n_frames,
                                                          "metrics": _dump(e.metrics),
                                                          "smoothed_metrics": _dump(e.smoothed_metrics)}
                                                         for e in m.videos]}

    def detail(self, video_id: str) -> dict[str, Any]:
        v = self.videos[video_id]
        return v.model_dump(exclude={"path", "video_id"}) | {"video_id": video_id, "n_frames": len(v.t),
                                                            "metrics": _dump(v.metrics),
                                                            "smoothed_metrics": _dump(v.smoothed_metrics)}


def _dump(m: BaseModel | None) -> dict[str, Any] | None:
    return None if m is None else m.model_dump()


def _read(path: Path, model: type[BaseModel]) -> Any:
    fix = f"re-run `hvl zeroshot ... --predictions {path.parent}`"
    if not path.exists():
        raise HVLInputError(f"{path}: not found; {fix}")
    data = read_json(path, what=f"`hvl zeroshot --predictions` output ({model.__name__})", fix=fix)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise HVLInputError(format_validation_error(e, path)) from None


def load_review(folder: str | Path) -> ReviewSet:
    """``folder``'s ``predictions.json`` (``hvl zeroshot --predictions``), else its ``<video>/timeline.json``
    folders (``hvl predict``)."""
    root = Path(folder).resolve()
    if not (root / MANIFEST_FILE).exists() and root.is_dir() and _timeline_folders(root):
        return _load_timelines(root)
    manifest = _read(root / MANIFEST_FILE, PredictionsManifest)
    if not manifest.is_current():
        raise HVLInputError(f"{root / MANIFEST_FILE}: field 'format'/'version' is {manifest.format!r}/"
                            f"{manifest.version}, expected {PREDICTIONS_FORMAT!r}/{PREDICTIONS_VERSION}; write it with "
                            "`hvl zeroshot --predictions`")
    videos = {}
    for e in manifest.videos:
        file = (root / e.file).resolve()
        if not file.is_relative_to(root):
            raise HVLInputError(f"{root / MANIFEST_FILE}: video '{e.video_id}' field 'file' ({e.file}) is outside "
                                f"{root}; per-video files live under it")
        v = _read(file, VideoPredictions)
        if v.video_id != e.video_id or not Path(v.path).is_file():
            raise HVLInputError(f"{file}: field 'path' ({v.path}) is not a file (or the file is not video "
                                f"'{e.video_id}'); the review page plays the videos zero-shot scored")
        videos[e.video_id] = v
    return ReviewSet(root, manifest, videos)


TIMELINE_FILE, TIMELINE_FORMAT = "timeline.json", "hvl-timeline"  # hvl.core.inference.timeline's (search may not import it)


def _timeline_folders(root: Path) -> list[Path]:
    """The video folders ``hvl predict`` finished under ``root``; a linked folder or file is not followed."""
    return [d for d in sorted(root.iterdir()) if d.is_dir() and not d.is_symlink()
            and (d / TIMELINE_FILE).is_file() and not (d / TIMELINE_FILE).is_symlink()]


def _load_timelines(root: Path) -> ReviewSet:
    videos, entries, first = {}, [], None
    for d in _timeline_folders(root):
        file = d / TIMELINE_FILE
        data = read_json(file, what="an `hvl predict` timeline", fix=f"re-run `hvl predict ... --out {root}`")
        if data.get("format") != TIMELINE_FORMAT:
            raise HVLInputError(f"{file}: field 'format' is {data.get('format')!r}, not {TIMELINE_FORMAT!r}; "
                                f"re-run `hvl predict ... --out {root}`")
        try:
            v = VideoPredictions.model_validate(data | {"video_id": d.name, "truth": None, "metrics": None,
                                                        "smoothed_metrics": None})
        except ValidationError as e:
            raise HVLInputError(format_validation_error(e, file)) from None
        if not Path(v.path).is_file():
            raise HVLInputError(f"{file}: field 'path' ({v.path}) is not a file; the review page plays the videos "
                                "hvl predict read")
        settings = data.get("settings") if isinstance(data.get("settings"), dict) else {}
        if first is None:
            first = (v, settings)
        elif v.classes != first[0].classes or v.fps != first[0].fps:
            raise HVLInputError(f"{file}: its classes or fps differ from those of {root / first[0].video_id}; "
                                "review the timelines of one `hvl predict` run (one --prompts and --fps) at a time")
        videos[d.name] = v
        entries.append(PredictionEntry(video_id=d.name, file=f"{d.name}/{TIMELINE_FILE}", n_frames=len(v.t)))
    v, settings = first
    smoothing = settings.get("smoothing") if isinstance(settings.get("smoothing"), dict) else {}
    manifest = PredictionsManifest(classes=v.classes, level=str(settings.get("level") or "?"), fps=v.fps,
                                   smoothing=Smoothing(method=str(smoothing.get("method", "mode")),
                                                       window=int(smoothing.get("window", 1))),
                                   checkpoint=settings.get("model"), prompt_file=settings.get("prompt_file"),
                                   metrics=None, videos=entries)
    return ReviewSet(root, manifest, videos)
