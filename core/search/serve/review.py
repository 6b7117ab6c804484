"""Zero-shot predictions written by ``hvl zeroshot --predictions <dir>``, loaded for the review page.

The format is :mod:`hvl.core.data.predictions` (the models zero-shot writes through). Everything is read and
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
    PredictionsManifest,
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
                "metrics": m.metrics.model_dump(), "videos": [{"video_id": e.video_id, "n_frames": e.n_frames,
                                                                "metrics": e.metrics.model_dump(),
                                                                "smoothed_metrics": e.smoothed_metrics.model_dump()}
                                                               for e in m.videos]}

    def detail(self, video_id: str) -> dict[str, Any]:
        v = self.videos[video_id]
        return v.model_dump(exclude={"path", "video_id"}) | {"video_id": video_id, "n_frames": len(v.t),
                                                            "metrics": v.metrics.model_dump(),
                                                            "smoothed_metrics": v.smoothed_metrics.model_dump()}


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
    root = Path(folder).resolve()
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
