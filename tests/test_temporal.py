"""hvl.core.evaluation.temporal: the mode and median filters over frame-wise predictions, and their window check."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hvl.core.errors import HVLInputError
from hvl.core.evaluation import temporal
from hvl.core.evaluation.temporal import check_window, smooth_mode

T = torch.tensor


def test_mode_filter_removes_isolated_flicker_and_handles_edges():
    seq = [0, 0, 1, 0, 0, 2, 2, 2, 0, 2]
    assert temporal.smooth_mode(seq, 3).tolist() == [0, 0, 0, 0, 0, 2, 2, 2, 2, 2]
    # edge windows are truncated: frame 0 sees [1, 0, 0] with window 5 → 0
    assert temporal.smooth_mode([1, 0, 0, 0, 0], 5).tolist() == [0, 0, 0, 0, 0]
    # a tie keeps the frame's own phase: the last frame sees [3, 1] → 1 stays
    assert temporal.smooth_mode([3, 3, 3, 1], 3).tolist() == [3, 3, 3, 1]


def test_mode_tie_without_own_phase_takes_lowest_index():
    # frame 2 sees [4, 1, 3, 1, 4]: 1 and 4 tie, its own phase 3 is not among them → 1
    assert temporal.smooth_mode([4, 1, 3, 1, 4], 5).tolist()[2] == 1


def test_median_filter_follows_procedure_order_and_handles_edges():
    seq = [0, 0, 5, 1, 1, 1, 6, 2, 2]
    assert temporal.smooth_median(seq, 3).tolist() == [0, 0, 1, 1, 1, 1, 2, 2, 2]
    # even-sized window at the ends: the middle value nearer the frame's own phase
    assert temporal.smooth_median([2, 0, 0], 3).tolist() == [2, 0, 0]
    assert temporal.smooth_median([0, 0, 4, 1], 3).tolist() == [0, 0, 1, 1]


def test_window_one_and_empty_are_identity_and_bad_windows_fail():
    seq = T([3, 1, 2])
    for method in temporal.SMOOTHING_METHODS:
        assert temporal.smooth(seq, 1, method).tolist() == [3, 1, 2]
        assert temporal.smooth(T([], dtype=torch.long), 5, method).numel() == 0
        for bad in (0, 4, -3, 2.0):
            with pytest.raises(ValueError, match="odd number"):
                temporal.smooth(seq, bad, method)
    with pytest.raises(ValueError, match="mode"):
        temporal.smooth(seq, 3, "mean")


def test_smoothing_a_long_window_keeps_length_and_values():
    rng = np.random.default_rng(0)
    seq = torch.as_tensor(rng.integers(0, 7, 301))
    for method in temporal.SMOOTHING_METHODS:
        out = temporal.smooth(seq, 31, method, 7)
        assert out.shape == seq.shape and set(out.tolist()) <= set(seq.tolist())


def test_mode_filter_on_a_tensor_with_its_class_count_and_the_window_error():
    assert smooth_mode(torch.tensor([0, 0, 1, 0, 0, 2, 2, 2]), 3, 3).tolist() == [0, 0, 0, 0, 0, 2, 2, 2]
    for bad in (0, 2, -1):
        with pytest.raises(HVLInputError, match="odd number"):
            check_window(bad)
