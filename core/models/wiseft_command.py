"""``hvl wise-ft --finetuned <ckpt> --alpha <a> --out <ckpt>``: writes the weight-space ensemble of a fine-tuned
checkpoint and its zero-shot model (:mod:`.wiseft`) and prints what it wrote."""
from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--finetuned", required=True, help="hvl checkpoint fine-tuned from a pretrained backbone")
    p.add_argument("--alpha", type=float, required=True, help="0 = zero-shot model, 1 = fine-tuned model")
    p.add_argument("--out", required=True, help="where to write the ensembled checkpoint")
    p.add_argument("--zeroshot", help="the pretrained model directory (default: the checkpoint's backbone.path)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from .wiseft import wise_ft

    res = wise_ft(args.finetuned, args.alpha, args.out, args.zeroshot)
    print(json.dumps(res, indent=2))
    return res
