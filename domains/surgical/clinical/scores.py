"""Scores of a clinical review: per video and per phase, the confusion, accuracy along the procedure, and
prompt file B against A with paired intervals over videos."""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from hvl.core.evaluation.metrics import PHASE_METRICS, phase_metrics
from hvl.core.evaluation.stats import bootstrap_ci
from torch import Tensor
from torchmetrics.functional.classification import (
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

__all__ = ["PER_PHASE", "accuracy_by_progress", "compare_prompts", "confusion", "per_phase_scores",
           "per_video_table"]

PER_PHASE = ("precision", "recall", "f1")


def per_phase_scores(pred: Tensor, target: Tensor, names: Sequence[str]) -> dict[str, float]:
    """Precision, recall and F1 of each phase in one video; NaN where undefined, so averages skip them.

    A phase absent from the truth has no recall, one never predicted has no precision, and one
    neither present nor predicted has no F1: scoring those 0 (torchmetrics' default) would punish
    a video for a phase it does not contain.
    """
    c = len(names)
    kw = {"num_classes": c, "average": None}
    scores = {"precision": multiclass_precision(pred, target, **kw), "recall": multiclass_recall(pred, target, **kw),
              "f1": multiclass_f1_score(pred, target, **kw)}
    in_truth = torch.bincount(target, minlength=c) > 0
    predicted = torch.bincount(pred, minlength=c) > 0
    defined = {"precision": predicted, "recall": in_truth, "f1": in_truth | predicted}
    return {f"{m}/{n}": float(scores[m][i]) if defined[m][i] else math.nan
            for m in PER_PHASE for i, n in enumerate(names)}


def per_video_table(video_ids: Sequence[str], preds: Sequence[Tensor], labels: Sequence[Tensor],
                    names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per video: `hvl zeroshot`'s accuracy / macro-F1 / Jaccard plus per-phase precision, recall, F1."""
    rows = []
    for vid, p, y in zip(video_ids, preds, labels):
        rows.append({"video_id": vid, "n_frames": int(y.numel()), **phase_metrics(p, y, len(names)),
                     **per_phase_scores(p, y, names)})
    return rows


def confusion(preds: Sequence[Tensor], labels: Sequence[Tensor], num_classes: int) -> Tensor:
    """Frames pooled over videos, each row normalised by its true phase: row i = where phase i's frames went."""
    with warnings.catch_warnings():  # a phase absent from the truth has an all-zero row, as intended
        warnings.filterwarnings("ignore", message=".*NaN values found in confusion matrix")
        return multiclass_confusion_matrix(torch.cat(list(preds)), torch.cat(list(labels)), num_classes,
                                           normalize="true")


def accuracy_by_progress(preds: Sequence[Tensor], labels: Sequence[Tensor], bins: int = 10) -> list[float]:
    """Mean over videos of the accuracy in each tenth (``bins``) of the procedure: where along the case it fails."""
    per_video = np.full((len(preds), bins), math.nan)
    for v, (p, y) in enumerate(zip(preds, labels)):
        n = y.numel()
        b = (torch.arange(n) * bins // max(n, 1)).numpy()
        ok = (p == y).numpy()
        for k in range(bins):
            if (b == k).any():
                per_video[v, k] = ok[b == k].mean()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return [float(x) for x in np.nanmean(per_video, axis=0)]


def _paired_deltas(rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]],
                   keys: Sequence[str]) -> list[dict[str, float]]:
    b_by_id = {r["video_id"]: r for r in rows_b}
    missing = [r["video_id"] for r in rows_a if r["video_id"] not in b_by_id]
    if missing:
        raise ValueError(f"videos {missing[:5]} were scored with prompt file A but not B; compare the same videos")
    return [{k: float(b_by_id[r["video_id"]].get(k, math.nan)) - float(r.get(k, math.nan)) for k in keys}
            for r in rows_a]


def compare_prompts(rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]], names: Sequence[str],
                    n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Prompt file B against A on the same videos: means side by side and the paired per-video difference B − A.

    The delta's interval resamples videos with their A and B scores together, so a delta
    whose interval excludes 0 is a wording effect, not which videos happened to be drawn.
    For per-phase scores the delta averages the videos where both are defined.
    """
    overall_keys = list(PHASE_METRICS)
    phase_keys = [f"{m}/{n}" for m in ("f1", "recall") for n in names]
    keys = overall_keys + phase_keys
    ci_a, ci_b = bootstrap_ci(rows_a, keys, n_boot, level, seed), bootstrap_ci(rows_b, keys, n_boot, level, seed)
    ci_d = bootstrap_ci(_paired_deltas(rows_a, rows_b, keys), keys, n_boot, level, seed)

    def entry(k: str) -> dict[str, float]:
        return {"a": ci_a[k]["mean"], "b": ci_b[k]["mean"], "delta": ci_d[k]["mean"],
                "delta_lo": ci_d[k]["lo"], "delta_hi": ci_d[k]["hi"]}

    overall = [{"metric": k, **entry(k)} for k in overall_keys]
    per_phase = []
    for n in names:
        row: dict[str, Any] = {"phase": n}
        for m in ("f1", "recall"):
            row.update({f"{m}_{s}": v for s, v in entry(f"{m}/{n}").items()})
        per_phase.append(row)
    return {"overall": overall, "per_phase": per_phase}
