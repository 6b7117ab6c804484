"""``hvl zeroshot --config <yaml> (--ckpt | --model)``: score a dataset's frames with a prompt file, print and log
the metrics, optionally write the per-frame predictions for ``hvl serve --zeroshot``."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "run", "write_outputs"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ...models.arguments import add_model_arguments

    p.add_argument("--config", required=True)
    add_model_arguments(p)
    p.add_argument("--json", help="write the metrics here")
    p.add_argument("--prompts", help="override the config's prompt file (path or <domain>:<name>)")
    p.add_argument("--level", help="override the embedding level")
    p.add_argument("--window", type=float, metavar="SECONDS",
                   help="embed each scored frame with the centred window of frames around it, sampled at the run's "
                        "fps and pooled by the model's video encoder in the level's space (default: the frame alone)")
    p.add_argument("--head", help="score with a head trained by `hvl adapt` (its level, window and classes) instead "
                                  "of the prompt embeddings")
    p.add_argument("--predictions", help="also write per-frame predictions here (a folder; for `hvl serve --zeroshot`)")
    p.add_argument("--smooth-window", type=int, default=5,
                   help="frames of the majority vote for the smoothed prediction in --predictions (odd; default 5)")
    p.add_argument("--no-mlflow", action="store_true")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ...data.records import load_videos
    from ...io import load_config
    from ...models.checkpoint import load_for_eval, preprocess_of
    from ..temporal import check_window
    from .config import ZeroShotConfig, check_inputs

    cfg = load_config(args.config, ZeroShotConfig)
    prompt_path, prompts, level, window = prompts_level_window(args, cfg)
    head = None
    if args.head:
        from ..adapt.heads import load_head

        head = load_head(args.head)
        level, window = head.settings_for(prompts.names, args.level or cfg.level, window, cfg.fps)
    videos = load_videos(cfg.dataset, cfg.domain)
    check_inputs(videos, prompts)  # data errors first: they are cheaper to find than a model is to load
    if args.predictions:
        check_window(args.smooth_window, "--smooth-window")  # before the model is loaded
    model, meta = load_for_eval(args.ckpt, args.model, args.text_model, args.trust_remote_code)
    if head is not None:
        head.check_model(model, args.head)
    pre = preprocess_of(meta, cfg.image_size)
    result, preds, labels, probs = score_videos(args, cfg, model, videos, prompts, level, pre, prompt_path, window, head)
    if head is not None:
        result["head"] = {"file": str(args.head), **head.describe()}
    tag = Path(prompt_path).stem + (f"_window{window:g}s" if window is not None else "") + \
        (f"_{head.method}" if head is not None else "")
    return write_outputs(args, cfg, meta, result, videos, prompts, pre, preds, labels, probs, prompt_path, tag)


def prompts_level_window(args: argparse.Namespace, cfg: Any) -> tuple[Path, Any, str, float | None]:
    """``--prompts`` / ``--level`` / ``--window`` over the config (``hvl zeroshot`` and ``hvl adapt``): the prompt
    file, its prompts, the level and the window; a bad ``--window`` is refused before anything is read."""
    from ...data.schema import load_prompt_file
    from ...registry import resolve_prompt_file
    from .windows import window_half

    if args.prompts:
        cfg.prompts = args.prompts
    prompt_path = resolve_prompt_file(cfg.prompts)
    prompts = load_prompt_file(prompt_path)
    level = args.level or cfg.level or prompts.level or "phase"
    window = args.window if args.window is not None else cfg.window
    window_half(window, cfg.fps)
    return prompt_path, prompts, level, window


def score_videos(args: argparse.Namespace, cfg: Any, model: Any, videos: list, prompts: Any, level: str, pre: Any,
                 prompt_path: Any, window: float | None, head: Any = None) -> tuple[dict[str, Any], Any, Any, Any]:
    """Predict every scored frame (through ``head`` when given) and summarise: the metrics JSON of `hvl zeroshot`
    and `hvl adapt`, and the per-frame predictions, labels and probabilities behind it."""
    from .classify import predict, summarize

    t0 = time.perf_counter()
    preds, labels, probs = predict(model, videos, prompts, level, fps=cfg.fps, image_size=pre.output_size[0],
                                   batch_size=cfg.batch_size, num_workers=cfg.num_workers,
                                   progress=not args.no_progress, preprocess=pre, video_backend=cfg.video_backend,
                                   window=window, head=head)
    result = summarize([rec.video_id for rec, _ in videos], preds, labels, prompts.names, level, cfg.fps)
    result.update(prompt_file=str(prompt_path), checkpoint=str(args.ckpt or args.model),
                  pretrained=args.model is not None, preprocess=pre.model_dump(mode="json"),
                  seconds=round(time.perf_counter() - t0, 2))
    if window is not None:  # absent: the file is today's, key for key
        result["window"] = window
    return result, preds, labels, probs


def write_outputs(args: argparse.Namespace, cfg: Any, meta: dict[str, Any], result: dict[str, Any], videos: list,
                  prompts: Any, pre: Any, preds: list, labels: list, probs: list, prompt_path: Any,
                  tag: str) -> dict[str, Any]:
    """What ``hvl zeroshot`` and ``hvl adapt`` both do with a result: the table, ``--json``, ``--predictions`` and
    the MLflow metrics (``zeroshot/<tag>/<metric>``; ``tag`` = prompt file stem, plus window / head if any)."""
    from ...io import write_json
    from .classify import format_table
    from .files import write_predictions
    from .frames import eval_frame_times

    print(format_table(result))
    if args.json:
        print(f"wrote {write_json(args.json, result)}")
    if args.predictions:
        times = eval_frame_times(videos, prompts.names, cfg.fps, pre.output_size[0], cfg.video_backend)
        written = write_predictions(args.predictions, videos, result, times, preds, labels, probs, args.smooth_window)
        print(f"wrote {written}")
    if not args.no_mlflow:
        from ...tracking import log_files, log_json, log_metrics, start_eval_run

        run_id = start_eval_run(cfg.experiment, meta.get("mlflow_run_id"))
        log_metrics(run_id, {f"zeroshot/{tag}/{k}": result[k] for k in ("accuracy", "f1_macro", "jaccard")},
                    {"zeroshot_level": result["level"], "zeroshot_fps": cfg.fps})
        log_files(run_id, {"prompts": prompt_path})
        log_json(run_id, result, f"zeroshot/{tag}.json")
        print(f"logged to MLflow run {run_id}")
    return result
