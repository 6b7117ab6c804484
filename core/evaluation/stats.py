"""Uncertainty of a mean over videos: a percentile bootstrap that resamples whole videos.

Frames of one video are strongly correlated, and the next patients a hospital (or a benchmark) sees are new
videos, so resampling frames would give falsely narrow intervals. Used by the clinical review (each metric and
the paired difference of two prompt files) and by ``benchmarks/hierarchy.py`` (paired differences of schemes).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["bootstrap_ci"]


def bootstrap_ci(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0) -> dict[str, dict[str, float]]:
    """Mean over videos and a percentile bootstrap interval, resampling whole videos (``rows``) with replacement.

    All keys share the same resamples (paired): rows of per-video differences give a paired interval of the
    difference. NaN entries (undefined for that video) are skipped in every mean; ``n_videos`` counts where a key
    is defined.
    """
    if not rows:
        raise ValueError("no videos to bootstrap")
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    values = np.array([[float(r.get(k, math.nan)) for k in keys] for r in rows], dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(rows), size=(n_boot, len(rows)))
    alpha = (1 - level) / 2 * 100
    with warnings.catch_warnings():  # all-NaN slices: a key undefined in a resample
        warnings.simplefilter("ignore", RuntimeWarning)
        boot = np.nanmean(values[idx], axis=1)  # [n_boot, keys]
        lo, hi = np.nanpercentile(boot, [alpha, 100 - alpha], axis=0)
        mean = np.nanmean(values, axis=0)
    n = np.isfinite(values).sum(0)
    return {k: {"mean": float(mean[j]), "lo": float(lo[j]), "hi": float(hi[j]), "n_videos": int(n[j])}
            for j, k in enumerate(keys)}
