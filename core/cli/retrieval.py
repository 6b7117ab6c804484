"""``hvl retrieval --config <yaml> (--ckpt | --model)``: text <-> video retrieval metrics."""
from __future__ import annotations

import argparse

from .options import add_model_arguments, add_output_arguments, model_source, outputs


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="retrieval YAML (see recipes/sign/*_retrieval.yaml)")
    add_model_arguments(p)
    p.add_argument("--similarity", choices=["model", "global", "finegrained"], help="override the config's")
    p.add_argument("--level", help="override the config's embedding level (e.g. video, clip)")
    add_output_arguments(p)


def run(args: argparse.Namespace) -> None:
    from ..evaluation.runs import RetrievalOptions, run_retrieval

    run_retrieval(RetrievalOptions(config=args.config, source=model_source(args), similarity=args.similarity,
                                   level=args.level, outputs=outputs(args)))
