"""PEP 562 lazy exports, so that ``import hvl.core.<pkg>.<module>`` (and ``hvl --help``) does not pay for
torch, Lightning and MONAI in sibling modules it does not use."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``<package>.<exports[name]>`` on first access of ``name``."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    return __getattr__
