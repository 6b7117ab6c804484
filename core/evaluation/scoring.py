"""Scoring a test set the way ``hvl zeroshot`` does, shared by ``hvl zeroshot`` and ``hvl adapt`` (so that a head is
judged exactly as the prompts are): the prompt file, level and window over the config, every scored frame predicted
and summarised, and the outputs (table, ``--json``, ``--predictions``, MLflow).

Imports :mod:`.zeroshot` only: :mod:`.zeroshot` and :mod:`.adapt` never import each other's runs, and a head is
passed in as an object.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..models.spec import ModelSource
from ..outputs import MlflowRecord, Outputs, report

__all__ = ["PredictionsOut", "prompts_level_window", "score_videos", "write_outputs"]


@dataclass(frozen=True)
class PredictionsOut:
    """``--predictions FOLDER`` (for ``hvl serve --zeroshot``) and its ``--smooth-window``."""

    folder: str | None = None
    smooth_window: int = 5


def prompts_level_window(cfg: Any, prompts: str | None, level: str | None,
                         window: float | None) -> tuple[Path, Any, str, float | None]:
    """``--prompts`` / ``--level`` / ``--window`` over the config: the prompt file, its prompts, the level and the
    window; a bad ``--window`` is refused before anything is read."""
    from ..data.schema import load_prompt_file
    from ..registry import resolve_prompt_file
    from .zeroshot.windows import window_half

    if prompts:
        cfg.prompts = prompts
    prompt_path = resolve_prompt_file(cfg.prompts)
    prompt_file = load_prompt_file(prompt_path)
    level = level or cfg.level or prompt_file.level or "phase"
    window = window if window is not None else cfg.window
    window_half(window, cfg.fps)
    return prompt_path, prompt_file, level, window


def score_videos(cfg: Any, model: Any, videos: list, prompts: Any, level: str, pre: Any, prompt_path: Any,
                 window: float | None, source: ModelSource, progress: bool,
                 head: Any = None, protocol: str = "strict") -> tuple[dict[str, Any], Any, Any, Any]:
    """Predict every scored frame (through ``head`` when given) and summarise under the metric ``protocol``: the
    metrics JSON of `hvl zeroshot` and `hvl adapt`, and the per-frame predictions, labels and probabilities behind
    it."""
    from .metrics import check_protocol
    from .zeroshot.classify import predict, summarize

    check_protocol(protocol)  # before the frames are scored
    t0 = time.perf_counter()
    preds, labels, probs = predict(model, videos, prompts, level, fps=cfg.fps, image_size=pre.output_size[0],
                                   batch_size=cfg.batch_size, num_workers=cfg.num_workers,
                                   progress=progress, preprocess=pre, video_backend=cfg.video_backend,
                                   window=window, head=head)
    result = summarize([rec.video_id for rec, _ in videos], preds, labels, prompts.names, level, cfg.fps, protocol)
    result.update(prompt_file=str(prompt_path), checkpoint=str(source.name),
                  pretrained=source.model is not None, preprocess=pre.model_dump(mode="json"),
                  seconds=round(time.perf_counter() - t0, 2))
    if window is not None:  # absent: the file is today's, key for key
        result["window"] = window
    return result, preds, labels, probs


def write_outputs(outputs: Outputs, predictions: PredictionsOut, cfg: Any, meta: dict[str, Any],
                  result: dict[str, Any], videos: list, prompts: Any, pre: Any, preds: list, labels: list, probs: list,
                  prompt_path: Any, tag: str) -> dict[str, Any]:
    """What ``hvl zeroshot`` and ``hvl adapt`` both do with a result: the table, ``--json``, ``--predictions`` and
    the MLflow metrics (``zeroshot/<tag>/<metric>``; ``tag`` = prompt file stem, plus window / head if any)."""
    from .zeroshot.classify import format_table
    from .zeroshot.files import write_predictions
    from .zeroshot.frames import eval_frame_times

    def write_frames() -> list[Path]:
        if not predictions.folder:
            return []
        times = eval_frame_times(videos, prompts.names, cfg.fps, pre.output_size[0], cfg.video_backend)
        return [write_predictions(predictions.folder, videos, result, times, preds, labels, probs,
                                  predictions.smooth_window)]

    def record() -> MlflowRecord:
        strict = result.get("strict", result)  # the strict numbers keep their names whatever the protocol
        metrics = {f"zeroshot/{tag}/{k}": strict[k] for k in ("accuracy", "f1_macro", "jaccard")}
        if result["protocol"] != "strict":
            metrics.update({f"zeroshot/{tag}/{result['protocol']}/{k}": result[k]
                            for k in ("accuracy", "precision", "recall", "jaccard", "f1") if result[k] is not None})
        return MlflowRecord(cfg.experiment, meta.get("mlflow_run_id"), metrics,
                            {"zeroshot_level": result["level"], "zeroshot_fps": cfg.fps,
                             "zeroshot_protocol": result["protocol"]},
                            f"zeroshot/{tag}.json", {"prompts": prompt_path})

    return report(result, format_table(result), outputs, record, also=write_frames)
