"""The demo's texts at three levels: narrations per clip window (ASR-like speech plus a paraphrase, some of it
chit-chat), a summary per phase and an abstract per video, filled from a procedure's templates and synonyms."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hvl.domains.surgical.presets import DemoPreset

from .cholecystectomy import CHOLECYSTECTOMY
from .spec import Procedure

__all__ = ["UNRELATED", "NarrationPlan", "abstract", "asr", "narrations", "phase_summary", "plan_narrations",
           "realistic_narrations"]

UNRELATED_RATE = 0.2  # share of default-preset narrations that are chit-chat
FILLERS = ["um", "uh", "so", "ok", "alright", "you know", "right", "okay so", "and"]
ASR_SLIPS = {"cystic": "systic", "calot": "callot", "trocar": "trocker", "irrigation": "irritation",
             "gallbladder": "gall bladder", "hook": "hooke"}
UNRELATED: list[tuple[str, str]] = [
    ("can everyone see the screen", "Can everyone see the screen?"),
    ("let's adjust the light a bit", "Let's adjust the light a bit."),
    ("can you turn the music down please", "Please turn the music down."),
    ("how's the blood pressure doing", "How is the blood pressure?"),
    ("can we keep the camera steady", "Please keep the camera steady."),
    ("any questions so far", "Are there any questions so far?"),
    ("what time is it", "What time is it?"),
    ("thanks that's good", "Thanks, that is good."),
    ("can I have a swab please", "Could I have a swab, please?"),
    ("ok next slide no sorry", "Okay, next one. No, sorry."),
    ("let's zoom out a little", "Let's zoom out a little."),
    ("we're doing fine on time today", "We are doing fine on time today."),
]
CONNECTORS = ["Then", "Next,", "After that,", "Subsequently,", "Afterwards,"]


def pick(rng: np.random.Generator, items: list[str]) -> str:
    return items[int(rng.integers(len(items)))]


def fill(template: str, words: dict[str, list[str]], rng: np.random.Generator) -> str:
    """Replace each ``{slot}`` by a synonym (``{f}`` is a filler word)."""
    pool = {"f": FILLERS, **words}
    return re.sub(r"\{(\w+)\}", lambda m: pick(rng, pool[m.group(1)]), template)


def asr(text: str, rng: np.random.Generator) -> str:
    """Make a sentence look transcribed: lower case, no punctuation, extra fillers, misheard words."""
    words = re.sub(r"[^\w' -]", "", text.lower()).split()
    words = [ASR_SLIPS[w] if w in ASR_SLIPS and rng.uniform() < 0.15 else w for w in words]
    if rng.uniform() < 0.3:
        words.insert(int(rng.integers(len(words) + 1)), pick(rng, ["um", "uh", "er"]))
    return " ".join(words)


def sentence(text: str) -> str:
    text = text.strip()
    return text[0].upper() + text[1:] + ("" if text[-1] in ".?!" else ".")


def narrations(phase: str, rng: np.random.Generator, proc: Procedure = CHOLECYSTECTOMY) -> list[str]:
    """Two narrations for one clip: ASR speech, then a cleaner paraphrase (chit-chat 20 % of the time)."""
    if rng.uniform() < UNRELATED_RATE:
        spoken, written = UNRELATED[int(rng.integers(len(UNRELATED)))]
        return [asr(spoken, rng), written]
    spec = proc.phases[phase]
    return [asr(fill(pick(rng, spec.asr), spec.words, rng), rng),
            sentence(fill(pick(rng, spec.clean), spec.words, rng))]


def phase_summary(phase: str, rng: np.random.Generator, proc: Procedure = CHOLECYSTECTOMY) -> str:
    spec = proc.phases[phase]
    return fill(pick(rng, spec.summaries), spec.words, rng)


def abstract(rng: np.random.Generator, proc: Procedure = CHOLECYSTECTOMY) -> str:
    """A paragraph over the whole procedure: intro, the phases in order, a closing line."""
    parts = [fill(pick(rng, proc.intros), proc.intro_words, rng)]
    for i, (phase, spec) in enumerate(proc.phases.items()):
        clause = fill(pick(rng, spec.abstract), spec.words, rng)
        lead = "First," if i == 0 else "Finally," if i == len(proc.phases) - 1 else pick(rng, CONNECTORS)
        parts.append(f"{lead} {clause}.")
    parts.append(pick(rng, proc.closings))
    return " ".join(parts)


COUNTS = ["No bleeding", "One bleed", "Two bleeds", "Three bleeds"]


def _phase_words(label: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", label).lower()


def bleed_abstract(hosts: list[str], rng: np.random.Generator,
                   proc: Procedure = CHOLECYSTECTOMY) -> str:
    """A short abstract (well under 64 tokens) that only the whole video can match: how many bleeding episodes
    and, in order, the phases they interrupted (not the length: frames sampled over the whole video do not show it)."""
    head = f"Laparoscopic {proc.name}."
    if not hosts:
        return f"{head} No bleeding before the final cleaning."
    where = ", then ".join(f"in {_phase_words(h)}" for h in hosts)
    verb = pick(rng, ["stopped with the hook", "coagulated", "needing irrigation"])
    return f"{head} {COUNTS[len(hosts)]} {verb}: {where}."


@dataclass(frozen=True)
class NarrationPlan:
    """What is said over one clip window (realistic preset): whether anything, about what, how late."""

    start: float
    end: float
    spoken: bool  # False: silence, the window has no clip-level text
    related: bool  # False: chit-chat unrelated to the surgery
    lag: float  # seconds; the narration describes the picture at centre + lag
    phase: str | None  # the phase described (None if silent or unrelated)


def plan_narrations(spans: list[tuple[float, float]], phase_at: Callable[[float], str], duration: float,
                    preset: DemoPreset, rng: np.random.Generator) -> list[NarrationPlan]:
    """Per clip window: spoken at all (``narration_rate``), related (1 - ``unrelated_rate``), and the lag."""
    out = []
    for a, b in spans:
        spoken = bool(rng.uniform() < preset.narration_rate)
        related = bool(rng.uniform() >= preset.unrelated_rate)
        lag = 0.0
        if preset.lag_std:
            lag = float(np.clip(rng.normal(0.0, preset.lag_std), -preset.lag_max, preset.lag_max))
        t = min(max((a + b) / 2 + lag, 0.0), duration - 1e-6)
        out.append(NarrationPlan(a, b, spoken, related, round(lag, 6), phase_at(t) if spoken and related else None))
    return out


def realistic_narrations(plan: NarrationPlan, preset: DemoPreset, rng: np.random.Generator,
                         proc: Procedure = CHOLECYSTECTOMY) -> list[str]:
    """Two transcripts of what was said over one window; without ``clean_paraphrase`` both are ASR-like."""
    if not plan.related:
        spoken, written = UNRELATED[int(rng.integers(len(UNRELATED)))]
        return [asr(spoken, rng), written if preset.clean_paraphrase else asr(spoken, rng)]
    spec = proc.phases[plan.phase]
    said = fill(pick(rng, spec.asr), spec.words, rng)
    second = sentence(fill(pick(rng, spec.clean), spec.words, rng)) if preset.clean_paraphrase else asr(said, rng)
    return [asr(said, rng), second]
