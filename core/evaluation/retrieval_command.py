"""``hvl retrieval --config <yaml> (--ckpt | --model)``: text <-> video retrieval metrics, printed, written as JSON
and logged to MLflow."""
from __future__ import annotations

import argparse
import time
from typing import Any

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..models.arguments import add_model_arguments

    p.add_argument("--config", required=True, help="retrieval YAML (see recipes/sign/*_retrieval.yaml)")
    add_model_arguments(p)
    p.add_argument("--json", help="write the metrics here")
    p.add_argument("--similarity", choices=["model", "global", "finegrained"], help="override the config's")
    p.add_argument("--level", help="override the config's embedding level (e.g. video, clip)")
    p.add_argument("--no-mlflow", action="store_true")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ..data.records import check_videos, load_videos
    from ..errors import HVLInputError
    from ..io import load_config, write_json
    from ..models.checkpoint import load_for_eval, preprocess_of
    from .retrieval import RetrievalConfig, evaluate_retrieval, format_table

    cfg = load_config(args.config, RetrievalConfig)
    if args.level:
        cfg = cfg.model_copy(update={"level": args.level})
    similarity = args.similarity or cfg.similarity
    videos = load_videos(cfg.dataset, cfg.domain)
    check_videos(videos)  # data errors first: cheaper to find than a model is to load
    if len(videos) < 2:
        raise HVLInputError(f"{cfg.dataset.path}: retrieval needs at least 2 videos, got {len(videos)}")
    model, meta = load_for_eval(args.ckpt, args.model, args.text_model, args.trust_remote_code)
    if cfg.level not in model.video_heads:
        raise HVLInputError(f"{args.ckpt or args.model}: level '{cfg.level}' (from {'--level' if args.level else args.config}) "
                            f"is not one this checkpoint was trained with; use one of {list(model.video_heads)}")
    schedule = meta.get("schedule") or {}
    frames = cfg.frames or (schedule.get(cfg.level) or {}).get("frames") or 16
    pre = preprocess_of(meta, cfg.image_size)
    t0 = time.perf_counter()
    result = evaluate_retrieval(model, videos, cfg.level, similarity, frames=frames, image_size=pre.output_size[0],
                                batch_size=cfg.batch_size, num_workers=cfg.num_workers, progress=not args.no_progress,
                                preprocess=pre)
    result.update(checkpoint=str(args.ckpt or args.model), pretrained=args.model is not None,
                  preprocess=pre.model_dump(mode="json"), dataset=cfg.dataset.path, seconds=round(time.perf_counter() - t0, 2))
    print(format_table(result))
    if args.json:
        print(f"wrote {write_json(args.json, result)}")
    if not args.no_mlflow:
        from ..tracking import log_json, log_metrics, start_eval_run

        run_id = start_eval_run(cfg.experiment, meta.get("mlflow_run_id"))
        tag = f"{cfg.level}/{result['similarity']}"
        log_metrics(run_id, {f"retrieval/{tag}/{k}": v for k, v in result.items()
                             if k.startswith(("t2v_", "v2t_"))},
                    {"retrieval_level": cfg.level, "retrieval_frames": frames})
        log_json(run_id, result, f"retrieval/{tag}.json")
        print(f"logged to MLflow run {run_id}")
    return result
