"""``hvl probe <folder|manifest|video>``: the table of what hvl sees in each video (:mod:`.probe`), printed and
optionally written as JSON; an unreadable video is an error."""
from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="a video folder, a manifest (.jsonl) or one video file")
    p.add_argument("--video-backend", choices=("auto", "decord", "pyav"), default="auto")
    p.add_argument("--image-size", type=int, help="decode size of the run (auto's choice can depend on it)")
    p.add_argument("--json", help="also write the rows here")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from ..errors import HVLInputError
    from ..io import write_json
    from .probe import probe
    from .records import format_probe_table

    size = (args.image_size, args.image_size) if args.image_size else None
    rows = probe(args.source, args.video_backend, size, progress=not args.no_progress)
    print(format_probe_table(rows))
    if args.json:
        print(f"wrote {write_json(args.json, {'source': str(args.source), 'videos': rows})}")
    bad = [r for r in rows if "error" in r]
    if bad:
        raise HVLInputError(f"{len(bad)} of {len(rows)} video(s) unreadable, first: {bad[0]['path']}: "
                            f"{bad[0]['error']}")
    sys.stdout.flush()
    return rows
