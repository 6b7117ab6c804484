"""hvl.core.evaluation.stats: the percentile bootstrap over videos (known cases, seeding, undefined entries)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hvl.core.evaluation.stats import bootstrap_ci


def test_constant_metric_gives_zero_width_interval():
    rows = [{"accuracy": 0.7} for _ in range(9)]
    ci = bootstrap_ci(rows, ["accuracy"], n_boot=500, seed=3)["accuracy"]
    assert ci["lo"] == ci["hi"]
    assert ci["mean"] == pytest.approx(0.7) and ci["lo"] == pytest.approx(0.7)
    assert ci["n_videos"] == 9


def test_known_case_matches_the_exact_bootstrap_distribution():
    """Mean of 4 draws from {0,0,0,1} is Binomial(4, 1/4)/4: P(<=0.5)=0.949, P(<=0.75)=0.996 → 95% CI [0, 0.75]."""
    rows = [{"m": v} for v in (0.0, 0.0, 0.0, 1.0)]
    ci = bootstrap_ci(rows, ["m"], n_boot=20000, level=0.95, seed=0)["m"]
    assert ci["mean"] == 0.25
    assert (ci["lo"], ci["hi"]) == (0.0, 0.75)
    # two videos, one perfect, one all wrong: resample means are 0, 0.5, 1 with p = 1/4, 1/2, 1/4
    ci2 = bootstrap_ci([{"m": 0.0}, {"m": 1.0}], ["m"], n_boot=4000, seed=1)["m"]
    assert (ci2["mean"], ci2["lo"], ci2["hi"]) == (0.5, 0.0, 1.0)


def test_bootstrap_is_seeded():
    rows = [{"m": float(v)} for v in np.random.default_rng(0).random(12)]
    a = bootstrap_ci(rows, ["m"], seed=7)
    assert a == bootstrap_ci(rows, ["m"], seed=7)
    assert a != bootstrap_ci(rows, ["m"], seed=8)


def test_undefined_entries_are_skipped_not_zeroed():
    rows = [{"m": 1.0}, {"m": math.nan}, {"m": 0.5}]
    ci = bootstrap_ci(rows, ["m"], n_boot=200, seed=0)["m"]
    assert ci["mean"] == pytest.approx(0.75) and ci["n_videos"] == 2
    assert 0.5 <= ci["lo"] <= ci["hi"] <= 1.0


def test_bootstrap_rejects_nonsense():
    with pytest.raises(ValueError, match="no videos"):
        bootstrap_ci([], ["m"])
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci([{"m": 1.0}], ["m"], level=95)
