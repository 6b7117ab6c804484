"""Transcript readers: SubRip, WebVTT, Whisper / WhisperX JSON and PeskaVLP's ``start,end,text`` CSV.

Hand-written rather than taken from ``srt`` / ``webvtt-py`` / ``pysubs2``: every error and every warning has
to name the line a person must fix, and those libraries drop line numbers; webvtt-py 0.6 also skips a cue
with a broken timing line without a word, and pysubs2 1.8 takes YouTube's ``<00:00:03.120>`` word tags for
timing lines. Each reader returns :class:`Cue` objects in file order (ordering and overlap are checked
later, under the user's policy, not silently repaired here).

What is refused, whatever the format: a time that is negative or not finite, and a cue longer than
:data:`MAX_CUE_CHARS` (a narration is a sentence or two; a megabyte "cue" is a broken or hostile file, and
carrying it on costs minutes and gigabytes). Errors quote at most :data:`QUOTE_CHARS` characters of input.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ...errors import HVLInputError
from .autocaptions import collapse, is_rolling
from .text import clean_text, parse_timestamp

__all__ = [
    "MAX_CUE_CHARS",
    "QUOTE_CHARS",
    "TRANSCRIPT_SUFFIXES",
    "Cue",
    "check_length",
    "check_time",
    "clean_text",
    "parse_csv",
    "parse_srt",
    "parse_timestamp",
    "parse_vtt",
    "parse_whisper_json",
    "quote",
    "read_text",
    "read_transcript",
]

TRANSCRIPT_SUFFIXES = (".srt", ".vtt", ".json", ".csv")
MAX_CUE_CHARS = 10_000
QUOTE_CHARS = 80


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters with an ellipsis: what an error may echo of the input."""
    text = repr(value[: limit + 1] if isinstance(value, (str, list, tuple)) else value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_time(value: float, where: str, field: str) -> float:
    """Times are finite seconds from the start of the video."""
    if not math.isfinite(value) or value < 0:
        raise HVLInputError(f"{where}: field '{field}' is {value}; a time must be a finite number of seconds "
                            ">= 0 from the start of the video")
    return value


def check_length(text: str, where: str, what: str = "cue text") -> str:
    if len(text) > MAX_CUE_CHARS:
        raise HVLInputError(f"{where}: {what} is {len(text):,} characters ({quote(text, 40)}), over the limit of "
                            f"{MAX_CUE_CHARS:,}; a cue holds what is said in a few seconds: split it into timed cues")
    return text


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str
    file: str
    where: str  # "line 12" or "segments[3]": what an error message points at
    words: tuple[tuple[float, str], ...] = ()  # (start, word) where the format times each word

    @property
    def at(self) -> str:
        return f"{self.file}, {self.where}"


def read_text(path: str | Path) -> str:
    """UTF-8 with or without a BOM, any line ending; anything else is an error naming the file."""
    path = Path(path)
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise HVLInputError(f"{path}: UTF-16 text; save the file as UTF-8")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise HVLInputError(f"{path}, line {line}: not UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start}); "
                            "save the file as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _blocks(text: str) -> list[tuple[int, list[str]]]:
    """Runs of non-blank lines with the 1-based number of their first line (a missing final blank line is fine)."""
    out, cur, first = [], [], 0
    for n, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            if not cur:
                first = n
            cur.append(line)
        elif cur:
            out.append((first, cur))
            cur = []
    if cur:
        out.append((first, cur))
    return out


def _timing(line: str, path: Path, n: int, fmt: str) -> tuple[float, float]:
    left, _, right = line.partition("-->")
    start = parse_timestamp(left)
    end_tok = right.strip().split()  # WebVTT cue settings follow the end time
    end = parse_timestamp(end_tok[0]) if end_tok else None
    if start is None or end is None:
        raise HVLInputError(f"{path}, line {n}: bad {fmt} timing {quote(line.strip())}; "
                            "expected e.g. '00:01:02,500 --> 00:01:04,000'")
    return start, end


def parse_srt(path: str | Path) -> list[Cue]:
    path = Path(path)
    cues = []
    for first, lines in _blocks(read_text(path)):
        i = 1 if lines[0].strip().isdigit() and len(lines) > 1 else 0
        if "-->" not in lines[i]:
            raise HVLInputError(f"{path}, line {first + i}: expected a SubRip timing line "
                                f"('00:00:01,000 --> 00:00:02,000'), got {quote(lines[i].strip())}")
        start, end = _timing(lines[i], path, first + i, "SubRip")
        text = check_length(" ".join(lines[i + 1:]), f"{path}, line {first + i}")
        cues.append(Cue(start, end, clean_text(text, markup=True), str(path), f"line {first + i}"))
    return cues


_VTT_SIGNATURE = re.compile(r"WEBVTT(?:[ \t].*)?$")
_VTT_SKIP = re.compile(r"(?:NOTE|STYLE|REGION)(?:[ \t]|$)")


def _vtt_cues(path: Path) -> list[tuple[int, float, float, list[str]]]:
    """(timing line number, start, end, payload lines as written) per cue, as the WebVTT parsing algorithm
    splits the file:

    1. The first line is ``WEBVTT``, alone or followed by a space or tab and anything.
    2. The header (``Kind: captions``, ``Language: en``, ...) runs to the first empty line, or to the
       first line holding ``-->``; it carries no cue.
    3. Blocks are separated by *empty* lines only: a line of spaces (YouTube's auto-captions open most
       cues with one) belongs to the payload. ``NOTE``, ``STYLE`` and ``REGION`` blocks are skipped.
    4. A block's first line, or its second after a cue identifier, is the timing line; a payload line
       holding ``-->`` starts the next cue without an empty line between.
    """
    lines = read_text(path).split("\n")
    if not _VTT_SIGNATURE.match(lines[0]):
        raise HVLInputError(f"{path}, line 1: a WebVTT file starts with 'WEBVTT' (alone on the line, or "
                            f"followed by a space), got {quote(lines[0])}")
    i, n = 1, len(lines)
    while i < n and lines[i] != "" and "-->" not in lines[i]:
        i += 1
    out = []
    while i < n:
        if lines[i] == "":
            i += 1
            continue
        head = lines[i]
        if _VTT_SKIP.match(head) and "-->" not in head:
            while i < n and lines[i] != "":
                i += 1
            continue
        t = i if "-->" in head else i + 1  # an optional cue identifier precedes the timing line
        if t >= n or "-->" not in lines[t]:
            raise HVLInputError(f"{path}, line {i + 1}: expected a WebVTT timing line "
                                f"('00:01.000 --> 00:02.000'), got {quote(head.strip())}")
        start, end = _timing(lines[t], path, t + 1, "WebVTT")
        j = t + 1
        while j < n and lines[j] != "" and "-->" not in lines[j]:
            j += 1
        payload = lines[t + 1:j]
        check_length("\n".join(payload), f"{path}, line {t + 1}")
        out.append((t + 1, start, end, payload))
        i = j
    return out


def parse_vtt(path: str | Path, counts: Counter | None = None) -> list[Cue]:
    """Cues of a WebVTT file; YouTube auto-captions (word timing tags in a rolling display) become one cue
    per spoken line, each word once with its time (:mod:`.autocaptions`), what was removed in ``counts``."""
    path = Path(path)
    cues = _vtt_cues(path)
    if is_rolling(cues):
        return [Cue(s, e, text, str(path), f"line {n}", words)
                for n, s, e, text, words in collapse(cues, counts if counts is not None else Counter())]
    return [Cue(s, e, clean_text(" ".join(t), markup=True), str(path), f"line {n}") for n, s, e, t in cues]


def _number(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _bad_numbers(seg: dict, where: str) -> None:
    """Python's JSON reader takes NaN and Infinity (and 1e999): each is refused with the field it is in."""
    for key in ("start", "end"):
        v = _number(seg.get(key))
        if v is not None:
            check_time(v, where, key)
    for j, w in enumerate(seg.get("words") or []):
        if isinstance(w, dict):
            for key in ("start", "end"):
                v = _number(w.get(key))
                if v is not None:
                    check_time(v, where, f"words[{j}].{key}")


def parse_whisper_json(path: str | Path) -> list[Cue]:
    """OpenAI Whisper / WhisperX output: ``segments[]`` with ``start``, ``end``, ``text`` (a segment without
    times takes them from its ``words[]``, as WhisperX leaves some unaligned)."""
    path = Path(path)
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise HVLInputError(f"{path}, line {e.lineno}: not valid JSON ({e.msg})") from None
    segs = data.get("segments") if isinstance(data, dict) else None
    if not isinstance(segs, list):
        raise HVLInputError(f"{path}: expected a Whisper JSON object with a 'segments' list "
                            "(each {start, end, text})")
    cues = []
    for i, seg in enumerate(segs):
        where = f"segments[{i}]"
        if not isinstance(seg, dict):
            raise HVLInputError(f"{path}, {where}: expected an object with start, end, text")
        _bad_numbers(seg, f"{path}, {where}")
        start, end = _number(seg.get("start")), _number(seg.get("end"))
        words = [w for w in seg.get("words") or [] if isinstance(w, dict) and _number(w.get("start")) is not None]
        if (start is None or end is None) and words:
            start = _number(words[0]["start"]) if start is None else start
            end = max(_number(w.get("end")) or _number(w["start"]) for w in words) if end is None else end
        if start is None or end is None:
            raise HVLInputError(f"{path}, {where}: field 'start'/'end' missing or not a number "
                                f"(got {quote(seg.get('start'))}, {quote(seg.get('end'))})")
        text = seg.get("text")
        if not isinstance(text, str):
            raise HVLInputError(f"{path}, {where}: field 'text' must be a string")
        cues.append(Cue(start, end, clean_text(check_length(text, f"{path}, {where}")), str(path), where))
    return cues


def csv_rows(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a headed CSV with their line numbers; the header must have ``required``."""
    reader = csv.DictReader(io.StringIO(read_text(path)))
    try:
        fields = [f.strip() for f in reader.fieldnames or []]
        missing = [c for c in required if c not in fields]
        if missing:
            raise HVLInputError(f"{path}, line 1: CSV header {quote(fields)} lacks column(s) {missing}; "
                                f"expected {','.join(required)}")
        rows = []
        for row in reader:
            rows.append((reader.line_num, {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}))
    except csv.Error as e:  # the csv module's own limit: a field over 131,072 characters
        raise HVLInputError(f"{path}, line {reader.line_num + 1}: not readable as CSV ({e}); a cue's text "
                            f"holds at most {MAX_CUE_CHARS:,} characters") from None
    return rows


def csv_time(value: str, path: Path, n: int, field: str) -> float:
    try:
        t = float(value)
    except ValueError:
        t = parse_timestamp(value) if len(value) < 32 else None
        if t is None:
            raise HVLInputError(f"{path}, line {n}: field '{field}' is {quote(value)}, "
                                "not seconds or HH:MM:SS") from None
    return check_time(t, f"{path}, line {n}", field)


def parse_csv(path: str | Path) -> list[Cue]:
    """PeskaVLP's ``*_narration_texts/<video>.csv``: ``start,end,text`` in seconds."""
    path = Path(path)
    return [Cue(csv_time(r["start"], path, n, "start"), csv_time(r["end"], path, n, "end"),
                clean_text(check_length(r["text"], f"{path}, line {n}")), str(path), f"line {n}")
            for n, r in csv_rows(path, ("start", "end", "text"))]


_READERS = {".srt": parse_srt, ".vtt": parse_vtt, ".json": parse_whisper_json, ".csv": parse_csv}


def read_transcript(path: str | Path, counts: Counter | None = None) -> list[Cue]:
    """The cues of any transcript format; what a reader removed (auto-caption repeats) is added to ``counts``."""
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise HVLInputError(f"{path}: unknown transcript format; use one of {', '.join(TRANSCRIPT_SUFFIXES)}")
    return parse_vtt(path, counts) if reader is parse_vtt else reader(path)
