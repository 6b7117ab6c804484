"""Which model a command uses: an hvl checkpoint (``--ckpt``) or a pretrained image-text model (``--model``), and
the one reading of a pretrained model's spec string, ``<kind>:<path>`` or a local HF model directory.

Torch-free, so that a command's options can be turned into a :class:`ModelSource` without loading anything.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["HF_KIND", "ModelSource", "ModelSpec", "parse_model_spec"]

HF_KIND = "hf"  # a local transformers directory: the spec is the path itself


@dataclass(frozen=True)
class ModelSpec:
    kind: str
    path: str


def parse_model_spec(spec: str | Path) -> ModelSpec:
    """``<kind>:<path>`` (``surgvlp:/models/HecVL.pth``), or a path (kind ``hf``). A path that exists is a path
    even with a colon in it, and a one-letter kind is a Windows drive (``C:\\models``), not a kind."""
    s = str(spec)
    kind, sep, path = s.partition(":")
    if not sep or len(kind) == 1 or Path(s).exists():
        return ModelSpec(HF_KIND, s)
    return ModelSpec(kind, path)


@dataclass(frozen=True)
class ModelSource:
    """``--ckpt`` / ``--model`` / ``--text-model`` / ``--trust-remote-code`` of every command that takes a model.
    Both empty: the command's default (the model an index was built with), where it has one."""

    ckpt: str | None = None
    model: str | None = None
    text_model: str | None = None
    trust_remote_code: bool = False

    @property
    def name(self) -> str | None:
        """What a result records as its model: the checkpoint or the pretrained model's spec."""
        return self.ckpt or self.model
