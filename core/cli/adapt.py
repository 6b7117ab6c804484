"""``hvl adapt --config <zero-shot yaml> (--ckpt | --model) --train <manifest> --method linear|temporal``: fit a
small head on frozen embeddings of labelled training videos and evaluate it as ``hvl zeroshot`` does."""
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
    p.add_argument("--config", required=True, help="a zero-shot config (its dataset is the test set) with an "
                                                   "optional adapt: block")
    add_model_arguments(p)
    p.add_argument("--train", help="labelled training videos: a manifest (.jsonl); default: the config's adapt.train")
    p.add_argument("--train-split", help="instead of --train: this split of the config's dataset reader "
                                         "(e.g. cholec80's 'train')")
    p.add_argument("--method", choices=["linear", "temporal"], help="linear classifier on frame / window embeddings, "
                                                                    "or a temporal convolution over whole videos")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--shots", type=int, metavar="K", help="K labelled frames per class (few-shot; linear only)")
    g.add_argument("--fraction", type=float, metavar="P", help="all labels of a share P of the training videos "
                                                               "(linear probe protocol)")
    p.add_argument("--seed", type=int, default=0, help="which draw of shots / videos, and the head's initialisation")
    p.add_argument("--steps", type=int, help="optimiser steps (0: the untrained head, = zero-shot for linear)")
    p.add_argument("--lr", type=float)
    p.add_argument("--causal", action="store_true", help="temporal: each frame sees only the past (online use)")
    p.add_argument("--window", type=float, metavar="SECONDS", help="train and score on centred windows of frames "
                                                                   "(as hvl zeroshot --window)")
    p.add_argument("--level", help="override the embedding level")
    p.add_argument("--prompts", help="override the config's prompt file (its classes are the head's)")
    p.add_argument("--head-out", help="where to save the head (default heads/<prompts>_<level>_<method>_<protocol>"
                                      "_seed<S>.pt); reuse it with `hvl zeroshot --head`")
    p.add_argument("--cache", help="feature cache folder (default: the config's adapt.feature_cache)")
    p.add_argument("--no-cache", action="store_true", help="compute the training videos' features without caching")
    add_predictions_arguments(p)
    add_protocol_argument(p)
    add_output_arguments(p, "the metrics (hvl zeroshot's keys, plus 'head')")


def run(args: argparse.Namespace) -> None:
    from ..evaluation.runs import AdaptOptions, run_adapt

    run_adapt(AdaptOptions(config=args.config, source=model_source(args), train=args.train,
                           train_split=args.train_split, method=args.method, shots=args.shots, fraction=args.fraction,
                           seed=args.seed, steps=args.steps, lr=args.lr, causal=args.causal, window=args.window,
                           level=args.level, prompts=args.prompts, head_out=args.head_out, cache=args.cache,
                           use_cache=not args.no_cache, predictions=predictions_out(args), protocol=args.protocol,
                           outputs=outputs(args)))
