"""A kitchen domain for hvl: recognise cooking steps zero-shot."""
from pathlib import Path

from hvl.core.registry import Domain


def _demo(out: str, seed: int = 0, **kw):
    from .demo import generate  # numpy and the video writer: imported when `hvl demo kitchen` runs

    return generate(out, seed=seed, **kw)


def add_demo_arguments(p) -> None:
    """The options of `hvl demo kitchen` beyond --out and --seed; their values reach `generate` as keywords."""
    p.add_argument("--train-videos", type=int, metavar="N", help="videos in the training split (default 6)")


plugin = Domain(name="kitchen", demo=_demo, prompts_dir=Path(__file__).parent / "prompts",
                add_demo_arguments=add_demo_arguments,
                description="cooking steps (chop, stir, plate), recognised zero-shot")
