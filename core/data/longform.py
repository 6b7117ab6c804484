"""Long-form video ↔ paragraph corpora as hvl records: ActivityNet Captions and LF-VILA's retrieval JSONL.

- **ActivityNet Captions** (``train.json``, ``val_1.json``, ``val_2.json``): one JSON object
  ``{video_id: {"duration": s, "timestamps": [[start, end], ...], "sentences": [...]}}``. Each sentence becomes a
  clip with its times (the ground truth of moment localisation); the video's paragraph is its sentences joined in
  order (``texts[0]``).
- **LF-VILA / QuerYD JSONL** (the retrieval files of ``microsoft/XPretrain/LF-VILA``, also DiDeMo, Condensed
  Movies): one ``{"clip_id": ..., "text": "..." | ["sentence", ...]}`` per line, no times.

The paragraph rule is LF-VILA's: a paragraph of more than ``max_sentences`` (4) sentences has its shortest adjacent
pair (fewest words together; the earliest on a tie) merged into one sentence until 4 remain. The merged sentences
are kept in ``meta["sentences"]``; the paragraph text itself is the same either way (sentences joined by a space).

Video files are found in ``videos`` (default: a ``videos`` folder beside the annotation file) as ``<id><ext>``,
ActivityNet's ids also without their ``v_`` prefix (as the YouTube downloads are named), or as a folder of frames.
A video that is not there is left out and counted in one warning; the run goes on with the others.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

from ..errors import HVLInputError
from .schema import ClipSegment, VideoRecord

__all__ = ["CORPUS_READERS", "activitynet_records", "merge_sentences", "paragraph_of", "paragraph_records",
           "read_activitynet", "read_corpus", "read_paragraph_jsonl"]

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v")
MAX_SENTENCES = 4  # LF-VILA's paragraphs


def merge_sentences(sentences: list[str], max_sentences: int = MAX_SENTENCES) -> list[str]:
    """LF-VILA's paragraph rule: merge the adjacent pair with the fewest words together (the earliest on a tie)
    until at most ``max_sentences`` remain. Order and words are kept."""
    if max_sentences < 1:
        raise ValueError(f"max_sentences must be >= 1, got {max_sentences}")
    out = [" ".join(s.split()) for s in sentences]
    words = [len(s.split()) for s in out]
    while len(out) > max_sentences:
        i = min(range(len(out) - 1), key=lambda k: words[k] + words[k + 1])
        out[i:i + 2] = [f"{out[i]} {out[i + 1]}"]
        words[i:i + 2] = [words[i] + words[i + 1]]
    return out


def paragraph_of(rec: VideoRecord) -> str | None:
    """The text a whole video is retrieved by: its abstract (``texts[0]``), else its clips' sentences joined in
    time order (each clip's first text); None when it has neither."""
    if rec.texts:
        return rec.texts[0]
    clips = sorted(rec.clips, key=lambda c: (c.start, c.end))
    return " ".join(" ".join(c.texts[0].split()) for c in clips) or None


# ----------------------------------------------------------------- finding the videos
def _plain_name(name: str, where: str, field: str) -> str:
    """An id read from a file names a file inside ``videos``, never a path (it is data, not a place)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise HVLInputError(f"{where}: field '{field}': {name!r} is not a plain file name (no folders, not '..'); "
                            "fix the id, it names a video inside the videos folder")
    return name


def _find_video(videos: Path, video_id: str, prefixes: tuple[str, ...] = ("",)) -> Path | None:
    for stem in dict.fromkeys(video_id.removeprefix(p) for p in prefixes):
        for candidate in (videos / stem, *(videos / f"{stem}{s}" for s in VIDEO_SUFFIXES)):
            if candidate.is_file() and candidate.suffix.lower() in VIDEO_SUFFIXES or candidate.is_dir():
                return candidate
    return None


def _videos_folder(annotations: Path, videos: str | Path | None) -> Path:
    folder = Path(videos) if videos is not None else annotations.parent / "videos"
    if not folder.is_absolute() and videos is not None:
        folder = annotations.parent / folder
    if not folder.is_dir():
        raise HVLInputError(f"{annotations}: the videos folder {folder} does not exist; download the videos there "
                            "or name their folder with dataset.options.videos")
    return folder


def _resolve_all(records: list[VideoRecord], annotations: Path, folder: Path, corpus: str,
                 prefixes: tuple[str, ...]) -> list[tuple[VideoRecord, Path]]:
    out, missing = [], []
    for rec in records:
        found = _find_video(folder, rec.video_id, prefixes)
        if found is None:
            missing.append(rec.video_id)
            continue
        out.append((rec.model_copy(update={"path": str(found.resolve())}), found))
    if not out:
        raise HVLInputError(f"{annotations}: none of its {len(records)} videos is in {folder} (looked for <id>"
                            f"{'|'.join(VIDEO_SUFFIXES)} or a frame folder <id>/); download them or fix "
                            "dataset.options.videos")
    if missing:
        warnings.warn(f"{corpus} {annotations.name}: {len(missing)} of {len(records)} videos are not in {folder} "
                      f"and are left out, e.g. {', '.join(missing[:5])}", stacklevel=3)
    return out


# ----------------------------------------------------------------- ActivityNet Captions
def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _activitynet_record(path: Path, video_id: str, entry: Any, max_sentences: int) -> tuple[VideoRecord, int]:
    """One video's record and how many of its sentences had no time left inside the video (dropped as clips)."""
    where = f"{path}: video '{video_id}'"
    if not isinstance(entry, dict):
        raise HVLInputError(f"{where}: expected an object {{duration, timestamps, sentences}}, got "
                            f"{type(entry).__name__}; fix the entry")
    for field in ("duration", "timestamps", "sentences"):
        if field not in entry:
            raise HVLInputError(f"{where}: field '{field}' is missing; every video needs duration, timestamps "
                                "and sentences (restore the released file)")
    duration = _number(entry["duration"])
    if duration is None or duration <= 0:
        raise HVLInputError(f"{where}: field 'duration': {entry['duration']!r} is not a length in seconds (> 0)")
    stamps, sentences = entry["timestamps"], entry["sentences"]
    if not isinstance(sentences, list) or not sentences or \
            not all(isinstance(s, str) and s.strip() for s in sentences):
        raise HVLInputError(f"{where}: field 'sentences' must be a non-empty list of non-empty strings")
    if not isinstance(stamps, list) or len(stamps) != len(sentences):
        got = len(stamps) if isinstance(stamps, list) else type(stamps).__name__
        raise HVLInputError(f"{where}: field 'timestamps' must list one [start, end] per sentence "
                            f"({len(sentences)} sentences, got {got}); fix the entry")
    clips, dropped = [], 0
    for i, (stamp, sentence) in enumerate(zip(stamps, sentences)):
        times = [_number(t) for t in stamp] if isinstance(stamp, list) and len(stamp) == 2 else [None]
        if None in times or times[0] < 0 or times[0] > times[1]:
            raise HVLInputError(f"{where}: field 'timestamps[{i}]': {stamp!r} is not [start, end] in seconds with "
                                "0 <= start <= end; fix the entry")
        start, end = times[0], min(times[1], duration)  # ActivityNet's ends often overrun the duration a little
        if end - start <= 1e-6:
            dropped += 1
            continue
        clips.append(ClipSegment(start=start, end=end, texts=[" ".join(sentence.split())]))
    merged = merge_sentences(sentences, max_sentences)
    rec = VideoRecord(video_id=video_id, path=video_id, texts=[" ".join(merged)], duration=duration, clips=clips,
                      meta={"corpus": "activitynet_captions", "sentences": merged})
    return rec, dropped


def _read_json_object(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise HVLInputError(f"{path}: {what} file not found; point dataset.path at it (e.g. val_1.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError as e:
        raise HVLInputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); "
                            "restore the released file") from None
    if not isinstance(data, dict):
        raise HVLInputError(f"{path}: {what} is one JSON object {{video_id: {{duration, timestamps, sentences}}}}, "
                            f"got a {type(data).__name__}; is this the right file?")
    return data


def activitynet_records(path: str | Path, max_sentences: int = MAX_SENTENCES,
                        limit: int | None = None) -> list[VideoRecord]:
    """The records of an ActivityNet Captions file (paths still the bare ids; see :func:`read_activitynet`)."""
    path = Path(path)
    data = _read_json_object(path, "ActivityNet Captions")
    records, dropped = [], 0
    for video_id, entry in list(data.items())[:limit]:
        rec, n = _activitynet_record(path, _plain_name(video_id, f"{path}: video '{video_id}'", "video_id"), entry,
                                     max_sentences)
        records.append(rec)
        dropped += n
    if not records:
        raise HVLInputError(f"{path}: no videos in the file")
    if dropped:
        warnings.warn(f"activitynet {path.name}: {dropped} sentence(s) have no time left inside their video "
                      "(start at or after the end or the duration) and are kept in the paragraph only",
                      stacklevel=2)
    return records


def read_activitynet(path: str | Path, videos: str | Path | None = None, max_sentences: int = MAX_SENTENCES,
                     limit: int | None = None) -> list[tuple[VideoRecord, Path]]:
    """ActivityNet Captions ``path`` (``dataset.reader: activitynet``) → records with their video files."""
    path = Path(path)
    records = activitynet_records(path, max_sentences, limit)
    return _resolve_all(records, path, _videos_folder(path, videos), "activitynet", ("", "v_"))


# ----------------------------------------------------------------- LF-VILA / QuerYD JSONL
def paragraph_records(path: str | Path, max_sentences: int = MAX_SENTENCES,
                      limit: int | None = None) -> list[VideoRecord]:
    """The records of an LF-VILA retrieval JSONL (paths still the bare ids; see :func:`read_paragraph_jsonl`)."""
    path = Path(path)
    if not path.is_file():
        raise HVLInputError(f"{path}: paragraph JSONL not found; point dataset.path at it")
    records: list[VideoRecord] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            if limit is not None and len(records) >= limit:
                break
            where = f"{path}, line {n}"
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as e:
                raise HVLInputError(f"{where}: not valid JSON ({e.msg} at column {e.colno}); each line must be one "
                                    'object {"clip_id": ..., "text": ...}') from None
            if not isinstance(obj, dict) or "clip_id" not in obj or "text" not in obj:
                raise HVLInputError(f"{where}: field 'clip_id' and field 'text' are required; each line must be "
                                    '{"clip_id": "<video id>", "text": "<paragraph>" or ["<sentence>", ...]}')
            clip_id, text = obj["clip_id"], obj["text"]
            if not isinstance(clip_id, str):
                raise HVLInputError(f"{where}: field 'clip_id': {clip_id!r} must be a string (the video's id)")
            _plain_name(clip_id, where, "clip_id")
            sentences = [text] if isinstance(text, str) else text
            if not isinstance(sentences, list) or not sentences or \
                    not all(isinstance(s, str) and s.strip() for s in sentences):
                raise HVLInputError(f"{where}: field 'text' must be a non-empty string or a non-empty list of "
                                    f"non-empty strings, got {json.dumps(text)[:80]}")
            if clip_id in seen:
                raise HVLInputError(f"{where}: field 'clip_id': '{clip_id}' repeats line {seen[clip_id]}; one "
                                    "paragraph per video")
            seen[clip_id] = n
            merged = merge_sentences(sentences, max_sentences)
            records.append(VideoRecord(video_id=clip_id, path=clip_id, texts=[" ".join(merged)],
                                       meta={"corpus": "paragraph_jsonl", "sentences": merged}))
    if not records:
        raise HVLInputError(f"{path}: no paragraphs in the file")
    return records


def read_paragraph_jsonl(path: str | Path, videos: str | Path | None = None, max_sentences: int = MAX_SENTENCES,
                         limit: int | None = None) -> list[tuple[VideoRecord, Path]]:
    """LF-VILA / QuerYD retrieval JSONL ``path`` (``dataset.reader: paragraphs``) → records with their videos."""
    path = Path(path)
    records = paragraph_records(path, max_sentences, limit)
    return _resolve_all(records, path, _videos_folder(path, videos), "paragraphs", ("",))


CORPUS_READERS = {"activitynet": read_activitynet, "paragraphs": read_paragraph_jsonl}


def read_corpus(reader, dataset) -> list[tuple[VideoRecord, Path]]:
    """``reader(dataset.path, **dataset.options)``, an unknown or missing option said as a config error."""
    import inspect

    try:
        inspect.signature(reader).bind(dataset.path, **dataset.options)
    except TypeError as e:
        options = [p for p in inspect.signature(reader).parameters if p != "path"]
        raise HVLInputError(f"dataset.options {sorted(dataset.options)}: {e}; the {reader.__name__} reader takes "
                            f"{options}") from None
    return reader(dataset.path, **dataset.options)
