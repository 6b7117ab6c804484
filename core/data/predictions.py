"""The files of ``hvl zeroshot --predictions <dir>``: one format, written by the zero-shot command and read by
the review page of ``hvl serve --zeroshot <dir>``.

``<dir>/predictions.json`` (:class:`PredictionsManifest`) holds the classes, the settings, the metrics and one
:class:`PredictionEntry` per video pointing at ``<dir>/videos/<file>.json`` (:class:`VideoPredictions`): per scored
frame its time, true, predicted and smoothed class and the class probabilities. ``format`` / ``version`` name the
format (:data:`PREDICTIONS_FORMAT` / :data:`PREDICTIONS_VERSION`); a reader refuses other values.

The review page also reads the timelines of ``hvl predict`` (``<dir>/<video>/timeline.json``, a superset of
:class:`VideoPredictions` without ground truth): there ``truth`` and the metrics are None.
"""
from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

__all__ = ["MANIFEST_FILE", "PREDICTIONS_FORMAT", "PREDICTIONS_VERSION", "VIDEOS_DIR", "PhaseScores",
           "PredictionEntry", "PredictionsManifest", "Smoothing", "VideoPredictions"]

PREDICTIONS_FORMAT = "hvl-zeroshot-predictions"
PREDICTIONS_VERSION = 1
MANIFEST_FILE = "predictions.json"
VIDEOS_DIR = "videos"  # per-video files, relative to the manifest's folder


class PhaseScores(BaseModel):
    """Accuracy, macro-F1 and Jaccard (``hvl.core.evaluation.metrics.PHASE_METRICS``) of one video or the mean."""

    accuracy: float
    f1_macro: float
    jaccard: float


class Smoothing(BaseModel):
    """How ``smoothed`` was made from ``pred``: a centred filter of ``window`` frames."""

    method: str = "mode"
    window: int = Field(ge=1)


class PredictionEntry(BaseModel):
    """One video in the manifest: where its file is and its scores."""

    video_id: str
    file: str  # relative to the manifest's folder: videos/<name>.json
    n_frames: int
    metrics: PhaseScores | None = None  # None: no ground truth (timelines of `hvl predict`)
    smoothed_metrics: PhaseScores | None = None


class PredictionsManifest(BaseModel):
    """``predictions.json``: the classes (label index order), the settings, the mean metrics, the videos."""

    format: str = PREDICTIONS_FORMAT
    version: int = PREDICTIONS_VERSION
    classes: list[str] = Field(min_length=1)
    level: str
    fps: float
    smoothing: Smoothing
    checkpoint: str | None = None
    prompt_file: str | None = None
    # strict, video-wise (hvl.core.evaluation.metrics) whatever ``protocol`` says; None: no ground truth (`hvl predict`)
    metrics: PhaseScores | None
    # the metric protocol the run reported (`hvl zeroshot --protocol`); files written before it existed were strict
    protocol: str = "strict"
    relaxed_metrics: dict[str, float | None] | None = None  # a relaxed run's numbers (its JSON has them all)
    videos: list[PredictionEntry] = Field(min_length=1)

    def is_current(self) -> bool:
        """Whether ``format`` / ``version`` are the ones this code writes and reads."""
        return self.format == PREDICTIONS_FORMAT and self.version == PREDICTIONS_VERSION


class VideoPredictions(BaseModel):
    """``videos/<file>.json``: one entry per scored frame in each list, class indices into ``classes``."""

    video_id: str
    path: str  # the video file (absolute): the only files the review page plays
    fps: float
    classes: list[str]
    t: list[float]  # seconds
    truth: list[int] | None = None  # None: no ground truth (an `hvl predict` timeline read as predictions)
    pred: list[int]
    smoothed: list[int]
    probs: list[list[float]]
    metrics: PhaseScores | None = None
    smoothed_metrics: PhaseScores | None = None

    @model_validator(mode="after")
    def _aligned(self) -> VideoPredictions:
        n = len(self.t)
        truth = self.truth if self.truth is not None else self.pred
        if not (len(truth) == len(self.pred) == len(self.smoothed) == len(self.probs) == n):
            raise ValueError(f"t, truth, pred, smoothed and probs must have one entry per frame ({n})")
        c = len(self.classes)
        if any(not 0 <= y < c for y in truth + self.pred + self.smoothed):
            raise ValueError(f"class indices must be in [0, {c})")
        return self
