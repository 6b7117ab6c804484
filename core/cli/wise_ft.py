"""``hvl wise-ft --finetuned <ckpt> --alpha <a> --out <ckpt>``: the weight-space ensemble of a fine-tuned checkpoint
and its zero-shot model."""
from __future__ import annotations

import argparse

from .options import add_deprecated_alias


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--finetuned", required=True, help="hvl checkpoint fine-tuned from a pretrained backbone")
    p.add_argument("--alpha", type=float, required=True, help="0 = zero-shot model, 1 = fine-tuned model")
    p.add_argument("--out", required=True, help="where to write the ensembled checkpoint")
    p.add_argument("--model", help="the pretrained model directory it was fine-tuned from, the zero-shot model "
                                   "(default: the checkpoint's backbone.path)")
    add_deprecated_alias(p, "--zeroshot", "--model", dest="model")


def run(args: argparse.Namespace) -> None:
    from ..models.wiseft import WiseFTOptions, run_wise_ft

    run_wise_ft(WiseFTOptions(finetuned=args.finetuned, alpha=args.alpha, out=args.out, zeroshot=args.model))
