"""The failure gallery's frames: the most confidently wrong predictions, found again in their video files."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from hvl.core.data.records import Resolved
from hvl.core.evaluation.zeroshot import sample_eval_frames
from torch import Tensor

__all__ = ["confident_errors", "decode_frames", "eval_frame_indices"]


def eval_frame_indices(videos: Sequence[Resolved], names: Sequence[str], fps: float, size: int = 64) -> list[list[int]]:
    """Per video, the decoded frame index of each frame :func:`~hvl.core.evaluation.zeroshot.predict` scored, in order.

    Recomputed with the same :func:`~hvl.core.evaluation.zeroshot.sample_eval_frames`, so position k of a
    video's predictions is frame ``indices[v][k]`` of its file.
    """
    index, _, _ = sample_eval_frames(list(videos), list(names), fps, 1 << 30, size)
    out: list[list[int]] = [[] for _ in videos]
    for vi, frames in index:
        out[vi] += frames
    return out


def confident_errors(preds: Sequence[Tensor], labels: Sequence[Tensor], probs: Sequence[Tensor],
                     k: int = 8) -> list[dict[str, Any]]:
    """The ``k`` wrong frames with the highest predicted probability: errors the model is sure of are the dangerous ones."""
    found = []
    for v, (p, y, pr) in enumerate(zip(preds, labels, probs)):
        wrong = (p != y).nonzero().flatten()
        conf = pr[wrong, p[wrong]]
        found += [(float(c), v, int(i)) for c, i in zip(conf, wrong)]
    found.sort(key=lambda t: (-t[0], t[1], t[2]))
    return [{"video": v, "position": i, "true": int(labels[v][i]), "pred": int(preds[v][i]), "prob": c}
            for c, v, i in found[:k]]


def decode_frames(videos: Sequence[Resolved], refs: Sequence[tuple[int, int]],
                  size: tuple[int, int] | None = None) -> list[tuple[np.ndarray, float]]:
    """``(video, frame index)`` → (RGB ``uint8`` image, time in seconds), via :mod:`hvl.core.data.video`."""
    from hvl.core.data.video import ReaderCache

    readers = ReaderCache(1, size=size)
    out = []
    for v, f in refs:
        src = readers(videos[v][1]).source
        out.append((src.get([f])[0].numpy(), f / src.fps))
    return out
