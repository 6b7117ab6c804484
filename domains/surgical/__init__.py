"""Surgical domain: zero-shot surgical phase recognition (Cholec80, AutoLaparo), HecVL text hierarchy."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hvl.core.registry import Domain

from .autolaparo import read_autolaparo
from .cholec80 import read_cholec80
from .phases import AUTOLAPARO_PHASES, CHOLEC80_PHASES

PROMPTS_DIR = Path(__file__).parent / "prompts"


def _demo(out: str, seed: int = 0, **kw: Any) -> dict[str, Any]:
    from .demo import generate

    return generate(out, seed=seed, **kw)


plugin = Domain(name="surgical", demo=_demo, readers={"cholec80": read_cholec80, "autolaparo": read_autolaparo},
                prompts_dir=PROMPTS_DIR, has_presets=True,
                description="zero-shot surgical phase recognition (Cholec80, AutoLaparo; accuracy / macro-F1 / Jaccard)")

__all__ = ["AUTOLAPARO_PHASES", "CHOLEC80_PHASES", "PROMPTS_DIR", "plugin", "read_autolaparo", "read_cholec80"]
