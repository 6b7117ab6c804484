"""Clip construction as HecVL / PeskaVLP pair narrations with video, made explicit and configurable.

1. Each source's cues are cleaned: empty and filler-only texts ("um", "uh huh") are dropped, counted.
2. Consecutive fragments of a source are merged until a sentence ends (``. ? !``) or ``max_seconds``
   is reached. A source without any sentence punctuation (AWS-style lower-case ASR) cannot say where a
   sentence ends, so its cues are taken as sentences.
3. Every sentence of the anchor source becomes a clip; its window is widened around its centre to at least
   ``min_seconds`` (PeskaVLP: 4 s), kept inside the video.
4. Sentences of the other sources overlapping the window (most overlap first) are the clip's extra positives
   (MIL-NCE), truncated to ``k`` and, with ``pad: anchor``, padded with the anchor sentence (PeskaVLP: k = 2).
   A text repeating one already in the clip is dropped; a clip repeating the previous one is dropped.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .subtitles import Cue

__all__ = ["Clip", "ClipConfig", "Sentence", "build_clips", "merge_fragments", "normalise", "prepare_sentences"]

FILLERS = ("um", "uh", "er", "erm", "ah", "eh", "hm", "hmm", "mm", "mhm", "uh-huh", "uh huh", "oh", "okay", "ok",
           "so", "yeah", "like", "you know", "music", "applause", "laughter", "inaudible", "silence", "blank_audio")


class ClipConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    anchor: str | None = Field(None, description="source whose sentences anchor the clips (default: the first "
                               "source name in sorted order present for the video)")
    min_seconds: float = Field(4.0, gt=0, description="each window widened to at least this (PeskaVLP: 4 s)")
    max_seconds: float = Field(10.0, gt=0, description="fragments are merged up to this long")
    max_gap: float = Field(1.0, ge=0, description="fragments further apart than this are not merged")
    k: int = Field(2, ge=0, description="extra positives per clip from the other sources (PeskaVLP: 2)")
    pad: Literal["anchor", "none"] = Field("anchor", description="fill missing extra positives with the anchor text")
    merge: bool = True
    fillers: tuple[str, ...] = FILLERS


@dataclass(frozen=True)
class Sentence:
    start: float
    end: float
    text: str
    source: str


@dataclass(frozen=True)
class Clip:
    start: float
    end: float
    texts: tuple[str, ...]


_WORD = re.compile(r"[\w'-]+")
_SENTENCE_END = re.compile(r"[.?!…][\"')\]]*$")


def normalise(text: str) -> str:
    """What counts as 'the same text': case, punctuation and spacing do not."""
    return " ".join(_WORD.findall(text.lower()))


def is_filler(text: str, fillers: tuple[str, ...]) -> bool:
    """Nothing but filler words (or nothing at all): no content a text encoder could pair with a picture."""
    words = normalise(text)
    alts = "|".join(re.escape(f) for f in sorted(fillers, key=len, reverse=True))
    return not words or re.fullmatch(rf"(?:(?:{alts})(?: |$))+", words) is not None


def merge_fragments(sents: list[Sentence], max_seconds: float, max_gap: float) -> tuple[list[Sentence], int]:
    """Join fragments until a sentence ends; returns the sentences and how many fragments were merged away."""
    if not any(_SENTENCE_END.search(s.text) for s in sents):
        return sents, 0
    out: list[Sentence] = []
    merged = 0
    for s in sents:
        prev = out[-1] if out else None
        if (prev is not None and not _SENTENCE_END.search(prev.text) and s.end - prev.start <= max_seconds
                and s.start - prev.end <= max_gap):
            out[-1] = Sentence(prev.start, max(prev.end, s.end), f"{prev.text} {s.text}", s.source)
            merged += 1
        else:
            out.append(s)
    return out, merged


def prepare_sentences(source: str, cues: list[Cue], cfg: ClipConfig, counts: Counter) -> list[Sentence]:
    """Cues (already checked and sorted) → sentences of one source; drops counted in ``counts``."""
    sents = []
    for c in cues:
        if not c.text.strip():
            counts["empty_texts"] += 1
        elif is_filler(c.text, cfg.fillers):
            counts["filler_texts"] += 1
        else:
            sents.append(Sentence(c.start, c.end, c.text, source))
    if cfg.merge:
        sents, merged = merge_fragments(sents, cfg.max_seconds, cfg.max_gap)
        counts["merged_fragments"] += merged
    return sents


def widen(start: float, end: float, min_seconds: float, duration: float) -> tuple[float, float]:
    """At least ``min_seconds`` around the centre, shifted back inside ``[0, duration]``."""
    if end - start >= min_seconds:
        return start, end
    if duration <= min_seconds:
        return 0.0, duration
    mid = (start + end) / 2
    a = min(max(mid - min_seconds / 2, 0.0), duration - min_seconds)
    return a, a + min_seconds


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return min(a1, b1) - max(a0, b0)


def build_clips(sources: dict[str, list[Sentence]], anchor: str, duration: float, cfg: ClipConfig,
                counts: Counter) -> list[Clip]:
    others = [s for name in sorted(sources) if name != anchor for s in sources[name]]
    clips: list[Clip] = []
    for a in sources.get(anchor, []):
        ws, we = widen(a.start, a.end, cfg.min_seconds, duration)
        ws, we = round(ws, 3), round(we, 3)
        if we <= ws:
            counts["empty_windows"] += 1
            continue
        near = sorted((s for s in others if _overlap(ws, we, s.start, s.end) > 0),
                      key=lambda s: (-_overlap(ws, we, s.start, s.end), s.start, s.source))
        prev = clips[-1] if clips else None
        if prev is not None and normalise(prev.texts[0]) == normalise(a.text) and \
                _overlap(ws, we, prev.start, prev.end) > 0:
            counts["duplicate_clips"] += 1  # the same sentence again (ASR repeats, rolling captions)
            continue
        texts, seen, dup = [a.text], {normalise(a.text)}, 0
        for s in near:
            if len(texts) > cfg.k:
                break
            key = normalise(s.text)
            if key in seen:
                dup += 1
                continue
            seen.add(key)
            texts.append(s.text)
        counts["duplicate_texts"] += dup
        counts["extra_positives"] += len(texts) - 1
        if cfg.pad == "anchor" and len(texts) < cfg.k + 1:
            counts["padded_positives"] += cfg.k + 1 - len(texts)
            texts += [a.text] * (cfg.k + 1 - len(texts))
        clips.append(Clip(ws, we, tuple(texts)))
    return clips
