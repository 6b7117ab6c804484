"""Clip construction as HecVL / PeskaVLP pair narrations with video, made explicit and configurable.

1. Each source's cues are cleaned: empty and filler-only texts ("um", "uh huh") are dropped, counted.
2. Consecutive fragments of a source are merged until a sentence ends (``. ? !``) or ``max_seconds``
   is reached. A source without any sentence punctuation (AWS-style lower-case ASR) cannot say where a
   sentence ends, so its cues are taken as sentences.
   A source whose cues time each word (YouTube auto-captions, see :mod:`.autocaptions`) is cut into
   sentences from its words instead: at sentence punctuation, at a pause (``pause_seconds`` or more from
   one word's start to the next's) and at sound tags (``[Music]``, dropped); a run longer than
   ``max_seconds`` is cut at its longest pause in its middle half, again until every part fits. A word
   ends where the next one starts, one second after its start at most.
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

__all__ = ["Clip", "ClipConfig", "Sentence", "build_clips", "merge_fragments", "normalise", "prepare_sentences",
           "sentences_from_words"]

FILLERS = ("um", "uh", "er", "erm", "ah", "eh", "hm", "hmm", "mm", "mhm", "uh-huh", "uh huh", "oh", "okay", "ok",
           "so", "yeah", "like", "you know", "music", "applause", "laughter", "inaudible", "silence", "blank_audio")


class ClipConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    anchor: str | None = Field(None, description="source whose sentences anchor the clips (default: the first "
                               "source name in sorted order present for the video)")
    min_seconds: float = Field(4.0, gt=0, description="each window widened to at least this (PeskaVLP: 4 s)")
    max_seconds: float = Field(10.0, gt=0, description="fragments are merged up to this long")
    max_gap: float = Field(1.0, ge=0, description="fragments further apart than this are not merged")
    pause_seconds: float = Field(1.0, gt=0, description="word-timed sources (YouTube auto-captions): a sentence "
                                 "ends where the next word starts this long after the last one started")
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


WORD_SECONDS = 1.0  # a word timed only by its start is taken to last until the next one, this long at most
_SOUND_TAG = re.compile(r"^\[.*\]$")


def _split_long(run: list[tuple[float, float, str]], max_seconds: float) -> list[list[tuple[float, float, str]]]:
    """Cut a run of timed words at its longest pause in its middle half until every part fits (step 2)."""
    start, end = run[0][0], run[-1][1]
    if end - start <= max_seconds or len(run) < 2:
        return [run]
    quarter = (end - start) / 4
    inner = [k for k in range(1, len(run)) if start + quarter <= run[k][0] <= end - quarter]
    inner = inner or list(range(1, len(run)))
    mid = (start + end) / 2
    k = max(inner, key=lambda k: (round(run[k][0] - run[k - 1][0], 3), -abs(run[k][0] - mid)))
    return _split_long(run[:k], max_seconds) + _split_long(run[k:], max_seconds)


def sentences_from_words(source: str, cues: list[Cue], cfg: ClipConfig, counts: Counter) -> list[Sentence]:
    """Sentences of a word-timed source, rebuilt from its words (step 2)."""
    flat = [(t, c.end, w) for c in cues for t, w in c.words]
    flat.sort(key=lambda x: x[0])
    runs: list[list[tuple[float, float, str]]] = [[]]
    for i, (t, bound, w) in enumerate(flat):
        nxt = flat[i + 1][0] if i + 1 < len(flat) else bound
        if _SOUND_TAG.match(w):
            counts["sound_tags"] += 1
            runs.append([])
            continue
        if runs[-1] and t - runs[-1][-1][0] >= cfg.pause_seconds:
            runs.append([])
        runs[-1].append((t, max(t, min(nxt, bound, t + WORD_SECONDS)), w))
        if _SENTENCE_END.search(w):
            runs.append([])
    out = []
    for run in runs:
        for part in _split_long(run, cfg.max_seconds) if run else []:
            out.append(Sentence(part[0][0], part[-1][1], " ".join(w for _, _, w in part), source))
    return out


def prepare_sentences(source: str, cues: list[Cue], cfg: ClipConfig, counts: Counter) -> list[Sentence]:
    """Cues (already checked and sorted) → sentences of one source; drops counted in ``counts``."""
    timed = cfg.merge and any(c.words for c in cues)
    if timed:
        candidates = sentences_from_words(source, cues, cfg, counts)
    else:
        candidates = [Sentence(c.start, c.end, c.text, source) for c in cues]
    sents = []
    for c in candidates:
        if not c.text.strip():
            counts["empty_texts"] += 1
        elif is_filler(c.text, cfg.fillers):
            counts["filler_texts"] += 1
        else:
            sents.append(c)
    if cfg.merge and not timed:
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
