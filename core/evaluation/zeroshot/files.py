"""The per-frame predictions ``hvl zeroshot --predictions`` writes (format: :mod:`hvl.core.data.predictions`)."""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from ...data.predictions import (
    MANIFEST_FILE,
    PREDICTIONS_FORMAT,
    VIDEOS_DIR,
    PredictionEntry,
    PredictionsManifest,
    Smoothing,
    VideoPredictions,
)
from ...data.records import Resolved
from ...io import write_json
from ..metrics import PHASE_METRICS, phase_metrics
from ..temporal import smooth_mode

__all__ = ["PREDICTIONS_FORMAT", "write_predictions"]


def _file_name(video_id: str, taken: set[str]) -> str:
    """A file name from the id (ids may hold any character); numbered if two ids map to the same name."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", video_id).lstrip(".") or "video"
    name, n = f"{stem}.json", 1
    while name in taken:
        name, n = f"{stem}-{n}.json", n + 1
    taken.add(name)
    return name


def write_predictions(out: str | Path, videos: list[Resolved], result: dict[str, Any], times: list[list[float]],
                      preds: Sequence[Tensor], labels: Sequence[Tensor], probs: Sequence[Tensor],
                      window: int) -> Path:
    """``<out>/predictions.json`` (classes, settings, one entry per video with its metrics) and
    ``<out>/videos/<id>.json`` per video: frame times, true / predicted / smoothed class and probabilities.

    What ``hvl serve --zeroshot <out>`` reviews; the files name the videos they describe, and nothing else is served.
    Each file is written atomically, the manifest last. The scores in them are the strict ones (per frame, what the
    review page compares); the manifest names the run's protocol and carries a relaxed run's numbers too."""
    out = Path(out)
    names, c = result["classes"], len(result["classes"])
    strict = result.get("strict", result)
    entries, taken = [], set()
    for (rec, path), row, t, p, y, pr in zip(videos, strict["per_video"], times, preds, labels, probs):
        if len(t) != len(p):
            raise RuntimeError(f"{rec.video_id}: {len(t)} frame times for {len(p)} predictions")
        smoothed = smooth_mode(p, window, c)
        file = f"{VIDEOS_DIR}/{_file_name(rec.video_id, taken)}"
        metrics = {k: row[k] for k in PHASE_METRICS}
        smoothed_metrics = phase_metrics(smoothed, y, c)
        video = VideoPredictions(
            video_id=rec.video_id, path=str(Path(path).resolve()), fps=result["fps"], classes=names,
            t=[round(float(x), 6) for x in t], truth=y.tolist(), pred=p.tolist(), smoothed=smoothed.tolist(),
            probs=[[round(float(v), 5) for v in r] for r in pr], metrics=metrics, smoothed_metrics=smoothed_metrics)
        write_json(out / file, video.model_dump(mode="json"))
        entries.append(PredictionEntry(video_id=rec.video_id, file=file, n_frames=row["n_frames"], metrics=metrics,
                                       smoothed_metrics=smoothed_metrics))
    manifest = PredictionsManifest(
        classes=names, level=result["level"], fps=result["fps"], smoothing=Smoothing(method="mode", window=window),
        checkpoint=result.get("checkpoint"), prompt_file=result.get("prompt_file"),
        metrics={k: strict[k] for k in PHASE_METRICS}, protocol=result.get("protocol", "strict"),
        relaxed_metrics=None if "strict" not in result else {
            k: result[k] for k in ("accuracy", "precision", "recall", "jaccard", "f1")},
        videos=entries)
    return write_json(out / MANIFEST_FILE, manifest.model_dump(mode="json"))
