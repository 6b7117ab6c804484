"""A :class:`~hvl.core.inference.timeline.Timeline` in the formats users' tools read, and readers back.

``hvl predict --format NAME`` (repeatable) writes, per video, what :func:`writer` returns for ``NAME`` into that
video's output folder. The contract of each format module: a dict ``WRITERS`` mapping format names to
``write(timeline, folder) -> Path`` (one file per video, written atomically through :mod:`hvl.core.io`), and
readers back that return timelines (or labels hvl's readers take), named in the module's docstring.
Modules are imported only when their format is asked for (some need an extra).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from ..timeline import Timeline

__all__ = ["FORMATS", "writer"]

# format name -> module (in this package) that writes it
FORMATS = {"json": "tabular", "csv": "tabular", "frames-csv": "tabular", "cholec80": "cholec80",
           "label-studio": "label_studio", "fiftyone": "fiftyone"}


def writer(name: str) -> Callable[[Timeline, Path], Path]:
    """The writer of format ``name`` (one of :data:`FORMATS`)."""
    if name not in FORMATS:
        raise ValueError(f"unknown timeline format {name!r}; choose from {sorted(FORMATS)}")
    return importlib.import_module(f"{__name__}.{FORMATS[name]}").WRITERS[name]
