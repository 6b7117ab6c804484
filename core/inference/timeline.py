"""A video's predicted timeline: per sampled frame the class probabilities, and the smoothed labels merged into
segments. The one type every writer (Cholec80 phase files, Label Studio, FiftyOne, CSV / JSON) reads, and every
reader back returns, so that a round trip is an equality of :class:`Timeline` segments.

Times are seconds of the video's presentation time. A segment covers ``[start, end)``: it ends where the next one
starts, and the last one at the video's duration, so the segments of a timeline tile the whole video.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field, model_validator

__all__ = ["TIMELINE_FORMAT", "TIMELINE_VERSION", "Segment", "Timeline", "label_at", "merge_runs"]

TIMELINE_FORMAT = "hvl-timeline"
TIMELINE_VERSION = 1


class Segment(BaseModel):
    """``[start, end)`` seconds labelled ``label``; ``confidence`` is the mean probability of that label over the
    segment's sampled frames (None where a reader's format does not carry it)."""

    start: float = Field(ge=0)
    end: float
    label: str
    confidence: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Segment:
        if not self.end > self.start:
            raise ValueError(f"segment end {self.end} must be after its start {self.start}")
        return self


class Timeline(BaseModel):
    """One video: the sampled times, per time the class probabilities, the raw and the smoothed class, and the
    smoothed classes as segments. ``settings`` holds what produced it (model, prompt file, level, window, fps)."""

    format: str = TIMELINE_FORMAT
    version: int = TIMELINE_VERSION
    video_id: str
    path: str
    duration: float = Field(gt=0)
    fps: float = Field(gt=0)  # the rate of ``t``, not the video's own frame rate
    video_fps: float | None = Field(None, gt=0)  # the video's own frame rate (formats counting frames need it)
    num_frames: int | None = Field(None, ge=1)  # the video's own frames within ``duration``
    classes: list[str] = Field(min_length=1)
    t: list[float]
    probs: list[list[float]]
    pred: list[int]
    smoothed: list[int]
    segments: list[Segment]
    settings: dict = Field(default_factory=dict)

    @model_validator(mode="after")
    def _aligned(self) -> Timeline:
        n = len(self.t)
        if not (len(self.probs) == len(self.pred) == len(self.smoothed) == n):
            raise ValueError(f"t, probs, pred and smoothed must have one entry per sampled frame ({n})")
        c = len(self.classes)
        if any(not 0 <= y < c for y in self.pred + self.smoothed):
            raise ValueError(f"class indices must be in [0, {c})")
        if any(len(p) != c for p in self.probs):
            raise ValueError(f"each probs row must have one value per class ({c})")
        unknown = {s.label for s in self.segments} - set(self.classes)
        if unknown:
            raise ValueError(f"segment labels {sorted(unknown)} are not among the classes {self.classes}")
        return self

    def is_current(self) -> bool:
        return self.format == TIMELINE_FORMAT and self.version == TIMELINE_VERSION


def merge_runs(t: Sequence[float], labels: Sequence[int], classes: Sequence[str], duration: float,
               probs: np.ndarray | None = None) -> list[Segment]:
    """Segments from per-time class indices.

    1. Consecutive times with the same class form one run.
    2. A run starts at its first time (the first run at 0) and ends where the next run starts; the last ends at
       ``duration``.
    3. Its confidence is the mean of ``probs[i, label]`` over the run's times, when ``probs`` is given.
    """
    if len(t) != len(labels):
        raise ValueError(f"{len(t)} times but {len(labels)} labels")
    if not len(t):
        return []
    starts = [0] + [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]
    bounds = starts + [len(labels)]
    out = []
    for a, b in itertools.pairwise(bounds):
        start = 0.0 if a == 0 else float(t[a])
        end = float(t[b]) if b < len(t) else float(duration)
        conf = None if probs is None else float(np.mean(np.asarray(probs)[a:b, labels[a]]))
        out.append(Segment(start=start, end=end, label=classes[labels[a]], confidence=conf))
    return out


def label_at(segments: Sequence[Segment], time: float) -> str | None:
    """The label of the segment covering ``time`` (None outside every segment)."""
    for s in segments:
        if s.start <= time < s.end:
            return s.label
    return None
