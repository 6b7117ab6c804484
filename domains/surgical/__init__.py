"""Surgical domain: zero-shot surgical phase recognition (Cholec80-style), HecVL text hierarchy."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hvl.core.registry import Domain

from .cholec80 import read_cholec80
from .phases import CHOLEC80_PHASES

PROMPTS_DIR = Path(__file__).parent / "prompts"


def _demo(out: str, seed: int = 0, **kw: Any) -> dict[str, Any]:
    from .demo import generate

    return generate(out, seed=seed, **kw)


plugin = Domain(name="surgical", demo=_demo, readers={"cholec80": read_cholec80}, prompts_dir=PROMPTS_DIR,
                description="zero-shot surgical phase recognition (Cholec80 phases; accuracy / macro-F1 / Jaccard)")

__all__ = ["plugin", "read_cholec80", "CHOLEC80_PHASES", "PROMPTS_DIR"]
