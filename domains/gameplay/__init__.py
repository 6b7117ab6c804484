"""gameplay domain (work in progress: see the open issue)."""
from __future__ import annotations

from typing import Any

from hvl.core.registry import Domain
from hvl.core.schema import HVLInputError


def _demo(out: str, seed: int = 0, **kw: Any) -> dict[str, Any]:
    raise HVLInputError("the gameplay demo is not built yet")


plugin = Domain(name="gameplay", demo=_demo, description="(in progress)")
