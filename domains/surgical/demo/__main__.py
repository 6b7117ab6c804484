"""``python -m hvl.domains.surgical.demo OUT``: the demo from the command line (``--raw-layout``: for
``hvl prepare``)."""
from __future__ import annotations

import argparse
import json

from .dataset import generate
from .procedures import PROCEDURES


def main(argv: list[str] | None = None) -> None:
    """``python -m hvl.domains.surgical.demo OUT --raw-layout``: the demo as raw files for ``hvl prepare``."""
    p = argparse.ArgumentParser(prog="python -m hvl.domains.surgical.demo", description=main.__doc__)
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--raw-layout", action="store_true", help="subtitles, chapters, abstracts instead of manifests")
    p.add_argument("--videos", type=int, nargs=3, default=[16, 2, 6], metavar=("TRAIN", "VAL", "TEST"))
    p.add_argument("--preset", default="default", help="default | realistic (see hvl.domains.surgical.presets)")
    p.add_argument("--procedure", default="cholecystectomy", help=" | ".join(PROCEDURES))
    a = p.parse_args(argv)
    n_train, n_val, n_test = a.videos
    print(json.dumps(generate(a.out, seed=a.seed, n_train=n_train, n_val=n_val, n_test=n_test,
                              raw_layout=a.raw_layout, preset=a.preset, procedure=a.procedure), indent=2))


if __name__ == "__main__":
    main()
