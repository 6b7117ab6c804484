"""``hvl probe <folder|manifest|video>``: the table of what hvl sees in each video; an unreadable video is an
error."""
from __future__ import annotations

import argparse

from .options import add_json_argument


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="a video folder, a manifest (.jsonl) or one video file")
    p.add_argument("--video-backend", choices=("auto", "decord", "pyav"), default="auto")
    p.add_argument("--image-size", type=int, help="decode size of the run (auto's choice can depend on it)")
    add_json_argument(p, "the rows")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> None:
    from ..data.probe import ProbeOptions, run_probe

    run_probe(ProbeOptions(source=args.source, video_backend=args.video_backend, image_size=args.image_size,
                           json=args.json, progress=not args.no_progress))
