"""Segments in seconds ↔ the frame ranges tools that count frames use (Label Studio's ``timelinelabels``,
FiftyOne's ``TemporalDetection.support``): frames counted from 1, a range holding both its ends.

A segment ``[start, end)`` becomes the frames shown at its times: from frame ``floor(start * rate) + 1`` (the
frame on screen at ``start``) to the frame before the next segment's first, the last segment through the video's
last frame. Back, a range ``[first, last]`` is ``[(first - 1) / rate, last / rate)`` (the video's duration for a
range through its last frame). A sampled time keeps its label both ways whenever the sampling rate is at most the
video's frame rate, even where a boundary falls between two frames (29.97 fps).
"""
from __future__ import annotations

import math

from ..timeline import Segment, Timeline

__all__ = ["frame_count", "frame_ranges", "frame_rate", "range_seconds"]

_EPS = 1e-6  # times computed as k / fps land a hair below a frame boundary


def frame_rate(timeline: Timeline) -> float:
    """The video's own frame rate; without it the sampling rate (every boundary is a sampled time, so still a
    whole frame)."""
    return timeline.video_fps or timeline.fps


def frame_count(timeline: Timeline, rate: float) -> int:
    return timeline.num_frames or max(1, math.ceil(timeline.duration * rate - _EPS))


def frame_ranges(timeline: Timeline) -> list[tuple[Segment, int, int]]:
    """Each segment with its first and last frame; a segment shorter than a frame (no frame shows it) is left out."""
    rate = frame_rate(timeline)
    frames = frame_count(timeline, rate)
    firsts = [min(math.floor(s.start * rate + _EPS) + 1, frames) for s in timeline.segments]
    lasts = [nxt - 1 for nxt in firsts[1:]] + [frames]
    return [(s, a, b) for s, a, b in zip(timeline.segments, firsts, lasts) if a <= b]


def range_seconds(first: int, last: int, rate: float, frames: int | None = None,
                  duration: float | None = None) -> tuple[float, float]:
    """``[start, end)`` seconds of frames ``first..last``; through the video's last frame (``frames``), the end is
    its ``duration``."""
    end = duration if frames is not None and duration is not None and last >= frames else last / rate
    return (first - 1) / rate, end
