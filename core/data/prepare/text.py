"""Cue text and timestamps: the two small things every transcript and chapter reader shares."""
from __future__ import annotations

import html
import re

__all__ = ["clean_text", "parse_timestamp"]

_TAG = re.compile(r"</?[^>\n]*>|\{\\[^}]*\}")  # <i>, <c.red>, <v Bob>, <00:01.000>, {\an8}
_SPACE = re.compile(r"\s+")


def clean_text(text: str, markup: bool = False) -> str:
    """Whitespace collapsed; for subtitle formats (``markup``) also tags and entities out: what a text
    encoder should see. Plain-text formats (CSV, JSON, description lines) keep '<' and '&' as written."""
    if markup:
        text = html.unescape(_TAG.sub("", text))
    return _SPACE.sub(" ", text).strip()


_TS = re.compile(r"^(?:(\d+):)?([0-5]?\d):([0-5]\d)(?:[.,](\d{1,3}))?$")


def parse_timestamp(s: str) -> float | None:
    """``HH:MM:SS,mmm``, ``HH:MM:SS.mmm``, ``MM:SS.mmm`` (hour-less WebVTT), ``M:SS``; None if none of them."""
    m = _TS.match(s.strip())
    if not m:
        return None
    h, mi, sec, frac = m.groups()
    return round(int(h or 0) * 3600 + int(mi) * 60 + int(sec) + (int(frac.ljust(3, "0")) / 1000 if frac else 0.0), 3)
