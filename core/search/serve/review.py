"""Zero-shot predictions written by ``hvl zeroshot --predictions <dir>``, loaded for the review page.

Everything is read and validated at startup; the videos the review page may play are exactly the
``path`` fields of these files (checked to exist), looked up by video id."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ...errors import HVLInputError, format_validation_error

PREDICTIONS_FORMAT = "hvl-zeroshot-predictions"  # as hvl.core.evaluation.zeroshot writes (search never imports it)


class _Metrics(BaseModel):
    accuracy: float
    f1_macro: float
    jaccard: float


class _Entry(BaseModel):
    video_id: str
    file: str
    n_frames: int
    metrics: _Metrics
    smoothed_metrics: _Metrics


class _Manifest(BaseModel):
    format: str
    version: int
    classes: list[str] = Field(min_length=1)
    level: str
    fps: float
    smoothing: dict[str, Any]
    metrics: _Metrics
    videos: list[_Entry] = Field(min_length=1)


class _Video(BaseModel):
    model_config = ConfigDict(extra="ignore")
    video_id: str
    path: str
    fps: float
    classes: list[str]
    t: list[float]
    truth: list[int]
    pred: list[int]
    smoothed: list[int]
    probs: list[list[float]]
    metrics: _Metrics
    smoothed_metrics: _Metrics

    @model_validator(mode="after")
    def _aligned(self) -> _Video:
        n = len(self.t)
        if not (len(self.truth) == len(self.pred) == len(self.smoothed) == len(self.probs) == n):
            raise ValueError(f"t, truth, pred, smoothed and probs must have one entry per frame ({n})")
        c = len(self.classes)
        if any(not 0 <= y < c for y in self.truth + self.pred + self.smoothed):
            raise ValueError(f"class indices must be in [0, {c})")
        return self


@dataclass
class ReviewSet:
    root: Path
    manifest: _Manifest
    videos: dict[str, _Video]

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        return {"classes": m.classes, "level": m.level, "fps": m.fps, "smoothing": m.smoothing,
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
    try:
        return model.model_validate(json.loads(path.read_text()))
    except FileNotFoundError:
        raise HVLInputError(f"{path}: not found; re-run `hvl zeroshot ... --predictions {path.parent}`") from None
    except json.JSONDecodeError as e:
        raise HVLInputError(f"{path}: not valid JSON ({e.msg}, line {e.lineno}); re-run `hvl zeroshot --predictions`") from None
    except ValidationError as e:
        raise HVLInputError(format_validation_error(e, path)) from None


def load_review(folder: str | Path) -> ReviewSet:
    root = Path(folder).resolve()
    manifest = _read(root / "predictions.json", _Manifest)
    if manifest.format != PREDICTIONS_FORMAT or manifest.version != 1:
        raise HVLInputError(f"{root / 'predictions.json'}: field 'format'/'version' is {manifest.format!r}/"
                            f"{manifest.version}, expected {PREDICTIONS_FORMAT!r}/1; write it with `hvl zeroshot --predictions`")
    videos = {}
    for e in manifest.videos:
        file = (root / e.file).resolve()
        if not file.is_relative_to(root):
            raise HVLInputError(f"{root / 'predictions.json'}: video '{e.video_id}' field 'file' ({e.file}) is outside "
                                f"{root}; per-video files live under it")
        v = _read(file, _Video)
        if v.video_id != e.video_id or not Path(v.path).is_file():
            raise HVLInputError(f"{file}: field 'path' ({v.path}) is not a file (or the file is not video "
                                f"'{e.video_id}'); the review page plays the videos zero-shot scored")
        videos[e.video_id] = v
    return ReviewSet(root, manifest, videos)
