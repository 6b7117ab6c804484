"""Which frames zero-shot scores (by presentation time, at ``fps``, only where a phase label is known) and the
Dataset that decodes them in DataLoader workers."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ...data.records import Resolved
from ...data.transforms import FrameTransform, Preprocess
from ...data.video import ReaderCache
from ...errors import HVLInputError

__all__ = ["FrameChunks", "FrameSequence", "eval_frame_times", "sample_eval_frames", "sample_sequences"]


class FrameChunks(Dataset):
    """(video, chunk of frame indices) → normalised frames, decoded in DataLoader workers."""

    def __init__(self, videos: list[Resolved], index: list[tuple[int, list[int]]], image_size: int,
                 preprocess: Preprocess | None = None, backend: str = "auto"):
        self.videos, self.index, self.backend = videos, index, backend
        self.pre = preprocess or Preprocess.square(image_size)
        self.transform = FrameTransform(image_size, train=False, preprocess=self.pre)
        self._readers: ReaderCache | None = None

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[int, Tensor]:
        if self._readers is None:
            self._readers = ReaderCache(size=self.pre.decode_size, backend=self.backend)
        vi, idx = self.index[i]
        raw = self._readers(self.videos[vi][1]).source.get(idx)
        return vi, self.transform(raw)


def sample_eval_frames(videos: list[Resolved], names: list[str], fps: float, chunk: int, size: int,
                       backend: str = "auto", labelled: bool = True
                       ) -> tuple[list[tuple[int, list[int]]], list[Tensor], list[float]]:
    """Frame indices to classify and their labels; frames whose time has no known label are left out.
    Time ``t = k / fps`` takes the frame presented at ``t`` (by timestamp: exact for variable frame rates).
    ``labelled=False`` (``hvl predict``): every time is scored, whatever the record's phases say, with label -1."""
    readers = ReaderCache(1, size=(size, size), backend=backend)
    index, labels, durations = [], [], []
    for vi, (rec, path) in enumerate(videos):
        keep, dur = _scored_frames(rec, path, readers(path), names, fps, labelled)
        frames = [f for _, f, _ in keep]
        index += [(vi, frames[i:i + chunk]) for i in range(0, len(frames), chunk)]
        labels.append(torch.tensor([y for _, _, y in keep]))
        durations.append(dur)
    return index, labels, durations


def _sampled_times(rec, v, fps: float) -> tuple[list[float], float]:
    """Every time ``k / fps`` inside the video (labelled or not), and the duration used."""
    dur = min(rec.duration or v.duration, v.duration)
    return [k / fps for k in range(math.ceil(dur * fps - 1e-9))], dur


def _scored_frames(rec, path, v, names: list[str], fps: float,
                   labelled: bool = True) -> tuple[list[tuple[float, int, int]], float]:
    """:func:`_labelled_frames`, or with ``labelled=False`` every sampled time with label -1."""
    if labelled:
        return _labelled_frames(rec, path, v, names, fps)
    times, dur = _sampled_times(rec, v, fps)
    if not times:
        raise HVLInputError(f"{path}: no frame to score at {fps} fps (the video lasts {dur:.3f}s)")
    return [(t, v.index_at(t), -1) for t in times], dur


def _labelled_frames(rec, path, v, names: list[str], fps: float) -> tuple[list[tuple[float, int, int]], float]:
    """(time, decoded frame index, label) of each sampled frame with a known label, and the duration used."""
    lookup = {n: i for i, n in enumerate(names)}
    times, dur = _sampled_times(rec, v, fps)
    unknown = {rec.label_at(t) for t in times} - set(lookup) - {None}
    if unknown:
        raise HVLInputError(f"{path}: phase label(s) {sorted(unknown)} are not classes of the prompt file "
                            f"{names}; add them to the prompt file or fix the annotations")
    keep = [(t, v.index_at(t), lookup[rec.label_at(t)]) for t in times if rec.label_at(t) is not None]
    if not keep:
        raise HVLInputError(f"{path}: no labelled frames at {fps} fps; video '{rec.video_id}' needs phases with labels")
    return keep, dur


def eval_frame_times(videos: list[Resolved], names: list[str], fps: float, size: int,
                     backend: str = "auto", labelled: bool = True) -> list[list[float]]:
    """Per video, the time (s) of each frame :func:`predict` scores, in its order (the same selection)."""
    readers = ReaderCache(1, size=(size, size), backend=backend)
    return [[t for t, _, _ in _scored_frames(rec, path, readers(path), names, fps, labelled)[0]]
            for rec, path in videos]


@dataclass
class FrameSequence:
    """Every frame of one video at ``fps`` (the context a window or a temporal head sees) and which of them are
    scored: ``positions`` index the labelled ones, in the order and with the labels :func:`sample_eval_frames`
    gives."""

    indices: list[int]  # decoded frame index of each time k / fps
    times: list[float]
    positions: Tensor   # [n] long: the scored (labelled) times among ``times``
    labels: Tensor      # [n] long


def sample_sequences(videos: list[Resolved], names: list[str], fps: float, size: int,
                     backend: str = "auto", labelled: bool = True) -> list[FrameSequence]:
    """Per video, every time ``k / fps`` (labelled or not) and the labelled ones :func:`predict` scores
    (``labelled=False``: all of them, label -1)."""
    readers = ReaderCache(1, size=(size, size), backend=backend)
    out = []
    for rec, path in videos:
        v = readers(path)
        keep, _ = _scored_frames(rec, path, v, names, fps, labelled)  # the checks and the scored selection
        times, _ = _sampled_times(rec, v, fps)
        pos = {t: i for i, t in enumerate(times)}
        out.append(FrameSequence(indices=[v.index_at(t) for t in times], times=times,
                                 positions=torch.tensor([pos[t] for t, _, _ in keep], dtype=torch.long),
                                 labels=torch.tensor([y for _, _, y in keep], dtype=torch.long)))
    return out
