"""``hvl retrieval --config <yaml> (--ckpt | --model)``: text <-> video retrieval metrics; ``--moments``: sentence
localisation inside each video."""
from __future__ import annotations

import argparse

from .options import add_model_arguments, add_output_arguments, model_source, outputs


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="retrieval YAML (see recipes/sign/*_retrieval.yaml)")
    add_model_arguments(p)
    p.add_argument("--similarity", choices=["model", "global", "finegrained"], help="override the config's")
    p.add_argument("--level", help="override the config's embedding level (e.g. video, clip)")
    p.add_argument("--moments", action="store_true",
                   help="localise each clip's sentence inside its own video (R@1 at IoU 0.3/0.5/0.7, mIoU) instead "
                        "of ranking videos; --level then overrides the config's moment_level (default clip)")
    add_output_arguments(p)


def run(args: argparse.Namespace) -> None:
    from ..evaluation.runs import RetrievalOptions, run_retrieval

    run_retrieval(RetrievalOptions(config=args.config, source=model_source(args), similarity=args.similarity,
                                   level=args.level, moments=args.moments, outputs=outputs(args)))
