"""Weight-space ensembling of a fine-tuned checkpoint with the zero-shot model it started from (`hvl wise-ft`:
:func:`run_wise_ft`).

WiSE-FT (Wortsman et al.): ``θ = (1 - α) · θ_zeroshot + α · θ_finetuned``, parameter by parameter, for a model
fine-tuned from a pretrained backbone. It recovers much of the zero-shot robustness that fine-tuning costs, at
no inference cost. ``θ_zeroshot`` is the pretrained backbone with every hvl layer at its zero-shot init
(residual heads and temporal layers at zero: the pretrained model's own function), so ``α = 0`` is exactly the
zero-shot model and ``α = 1`` exactly the fine-tuned one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import HVLInputError
from .checkpoint import AtomicCheckpointIO, read_checkpoint

__all__ = ["WiseFTOptions", "run_wise_ft", "wise_ft"]


def wise_ft(finetuned: str | Path, alpha: float, out: str | Path, zeroshot: str | None = None) -> dict[str, Any]:
    """Write the ensembled checkpoint to ``out``; ``zeroshot`` overrides the backbone directory the fine-tune
    started from (default: the one its hyperparameters name)."""
    from .backbones import BackboneOptions
    from .module import HierarchicalVLM

    if not 0.0 <= alpha <= 1.0:
        raise HVLInputError(f"--alpha must be in [0, 1] (got {alpha})")
    ckpt = read_checkpoint(finetuned)
    hp = {k: v for k, v in ckpt.get("hyper_parameters", {}).items() if not k.startswith("_")}
    if not hp.get("backbone"):
        raise HVLInputError(f"{finetuned}: not fine-tuned from a pretrained backbone (no model.backbone in its "
                            "hyperparameters); WiSE-FT needs the zero-shot model it started from")
    opts = BackboneOptions.model_validate(hp["backbone"])
    if zeroshot:
        opts = opts.model_copy(update={"path": zeroshot})
    torch.manual_seed(0)
    zs = HierarchicalVLM(**(hp | {"backbone": opts.model_dump()}))
    theta0, theta1 = zs.state_dict(), ckpt["state_dict"]
    if set(theta0) != set(theta1):
        diff = sorted(set(theta0) ^ set(theta1))[:5]
        raise HVLInputError(f"{finetuned}: its parameters do not match the zero-shot model built from {opts.path} "
                            f"(e.g. {diff}); pass the backbone it was fine-tuned from with --model")
    mixed = {}
    for k, v1 in theta1.items():
        v0 = theta0[k].to(v1.device)
        if v0.shape != v1.shape:
            raise HVLInputError(f"{finetuned}: parameter '{k}' has shape {tuple(v1.shape)} but the zero-shot model's "
                                f"is {tuple(v0.shape)}; pass the backbone it was fine-tuned from with --model")
        mixed[k] = (1 - alpha) * v0 + alpha * v1 if v1.is_floating_point() else v1
    meta = dict(ckpt.get("hvl", {}))
    meta["wise_ft"] = {"alpha": alpha, "finetuned": str(finetuned), "zeroshot": opts.path}
    if "backbone_spec" in meta:
        meta["backbone_spec"] = zs.backbone.spec()
    out_ckpt = {k: v for k, v in ckpt.items() if k in ("hyper_parameters", "datamodule_hyper_parameters",
                                                      "global_step", "epoch", "pytorch-lightning_version")}
    out_ckpt.update(state_dict=mixed, hvl=meta)
    AtomicCheckpointIO().save_checkpoint(out_ckpt, out)
    return {"out": str(out), "alpha": alpha, "finetuned": str(finetuned), "zeroshot": opts.path,
            "parameters": len(mixed)}


@dataclass(frozen=True)
class WiseFTOptions:
    """``hvl wise-ft``: the fine-tuned checkpoint, α, where to write, and the zero-shot model directory (default:
    the checkpoint's ``backbone.path``)."""

    finetuned: str
    alpha: float
    out: str
    zeroshot: str | None = None


def run_wise_ft(opts: WiseFTOptions) -> dict[str, Any]:
    """:func:`wise_ft`, and what it wrote, printed as JSON."""
    res = wise_ft(opts.finetuned, opts.alpha, opts.out, opts.zeroshot)
    print(json.dumps(res, indent=2))
    return res
