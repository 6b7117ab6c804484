"""``hvl adapt --config <zero-shot yaml> (--ckpt | --model) --train <manifest> --method linear|temporal``: fit a
small head on frozen embeddings of labelled training videos, save it, and evaluate it on the config's test set
exactly as ``hvl zeroshot`` does (same metrics, ``--json`` keys and ``--predictions`` files)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ...models.arguments import add_model_arguments

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
    p.add_argument("--json", help="write the metrics here (hvl zeroshot's keys, plus 'head')")
    p.add_argument("--predictions", help="also write per-frame predictions here (for `hvl serve --zeroshot`)")
    p.add_argument("--smooth-window", type=int, default=5,
                   help="frames of the majority vote for the smoothed prediction in --predictions (odd; default 5)")
    p.add_argument("--no-mlflow", action="store_true")
    p.add_argument("--no-progress", action="store_true")


def _train_spec(args: argparse.Namespace, cfg: Any):
    from ...data.records import DatasetSpec
    from ...errors import HVLInputError

    if args.train and args.train_split:
        raise HVLInputError("give --train <manifest> or --train-split <split>, not both")
    if args.train:
        return DatasetSpec(reader="manifest", path=args.train)
    if args.train_split:
        if cfg.dataset.reader == "manifest":
            raise HVLInputError(f"--train-split needs a dataset reader with splits; the config's dataset is a manifest "
                                f"({cfg.dataset.path}): pass the training manifest with --train")
        return cfg.dataset.model_copy(update={"options": {**cfg.dataset.options, "split": args.train_split}})
    if cfg.adapt.train is not None:
        return cfg.adapt.train
    raise HVLInputError("hvl adapt needs labelled training videos: --train <manifest.jsonl> (or adapt.train in the "
                        "config, or --train-split with a dataset reader)")


def _protocol_name(shots: int | None, fraction: float | None) -> str:
    return f"shots{shots}" if shots is not None else f"fraction{fraction:g}" if fraction is not None else "all"


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ...data.records import load_videos
    from ...errors import HVLInputError
    from ...io import load_config
    from ...models.checkpoint import load_for_eval, preprocess_of
    from ..temporal import check_window
    from ..zeroshot.classify import class_embeddings
    from ..zeroshot.command import prompts_level_window, score_videos, write_outputs
    from ..zeroshot.config import check_inputs
    from .config import AdaptConfig
    from .embeddings import embed_sequences
    from .fit import check_protocol, train_head
    from .heads import save_head, space_fingerprint

    cfg = load_config(args.config, AdaptConfig)
    opts = cfg.adapt
    prompt_path, prompts, level, window = prompts_level_window(args, cfg)
    method = args.method or opts.method
    if method == "temporal" and args.shots is not None:
        raise HVLInputError("--shots draws single labelled frames, but the temporal head learns from whole labelled "
                            "videos: use --fraction P with --method temporal")
    if method == "linear" and args.causal:
        raise HVLInputError("--causal is an option of the temporal head: drop it, or use --method temporal")
    if args.steps is not None and args.steps < 0:
        raise HVLInputError(f"--steps must be >= 0 (got {args.steps})")
    check_protocol(args.shots, args.fraction)
    if args.predictions:
        check_window(args.smooth_window, "--smooth-window")
    train_spec = _train_spec(args, cfg)
    train_videos = load_videos(train_spec, cfg.domain)
    check_inputs(train_videos, prompts)
    videos = load_videos(cfg.dataset, cfg.domain)
    check_inputs(videos, prompts)
    shared = {Path(p).resolve() for _, p in train_videos} & {Path(p).resolve() for _, p in videos}
    if shared:
        raise HVLInputError(f"{train_spec.path}: {len(shared)} training video(s) are also test videos (e.g. "
                            f"{min(shared)}); a head must be scored on videos it did not learn from: fix the "
                            "splits")
    model, meta = load_for_eval(args.ckpt, args.model, args.text_model, args.trust_remote_code)
    if level not in model.video_heads:
        raise HVLInputError(f"level '{level}' is not one the model has ({list(model.video_heads)}); set --level")
    pre = preprocess_of(meta, cfg.image_size)
    cache = None if args.no_cache else (args.cache or opts.feature_cache)
    t0 = time.perf_counter()
    train = embed_sequences(model, train_videos, prompts, level, cfg.fps, window, pre, cache, cfg.batch_size,
                            cfg.num_workers, cfg.video_backend, progress=not args.no_progress)
    architecture = {} if method == "linear" else {
        "stages": opts.stages, "layers": opts.layers, "channels": opts.channels, "dropout": opts.dropout,
        "causal": args.causal or opts.causal}
    head = train_head(method, class_embeddings(model, prompts, level), train, prompts.names, level, window, cfg.fps,
                      shots=args.shots, fraction=args.fraction, seed=args.seed,
                      steps=args.steps if args.steps is not None else opts.steps, lr=args.lr or opts.lr,
                      prior=opts.prior, smooth=opts.smooth, weight_decay=opts.weight_decay, **architecture)
    head.info.update(train=str(train_spec.path), model=str(args.ckpt or args.model), prompt_file=str(prompt_path))
    train_s = round(time.perf_counter() - t0, 2)
    protocol = _protocol_name(args.shots, args.fraction)
    out = args.head_out or (f"heads/{Path(prompt_path).stem}_{level}_{method}"
                            f"{'' if window is None else f'_window{window:g}s'}_{protocol}_seed{args.seed}.pt")
    saved = save_head(head, out, space_fingerprint(model, level))
    print(f"saved the head to {saved} (reuse: hvl zeroshot --config {args.config} --head {saved})")

    result, preds, labels, probs = score_videos(args, cfg, model, videos, prompts, level, pre, prompt_path, window, head)
    result["head"] = {"file": str(saved), "train_seconds": train_s, **head.describe()}
    tag = Path(prompt_path).stem + (f"_window{window:g}s" if window is not None else "") + \
        f"_{method}_{protocol}_seed{args.seed}"
    return write_outputs(args, cfg, meta, result, videos, prompts, pre, preds, labels, probs, prompt_path, tag)
