"""YouTube's auto-captions: a rolling two-line display read back to what was said, each word once, timed.

YouTube writes automatic captions as WebVTT in which every line is shown two or three times: a cue
holds the previous line (or a line of one space, its place) and then the new words, each behind a
``<00:00:01.234>`` timing tag and inside ``<c>…</c>``; a ~10 ms cue then repeats the finished line plain.
The text has no punctuation and no capitals. Read cue by cue, each spoken line would be two or three
narrations, and the word times (finer than the cues) would be lost.

1. A file is read this way when it has both signs of YouTube's rolling display: an inline timing tag
   (``<mm:ss.mmm>`` / ``<hh:mm:ss.mmm>``) in some cue, and a cue opening with a whitespace-only line or
   with the line the previous cue ended on. Karaoke-timed captions without the rolling display are
   ordinary captions (one cue, one text).
2. Whitespace-only payload lines are dropped: they hold the place of a line, they say nothing.
3. A line whose text equals the last line kept, and whose tags (if any) bring no time after that line's
   last word, is the rolling display showing it again: removed, counted (``caption_repeated_lines``); a
   cue of at most :data:`FLASH_SECONDS` holding nothing else is counted as ``caption_flash_cues``.
4. The other lines of a cue are new speech, read as one text. The words before its first tag start at
   the cue's start, the words after each tag at the tag's time; several words between two times share
   that interval evenly. A bracketed sound tag (``[Music]``) is one token. Times are kept in order and
   inside the cue, as WebVTT requires of timing tags.
5. Each cue with new speech becomes one cue (its first word's time to the cue's end) that carries its
   words with their times; :func:`hvl.core.data.prepare.clips.prepare_sentences` rebuilds sentences
   from them.
"""
from __future__ import annotations

import re
from collections import Counter

from .text import clean_text, parse_timestamp

__all__ = ["FLASH_SECONDS", "collapse", "is_rolling", "words_of"]

FLASH_SECONDS = 0.05
_STAMP = re.compile(r"<((?:\d+:)?\d{2}:\d{2}\.\d{3})>")
_TOKEN = re.compile(r"\[[^\]]*\]|\S+")


def is_rolling(cues: list[tuple[int, float, float, list[str]]]) -> bool:
    """Step 1: word timing tags and a rolling display."""
    if not any(_STAMP.search(line) for _, _, _, lines in cues for line in lines):
        return False
    previous = None
    for _, _, _, lines in cues:
        if lines and not lines[0].strip():
            return True
        shown = [clean_text(_STAMP.sub("", line), markup=True) for line in lines if line.strip()]
        if shown and previous is not None and shown[0] == previous and len(shown) > 1:
            return True
        previous = shown[-1] if shown else previous
    return False


def words_of(line: str, start: float, end: float) -> list[tuple[float, str]]:
    """(time, word) for one payload line whose first word starts at ``start`` (steps 4 and 5)."""
    parts = _STAMP.split(line)
    times, texts = [start], parts[0::2]
    for stamp in parts[1::2]:
        t = parse_timestamp(stamp)
        times.append(min(max(t if t is not None else times[-1], times[-1]), end))
    times.append(end)
    out = []
    for k, chunk in enumerate(texts):
        tokens = _TOKEN.findall(clean_text(chunk, markup=True))
        step = (times[k + 1] - times[k]) / len(tokens) if tokens else 0.0
        out += [(round(times[k] + i * step, 3), tok) for i, tok in enumerate(tokens)]
    return out


def collapse(cues: list[tuple[int, float, float, list[str]]], counts: Counter
             ) -> list[tuple[int, float, float, str, tuple[tuple[float, str], ...]]]:
    """Raw WebVTT cues → (line number, start, end, text, words) per cue with new speech (steps 2–5)."""
    out: list[tuple[int, float, float, str, tuple[tuple[float, str], ...]]] = []
    last_text, last_time = None, -1.0
    for n, start, end, lines in cues:
        fresh = []
        for line in lines:
            text = clean_text(_STAMP.sub("", line), markup=True)
            if not text:
                continue
            stamps = [parse_timestamp(s) or 0.0 for s in _STAMP.findall(line)]
            if text == last_text and max(stamps, default=-1.0) <= last_time:
                counts["caption_repeated_lines"] += 1
                continue
            fresh.append(line)
            last_text, last_time = text, max(stamps, default=start)
        words = words_of(" ".join(fresh), start, end) if fresh else []
        if words:
            out.append((n, words[0][0], end, " ".join(w for _, w in words), tuple(words)))
        elif end - start <= FLASH_SECONDS:
            counts["caption_flash_cues"] += 1
    return out
