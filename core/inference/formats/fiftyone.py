"""FiftyOne: a video's timeline as temporal detections in FiftyOne's own import format,
``fo.types.FiftyOneTemporalDetectionDataset``, so a user imports hvl's predictions with FiftyOne alone.

- :func:`labels` / ``WRITERS["fiftyone"]``: ``fiftyone.json``, that format's labels file for one video: ``classes``,
  and under ``labels`` the video's segments as ``{"label", "support": [first, last], "confidence"}`` (frames
  counted from 1, both ends held, as :mod:`.frames` converts them). Beside them, keys FiftyOne's importer does not
  read: ``data`` (the video's path under the same key, what the importer's ``data_path`` takes) and ``hvl`` (what
  :func:`read` needs to give the timeline back in seconds).
- :func:`read`: such a file back into timelines.

Needs no extra: hvl writes and reads the JSON itself; FiftyOne is needed only to import it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ...errors import HVLInputError
from ...io import read_json, write_json
from ..timeline import Segment, Timeline
from .frames import frame_count, frame_ranges, frame_rate, range_seconds

__all__ = ["FILE_NAME", "WRITERS", "labels", "read", "write"]

FILE_NAME = "fiftyone.json"


def labels(timeline: Timeline) -> dict[str, Any]:
    """The labels file of FiftyOne's temporal detection format for this one video (keyed by its id)."""
    rate = frame_rate(timeline)
    detections = []
    for seg, first, last in frame_ranges(timeline):
        det: dict[str, Any] = {"label": seg.label, "support": [first, last]}
        if seg.confidence is not None:
            det["confidence"] = seg.confidence
        detections.append(det)
    return {"classes": timeline.classes, "labels": {timeline.video_id: detections},
            "data": {timeline.video_id: timeline.path},
            "hvl": {"duration": timeline.duration, "fps": rate, "frames": frame_count(timeline, rate),
                    "sample_fps": timeline.fps}}


def write(timeline: Timeline, folder: Path) -> Path:
    """``folder/fiftyone.json``: :func:`labels`."""
    return write_json(Path(folder) / FILE_NAME, labels(timeline))


WRITERS = {"fiftyone": write}


def read(path: str | Path) -> list[Timeline]:
    """The timelines of a ``fiftyone.json`` hvl wrote (one per key of its ``labels``); anything else in it is one
    error naming the file and the field."""
    path = Path(path)
    fix = "write it again with `hvl predict --format fiftyone`"
    doc = read_json(path, "FiftyOne temporal detection labels written by hvl", fix)
    ours, found = doc.get("hvl"), doc.get("labels")
    if not isinstance(ours, dict) or not isinstance(found, dict):
        raise HVLInputError(f"{path}: fields 'hvl' and 'labels' must be objects; {fix}")
    paths = doc.get("data") if isinstance(doc.get("data"), dict) else {}
    out = []
    try:
        rate, frames = float(ours["fps"]), int(ours["frames"])
        for video_id, detections in found.items():
            segments = []
            for det in detections:
                first, last = det["support"]
                start, end = range_seconds(int(first), int(last), rate, frames, float(ours["duration"]))
                segments.append(Segment(start=start, end=end, label=det["label"], confidence=det.get("confidence")))
            out.append(Timeline(video_id=video_id, path=str(paths.get(video_id, video_id)),
                                duration=ours["duration"], fps=ours.get("sample_fps", rate), video_fps=rate,
                                num_frames=frames, classes=doc["classes"], t=[], probs=[], pred=[], smoothed=[],
                                segments=segments, settings={"source": "fiftyone"}))
    except (KeyError, TypeError, ValueError) as e:
        detail = e.errors()[0]["msg"] if isinstance(e, ValidationError) else f"{type(e).__name__}: {e}"
        raise HVLInputError(f"{path}: not the temporal detections hvl writes ({detail}); {fix}") from None
    return out
