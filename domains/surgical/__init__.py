"""Surgical domain: zero-shot surgical phase recognition (Cholec80, AutoLaparo), HecVL text hierarchy."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hvl.core.registry import Domain

from .autolaparo import read_autolaparo
from .cholec80 import read_cholec80
from .phases import AUTOLAPARO_PHASES, CHOLEC80_PHASES

PROMPTS_DIR = Path(__file__).parent / "prompts"


def _demo(out: str, seed: int = 0, split_sizes: list[int] | None = None, **kw: Any) -> dict[str, Any]:
    from .demo import generate

    if split_sizes is not None:
        kw.update(zip(("n_train", "n_val", "n_test"), split_sizes, strict=True))
    return generate(out, seed=seed, **kw)


def add_demo_arguments(p: Any) -> None:
    """The options of ``hvl demo surgical`` (values checked by :func:`.demo.generate`, which names the known ones)."""
    p.add_argument("--preset", help="how hard the demo is: default | realistic (look-alike phases, sparse, off-topic "
                                    "and lagged narration) | realistic_centre_b (realistic, another hospital's look) | long "
                                    "(20-30 min procedures at 1 fps, 32 px, whose abstracts count bleeding episodes)")
    p.add_argument("--procedure", help="the operation drawn: cholecystectomy (Cholec80's phases, default) | "
                                       "hysterectomy (AutoLaparo's)")
    p.add_argument("--raw-layout", action="store_true",
                   help="write the texts as subtitle, chapter and abstract files instead of manifests: the input of "
                        "`hvl prepare`")
    p.add_argument("--split-sizes", type=int, nargs=3, metavar=("TRAIN", "VAL", "TEST"),
                   help="videos per split (default 16 2 6)")


plugin = Domain(name="surgical", demo=_demo, readers={"cholec80": read_cholec80, "autolaparo": read_autolaparo},
                prompts_dir=PROMPTS_DIR, add_demo_arguments=add_demo_arguments,
                description="zero-shot surgical phase recognition (Cholec80, AutoLaparo; accuracy / macro-F1 / Jaccard)")

__all__ = ["AUTOLAPARO_PHASES", "CHOLEC80_PHASES", "PROMPTS_DIR", "plugin", "read_autolaparo", "read_cholec80"]
