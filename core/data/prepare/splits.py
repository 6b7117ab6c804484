"""Train / val / test by video: seeded, stable when videos are added, never one video in two splits."""
from __future__ import annotations

import hashlib

from ...errors import HVLInputError
from .subtitles import quote

__all__ = ["SPLITS", "assign_splits", "parse_ratios"]

SPLITS = ("train", "val", "test")


def parse_ratios(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in text.replace(":", ",").split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) < 0 or sum(parts) <= 0:
        raise HVLInputError(f"--split-ratios {quote(text)}: give three non-negative numbers train,val,test "
                            "(e.g. 0.8,0.1,0.1)")
    total = sum(parts)
    return tuple(p / total for p in parts)  # type: ignore[return-value]


def _rank(seed: int, video_id: str) -> str:
    return hashlib.sha256(f"{seed}:{video_id}".encode()).hexdigest()


def assign_splits(ids: list[str], ratios: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Videos ordered by a seeded hash of their id, cut at the ratios. A video's place in that order does not
    depend on the other videos, so adding videos moves few of the old ones; each split with a ratio > 0 gets
    at least one video when there are enough."""
    order = sorted(ids, key=lambda v: _rank(seed, v))
    n = len(order)
    want = [r > 0 for r in ratios]
    counts = [round(r * n) for r in ratios]
    for i in range(3):  # a split asked for gets a video if there are enough to go round
        if want[i] and counts[i] == 0 and n >= sum(want):
            counts[i] = 1
    while sum(counts) > n:
        counts[max(range(3), key=lambda i: counts[i])] -= 1
    counts[0] += n - sum(counts)
    out, pos = {}, 0
    for split, c in zip(SPLITS, counts):
        for v in order[pos:pos + c]:
            out[v] = split
        pos += c
    return out


def check_split_names(splits: dict[str, str], source: str) -> None:
    bad = sorted({s for s in splits.values() if s not in SPLITS})
    if bad:
        raise HVLInputError(f"{source}: unknown split name(s) {quote(bad)}; use {list(SPLITS)}")
