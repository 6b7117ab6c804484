"""What ``hvl prepare`` built, in numbers a person checks before training on it.

The same dictionary becomes ``report.json``, ``report.html`` and the terminal table. It holds nothing
that changes between identical runs (no clock, no cache hits), so re-runs are byte-identical. Texts in it
are cut to :data:`SHOWN_CHARS` characters: it is read by a person, and its size must not follow the input's.
"""
from __future__ import annotations

import html
import random
from collections import Counter
from typing import Any

from ..schema import VideoRecord
from .clips import normalise

__all__ = ["SHOWN_CHARS", "render_html", "render_table", "summarise"]

SHOWN_CHARS = 300


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _words(texts: list[str]) -> float:
    return round(sum(len(t.split()) for t in texts) / len(texts), 2) if texts else 0.0


def _covered(rec: VideoRecord) -> float:
    """Seconds of the video inside at least one clip window."""
    total, cur = 0.0, None
    for c in sorted(rec.clips, key=lambda c: c.start):
        if cur and c.start <= cur[1]:
            cur[1] = max(cur[1], c.end)
        else:
            if cur:
                total += cur[1] - cur[0]
            cur = [c.start, c.end]
    return total + (cur[1] - cur[0] if cur else 0.0)


def _split_stats(recs: list[VideoRecord]) -> dict[str, Any]:
    clips = [c for r in recs for c in r.clips]
    phases = [p for r in recs for p in r.phases]
    seconds = sum(r.duration or 0.0 for r in recs)
    children = [sum(p.start <= (c.start + c.end) / 2 < p.end for c in r.clips) for r in recs for p in r.phases]
    per_clip = Counter(len(set(c.texts)) for c in clips)
    return {
        "videos": len(recs), "hours": round(seconds / 3600, 4), "clips": len(clips), "phases": len(phases),
        "video_texts": sum(len(r.texts) for r in recs), "videos_with_text": sum(bool(r.texts) for r in recs),
        "distinct_texts_per_clip": {str(k): v for k, v in sorted(per_clip.items())},
        "mean_distinct_texts_per_clip": round(sum(k * v for k, v in per_clip.items()) / len(clips), 3) if clips else 0,
        "clip_text_coverage": round(sum(_covered(r) for r in recs) / seconds, 4) if seconds else 0.0,
        "words": {"clip": _words([t for c in clips for t in dict.fromkeys(c.texts)]),
                  "phase": _words([p.text for p in phases]), "video": _words([t for r in recs for t in r.texts])},
        "phases_without_children": sum(k == 0 for k in children),
        "mean_children_per_phase": round(sum(children) / len(children), 2) if children else 0,
    }


def _samples(recs: list[VideoRecord], seed: int, n: int = 3) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(seed)
    clips = [(r.video_id, c) for r in recs for c in r.clips]
    phases = [(r.video_id, p) for r in recs for p in r.phases]
    pick = lambda xs: [xs[i] for i in sorted(rng.sample(range(len(xs)), min(n, len(xs))))]
    return {
        "clip": [{"video_id": v, "start": c.start, "end": c.end, "texts": [_cut(t) for t in c.texts]}
                 for v, c in pick(clips)],
        "phase": [{"video_id": v, "start": p.start, "end": p.end, "text": _cut(p.text)} for v, p in pick(phases)],
        "video": [{"video_id": r.video_id, "texts": [_cut(t) for t in r.texts],
                   "children": [_cut(p.text) for p in r.phases][:8]} for r in pick([r for r in recs if r.texts])],
    }


def summarise(splits: dict[str, list[VideoRecord]], counts: Counter, problems: list[dict[str, str]],
              config: dict[str, Any], layout: dict[str, Any], seed: int) -> dict[str, Any]:
    all_recs = [r for recs in splits.values() for r in recs]
    top = Counter(normalise(t) for r in all_recs for c in r.clips for t in dict.fromkeys(c.texts))
    levels = ["clip"] + (["phase"] if any(r.phases for r in all_recs) else []) + (
        ["video"] if any(r.texts for r in all_recs) else [])
    advice = []
    if "phase" not in levels:
        advice.append("no chapters / key steps: there is no phase level; drop 'phase' from data.schedule and "
                      "model.levels (and from loss_weights) in the recipe")
    if "video" not in levels:
        advice.append("no abstracts: there is no video level; drop 'video' from data.schedule and model.levels")
    for split in ("train", "val"):
        for lv in levels:
            n = {"clip": "clips", "phase": "phases", "video": "videos_with_text"}[lv]
            stats = _split_stats(splits.get(split, []))
            if split in splits and stats[n] < 2:
                advice.append(f"split '{split}' has {stats[n]} {lv} sample(s); contrastive training needs >= 2")
    return {
        "layout": layout, "config": config, "levels": levels, "advice": advice,
        "splits": {s: _split_stats(recs) for s, recs in splits.items()},
        "total": _split_stats(all_recs),
        "counts": dict(sorted(counts.items())),
        "problems": {"count": len(problems), "by_kind": dict(sorted(Counter(p["kind"] for p in problems).items())),
                     "first": problems[:50]},
        "top_clip_texts": [{"text": _cut(t), "count": c}
                           for t, c in sorted(top.items(), key=lambda x: (-x[1], x[0]))[:10]],
        "samples": _samples(all_recs, seed),
    }


_COLS = [("videos", "videos"), ("hours", "hours"), ("clips", "clips"), ("phases", "phases"),
         ("video_texts", "video texts"), ("mean_distinct_texts_per_clip", "texts/clip"),
         ("clip_text_coverage", "covered")]


def _rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, st in [*report["splits"].items(), ("total", report["total"])]:
        rows.append([name] + [f"{st[k]:.1%}" if k == "clip_text_coverage" else str(st[k]) for k, _ in _COLS])
    return rows


_NOT_DROPS = ("cues_read", "extra_positives", "padded_positives", "overlapping_cues")


def render_table(report: dict[str, Any]) -> str:
    head = ["split"] + [h for _, h in _COLS]
    rows = _rows(report)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    lines = [fmt(head), "  ".join("-" * w for w in widths), *map(fmt, rows)]
    w = report["total"]["words"]
    lines.append(f"words per text: clip {w['clip']}, phase {w['phase']}, video {w['video']}; "
                 f"levels: {', '.join(report['levels'])}")
    dropped = {k: v for k, v in report["counts"].items() if v and k not in _NOT_DROPS}
    if dropped:
        lines.append("dropped / repaired: " + ", ".join(f"{k} {v}" for k, v in dropped.items()))
    if report["counts"].get("overlapping_cues"):
        lines.append(f"overlapping cues (legal in WebVTT / SubRip, kept): {report['counts']['overlapping_cues']}")
    if report["problems"]["count"]:
        lines.append(f"warnings: {report['problems']['by_kind']} (listed in report.json)")
    if report["layout"].get("videos_left_out"):
        lines.append(f"left out because of a problem: {', '.join(report['layout']['videos_left_out'])}")
    lines += [f"note: {a}" for a in report["advice"]]
    if report["top_clip_texts"]:
        lines.append("most frequent clip texts: " + "; ".join(f"{t['count']}x {t['text'][:40]!r}"
                                                          for t in report["top_clip_texts"][:3]))
    return "\n".join(lines)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    e = lambda x: html.escape(str(x))
    return ("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows) + "</table>")


def render_html(report: dict[str, Any]) -> str:
    """One self-contained page (no scripts, nothing fetched); every text is escaped."""
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>hvl prepare report</title><style>"
             "body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
             ".note{background:#fff4d6;padding:.5em}</style></head><body>",
             f"<h1>hvl prepare: {e(str(report['layout'].get('root', '')))}</h1>",
             f"<p>layout: {e(str(report['layout'].get('kind')))}; levels: {e(', '.join(report['levels']))}</p>"]
    parts += [f"<p class='note'>{e(a)}</p>" for a in report["advice"]]
    parts.append("<h2>Splits</h2>" + _table(["split"] + [h for _, h in _COLS], _rows(report)))
    parts.append("<h2>Words per text</h2>" + _table(["split", "clip", "phase", "video"], [
        [s, st["words"]["clip"], st["words"]["phase"], st["words"]["video"]]
        for s, st in [*report["splits"].items(), ("total", report["total"])]]))
    parts.append("<h2>Dropped, merged, repaired</h2>" + _table(["what", "count"], list(report["counts"].items())))
    parts.append("<h2>Most frequent clip texts</h2><p>ASR boilerplate (greetings, 'thank you for watching') "
                 "shows up here.</p>" + _table(["count", "text"], [[t["count"], t["text"]]
                                                                   for t in report["top_clip_texts"]]))
    parts.append(f"<h2>Problems ({report['problems']['count']})</h2>"
                 + _table(["kind", "where", "message"], [[p["kind"], p["where"], p["message"]]
                                                        for p in report["problems"]["first"]]))
    s = report["samples"]
    parts.append("<h2>Samples</h2><h3>clip</h3>" + _table(["video", "start", "end", "texts"], [
        [c["video_id"], c["start"], c["end"], " | ".join(c["texts"])] for c in s["clip"]]))
    parts.append("<h3>phase</h3>" + _table(["video", "start", "end", "text"], [
        [p["video_id"], p["start"], p["end"], p["text"]] for p in s["phase"]]))
    parts.append("<h3>video</h3>" + _table(["video", "abstract", "chapters"], [
        [v["video_id"], " | ".join(v["texts"]), " | ".join(v["children"])] for v in s["video"]]))
    return "\n".join(parts) + "\n</body></html>\n"
