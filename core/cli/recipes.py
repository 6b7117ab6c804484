"""``hvl recipes [list | copy NAME [DEST]]``: the shipped recipes (``--config <domain>/<name>``), or an editable
copy of one."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = ("Run one by name: `hvl fit --config surgical/demo_pretrain`. Paths inside a recipe (data, "
                "checkpoints) are relative to the working directory.")
    sub = p.add_subparsers(dest="action")
    sub.add_parser("list", help="list the shipped recipes (the default)")
    c = sub.add_parser("copy", help="write an editable copy of a shipped recipe")
    c.add_argument("name", help="e.g. surgical/demo_pretrain (see `hvl recipes`)")
    c.add_argument("dest", nargs="?", help="file or existing folder (default: ./<domain>_<name>.yaml)")
    c.add_argument("--force", action="store_true", help="overwrite an existing file")


def run(args: argparse.Namespace) -> None:
    from ..recipes import copy_recipe, list_recipes

    if args.action == "copy":
        copy_recipe(args.name, args.dest, force=args.force)
    else:
        list_recipes()
