"""Temporal smoothing of frame-wise class predictions, and the check of its window.

Phases last minutes while a frame-wise classifier flickers: a filter over a centred window of frames removes
isolated errors without moving phase boundaries by more than half a window. `hvl zeroshot --predictions` writes
the mode-filtered sequence beside the raw one (the review page shows both), the clinical review offers mode or
median, and ``benchmarks/hierarchy.py`` scores the smoothed predictions as a fourth row. Windows are truncated at
the ends of a video: no frames are invented at the edges.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import Tensor

from ..errors import HVLInputError

__all__ = ["SMOOTHING_METHODS", "check_method", "check_window", "smooth", "smooth_median", "smooth_mode"]

SMOOTHING_METHODS = ("mode", "median")


def check_window(window: int, what: str = "smoothing window") -> int:
    """Half the window: ``window`` must be an odd whole number of frames >= 1 (``what`` names it in the error)."""
    if isinstance(window, bool) or not isinstance(window, numbers.Integral) or window < 1 or window % 2 == 0:
        raise HVLInputError(f"{what} must be an odd number of frames >= 1, centred on each frame (got {window!r})")
    return int(window) // 2


def check_method(method: str) -> str:
    if method not in SMOOTHING_METHODS:
        raise HVLInputError(f"smoothing method must be one of {SMOOTHING_METHODS}, got {method!r}")
    return method


def _bounds(n: int, half: int) -> tuple[Tensor, Tensor]:
    """Window ``[lo, hi)`` of each frame, truncated at the ends."""
    i = torch.arange(n)
    return (i - half).clamp(min=0), (i + half + 1).clamp(max=n)


def smooth_mode(seq: Tensor | Sequence[int], window: int, num_classes: int | None = None) -> Tensor:
    """Most frequent class in a centred window of ``window`` (odd) frames; a tie keeps the frame's own class
    (else the lowest index). ``num_classes``: at least this many classes (default: the largest index + 1)."""
    half = check_window(window)
    seq = torch.as_tensor(seq, dtype=torch.long).flatten()
    n = seq.numel()
    if n == 0 or half == 0:
        return seq.clone()
    c = max(int(seq.max()) + 1, num_classes or 0)
    cum = torch.cat([torch.zeros(1, c, dtype=torch.float64),
                     torch.nn.functional.one_hot(seq, c).to(torch.float64).cumsum(0)])
    lo, hi = _bounds(n, half)
    counts = cum[hi] - cum[lo]  # [T, C]: whole numbers
    counts[torch.arange(n), seq] += 0.5  # +0.5 only breaks ties, towards the frame's own class
    return counts.argmax(-1)  # first maximum = lowest class index


def smooth_median(seq: Tensor | Sequence[int], window: int) -> Tensor:
    """Median class index in a centred window (phases are numbered in procedure order, so it is meaningful).

    Where the window is truncated at an end and holds an even number of frames, the middle value
    nearer the frame's own class is taken (lower one if equally near): an actual class, never an
    average of two, and a tie never changes a frame — as in :func:`smooth_mode`.
    """
    half = check_window(window)
    seq = torch.as_tensor(seq, dtype=torch.long).flatten()
    n = seq.numel()
    if n == 0 or half == 0:
        return seq.clone()
    vals = seq.tolist()
    lo, hi = _bounds(n, half)
    out = []
    for i, (a, b) in enumerate(zip(lo.tolist(), hi.tolist())):
        w = sorted(vals[a:b])
        m = len(w)
        if m % 2:
            out.append(w[m // 2])
        else:
            low, high = w[m // 2 - 1], w[m // 2]
            out.append(high if abs(high - vals[i]) < abs(low - vals[i]) else low)
    return torch.tensor(out, dtype=torch.long)


def smooth(seq: Tensor | Sequence[int], window: int, method: str = "mode", num_classes: int | None = None) -> Tensor:
    """:func:`smooth_mode` or :func:`smooth_median` by name (one of :data:`SMOOTHING_METHODS`)."""
    if check_method(method) == "mode":
        return smooth_mode(seq, window, num_classes)
    return smooth_median(seq, window)
