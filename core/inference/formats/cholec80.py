"""A timeline as a Cholec80 phase-annotation file, ``<video folder name>-phase.txt``: header ``Frame<TAB>Phase``,
then one row per frame of the video at its own frame rate (``Timeline.video_fps``, ``Timeline.num_frames``), the
phase named as the prompt file names its class. Surgical teams keep their annotations in this format (Cholec80,
M2CAI16); hvl's Cholec80 reader (``hvl.domains.surgical.cholec80.read_phase_annotation``) reads it back.

Frame ``i`` (shown during ``[i / fps, (i + 1) / fps)``) takes the smoothed class of the last sampled time before
its end: the frame a sampled time ``t`` was scored on (the one presented at ``t``) carries ``t``'s label, so a
reader taking ``label(t)`` from the frames gets the timeline's label at every sampled time.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import HVLInputError
from ...io import atomic_write_bytes
from ..timeline import Timeline

__all__ = ["WRITERS", "frame_labels", "write_cholec80"]

SUFFIX = "-phase.txt"


def frame_labels(timeline: Timeline) -> list[str]:
    """The smoothed label of each of the video's own frames."""
    if not timeline.video_fps or not timeline.num_frames:
        raise HVLInputError(f"{timeline.path}: the timeline does not record the video's own frame rate and frame "
                            "count (fields 'video_fps', 'num_frames') that a Cholec80 file counts frames in; "
                            "predict it again with `hvl predict`")
    ends = (np.arange(timeline.num_frames) + 1) / timeline.video_fps
    k = np.searchsorted(np.asarray(timeline.t, dtype=np.float64), ends, side="left") - 1
    k = np.clip(k, 0, len(timeline.t) - 1)
    return [timeline.classes[timeline.smoothed[i]] for i in k.tolist()]


def write_cholec80(timeline: Timeline, folder: Path) -> Path:
    bad = [c for c in timeline.classes if not c.strip() or any(ch in c for ch in "\t\r\n")]
    if bad:
        raise HVLInputError(f"{timeline.path}: class name(s) {bad} cannot be a Cholec80 'Phase' (a tab, a line break "
                            "or nothing); rename them in the prompt file")
    path = Path(folder) / f"{Path(folder).name}{SUFFIX}"
    text = "Frame\tPhase\n" + "".join(f"{i}\t{name}\n" for i, name in enumerate(frame_labels(timeline)))
    atomic_write_bytes(path, text.encode())
    return path


WRITERS = {"cholec80": write_cholec80}
