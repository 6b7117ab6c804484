"""Gameplay domain: text search for physics bugs in gameplay videos (GamePhysics-style).

Text hierarchy on the core's levels: ``clip`` = a 2-3 s moment ↔ the event in it
("the car sinks into the ground"); ``video`` = the whole clip ↔ its description (scene,
objects, what happens). Prompt file ``gameplay:bug_types`` classifies clips' frames into bug
types with ``hvl zeroshot``; ``hvl index`` / ``hvl search`` / ``hvl bugsearch-eval`` search them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hvl.core.registry import Domain

from .gamephysics import read_gamephysics

PROMPTS_DIR = Path(__file__).parent / "prompts"


def _demo(out: str, seed: int = 0, **kw: Any) -> dict[str, Any]:
    from .demo import generate

    return generate(out, seed=seed, **kw)


plugin = Domain(name="gameplay", demo=_demo, readers={"gamephysics": read_gamephysics}, prompts_dir=PROMPTS_DIR,
                description="gameplay bug search (GamePhysics-style): index videos, search by text, bug-type zero-shot",
                query_types=("bug", "simple", "compound"))

__all__ = ["plugin", "read_gamephysics", "PROMPTS_DIR"]
