"""The one error type a user is meant to read, and the formatting of pydantic errors into it.

A leaf: every part of hvl may import it, it imports nothing of hvl.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

__all__ = ["HVLInputError", "format_validation_error"]


class HVLInputError(ValueError):
    """Bad user input: the message names the file, the place in it and the fix."""


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def format_validation_error(err: ValidationError, file: str | Path, line: int | None = None) -> str:
    where = f"{file}" + (f", line {line}" if line is not None else "")
    msgs = [f"  field '{_loc(e['loc'])}': {e['msg']} (got {e.get('input')!r:.80})" for e in err.errors()]
    return f"{where}: invalid entry\n" + "\n".join(msgs)
