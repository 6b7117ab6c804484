"""``hvl notebook [list | copy NAME [DIR]]``: the shipped notebooks, or one written out to run with papermill."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action")
    sub.add_parser("list", help="list the shipped notebooks (the default)")
    c = sub.add_parser("copy", help="write a shipped notebook into a folder, to run with papermill or Jupyter")
    c.add_argument("name", help="e.g. clinical_evaluation (see `hvl notebook`)")
    c.add_argument("dir", nargs="?", default=".", help="folder to write <name>.ipynb into (default: here)")
    c.add_argument("--force", action="store_true", help="overwrite an existing file")


def run(args: argparse.Namespace) -> None:
    from ..notebooks import copy_notebook, list_notebooks

    if args.action == "copy":
        copy_notebook(args.name, args.dir, force=args.force)
    else:
        list_notebooks()
