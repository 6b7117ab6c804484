"""Label Studio: a video task whose ``timelinelabels`` predictions are hvl's timeline, so annotators correct it, and
the way back: a Label Studio JSON export read into timelines and into a manifest `hvl zeroshot` / `hvl adapt` read.

- :func:`labeling_config`: the project's labelling config (a ``<Video>`` and a ``<TimelineLabels>`` with the classes);
- :func:`task` / ``WRITERS["label-studio"]``: one task per video (``label-studio.json``, a list of one task, the
  shape Label Studio's import takes);
- :func:`read_export`: an export (``JSON``) back into :class:`~hvl.core.inference.timeline.Timeline` s, per task
  the latest submitted annotation, else the latest prediction;
- :func:`export_to_manifest`: those timelines as a manifest whose phases carry the labels.

Label Studio counts video frames from 1, and a region's range ``{start, end}`` holds both ends: seconds ↔ frames
as :mod:`.frames` converts them. Needs no extra: the files are plain JSON, read and written with the standard
library.
"""
from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ...errors import HVLInputError
from ...io import read_json, write_json
from ..timeline import Segment, Timeline
from .frames import frame_count, frame_ranges, frame_rate, range_seconds

__all__ = ["FILE_NAME", "FROM_NAME", "TO_NAME", "WRITERS", "export_to_manifest", "labeling_config", "read_export",
           "task", "write"]

FILE_NAME = "label-studio.json"
FROM_NAME = "phase"  # the <TimelineLabels> control
TO_NAME = "video"    # the <Video> object; its task field is "video" too
REGION_TYPE = "timelinelabels"
_EPS = 1e-6          # seconds: touching regions computed from frames may differ by rounding


def labeling_config(classes: Sequence[str]) -> str:
    """The labelling config of a project for these classes: the video at its own frame rate (the task's ``fps``)
    and one timeline row per class."""
    view = ET.Element("View")
    ET.SubElement(view, "Video", name=TO_NAME, value=f"${TO_NAME}", frameRate="$fps")
    labels = ET.SubElement(view, "TimelineLabels", name=FROM_NAME, toName=TO_NAME)
    for name in classes:
        ET.SubElement(labels, "Label", value=name)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode")


def task(timeline: Timeline, video_url: str | None = None) -> dict[str, Any]:
    """One Label Studio task: ``data`` (the video's URL, default its path; its frame rate; what hvl needs to read
    the export back) and one prediction whose regions are the timeline's segments, each with its confidence as
    the region's score."""
    rate = frame_rate(timeline)
    regions = []
    for i, (seg, first, last) in enumerate(frame_ranges(timeline)):
        region = {"id": f"hvl{i}", "from_name": FROM_NAME, "to_name": TO_NAME, "type": REGION_TYPE,
                  "origin": "prediction", "value": {"ranges": [{"start": first, "end": last}],
                                                    "timelinelabels": [seg.label]}}
        if seg.confidence is not None:
            region["score"] = seg.confidence
        regions.append(region)
    scores = [s.confidence for s in timeline.segments if s.confidence is not None]
    prediction = {"model_version": str(timeline.settings.get("model") or "hvl"), "result": regions}
    if scores:
        prediction["score"] = sum(scores) / len(scores)
    return {"data": {TO_NAME: video_url or timeline.path, "fps": rate,
                     "hvl": {"video_id": timeline.video_id, "path": timeline.path, "duration": timeline.duration,
                             "frames": frame_count(timeline, rate), "classes": timeline.classes, "sample_fps": timeline.fps}},
            "predictions": [prediction]}


def write(timeline: Timeline, folder: Path) -> Path:
    """``folder/label-studio.json``: the video's task, as a list of one (what Label Studio imports)."""
    return write_json(Path(folder) / FILE_NAME, [task(timeline)])


WRITERS = {"label-studio": write}


# ---- the way back ------------------------------------------------------------------------------------------------

class _BadTask(Exception):
    """One task of an export that cannot be read: reported for itself, the other tasks are still read."""


def _latest(items: list[Any]) -> dict | None:
    """The most recently updated entry (ISO timestamps sort as text; the larger id breaks a tie)."""
    dicts = [x for x in items if isinstance(x, dict)]
    if not dicts:
        return None
    return max(dicts, key=lambda x: (str(x.get("updated_at") or x.get("created_at") or ""), _as_int(x.get("id"))))


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _chosen_result(entry: dict) -> tuple[str, list]:
    """Which labels a task holds: its latest annotation that was not skipped, else its latest prediction."""
    submitted = [a for a in entry.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    chosen = _latest(submitted)
    source = "annotation"
    if chosen is None:
        chosen, source = _latest(entry.get("predictions") or []), "prediction"
    if chosen is None and entry.get("predictions"):
        raise _BadTask("no submitted annotation, and its predictions are exported as ids only: submit it in Label "
                       "Studio, or export a snapshot with the predictions in full")
    if chosen is None:
        raise _BadTask("no annotation and no prediction: label it in Label Studio or leave it out of the export")
    result = chosen.get("result")
    if not isinstance(result, list):
        raise _BadTask(f"its {source}'s 'result' is not a list")
    return source, result


def _number(data: dict, key: str, where: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise _BadTask(f"'{where}' must be a positive number (got {value!r:.40})")
    return float(value)


def _segments(result: list, rate: float, frames: int | None, duration: float | None) -> list[Segment]:
    """The task's timeline regions as segments in seconds, ordered; overlapping regions are an error (which label
    would the shared frames have?)."""
    segs = []
    for n, region in enumerate(result):
        value = region.get("value") if isinstance(region, dict) else None
        if not isinstance(value, dict) or "timelinelabels" not in value:
            continue  # another control's region (a comment, a choice): not part of the timeline
        labels, ranges = value.get("timelinelabels"), value.get("ranges")
        if not (isinstance(labels, list) and len(labels) == 1 and isinstance(labels[0], str)):
            raise _BadTask(f"result[{n}].value.timelinelabels must hold exactly one label (got {labels!r:.80})")
        if not isinstance(ranges, list) or not ranges:
            raise _BadTask(f"result[{n}].value.ranges must be a non-empty list of {{start, end}} frames")
        score = region.get("score")
        for k, r in enumerate(ranges):
            first, last = (r.get("start"), r.get("end")) if isinstance(r, dict) else (None, None)
            if not all(isinstance(f, int) and not isinstance(f, bool) for f in (first, last)) or not 1 <= first <= last:
                raise _BadTask(f"result[{n}].value.ranges[{k}] must be whole frames 1 <= start <= end "
                                 f"(got {r!r:.80})")
            start, end = range_seconds(first, last, rate, frames, duration)
            if end <= start:
                raise _BadTask(f"result[{n}].value.ranges[{k}] starts at frame {first}, after the video's end")
            segs.append(Segment(start=start, end=end, label=labels[0],
                                confidence=float(score) if isinstance(score, (int, float)) else None))
    segs.sort(key=lambda s: s.start)
    for a, b in itertools.pairwise(segs):
        if b.start < a.end - _EPS:
            raise _BadTask(f"regions '{a.label}' (frames {round(a.start * rate) + 1}-{round(a.end * rate)}) and "
                             f"'{b.label}' (from frame {round(b.start * rate) + 1}) overlap; give each frame one "
                             "label in Label Studio")
    return segs


def _timeline(entry: dict, frame_rate: float | None) -> Timeline:
    data = entry.get("data")
    if not isinstance(data, dict):
        raise _BadTask("it has no 'data' object")
    ours = data.get("hvl") if isinstance(data.get("hvl"), dict) else {}
    rate = float(frame_rate) if frame_rate else _number(data, "fps", "data.fps")
    frames = ours.get("frames") if isinstance(ours.get("frames"), int) and ours.get("frames") > 0 else None
    source, result = _chosen_result(entry)
    duration = _number(ours, "duration", "data.hvl.duration") if "duration" in ours else None
    segs = _segments(result, rate, frames, duration)
    if duration is None:  # a task hvl did not write: the video lasts at least to its last labelled frame
        duration = max([s.end for s in segs], default=1 / rate)
    classes = ours.get("classes") if isinstance(ours.get("classes"), list) else []
    classes = list(dict.fromkeys([c for c in classes if isinstance(c, str)] + [s.label for s in segs]))
    video = data.get(TO_NAME)
    path = ours.get("path") if isinstance(ours.get("path"), str) else video
    video_id = ours.get("video_id") if isinstance(ours.get("video_id"), str) else None
    if not isinstance(path, str) or not path:
        raise _BadTask(f"it names no video (data.{TO_NAME})")
    return Timeline(video_id=video_id or Path(path).stem or str(entry.get("id")), path=path, duration=duration,
                    fps=ours.get("sample_fps") if isinstance(ours.get("sample_fps"), (int, float)) else rate,
                    video_fps=rate, num_frames=frames, classes=classes or ["?"], t=[], probs=[], pred=[],
                    smoothed=[], segments=segs, settings={"source": f"label-studio {source}"})


def read_export(path: str | Path, frame_rate: float | None = None) -> tuple[list[Timeline], list[str]]:
    """The timelines of a Label Studio JSON export (Export → JSON), one per task, and one problem line per task
    that could not be read (it names the task, the field and the fix; the other tasks are still read).

    Per task: its latest submitted (not skipped) annotation, else its latest prediction. Times come from the
    task's ``fps`` (hvl writes it; ``frame_rate`` overrides it, for tasks written by other tools)."""
    path = Path(path)
    entries = read_json(path, "a Label Studio JSON export (a list of tasks)",
                        "export the project again with Export → JSON", top=list)
    timelines, problems = [], []
    for i, entry in enumerate(entries):
        where = f"{path}: task {entry.get('id', i) if isinstance(entry, dict) else i}"
        try:
            if not isinstance(entry, dict):
                raise _BadTask("not a JSON object")
            timelines.append(_timeline(entry, frame_rate))
        except ValidationError as e:
            problems.append(f"{where}: {e.errors()[0]['msg']}")
        except _BadTask as e:
            problems.append(f"{where}: {e}")
    return timelines, problems


def export_to_manifest(export: str | Path, out: str | Path, frame_rate: float | None = None,
                       ) -> tuple[Path, list[str]]:
    """A manifest (JSON Lines) with one video per task of ``export``, its regions as labelled phases: what
    ``hvl zeroshot`` (the config's dataset) and ``hvl adapt --train`` read. Returns the manifest and the problems
    of the tasks left out; no readable task at all is one error."""
    from ...data.schema import PhaseSegment, VideoRecord, write_manifest

    timelines, problems = read_export(export, frame_rate)
    records, seen = [], set()
    for tl in timelines:
        if tl.video_id in seen:
            problems.append(f"{export}: video '{tl.video_id}' is in more than one task; the first one is kept")
            continue
        seen.add(tl.video_id)
        phases = [PhaseSegment(start=s.start, end=min(s.end, tl.duration), label=s.label)
                  for s in tl.segments if s.start < tl.duration]
        records.append(VideoRecord(video_id=tl.video_id, path=tl.path, duration=tl.duration, phases=phases))
    if not records:
        raise HVLInputError(f"{export}: no task could be read, so no manifest was written:\n" + "\n".join(problems))
    return write_manifest(out, records), problems
