"""Notebooks shipped with hvl (package data of ``hvl.notebooks``, the repository's ``notebooks/``):
``hvl notebook`` lists them, ``hvl notebook copy clinical_evaluation [dir]`` writes one out and prints the
papermill command that runs it. A leaf: imports :mod:`hvl.core.errors`, :mod:`hvl.core.recipes` (the copy).
"""
from __future__ import annotations

import ast
import json
import shlex
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from .errors import HVLInputError
from .recipes import copy_shipped

__all__ = ["available", "copy_notebook", "list_notebooks", "parameters", "title"]

PACKAGE = "hvl.notebooks"


def available() -> dict[str, Traversable]:
    return dict(sorted((f.name[: -len(".ipynb")], f) for f in files(PACKAGE).iterdir() if f.name.endswith(".ipynb")))


def _cells(nb: Traversable) -> list[dict]:
    return json.loads(nb.read_text(encoding="utf-8"))["cells"]


def title(nb: Traversable) -> str:
    """The first markdown heading: what the notebook is for."""
    for cell in _cells(nb):
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return ""


def parameters(nb: Traversable) -> list[str]:
    """Names papermill can set (``-p NAME VALUE``): the assignments of the cell tagged ``parameters``."""
    for cell in _cells(nb):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse("".join(cell["source"]))
            return [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                    if isinstance(t, ast.Name)]
    return []


def list_notebooks() -> None:
    """``hvl notebook``: each shipped notebook's name and title, one a line."""
    for name, nb in available().items():
        print(f"{name}  {title(nb)}")


def copy_notebook(name: str, folder: str | Path = ".", force: bool = False) -> Path:
    """``hvl notebook copy``: ``<folder>/<name>.ipynb``, and the papermill command that runs it, printed."""
    notebooks = available()
    if name not in notebooks:
        raise HVLInputError(f"unknown notebook '{name}'; shipped notebooks: {', '.join(notebooks)}")
    nb = notebooks[name]
    dest = copy_shipped(nb, Path(folder) / f"{name}.ipynb", force)
    out = shlex.quote(str(dest.with_name(f"{name}_out.ipynb")))
    print(f"wrote {dest}; run it headless (needs `pip install 'hvl[notebook]'`), from the folder holding your data:\n"
          f"  papermill {shlex.quote(str(dest))} {out}\n"
          f"parameters (-p NAME VALUE; defaults in its `parameters` cell): {', '.join(parameters(nb))}")
    return dest
