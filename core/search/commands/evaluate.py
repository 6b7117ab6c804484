"""``hvl search-eval --config <yaml> (--ckpt | --model)`` (old name ``bugsearch-eval``): text -> video search
quality on a query set, printed, written as JSON and logged to MLflow."""
from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ...models.arguments import add_model_arguments

    p.add_argument("--config", required=True, help="e.g. recipes/gameplay/demo_eval.yaml")
    add_model_arguments(p)
    p.add_argument("--json", help="write the metrics here")
    p.add_argument("--agg", choices=("max", "topk-mean", "count"), help="override the config's aggregation")
    p.add_argument("--no-mlflow", action="store_true")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ...io import load_config, write_json
    from ...models.checkpoint import read_checkpoint
    from ..evaluate import SearchEvalConfig, evaluate, format_table

    cfg = load_config(args.config, SearchEvalConfig)
    if args.agg:
        cfg.agg = args.agg
    result = evaluate(cfg, args.ckpt, progress=not args.no_progress, model=args.model, text_model=args.text_model,
                      trust_remote_code=args.trust_remote_code)
    print(format_table(result))
    if args.json:
        print(f"wrote {write_json(args.json, result)}")
    if not args.no_mlflow:
        from ...tracking import log_files, log_json, log_metrics, start_eval_run

        meta = read_checkpoint(args.ckpt).get("hvl", {}) if args.ckpt else {}
        run_id = start_eval_run(cfg.experiment, meta.get("mlflow_run_id"))
        metrics = {f"bugsearch/{t}/{k}": result[t][k] for t in (*result["query_types"], "overall") if t in result
                   for k in ("recall_at_1", "recall_at_5", "recall_at_10", "map")}
        log_metrics(run_id, metrics, {"bugsearch_agg": cfg.agg, "bugsearch_fps": cfg.fps, "bugsearch_level": cfg.level})
        log_files(run_id, {"bugsearch": cfg.queries})
        log_json(run_id, result, "bugsearch/metrics.json")
        print(f"logged to MLflow run {run_id}")
    return result
