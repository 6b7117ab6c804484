"""Placeholder until the command is built (see the open issue)."""
from __future__ import annotations

import argparse

from .schema import HVLInputError


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> None:
    raise HVLInputError("this command is not built yet")
