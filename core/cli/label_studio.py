"""``hvl label-studio config --prompts P``: the labelling config of a Label Studio project for `hvl predict --format
label-studio` tasks; ``hvl label-studio manifest EXPORT --out M``: a Label Studio JSON export (the corrected
timelines) as the manifest `hvl zeroshot` and `hvl adapt --train` read."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", required=True, metavar="{config,manifest}")
    config = actions.add_parser("config", help="the project's labelling config (XML) for a prompt file's classes")
    config.add_argument("--prompts", required=True,
                        help="prompt file whose classes the timeline offers (path or <domain>:<name>)")
    config.add_argument("--out", required=True, help="the XML file to write")
    manifest = actions.add_parser(
        "manifest", help="a Label Studio JSON export -> a manifest whose phases are the corrected labels",
        description="Per task: its latest submitted annotation, else its latest prediction. A task that cannot be "
                    "read is reported (exit status 2); the manifest holds the others.")
    manifest.add_argument("export", help="the project's Export -> JSON file")
    manifest.add_argument("--out", required=True, help="the manifest to write (.jsonl)")
    manifest.add_argument("--frame-rate", type=float, metavar="FPS",
                          help="frame rate of tasks that do not carry one (tasks hvl wrote carry theirs)")


def run(args: argparse.Namespace) -> None:
    from ..data.schema import load_prompt_file
    from ..errors import HVLInputError
    from ..inference.formats.label_studio import export_to_manifest, labeling_config
    from ..io import atomic_write_bytes
    from ..registry import resolve_prompt_file

    if args.action == "config":
        xml = labeling_config([c.name for c in load_prompt_file(resolve_prompt_file(args.prompts)).classes])
        atomic_write_bytes(Path(args.out), (xml + "\n").encode())
        print(f"wrote {args.out}")
        return
    path, problems = export_to_manifest(args.export, args.out, frame_rate=args.frame_rate)
    print(f"wrote {path}")
    if problems:
        raise HVLInputError(f"{len(problems)} task(s) of {args.export} could not be read (the manifest holds the "
                            "others):\n" + "\n".join(problems))
