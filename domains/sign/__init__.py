"""Sign domain: text ↔ sign-video retrieval (CiCo-style fine-grained similarity), How2Sign / PHOENIX-2014T readers.

Text hierarchy on the core's levels: gloss ↔ the segment that signs it (``clips`` / ``phases``,
``label`` = gloss, where timing is known as in the demo) and sentence (translation) ↔ the whole
sign video (video-level ``texts``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hvl.core.registry import Domain

from .how2sign import read_how2sign
from .phoenix import read_phoenix
from .pose_normalise import KEYPOINTS

PROMPTS_DIR = Path(__file__).parent / "prompts"


def _demo(out: str, seed: int = 0, **kw: Any) -> dict[str, Any]:
    from .demo import generate

    return generate(out, seed=seed, **kw)


plugin = Domain(name="sign", demo=_demo, readers={"how2sign": read_how2sign, "phoenix": read_phoenix},
                prompts_dir=PROMPTS_DIR, keypoints=KEYPOINTS,
                description="text <-> sign-video retrieval (R@1/5/10, MedR; fine-grained frame x word similarity)")

__all__ = ["plugin", "read_how2sign", "read_phoenix", "PROMPTS_DIR"]
