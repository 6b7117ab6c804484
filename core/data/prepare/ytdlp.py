"""What yt-dlp leaves on disk: ``<title> [<id>].<ext>`` names and the ``.info.json`` beside each video.

``yt-dlp --write-auto-subs --sub-langs en --write-info-json URL`` writes ``Title [id].mp4``,
``Title [id].en.vtt`` and ``Title [id].info.json`` (``--write-description``: ``Title [id].description``).
This module reads those names and files for ``hvl prepare`` (:mod:`.layout`, :mod:`.chapters`) and for any
other command that takes a yt-dlp folder (the video id, the title, uploader and upload date).

1. A name is ``<title> [<id>]<suffixes>``: the id is the last bracketed group followed only by
   dot-suffixes (``.mp4``, ``.en.vtt``, ``.info.json``); titles may hold brackets of their own.
2. ``.info.json`` is validated with pydantic, every field optional (yt-dlp leaves out what a site lacks)
   and unknown fields ignored; a chapter time that is negative or not finite is refused with the file
   and the field (``chapters[2].start_time``).
3. The abstract is the description's first paragraph once links, hashtag and @mention lines, timestamp
   (chapter) lines and calls to subscribe / like / follow are dropped (``description``: every paragraph
   so cleaned; ``title``: the title; ``none``: no abstract).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...errors import HVLInputError, format_validation_error
from ...io import read_json
from .text import clean_text

__all__ = ["ABSTRACT_MODES", "InfoChapter", "InfoJson", "description_abstract", "parse_ytdlp_name", "read_info_json",
           "split_ytdlp_name", "unusable_id"]

AbstractMode = Literal["paragraph", "description", "title", "none"]
ABSTRACT_MODES: tuple[str, ...] = ("paragraph", "description", "title", "none")

_NAME = re.compile(r"^(?P<title>.*)\[(?P<id>[^\[\]\s/]+)\](?P<rest>(?:\.[^.\s/]+)+)$")


def split_ytdlp_name(name: str) -> tuple[str, str, str] | None:
    """``'Talk [Part 1] [abc].en.vtt'`` → ``('Talk [Part 1]', 'abc', '.en.vtt')``; None if not yt-dlp's form."""
    m = _NAME.match(name)
    return (m["title"].rstrip(), m["id"], m["rest"]) if m else None


def unusable_id(video_id: str) -> str | None:
    """Why ``video_id`` (read from a file's name) cannot name a video, else None: ids become file and folder names
    (``frames/<id>/``, ``<id>.json``) and URLs, so '', '.', '..' and anything with a separator are refused."""
    if not video_id:
        return "the id is empty"
    if video_id in (".", ".."):
        return f"the id {video_id!r} names a folder, not a video"
    if any(c in video_id for c in "/\\\0"):
        return f"the id {video_id!r} holds a path separator or a NUL"
    return None


def parse_ytdlp_name(path: str | Path) -> tuple[str, str] | None:
    """(title, id) of a file named by yt-dlp's default template, or None."""
    parts = split_ytdlp_name(Path(path).name)
    return (parts[0], parts[1]) if parts else None


Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class InfoChapter(BaseModel):
    model_config = ConfigDict(extra="ignore")
    start_time: Seconds
    end_time: Seconds | None = None
    title: str = ""


class InfoJson(BaseModel):
    """The fields of yt-dlp's ``.info.json`` that hvl uses; all optional."""

    model_config = ConfigDict(extra="ignore")
    id: str | None = None
    title: str | None = None
    uploader: str | None = None
    channel: str | None = None
    upload_date: str | None = Field(None, description="YYYYMMDD, as yt-dlp writes it")
    description: str | None = None
    duration: Seconds | None = None
    webpage_url: str | None = None
    tags: list[str] | None = None
    chapters: list[InfoChapter] | None = None


def read_info_json(path: str | Path) -> dict[str, Any]:
    """``{id, title, uploader, channel, upload_date, description, duration, webpage_url, tags, chapters}``,
    None where the file has nothing; ``chapters`` is a list of ``{start_time, end_time, title}`` ([] if none)."""
    data = read_json(path, what="yt-dlp's info object ({'id': ..., 'title': ...})",
                     fix="download it again (yt-dlp --write-info-json --skip-download URL) or delete it")
    try:
        info = InfoJson.model_validate(data)
    except ValidationError as e:
        raise HVLInputError(format_validation_error(e, path) + "\n  (yt-dlp writes times as seconds >= 0)") from None
    out = info.model_dump()
    out["chapters"] = out["chapters"] or []
    return out


_LINK = re.compile(r"https?://|www\.\S", re.IGNORECASE)
_TAGS_ONLY = re.compile(r"^(?:[#@][\w.-]+[\s,|•·]*)+$")
_TIMESTAMP_LINE = re.compile(r"^\W*\(?(?:\d{1,2}:)?\d{1,2}:\d{2}\b")
_CALL = re.compile(r"\b(?:subscrib\w*|patreon|sponsor\w*|merch|like (?:and|&) (?:share|subscribe)|follow (?:me|us)|"
                   r"hit the bell|notification bell)\b", re.IGNORECASE)


def _keep(line: str) -> bool:
    line = line.strip()
    return bool(line) and not (_LINK.search(line) or _TAGS_ONLY.match(line) or _TIMESTAMP_LINE.match(line)
                               or _CALL.search(line))


def description_abstract(description: str | None, mode: AbstractMode = "paragraph") -> str | None:
    """The video-level text a description gives (step 3); None when nothing is left."""
    if not description or mode not in ("paragraph", "description"):
        return None
    paragraphs = re.split(r"\n\s*\n", description.replace("\r\n", "\n").replace("\r", "\n"))
    kept = [clean_text(" ".join(line for line in p.split("\n") if _keep(line))) for p in paragraphs]
    kept = [p for p in kept if p]
    if not kept:
        return None
    return kept[0] if mode == "paragraph" else " ".join(kept)
