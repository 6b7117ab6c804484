"""A small predicted timeline for the format tests (tests/test_predict_formats.py, tests/test_label_studio.py)."""
from __future__ import annotations

import numpy as np
from hvl.core.inference.timeline import Timeline, merge_runs

CLASSES = ["Preparation", "Dissection & clipping", 'Closure "final"']


def make_timeline(labels=(0, 0, 0, 1, 1, 1, 1, 2, 2, 2), fps=1.0, video_fps=25.0, duration=None, **kw) -> Timeline:
    """A video sampled at ``fps`` whose smoothed class per sample is ``labels``."""
    t = [i / fps for i in range(len(labels))]
    duration = duration or len(labels) / fps
    probs = np.full((len(labels), len(CLASSES)), 0.1)
    for i, y in enumerate(labels):
        probs[i, y] = 0.8 - 0.01 * i
    return Timeline(video_id="case01", path="/videos/case01.mp4", duration=duration, fps=fps, video_fps=video_fps,
                    classes=CLASSES, t=t, probs=probs.tolist(), pred=list(labels), smoothed=list(labels),
                    segments=merge_runs(t, labels, CLASSES, duration, probs), settings={"model": "surgvlp"}, **kw)


def spans(segments) -> list[tuple[float, float, str]]:
    return [(round(s.start, 9), round(s.end, 9), s.label) for s in segments]
