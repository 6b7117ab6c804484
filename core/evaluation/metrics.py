"""Phase-recognition metrics (torchmetrics), per video and pooled.

SurgVLP's protocol computes accuracy and macro-F1 per video and averages over videos;
macro averages count only classes present in that video's truth or prediction (as sklearn).
"""
from __future__ import annotations

import torch
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score, multiclass_jaccard_index

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
