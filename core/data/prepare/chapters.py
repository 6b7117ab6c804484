"""Phase-level and video-level texts: chapters / key steps and abstracts.

Chapters come as PeskaVLP's ``keystep_texts`` CSV (``start,end,step,text``), WebVTT chapter cues,
YouTube-description lines (``00:00 Intro``, ``1:02:03 Closure``) whose end is the next chapter's start and,
for the last one, the end of the video, or yt-dlp's ``.info.json`` (its ``chapters``; without them, the
timestamp lines of its description, as YouTube makes chapters from them). Abstracts are a text file,
PeskaVLP's ``abstract_texts`` CSV, or a yt-dlp ``.info.json`` / ``.description`` (:mod:`.ytdlp`: the
description's first paragraph by default).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ...errors import HVLInputError
from .subtitles import _vtt_cues, check_length, csv_rows, csv_time, read_text
from .text import clean_text, parse_timestamp
from .ytdlp import AbstractMode, description_abstract, parse_ytdlp_name, read_info_json

__all__ = [
    "ABSTRACT_SUFFIXES",
    "CHAPTER_SUFFIXES",
    "Chapter",
    "parse_youtube_chapters",
    "read_abstracts",
    "read_chapters",
]

CHAPTER_SUFFIXES = (".csv", ".vtt", ".txt")
ABSTRACT_SUFFIXES = (".txt", ".csv")
# yt-dlp's files, named by the yt-dlp layout (not looked for in a chapters/ or abstracts/ folder)
YTDLP_SUFFIXES = (".json", ".description")


@dataclass(frozen=True)
class Chapter:
    start: float
    end: float | None  # None: runs to the next chapter (or the end of the video)
    title: str
    text: str  # the phase text; the title when the source has no sentence
    file: str
    where: str

    @property
    def at(self) -> str:
        return f"{self.file}, {self.where}"


def _csv_chapters(path: Path) -> list[Chapter]:
    out = []
    for n, r in csv_rows(path, ("start", "step")):
        end = csv_time(r["end"], path, n, "end") if r.get("end") else None
        where = f"{path}, line {n}"
        title = clean_text(check_length(r["step"], where, "chapter title"))
        text = clean_text(check_length(r.get("text", ""), where, "chapter text"))
        out.append(Chapter(csv_time(r["start"], path, n, "start"), end, title, text or title, str(path), f"line {n}"))
    return out


def _vtt_chapters(path: Path) -> list[Chapter]:
    return [Chapter(s, e, clean_text(" ".join(t), markup=True), clean_text(" ".join(t), markup=True), str(path),
                    f"line {n}") for n, s, e, t in _vtt_cues(path)]


# "00:00 Title", "1:02:03 - Title", "• 12:30 | Title", "(0:45) Title"
_YT = re.compile(r"^\s*(?:[-*•]\s*)?\(?((?:\d{1,2}:)?\d{1,2}:\d{2})\)?\s*(?:[-–—:|]\s*)?(\S.*)$")


def _timestamp_lines(text: str, path: Path, where: str = "") -> list[Chapter]:
    out = []
    for n, line in enumerate(text.split("\n"), start=1):
        m = _YT.match(line)
        if m:
            title = clean_text(check_length(m.group(2), f"{path}, {where}line {n}", "chapter title"))
            out.append(Chapter(parse_timestamp(m.group(1)), None, title, title, str(path), f"{where}line {n}"))
    return out


def parse_youtube_chapters(path: str | Path) -> list[Chapter]:
    """Lines that start with a timestamp; the description's other lines are ignored."""
    path = Path(path)
    out = _timestamp_lines(read_text(path), path)
    if not out:
        raise HVLInputError(f"{path}: no chapter lines found; write one chapter per line as '00:00 Title' "
                            "(YouTube description style)")
    return out


def _info_chapters(path: Path) -> list[Chapter]:
    """An .info.json's chapters, else its description's timestamp lines, else none."""
    info = read_info_json(path)
    if info["chapters"]:
        titles = [clean_text(check_length(c["title"], f"{path}, chapters[{i}]", "chapter title"))
                  for i, c in enumerate(info["chapters"])]
        return [Chapter(c["start_time"], c["end_time"], t, t, str(path), f"chapters[{i}]")
                for i, (c, t) in enumerate(zip(info["chapters"], titles))]
    return _timestamp_lines(info["description"] or "", path, "description, ")


def read_chapters(path: str | Path) -> list[Chapter]:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _info_chapters(path)
    if suffix == ".description":
        return _timestamp_lines(read_text(path), path)
    if suffix == ".csv":
        return _csv_chapters(path)
    if suffix == ".vtt":
        return _vtt_chapters(path)
    if suffix == ".txt":
        return parse_youtube_chapters(path)
    raise HVLInputError(f"{path}: unknown chapter format; use .csv (start,end,step,text), .vtt or .txt "
                        "(YouTube '00:00 Title' lines)")


def read_abstracts(path: str | Path, mode: AbstractMode = "paragraph") -> list[str]:
    """The video-level texts: a .txt file is one abstract; a .csv (``start,end,text``) gives one per row; a
    yt-dlp .info.json or .description gives what ``mode`` takes of the description (:mod:`.ytdlp`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in YTDLP_SUFFIXES:
        info = read_info_json(path) if suffix == ".json" else {"description": read_text(path), "title": None}
        if mode == "title":
            title = info["title"] or (parse_ytdlp_name(path) or ("", ""))[0]
            texts = [clean_text(title)]
        else:
            texts = [description_abstract(info["description"], mode) or ""]
        texts = [check_length(t, str(path), "the abstract") for t in texts]
    elif suffix == ".txt":
        texts = [clean_text(check_length(read_text(path), str(path), "the abstract"))]
    elif suffix == ".csv":
        texts = [clean_text(check_length(r["text"], f"{path}, line {n}", "the abstract"))
                 for n, r in csv_rows(path, ("text",))]
    else:
        raise HVLInputError(f"{path}: unknown abstract format; use .txt or .csv (start,end,text)")
    return [t for t in texts if t]
