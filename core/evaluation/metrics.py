"""Phase-recognition metrics, per video and pooled, under two protocols (name which one a number uses).

``strict`` (:func:`phase_metrics`, torchmetrics): SurgVLP's protocol computes accuracy and macro-F1 per video and
averages over videos; macro averages count only classes present in that video's truth or prediction (as sklearn).
``relaxed`` (:func:`relaxed_phase_scores`, :func:`relaxed_summary`): the M2CAI / Cholec80 evaluation scripts that
supervised work reports (TeCNO, TMRNet, Trans-SVNet), with a 10 s tolerance at phase boundaries; ``relaxed-fixed``
the same with the released script's known bug corrected.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score, multiclass_jaccard_index

from ..errors import HVLInputError

PHASE_METRICS = ("accuracy", "f1_macro", "jaccard")


def phase_metrics(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> dict[str, float]:
    if pred.numel() == 0:
        raise ValueError("no frames to score")
    return {
        "accuracy": float(multiclass_accuracy(pred, target, num_classes, average="micro")),
        "f1_macro": float(multiclass_f1_score(pred, target, num_classes, average="macro")),
        "jaccard": float(multiclass_jaccard_index(pred, target, num_classes, average="macro")),
    }


def mean_over_videos(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(r[k] for r in rows) / len(rows) for k in PHASE_METRICS}


# ----------------------------------------------------------------- metric protocols
PROTOCOLS = ("strict", "relaxed", "relaxed-fixed")

PROTOCOL_DESCRIPTIONS = {
    "strict": "strict, video-wise: accuracy and macro-F1 (sklearn: a class seen only in the predictions scores 0) and "
              "Jaccard per video, then the mean over videos (the SurgVLP / HecVL / PeskaVLP zero-shot code)",
    "relaxed": "relaxed M2CAI / Cholec80 (Evaluate.m + Main.m, 'revised for cholec80', as released): 10 s tolerance "
               "at ground-truth phase boundaries, with the released script's bug (the end-of-segment mask is applied "
               "to the segment's first frames); per-phase Jaccard / precision / recall clipped at 1, mean over videos "
               "then over phases; f1 = 2PR/(P+R) of the means",
    "relaxed-fixed": "relaxed M2CAI / Cholec80 as intended (Evaluate.m + Main.m with its end-of-segment mask applied "
                     "to the segment's last frames, as Funke et al. 2023 correct it): 10 s tolerance at ground-truth "
                     "phase boundaries; per-phase Jaccard / precision / recall clipped at 1, mean over videos then "
                     "over phases; f1 = 2PR/(P+R) of the means",
}

# Evaluate.m "revised for cholec80", phases 1-based there: 6 and 7 may also be two phases behind at their start,
# 4 to 7 two phases ahead at their end (here 0-based class indices, the prompt file's order)
CHOLEC80_LATE_BY_TWO = (5, 6)
CHOLEC80_EARLY_BY_TWO = (3, 4, 5, 6)


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise HVLInputError(f"unknown metric protocol {protocol!r}; use one of {list(PROTOCOLS)} (--protocol, or "
                            "protocol: in the config)")
    return protocol


def _runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """(label, start, end exclusive) of each run of equal labels: MATLAB's ``bwconncomp(gt == phase)`` in 1-D."""
    cuts = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [labels.size]])
    return [(int(labels[s]), int(s), int(e)) for s, e in zip(starts, ends)]


def relaxed_phase_scores(pred: Any, target: Any, num_classes: int, fps: float, *, tolerance_s: float = 10.0,
                         as_released: bool = True, late_by_two: Sequence[int] = CHOLEC80_LATE_BY_TWO,
                         early_by_two: Sequence[int] = CHOLEC80_EARLY_BY_TWO) -> dict[str, Any]:
    """One video under the relaxed M2CAI / Cholec80 protocol: ``Evaluate.m`` of the M2CAI16 challenge, "revised for
    cholec80" (as shipped with TMRNet and Surgformer), in fractions where the script gives percent.

    ``diff = pred - target``; each ground-truth segment (a run of one phase) is relaxed on its own over
    ``t = floor(tolerance_s * fps)`` frames, capped at the segment's length (``fps`` is the rate of the label
    sequence given: 25-fps labels scored with ``fps=1`` get 10 frames, 0.4 s):

    - in its first ``t`` frames ``diff == -1`` (still one phase behind) is forgiven, and ``-2`` too for classes
      ``late_by_two`` (Cholec80's phases 6 and 7);
    - in its last ``t`` frames ``diff == +1`` (already the next phase) is meant to be forgiven, and ``+2`` for
      classes ``early_by_two`` (phases 4 to 7). ``as_released=True`` reproduces the script's line
      ``curDiff(curDiff(end-t+1:end)==1) = 0``, which applies that mask to the segment's *first* ``t`` frames: an
      early switch is never forgiven, and whatever error sits at the same offset from the start is cleared instead
      (TMRNet issue #8, Surgformer issue #12, Funke et al. 2023). ``as_released=False`` applies it to the last frames;
    - only phase ids are compared, never the neighbouring ground-truth phase.

    Then per class: Jaccard = TP / |frames in the truth or the prediction of that class|, precision = TP / predicted,
    recall = TP / true, TP counting every frame of that union whose (relaxed) diff is 0, so a forgiven frame is TP for
    both classes and a value may pass 1 (no predicted frame but TP > 0 gives ``inf``, 0 / 0 NaN, as MATLAB).
    A class absent from the truth gives NaN for all three, even if predicted. Accuracy: the share of frames whose
    relaxed diff is 0. Values are returned unclipped, per video; :func:`relaxed_summary` clips and averages them
    (``Main.m``).
    """
    y = np.asarray(target, dtype=np.int64).ravel()
    p = np.asarray(pred, dtype=np.int64).ravel()
    if y.size == 0:
        raise ValueError("no frames to score")
    if y.shape != p.shape:
        raise ValueError(f"{p.size} predictions for {y.size} labels")
    tolerance = math.floor(tolerance_s * fps + 1e-9)
    diff = p - y
    relaxed = diff.copy()
    for phase, start, end in _runs(y):
        t = min(tolerance, end - start)
        if t <= 0:
            continue
        seg = diff[start:end].copy()
        behind = (-1, -2) if phase in late_by_two else (-1,)
        ahead = (1, 2) if phase in early_by_two else (1,)
        seg[:t][np.isin(seg[:t], behind)] = 0
        ahead_mask = np.isin(seg[-t:], ahead)
        if as_released:
            seg[:t][ahead_mask] = 0
        else:
            seg[-t:][ahead_mask] = 0
        relaxed[start:end] = seg
    correct = relaxed == 0
    jaccard, precision, recall = (np.full(num_classes, np.nan) for _ in range(3))
    with np.errstate(divide="ignore", invalid="ignore"):
        for c in range(num_classes):
            true_c, pred_c = y == c, p == c
            if not true_c.any():
                continue
            union = true_c | pred_c
            tp = float(correct[union].sum())
            jaccard[c] = tp / union.sum()
            precision[c] = np.float64(tp) / np.float64(pred_c.sum())
            recall[c] = tp / true_c.sum()
    return {"accuracy": float(correct.mean()), "jaccard": jaccard.tolist(), "precision": precision.tolist(),
            "recall": recall.tolist()}


def _nanmean(x: np.ndarray, axis: int | None = None) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN slice is NaN on purpose
        return np.nanmean(x, axis=axis)


def _sample_std(x: np.ndarray) -> float:
    """MATLAB's ``nanstd``: n - 1 in the denominator, 0 for a single value."""
    x = x[~np.isnan(x)]
    return float(np.std(x, ddof=1)) if x.size > 1 else 0.0 if x.size else math.nan


def _or_none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def relaxed_summary(videos: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """``Main.m`` over :func:`relaxed_phase_scores` of each video: per-video values above 1 clipped to 1; per class
    the mean over the videos where it is defined, then the mean over classes (classes absent from every video left
    out; ``Main.m``'s plain ``mean`` would make Jaccard and recall NaN then); ``std``: over classes for Jaccard /
    precision / recall, over videos for accuracy (n - 1). ``Main.m`` computes no F1: ``f1`` is 2PR/(P+R) of the mean
    precision and recall, ``f1_mean_over_phases`` the mean over classes of each class's 2pr/(p+r) (papers use either:
    name the one you compare). NaN is written as null."""
    out: dict[str, Any] = {}
    per_phase: dict[str, np.ndarray] = {}
    for key in ("jaccard", "precision", "recall"):
        values = np.minimum(np.array([v[key] for v in videos], dtype=np.float64), 1.0)  # NaN stays NaN
        per_phase[key] = _nanmean(values, axis=0)
        out[key] = float(_nanmean(per_phase[key]))
    acc = np.array([v["accuracy"] for v in videos], dtype=np.float64)
    out["accuracy"] = float(acc.mean())
    p, r = out["precision"], out["recall"]
    out["f1"] = 2 * p * r / (p + r) if p + r > 0 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        pp, rr = per_phase["precision"], per_phase["recall"]
        f1_phase = np.where(pp + rr > 0, 2 * pp * rr / (pp + rr), 0.0)
        f1_phase[np.isnan(pp) | np.isnan(rr)] = np.nan
    out["f1_mean_over_phases"] = float(_nanmean(f1_phase))
    out["std"] = {"accuracy": _sample_std(acc), **{k: _sample_std(per_phase[k]) for k in ("jaccard", "precision",
                                                                                          "recall")}}
    out["per_phase"] = [{"phase": n, **{k: _or_none(per_phase[k][i]) for k in ("jaccard", "precision", "recall")},
                         "f1": _or_none(f1_phase[i]),
                         "n_videos": int(sum(not math.isnan(v["recall"][i]) for v in videos))}
                        for i, n in enumerate(names)]
    return {k: _or_none(v) if isinstance(v, float) else v for k, v in out.items()} | \
        {"std": {k: _or_none(v) for k, v in out["std"].items()}}


def relaxed_video_row(scores: Mapping[str, Any]) -> dict[str, float | None]:
    """One video's line of the relaxed table: its accuracy and its Jaccard / precision / recall clipped at 1 and
    averaged over the classes in its truth (``Main.m``'s ``meanJaccPerVideo`` ...)."""
    row: dict[str, float | None] = {"accuracy": scores["accuracy"]}
    for key in ("jaccard", "precision", "recall"):
        row[key] = _or_none(float(_nanmean(np.minimum(np.array(scores[key], dtype=np.float64), 1.0))))
    return row
