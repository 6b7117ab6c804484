"""A self-contained HTML page: headings, paragraphs, tables and figures (PNG files, also embedded in the page)."""
from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hvl.core.io import atomic_write_bytes

from .plots import figure_png

__all__ = ["html_table", "write_report"]


def _fmt(v: Any) -> str:
    if v is None:  # undefined (a phase absent from every video), as NaN
        return "—"
    if isinstance(v, float):
        return "—" if math.isnan(v) else f"{v:.3f}"
    return html.escape(str(v))


def html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows of dicts as an HTML table; floats to 3 decimals, undefined (NaN) as '—'."""
    columns = list(columns or (rows[0].keys() if rows else []))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:13px}th,td{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}img{max-width:100%}
figure{margin:1em 0}figcaption{font-size:12px;color:#555}.meta td{text-align:left}"""


def write_report(out_dir: str | Path, title: str, blocks: Sequence[tuple], figures: Mapping[str, Any],
                 html_name: str = "report.html") -> dict[str, Any]:
    """PNG per figure plus one self-contained HTML page (figures embedded as data URIs, linked to their PNGs).

    ``blocks`` are ``("h2", text)``, ``("p", text)``, ``("table", rows[, columns])``,
    ``("html", raw)`` or ``("figure", name[, caption])``. Every file is written atomically and
    the HTML last, so a report that exists refers only to figures that are complete.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pngs: dict[str, bytes] = {}
    paths: dict[str, Path] = {}
    for name, fig in figures.items():
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
            raise ValueError(f"figure name {name!r} must be a plain file name (letters, digits, _ . -)")
        pngs[name] = fig if isinstance(fig, bytes) else figure_png(fig)
        paths[name] = out / f"{name}.png"
        atomic_write_bytes(paths[name], pngs[name])
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for block in blocks:
        kind = block[0]
        if kind in ("h2", "h3", "p"):
            parts.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "html":
            parts.append(block[1])
        elif kind == "table":
            parts.append(html_table(block[1], block[2] if len(block) > 2 else None))
        elif kind == "figure":
            name = block[1]
            if name not in pngs:
                raise ValueError(f"report block refers to figure {name!r}, which was not given")
            data = base64.b64encode(pngs[name]).decode("ascii")
            cap = f"<figcaption>{html.escape(block[2])}</figcaption>" if len(block) > 2 else ""
            parts.append(f"<figure><a href='{name}.png'><img src='data:image/png;base64,{data}' "
                         f"alt='{name}.png'></a>{cap}</figure>")
        else:
            raise ValueError(f"unknown report block kind {kind!r}")
    parts.append("</body></html>")
    report = out / html_name
    atomic_write_bytes(report, "\n".join(parts).encode("utf-8"))
    return {"html": report, "figures": paths}
