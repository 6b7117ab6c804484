"""The procedures the demo can draw, by name."""
from __future__ import annotations

from hvl.core.errors import HVLInputError

from .cholecystectomy import CHOLECYSTECTOMY
from .hysterectomy import HYSTERECTOMY
from .spec import Procedure

__all__ = ["PROCEDURES", "get_procedure"]

PROCEDURES = ("cholecystectomy", "hysterectomy")


def get_procedure(procedure: str | Procedure | None) -> Procedure:
    """``cholecystectomy`` (Cholec80's phases, the default) or ``hysterectomy`` (AutoLaparo's phases)."""
    if procedure is None or procedure == "cholecystectomy":
        return CHOLECYSTECTOMY
    if isinstance(procedure, Procedure):
        return procedure
    if procedure == "hysterectomy":
        return HYSTERECTOMY
    raise HVLInputError(f"demo: unknown procedure '{procedure}'; use one of {list(PROCEDURES)}")
