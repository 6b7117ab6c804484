"""``hvl zeroshot --config <yaml> (--ckpt | --model)``: zero-shot classification of frames with a prompt file."""
from __future__ import annotations

import argparse

from .options import (
    add_model_arguments,
    add_output_arguments,
    add_predictions_arguments,
    add_protocol_argument,
    model_source,
    outputs,
    predictions_out,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True)
    add_model_arguments(p)
    p.add_argument("--prompts", help="override the config's prompt file (path or <domain>:<name>)")
    p.add_argument("--level", help="override the embedding level")
    p.add_argument("--window", type=float, metavar="SECONDS",
                   help="embed each scored frame with the centred window of frames around it, sampled at the run's "
                        "fps and pooled by the model's video encoder in the level's space (default: the frame alone)")
    p.add_argument("--head", help="score with a head trained by `hvl adapt` (its level, window and classes) instead "
                                  "of the prompt embeddings")
    add_predictions_arguments(p)
    add_protocol_argument(p)
    add_output_arguments(p)


def run(args: argparse.Namespace) -> None:
    from ..evaluation.runs import ZeroshotOptions, run_zeroshot

    run_zeroshot(ZeroshotOptions(config=args.config, source=model_source(args), prompts=args.prompts, level=args.level,
                                 window=args.window, head=args.head, predictions=predictions_out(args),
                                 protocol=args.protocol, outputs=outputs(args)))
