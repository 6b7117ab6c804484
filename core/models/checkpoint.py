"""Loading trained models without executing pickled code (``torch.load(weights_only=True)``)."""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins import TorchCheckpointIO

from ..errors import HVLInputError


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise HVLInputError(f"{path}: checkpoint not found; train one with `hvl fit` or pass --ckpt <file>")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise HVLInputError(f"{path}: not a loadable checkpoint ({str(e).splitlines()[0][:200]})") from None


def load_model(path: str | Path, map_location: str | torch.device = "cpu"):
    """The LightningModule stored in ``path`` (its class must live in ``hvl``) and hvl's metadata."""
    from .module import HierarchicalVLM

    ckpt = read_checkpoint(path, map_location)
    meta = dict(ckpt.get("hvl", {}))
    mod, _, name = meta.get("class_path", "hvl.core.models.module.HierarchicalVLM").rpartition(".")
    if not mod.startswith("hvl."):
        raise HVLInputError(f"{path}: model class '{mod}.{name}' is outside hvl; refusing to import it")
    cls = getattr(importlib.import_module(mod), name)
    if not (isinstance(cls, type) and issubclass(cls, HierarchicalVLM)):
        raise HVLInputError(f"{path}: '{mod}.{name}' is not an hvl model")
    hparams = {k: v for k, v in ckpt.get("hyper_parameters", {}).items() if not k.startswith("_")}  # CLI bookkeeping
    model = cls(**hparams)
    model.on_load_checkpoint(ckpt)
    model.load_state_dict(ckpt["state_dict"])
    meta.setdefault("image_size", ckpt.get("datamodule_hyper_parameters", {}).get("image_size"))
    meta.setdefault("schedule", ckpt.get("datamodule_hyper_parameters", {}).get("schedule"))  # frames per level
    return model.to(map_location).eval(), meta


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file, synced, then renamed over the target.

    A process killed mid-write leaves the previous ``last.ckpt`` intact instead of a
    truncated one that ``--ckpt_path last`` would then fail to resume from.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
