"""Per-frame keypoints beside a video (a signer's skeleton): what the dataset and the evaluations hand a pose-aware
model, whatever format a corpus ships them in.

A domain that reads keypoints registers a :class:`KeypointReader` (``Domain.keypoints``): how many points per
frame and channels per point its tracks have, and how to load the already normalised :class:`KeypointTrack` a
manifest row names (the sign domain: its ``pose`` field). Core only matches a track's frames to the video frames
a sample reads, by time at the track's own fps (:meth:`KeypointTrack.at_times`), and never learns the format.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import HVLInputError
from ..registry import get_domain
from .schema import VideoRecord

__all__ = ["KeypointReader", "KeypointTrack", "TrackCache", "keypoint_reader"]


@dataclass(frozen=True, eq=False)
class KeypointTrack:
    """``values`` float32 ``[N, P, C]`` (normalised; 0 where masked), ``mask`` bool ``[N, P]`` (True = a confident
    point), frame ``i`` shown during ``[start + i/fps, start + (i+1)/fps)`` of the video."""

    values: np.ndarray
    mask: np.ndarray
    fps: float
    start: float = 0.0

    def at_times(self, times: list[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``([T, P, C], [T, P])``: the frame shown at each video time; all masked where the track has none."""
        idx = np.floor((np.asarray(times, np.float64) - self.start) * self.fps + 1e-6).astype(np.int64)
        has = (idx >= 0) & (idx < len(self.values))
        safe = np.where(has, idx, 0)
        values = np.where(has[:, None, None], self.values[safe] if len(self.values) else 0.0, 0.0)
        mask = has[:, None] & (self.mask[safe] if len(self.mask) else False)
        return values.astype(np.float32), mask


@dataclass(frozen=True)
class KeypointReader:
    """``load(record, root, video_fps)``: the record's normalised track, or None when it names none (its frames
    then read as fully masked). ``root``: the folder a relative path in the record is relative to (and confined
    to); ``video_fps``: the rate of a source that records none. ``beside(video, video_fps)``: the track found
    beside a video file that no manifest row describes (``hvl index`` of a folder), or None."""

    points: int
    channels: int
    load: Callable[[VideoRecord, Path | None, float], KeypointTrack | None]
    beside: Callable[[Path, float], KeypointTrack | None] | None = None

    def empty(self, frames: int) -> tuple[np.ndarray, np.ndarray]:
        """``([T, P*C], [T, P])`` of frames with no keypoint seen."""
        return np.zeros((frames, self.points * self.channels), np.float32), np.zeros((frames, self.points), bool)


def keypoint_reader(domain: str) -> KeypointReader:
    """The keypoint reader of an installed domain (a pose-aware model's ``pose.reader``)."""
    reader = getattr(get_domain(domain), "keypoints", None)
    if reader is None:
        raise HVLInputError(f"model.pose.reader: domain '{domain}' reads no keypoints; name a domain that does "
                            "(e.g. sign)")
    return reader


class TrackCache:
    """Per-process LRU of loaded tracks by video id (a sample reads a few frames of a track that is read whole).

    Sized for a whole training set: a sentence clip's track is ~100 KB (250 frames × 50 points), and a shuffled
    schedule revisits every video each epoch, so a small cache would re-read and re-normalise one per sample."""

    def __init__(self, reader: KeypointReader, root: Path | None, capacity: int = 4096):
        self.reader, self.root, self.capacity = reader, root, capacity
        self._tracks: OrderedDict[str, KeypointTrack | None] = OrderedDict()

    def frames(self, rec: VideoRecord, times: list[float], video_fps: float) -> tuple[np.ndarray, np.ndarray]:
        """``([T, P*C], [T, P])`` at ``times``: what a sample carries as ``keypoints`` / ``keypoint_mask``."""
        if rec.video_id in self._tracks:
            self._tracks.move_to_end(rec.video_id)
            track = self._tracks[rec.video_id]
        else:
            track = self.reader.load(rec, self.root, video_fps)
            if track is not None and track.values.shape[1:] != (self.reader.points, self.reader.channels):
                raise HVLInputError(f"video '{rec.video_id}': its keypoints have {track.values.shape[1:]} points × "
                                    f"channels, the reader declares ({self.reader.points}, {self.reader.channels})")
            self._tracks[rec.video_id] = track
            if len(self._tracks) > self.capacity:
                self._tracks.popitem(last=False)
        if track is None:
            return self.reader.empty(len(times))
        values, mask = track.at_times(times)
        return values.reshape(len(times), -1), mask
