"""Pretrained image-text pairs as hvl backbones: frames and texts into the model's own joint space.

A :class:`Backbone` gives per-frame image embeddings and per-text embeddings in one space (already
projected: CLIP's ``visual_projection`` / ``text_projection``, SigLIP's pooling heads, SurgVLP's
``global_embedder``), the model's logit scale (and bias), and the :class:`~hvl.core.data.transforms.Preprocess`
its frames need. The LightningModule builds every level's space on top of it, starting at identity, so
that at step 0 hvl scores exactly as the published model does.

Backbones are named by a spec string: a local HF directory (``/models/clip-vit-base-patch32``), or
``<kind>:<path>`` for a converted published checkpoint (``surgvlp:/models/PeskaVLP.pth``); kinds register
themselves in :data:`BACKBONES`.
"""
from __future__ import annotations

import importlib
import tempfile
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from ..data.transforms import Preprocess
from ..errors import HVLInputError
from .spec import HF_KIND, parse_model_spec

__all__ = ["BACKBONES", "TOKENIZER_FILE_NAMES", "Backbone", "BackboneOptions", "backbone_from_spec", "check_tokenizer_files",
           "load_backbone"]


class Backbone(nn.Module):
    """The interface every pretrained image-text pair implements."""

    kind: str = ""
    embed_dim: int
    preprocess: Preprocess
    init_logit_scale: float = 100.0      # multiplies cosine similarity (CLIP: exp(logit_scale))
    init_logit_bias: float | None = None  # SigLIP adds a bias before its sigmoid

    def image_features(self, pixels: Tensor) -> Tensor:
        """``[N, 3, H, W]`` preprocessed frames → ``[N, embed_dim]`` (projected, not normalised)."""
        raise NotImplementedError

    def text_features(self, texts: list[str]) -> Tensor:
        """``N`` texts → ``[N, embed_dim]`` (projected, not normalised)."""
        raise NotImplementedError

    def text_token_features(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """Per-token ``[N, L, embed_dim]`` and mask ``[N, L]`` for fine-grained similarity, where the model has them."""
        raise HVLInputError(f"backbone '{self.kind}' has no per-token text embeddings; "
                            "drop model.finegrained for this backbone")

    def lock(self, image_unlocked: int | None = None, text_unlocked: int | None = None) -> None:
        """Freeze all but the last ``image_unlocked`` vision blocks / ``text_unlocked`` text layers
        (None: all trainable; 0: the whole tower frozen), as open_clip's ``--lock-image-unlocked-groups``."""
        raise NotImplementedError

    def spec(self) -> dict[str, Any]:
        """What rebuilds this backbone without its source directory (config, tokenizer, preprocessing);
        ``spec()["kind"]`` names the module whose ``from_spec`` rebuilds it."""
        raise NotImplementedError

    def gradient_checkpointing(self) -> None:
        raise HVLInputError(f"backbone '{self.kind}' does not support gradient checkpointing")

    def train(self, mode: bool = True) -> Backbone:
        """Locked parts stay in eval mode: no dropout in a frozen tower (its cached text embeddings and fresh ones
        must agree) and no batch-norm statistics drifting under frozen weights."""
        super().train(mode)
        if mode:
            for m in self.modules():
                params = list(m.parameters())
                if m is not self and params and not any(p.requires_grad for p in params):
                    m.eval()
        return self

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def enable_checkpointing(model: nn.Module) -> None:
    """Activation (gradient) checkpointing of a transformers model, non-reentrant; transformers 5.x renamed the
    method (the old name warns), 4.x has only the old one."""
    kw = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kw)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kw)


# kind -> module defining ``load(path, **kwargs) -> Backbone``; imported on use (each pulls its own libraries)
BACKBONES: dict[str, str] = {HF_KIND: "hvl.core.models.hf_backbones", "surgvlp": "hvl.core.models.surgvlp"}


def load_backbone(spec: str, **kwargs: Any) -> Backbone:
    """``<kind>:<path>`` (e.g. ``surgvlp:/models/HecVL.pth``) or a local HF model directory (kind ``hf``)."""
    kind, path = (parsed := parse_model_spec(spec)).kind, parsed.path
    if kind not in BACKBONES:
        raise HVLInputError(f"--model '{spec}': unknown backbone kind '{kind}'; use a local HF model directory "
                            f"or one of {[k + ':<path>' for k in BACKBONES if k != HF_KIND]}")
    if not Path(path).exists():
        raise HVLInputError(f"--model '{spec}': {path} does not exist (hvl loads models offline: point it at a "
                            "local directory or checkpoint file)")
    return importlib.import_module(BACKBONES[kind]).load(path, **kwargs)


class BackboneOptions(BaseModel):
    """``model.backbone`` in a recipe."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="a local HF image-text model directory, or <kind>:<file> (e.g. surgvlp:HecVL.pth)")
    text_path: str | None = Field(None, description="text tower / tokenizer directory when separate")
    image_unlocked: int | None = Field(None, ge=0, description="trainable last vision blocks (0: frozen, None: all)")
    text_unlocked: int | None = Field(None, ge=0, description="trainable last text layers (0: frozen, None: all)")
    gradient_checkpointing: bool = False
    trust_remote_code: bool = False

    def load(self) -> Backbone:
        return load_backbone(self.path, text_path=self.text_path, trust_remote_code=self.trust_remote_code)

    def configure(self, bb: Backbone) -> None:
        bb.train()  # from_pretrained leaves models in eval mode; a trainable tower trains as it was trained
        bb.lock(self.image_unlocked, self.text_unlocked)
        if self.gradient_checkpointing:
            bb.gradient_checkpointing()


def backbone_from_spec(spec: dict[str, Any], source: str | Path = "checkpoint") -> Backbone:
    """The backbone a checkpoint stored (random weights: the checkpoint's state dict fills them)."""
    if not isinstance(spec, dict) or spec.get("kind") not in BACKBONES:
        kind = spec.get("kind") if isinstance(spec, dict) else None
        raise HVLInputError(f"{source}: names backbone kind {kind!r}; known: {sorted(BACKBONES)}")
    check_tokenizer_files(spec.get("tokenizer_files", {}), source)
    return importlib.import_module(BACKBONES[spec["kind"]]).from_spec(spec)


# What a tokenizer's ``save_pretrained`` writes (transformers' own file names, and every ``vocab_files_names``
# of the tokenizers hvl's backbones use): a checkpoint may store these and nothing else. A stored name is
# data from someone else's file; anything but one of these plain names could be a path out of the folder.
TOKENIZER_FILE_NAMES = frozenset({
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "chat_template.jinja", "chat_template.json", "vocab.txt", "vocab.json", "merges.txt",
})


def check_tokenizer_files(files: Any, source: str | Path = "checkpoint") -> dict[str, str]:
    """``files`` as a checkpoint stores them, refused unless every name is one of :data:`TOKENIZER_FILE_NAMES`."""
    if not isinstance(files, dict):
        raise HVLInputError(f"{source}: field 'tokenizer_files' is not a mapping of file name to text; "
                            "this checkpoint was not written by hvl (re-save it with `hvl fit`)")
    bad = [n for n in files if n not in TOKENIZER_FILE_NAMES or not isinstance(files[n], str)]
    if bad:
        shown = ", ".join(repr(str(n)[:80]) for n in bad[:3])
        raise HVLInputError(f"{source}: field 'tokenizer_files' holds {shown}{' ...' if len(bad) > 3 else ''}, which "
                            f"no tokenizer's save_pretrained writes (allowed: {sorted(TOKENIZER_FILE_NAMES)}); "
                            "refusing to load this checkpoint: it may try to write outside its folder")
    return files


def tokenizer_files(tokenizer: Any) -> dict[str, str]:
    """A tokenizer as the text of its ``save_pretrained`` files: what a checkpoint stores to rebuild it."""
    with tempfile.TemporaryDirectory() as d:
        tokenizer.save_pretrained(d)
        return {p.name: p.read_text(encoding="utf-8") for p in Path(d).iterdir()
                if p.is_file() and p.name in TOKENIZER_FILE_NAMES}


def tokenizer_from_files(files: dict[str, str], source: str | Path = "checkpoint") -> Any:
    from transformers import AutoTokenizer

    check_tokenizer_files(files, source)
    with tempfile.TemporaryDirectory() as d:
        for name, text in files.items():
            (Path(d) / name).write_text(text, encoding="utf-8")
        return AutoTokenizer.from_pretrained(d, local_files_only=True)
