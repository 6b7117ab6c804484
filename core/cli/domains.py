"""``hvl domains``: the installed domains and what each is for."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> None:
    from ..registry import describe_domains

    describe_domains()
