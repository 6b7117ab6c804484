"""Where a raw corpus keeps its videos, transcripts, chapters, abstracts and splits.

Three ways to say it, one result (:class:`Inputs` per video id):

* hvl's layout: ``videos/<id>.<ext>``, ``transcripts/<id>.<source>.<ext>``, ``chapters/<id>.<ext>``,
  ``abstracts/<id>.<ext>``, optionally ``splits.csv`` (``video_id,split``);
* PeskaVLP / SVL's layout, recognised by ``splits/*.csv`` beside ``*_narration_texts/`` folders: each
  ``<source>_narration_texts/<video>.csv`` is one transcript source, ``keystep_texts/`` the chapters,
  ``abstract_texts/`` the abstracts, the split files' ``video_path`` the video of each id;
* yt-dlp's flat folder, recognised by video files (or ``.info.json``) at the top and no ``videos/``
  folder: ``<title> [<id>].mp4``, ``<title> [<id>].<lang>.vtt|srt``, ``<title> [<id>].info.json``,
  ``<title> [<id>].description`` (or ``<id>.<ext>`` names, yt-dlp's ``-o "%(id)s.%(ext)s"``):

  1. a file's video id is the yt-dlp id in its name's last ``[...]``, else its name up to the suffixes;
  2. ``<id>.<video ext>`` is the video; an unmerged format (``.f137.mp4``), a ``.part`` / ``.ytdl`` /
     ``.temp.*`` download and ``.live_chat.json`` are listed as stray, thumbnails are ignored;
  3. each ``.<lang>.vtt`` / ``.<lang>.srt`` is one transcript source named by its language code as
     yt-dlp wrote it (``en``, ``en-orig``): manual subtitles and auto-captions are two sources; a second
     file of one language (``.srt`` beside ``.vtt``) is listed as stray;
  4. ``.info.json`` gives the chapters and the abstract (and the title, uploader and upload date), a
     ``.description`` file the abstract (and timestamp-line chapters) when there is no ``.info.json``;
* a YAML file (``layout.yaml`` in the folder, or ``--layout``) naming those folders (:class:`LayoutSpec`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ...errors import HVLInputError
from ...io import load_config
from .chapters import ABSTRACT_SUFFIXES, CHAPTER_SUFFIXES
from .subtitles import TRANSCRIPT_SUFFIXES, csv_rows, quote
from .ytdlp import split_ytdlp_name, unusable_id

__all__ = ["VIDEO_SUFFIXES", "Inputs", "Layout", "LayoutSpec", "discover"]

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg")


class LayoutSpec(BaseModel):
    """Folders relative to the raw root. ``transcripts`` is one folder of ``<id>.<source>.<ext>`` files,
    or ``{source: folder}`` with ``<id>.<ext>`` files in each."""

    model_config = ConfigDict(extra="forbid")
    videos: str = "videos"
    transcripts: str | dict[str, str] = "transcripts"
    chapters: str | None = "chapters"
    abstracts: str | None = "abstracts"
    splits: str | None = Field(None, description="a CSV 'video_id,split', or a folder of PeskaVLP split files")


@dataclass
class Inputs:
    video_id: str
    video: Path | None = None
    transcripts: dict[str, Path] = field(default_factory=dict)
    chapters: Path | None = None
    abstract: Path | None = None
    info: Path | None = None  # yt-dlp's .info.json: title, uploader, upload date

    def files(self) -> list[Path]:
        return [p for p in (self.video, *self.transcripts.values(), self.chapters, self.abstract, self.info) if p]


@dataclass
class Layout:
    kind: str  # "hvl", "peskavlp", "ytdlp" or "yaml"
    root: Path
    inputs: dict[str, Inputs]
    splits: dict[str, str] | None  # video id -> split, when the corpus brings its own
    splits_file: str | None = None
    stray: list[str] = field(default_factory=list)  # files of a known folder whose name says nothing usable
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (id, file, why): ids no video may have


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes) if folder.is_dir() else []


def _peskavlp_spec(root: Path) -> LayoutSpec | None:
    narr = sorted(p for p in root.glob("*_narration_texts") if p.is_dir())
    if not ((root / "splits").is_dir() and narr):
        return None
    return LayoutSpec(videos="videos" if (root / "videos").is_dir() else ".",
                      transcripts={p.name[: -len("_narration_texts")]: p.name for p in narr},
                      chapters="keystep_texts", abstracts="abstract_texts", splits="splits")


def _split_name(stem: str) -> str:
    for s in ("train", "val", "test"):
        if stem == s or stem.startswith(s + "_"):
            return s
    return stem


def read_splits(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """id -> split, and for PeskaVLP split files id -> the video_path they name."""
    out: dict[str, str] = {}
    where: dict[str, str] = {}
    paths: dict[str, str] = {}
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    for f in files:
        peska = path.is_dir()
        for n, r in csv_rows(f, ("video_path",) if peska else ("video_id", "split")):
            vid = Path(r["video_path"]).stem if peska else r["video_id"]
            split = _split_name(f.stem) if peska else r["split"]
            if vid in out and out[vid] != split:
                raise HVLInputError(f"{f}, line {n}: video {quote(vid)} is in split {quote(split)} and in "
                                    f"{quote(out[vid])} "
                                    f"({where[vid]}); a video may be in one split only")
            out[vid], where[vid] = split, f"{f}, line {n}"
            if peska:
                paths[vid] = r["video_path"]
    return out, paths


def _id_and_source(name: str, ids: set[str]) -> tuple[str, str] | None:
    """``<id>.<source>.<ext>`` → (id, source); ``<id>.<ext>`` → (id, 'main'). Ids may contain dots."""
    stem = name.rsplit(".", 1)[0]
    if stem in ids:
        return stem, "main"
    vid, dot, source = stem.rpartition(".")
    return (vid, source) if dot and vid else None


def _by_id(folder: Path, suffixes: tuple[str, ...], what: str) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in _files(folder, suffixes):
        vid = p.stem.removesuffix(".mp4")  # PeskaVLP: <video>.mp4.csv or <video>.csv
        if vid in out:
            raise HVLInputError(f"{p}: a second {what} for '{vid}' (also {out[vid].name}); keep one")
        out[vid] = p
    return out


_DOWNLOADING = re.compile(r"\.(?:part|ytdl|temp\.\w+|part-frag\d+)$|\.f\d+(?:-\w+)?\.\w+$", re.IGNORECASE)


def _flat_id(name: str, video_ids: set[str]) -> tuple[str, str] | None:
    """(video id, suffixes) of a file in a flat folder (steps 1 and 2)."""
    parts = split_ytdlp_name(name)
    if parts:
        return parts[1], parts[2]
    for vid in sorted(video_ids, key=len, reverse=True):  # ids may contain dots: the longest that fits
        if name.startswith(vid + "."):
            return vid, name[len(vid):]
    if name.endswith(".info.json"):
        return name[: -len(".info.json")], ".info.json"
    stem, dot, ext = name.rpartition(".")
    return (stem, dot + ext) if dot and stem else None


def _flat_layout(root: Path) -> tuple[dict[str, Inputs], list[str]] | None:
    """yt-dlp's flat folder (see the module's steps), or None when ``root`` does not look like one."""
    files = sorted(p for p in root.iterdir() if p.is_file())
    is_video = lambda p: p.suffix.lower() in VIDEO_SUFFIXES and not _DOWNLOADING.search(p.name)
    if not any(is_video(p) or p.name.endswith(".info.json") for p in files):
        return None
    video_ids = {(_flat_id(p.name, set()) or (p.stem, ""))[0] for p in files if is_video(p)}
    inputs: dict[str, Inputs] = {}
    stray: list[str] = []
    for p in files:
        parsed = _flat_id(p.name, video_ids)
        if parsed is None:
            continue
        vid, rest = parsed
        low = rest.lower()
        inp = inputs.setdefault(vid, Inputs(vid))
        if _DOWNLOADING.search(p.name):
            stray.append(f"{p}: an unfinished or unmerged yt-dlp download (re-run yt-dlp; merging formats needs "
                         "ffmpeg)")
        elif low in VIDEO_SUFFIXES:
            if inp.video is None:
                inp.video = p
            else:
                stray.append(f"{p}: a second video for '{vid}' (using {inp.video.name})")
        elif low == ".info.json":
            inp.info = inp.chapters = inp.abstract = p
        elif low == ".description":
            if inp.info is None:
                inp.chapters = inp.abstract = p
        elif low.endswith(".live_chat.json"):
            stray.append(f"{p}: YouTube live chat, not a transcript of the video")
        elif low.endswith((".vtt", ".srt")):
            lang = rest[1:].rsplit(".", 1)[0] if low.count(".") >= 2 else "main"
            other = inp.transcripts.get(lang)
            if other is not None and other.suffix.lower() == ".srt" and low.endswith(".vtt"):
                inp.transcripts[lang], p, other = p, other, p  # WebVTT keeps YouTube's word times; SubRip does not
            if other is not None:
                stray.append(f"{p}: a second '{lang}' subtitle file for '{vid}' (using "
                             f"{inp.transcripts[lang].name})")
            else:
                inp.transcripts[lang] = p
        elif low.endswith(TRANSCRIPT_SUFFIXES):
            stray.append(f"{p}: name subtitles as yt-dlp does, <title> [<id>].<lang>{p.suffix} "
                         f"(e.g. '... [{vid}].en{p.suffix}')")
    for vid in [v for v, i in inputs.items() if not i.video and not i.transcripts]:
        what = inputs.pop(vid)
        if what.info or what.abstract:
            stray.append(f"{what.info or what.abstract}: no video with id '{vid}' beside it (a playlist's or "
                         "channel's info?)")
    return inputs, stray


def _usable_ids(inputs: dict[str, Inputs]) -> tuple[dict[str, Inputs], list[tuple[str, str, str]]]:
    """The inputs whose id can name a video, and (id, a file of it, why) for the others ('..' from a yt-dlp name
    'Title [..].mp4' would make frames/<id>/ the output folder itself)."""
    refused = [(vid, str(next(iter(inp.files()), vid)), why) for vid, inp in inputs.items()
               if (why := unusable_id(vid))]
    return {vid: inp for vid, inp in inputs.items() if not unusable_id(vid)}, refused


def discover(root: str | Path, layout_file: str | Path | None = None, videos: str | Path | None = None) -> Layout:
    root = Path(root)
    if not root.is_dir():
        raise HVLInputError(f"{root}: raw folder not found")
    kind, spec = "hvl", LayoutSpec()
    if layout_file or (root / "layout.yaml").is_file():
        kind, spec = "yaml", load_config(layout_file or root / "layout.yaml", LayoutSpec)
    elif (pesk := _peskavlp_spec(root)) is not None:
        kind, spec = "peskavlp", pesk
    elif not videos and not (root / "videos").is_dir() and (flat := _flat_layout(root)) is not None:
        found, stray = flat
        found, refused = _usable_ids(found)
        if (root / "splits.csv").is_file():
            splits, _ = read_splits(root / "splits.csv")
            return Layout("ytdlp", root, dict(sorted(found.items())), splits, str(root / "splits.csv"), stray, refused)
        return Layout("ytdlp", root, dict(sorted(found.items())), None, None, stray, refused)
    if videos:
        spec = spec.model_copy(update={"videos": str(videos)})
    splits_path = root / spec.splits if spec.splits else (root / "splits.csv" if (root / "splits.csv").is_file()
                                                         else None)
    splits, video_paths = read_splits(splits_path) if splits_path else (None, {})

    video_dir = root / spec.videos
    inputs: dict[str, Inputs] = {}
    for p in _files(video_dir, VIDEO_SUFFIXES):
        inputs.setdefault(p.stem, Inputs(p.stem)).video = p
    for vid, rel in video_paths.items():  # PeskaVLP names each video's file in its split files
        if (video_dir / rel).is_file():
            inputs.setdefault(vid, Inputs(vid)).video = video_dir / rel

    def get(vid: str) -> Inputs:
        return inputs.setdefault(vid, Inputs(vid))

    stray: list[str] = []
    if isinstance(spec.transcripts, dict):
        for source, folder in sorted(spec.transcripts.items()):
            for vid, p in _by_id(root / folder, TRANSCRIPT_SUFFIXES, f"'{source}' transcript").items():
                get(vid).transcripts[source] = p
    else:
        ids = set(inputs)
        for p in _files(root / spec.transcripts, TRANSCRIPT_SUFFIXES):
            parsed = _id_and_source(p.name, ids)
            if parsed is None:
                stray.append(f"{p}: name it <video id>.<source>{p.suffix} (e.g. case01.whisper{p.suffix})")
                continue
            vid, source = parsed
            if source in get(vid).transcripts:
                raise HVLInputError(f"{p}: a second '{source}' transcript for '{vid}' "
                                    f"(also {get(vid).transcripts[source].name}); give each source its own name")
            get(vid).transcripts[source] = p
    if spec.chapters:
        for vid, p in _by_id(root / spec.chapters, CHAPTER_SUFFIXES, "chapter file").items():
            get(vid).chapters = p
    if spec.abstracts:
        for vid, p in _by_id(root / spec.abstracts, ABSTRACT_SUFFIXES, "abstract").items():
            get(vid).abstract = p
    if not inputs:
        raise HVLInputError(f"{root}: no videos ({'/'.join(VIDEO_SUFFIXES)}) under {video_dir} and no transcripts; "
                            "expected videos/<id>.mp4 and transcripts/<id>.<source>.srt, or a yt-dlp folder of "
                            "'<title> [<id>].mp4' + '.en.vtt' + '.info.json' (see docs/prepare.md)")
    inputs, refused = _usable_ids(inputs)
    return Layout(kind, root, dict(sorted(inputs.items())), splits, str(splits_path) if splits_path else None, stray,
                  refused)
