"""The model options every evaluation command shares (torch-free: a command's ``--help`` stays instant)."""
from __future__ import annotations

__all__ = ["add_model_arguments"]


def add_model_arguments(p, ckpt_required: bool = False) -> None:
    """``--ckpt`` / ``--model`` / ``--text-model`` / ``--trust-remote-code`` for every evaluation command."""
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--ckpt", help="trained hvl checkpoint")
    g.add_argument("--model", help="pretrained image-text model used directly, no hvl training: a local HF directory "
                                   "(CLIP, SigLIP) or <kind>:<file> (e.g. surgvlp:/models/PeskaVLP.pth)")
    p.add_argument("--text-model", help="text tower / tokenizer directory for --model when separate")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow a model directory or checkpoint to run code it ships (off: such models are refused)")
