"""The long-form demo preset (issue 38, item 5): 20-30 minute procedures at 1 fps whose abstracts count the
bleeding episodes and name, in order, the phases they interrupted, so only a video level that samples the whole
recording densely enough can tell the videos apart."""
from __future__ import annotations

import numpy as np
import pytest
from hvl.domains.surgical.demo import render_video
from hvl.domains.surgical.demo.render import BLEED_PHASE
from hvl.domains.surgical.presets import PRESETS

LONG = PRESETS["long"]
COUNTS = {"No bleeding": 0, "One bleed": 1, "Two bleeds": 2, "Three bleeds": 3}


def _sampled(duration: float, num: int) -> np.ndarray:
    """The frame times the video level reads: centres of ``num`` equal bins (``indices_uniform``)."""
    return (np.arange(num) + 0.5) * duration / num


@pytest.mark.slow
def test_long_abstracts_count_the_bleeds_in_order_and_sparse_sampling_misses_them():
    words = lambda label: " ".join(w.lower() for w in __import__("re").findall(r"[A-Z][a-z]*", label))  # noqa: E731
    seen_16, seen_256, bleeds_total, counts = 0, 0, 0, set()
    for i in range(6, 10):  # seeds whose videos have 0, 3, 3 and 2 bleeds
        frames, rec = render_video(f"v{i}", np.random.SeedSequence([0, 0, i]), size=LONG.size, fps=LONG.fps,
                                   preset="long")
        assert 20 * 60 <= rec.duration <= 30 * 60 and len(frames) == rec.duration and frames.shape[1] == 32
        bleeds = [(k, p) for k, p in enumerate(rec.phases[:-2]) if p.label == BLEED_PHASE["cholecystectomy"]]
        abstract = rec.texts[0]
        assert len(abstract.split()) < 40, abstract  # the text encoder keeps 64 tokens
        n = next(v for k, v in COUNTS.items() if k in abstract)
        assert n == len(bleeds)
        counts.add(n)
        hosts = [rec.phases[k - 1].label for k, _ in bleeds]
        assert [words(h) for h in hosts] == [w.replace("in ", "", 1) for w in abstract.rstrip(".").split(": ", 1)[1]
                                             .split(", then ")] if hosts else "before the final cleaning" in abstract
        for j, (_, p) in enumerate(bleeds):
            assert p.text.startswith(f"Bleed {j + 1} of {n}:") and 20 <= p.end - p.start <= 40
            for num in (16, 256):
                hit = bool(((_sampled(rec.duration, num) >= p.start) & (_sampled(rec.duration, num) < p.end)).any())
                seen_16 += hit and num == 16
                seen_256 += hit and num == 256
        bleeds_total += n
    assert len(counts) >= 2 and bleeds_total >= 3  # the abstracts differ in what they count
    assert seen_256 == bleeds_total and seen_16 < bleeds_total  # 16 frames miss bleeds; 256 see every one
