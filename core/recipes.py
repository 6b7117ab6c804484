"""Recipes shipped with hvl, by name: ``--config surgical/demo_pretrain`` works wherever hvl is installed.

The repository keeps ``recipes/<domain>/<name>.yaml`` at its top level; the wheel carries the same files as
package data of ``hvl.recipes`` (pyproject.toml maps the folder, so there is no copy to keep in sync). A
``--config`` value that is an existing path is used as it is; one that is not, and has no file suffix, is
looked up among the shipped recipes (:func:`resolve_config_args`, applied by the CLI to every command).
Paths *inside* a recipe (data, checkpoints) stay relative to the working directory.

``hvl recipes`` lists them (the command each is for and its first-line comment), ``hvl recipes copy`` writes an
editable copy. A leaf: imports only :mod:`hvl.core.errors` and :mod:`hvl.core.io`.
"""
from __future__ import annotations

import sys
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import yaml

from .errors import HVLInputError
from .io import atomic_write_bytes

__all__ = ["available", "command_for", "copy_recipe", "copy_shipped", "describe", "list_recipes", "resolve_config",
           "resolve_config_args"]

PACKAGE = "hvl.recipes"
# The option that names a config: the module commands' --config, and LightningCLI's --config / -c.
CONFIG_FLAGS = ("--config", "-c")


def available() -> dict[str, Traversable]:
    """``<domain>/<name>`` -> the shipped file, sorted by name."""
    found = {f"{d.name}/{f.name.rsplit('.', 1)[0]}": f
             for d in files(PACKAGE).iterdir() if d.is_dir() and not d.name.startswith(("_", "."))
             for f in d.iterdir() if f.is_file() and f.name.endswith(".yaml")}
    return dict(sorted(found.items()))


def _looks_like_name(spec: str) -> bool:
    """A name has no file suffix and is not a path that exists (so a path always wins)."""
    return not Path(spec).exists() and not Path(spec).suffix


def resolve_config(spec: str) -> str:
    """``spec`` unchanged if it is a path (or looks like one), else the shipped recipe it names, as a path."""
    if not _looks_like_name(spec):
        return spec
    recipes = available()
    if spec not in recipes:
        raise HVLInputError(f"--config {spec}: no such file, and not a shipped recipe. Shipped recipes: "
                            f"{', '.join(recipes)} (`hvl recipes` says what each does); or give a path to a YAML file")
    return str(recipes[spec])


def resolve_config_args(argv: list[str]) -> list[str]:
    """``argv`` with the value of every ``--config X`` / ``--config=X`` / ``-c X`` resolved by :func:`resolve_config`."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg in CONFIG_FLAGS and i + 1 < len(out):
            out[i + 1] = resolve_config(out[i + 1])
        elif arg.startswith("--config="):
            out[i] = "--config=" + resolve_config(arg.split("=", 1)[1])
    return out


def describe(text: str) -> str:
    """A recipe's summary: its first line, which by convention is a comment saying what it does on what data."""
    first = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    return first.lstrip("#").strip() if first.startswith("#") else ""


def command_for(config: dict) -> str:
    """The hvl command a recipe is for, from the keys only that command's schema has."""
    if "trainer" in config or "model" in config:
        return "fit"
    for key, command in (("queries", "search-eval"), ("prompts", "zeroshot"), ("similarity", "retrieval")):
        if key in config:
            return command
    return "?"


def copy_shipped(source: Traversable, dest: Path, force: bool) -> Path:
    """Write ``source``'s bytes to ``dest`` atomically; an existing file is kept unless ``force``."""
    if dest.exists() and not force:
        raise HVLInputError(f"{dest}: already exists; pass --force to overwrite it, or name another file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dest, source.read_bytes())
    return dest


# ----------------------------------------------------------------- `hvl recipes`
def copy_recipe(name: str, dest: str | None = None, force: bool = False) -> Path:
    """``hvl recipes copy``: an editable copy of a shipped recipe (default ``./<domain>_<name>.yaml``; a folder:
    that file in it), and the command that runs it, printed."""
    recipes = available()
    if name not in recipes:
        raise HVLInputError(f"unknown recipe '{name}'; shipped recipes: {', '.join(recipes)}")
    default = name.replace("/", "_") + ".yaml"
    path = Path(dest) if dest else Path(default)
    if path.is_dir():
        path = path / default
    copy_shipped(recipes[name], path, force)
    command = command_for(yaml.safe_load(recipes[name].read_text(encoding="utf-8")) or {})
    print(f"wrote {path} (a copy of {name}); run it with: hvl {command} --config {path}")
    return path


def list_recipes() -> None:
    """``hvl recipes``: each shipped recipe's name, the command it is for and what it does, one a line."""
    recipes = available()
    width = max(map(len, recipes), default=0)
    for name, f in recipes.items():
        text = f.read_text(encoding="utf-8")
        command = command_for(yaml.safe_load(text) or {})
        sys.stdout.write(f"{name:<{width}}  hvl {command:<14}  {describe(text)}\n")
