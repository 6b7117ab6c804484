"""Optional dependencies, grouped by job into the extras of pyproject.toml (``pip install 'hvl[search]'``).

The core install trains (`hvl fit`) and evaluates zero-shot (`hvl zeroshot`, `hvl demo surgical`); a command or
backend that needs more asks for it here, so that a missing package is one error naming the extra to install,
not an ImportError from deep inside a library. A leaf: imports only :mod:`hvl.core.errors`.
"""
from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from .errors import HVLInputError

__all__ = ["EXTRAS", "COMMAND_EXTRAS", "MissingExtraError", "require", "require_extras", "missing_modules"]

# extra -> the import names it provides (kept in step with [project.optional-dependencies] by tests/test_extras.py)
EXTRAS: dict[str, tuple[str, ...]] = {
    "search": ("faiss", "threadpoolctl"),
    "qdrant": ("qdrant_edge", "qdrant_client"),
    "serve": ("fastapi", "uvicorn", "python_multipart"),
    "gameplay": ("pymunk",),
    "sign": ("pose_format",),
    "notebook": ("papermill", "nbformat", "ipykernel", "matplotlib", "pandas"),
    "onnx": ("onnx", "onnxruntime", "onnxscript"),
}
# subcommand -> the extras it cannot run without (checked after its options parse, before it runs)
COMMAND_EXTRAS: dict[str, tuple[str, ...]] = {
    "index": ("search",),
    "search": ("search",),
    "search-eval": ("search",),
    "bugsearch-eval": ("search",),
    "serve": ("serve", "search"),
    "export": ("onnx",),
}


class MissingExtraError(HVLInputError):
    """An optional dependency is not installed; the message names the ``pip install 'hvl[…]'`` that brings it."""


def _install_hint(extras: list[str]) -> str:
    return f"pip install 'hvl[{','.join(extras)}]'"


def require(module: str, extra: str, needed_by: str = "") -> ModuleType:
    """``import module``, or one :class:`MissingExtraError` saying which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        # a module that is there but fails on a dependency of its own is a broken install, not a missing extra
        if e.name is not None and e.name.partition(".")[0] != module.partition(".")[0]:
            raise
        who = needed_by or f"this part of hvl ({module})"
        raise MissingExtraError(f"{who} needs the optional package {module!r} of the {extra!r} extra: "
                                f"{_install_hint([extra])}") from None


def missing_modules(extra: str) -> list[str]:
    """The import names of ``extra`` that are not installed (looked up, not imported: cheap)."""
    return [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]


def require_extras(extras: tuple[str, ...] | list[str], needed_by: str) -> None:
    """One :class:`MissingExtraError` listing every missing module of ``extras`` and the one install command."""
    gaps = {extra: missing for extra in extras if (missing := missing_modules(extra))}
    if gaps:
        names = ", ".join(m for ms in gaps.values() for m in ms)
        raise MissingExtraError(f"{needed_by} needs {names} (optional: the {' and '.join(map(repr, gaps))} "
                                f"extra{'s' if len(gaps) > 1 else ''}): {_install_hint(list(gaps))}")
