"""What a procedure is to the demo: its phases in order, each with its look (a scene drawn once, what moves drawn
per frame) and how people talk about it."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .drawing import RGB, Pen

__all__ = ["Layout", "PhaseSpec", "Procedure"]

# A phase's ``scene`` samples the layout, draws the static part on the canvas and returns what the moving part
# needs; its ``frame`` draws what moves, given the phase progress u in [0, 1) and the time t in seconds. Sizes are
# fractions of s (the frame size in pixels).
Layout = dict[str, object]


@dataclass(frozen=True)
class PhaseSpec:
    """Everything about one phase: how long, what it looks like, how people talk about it."""

    weight: float  # share of the procedure (≈ Cholec80 mean phase durations)
    background: str  # palette key of the tissue behind everything
    pan: float  # camera pan amplitude, fraction of the margin
    haze: float  # smoke from the cautery hook
    scene: Callable[[Pen, np.random.Generator, float, dict[str, RGB]], Layout]
    frame: Callable[[Pen, Layout, float, dict[str, RGB], float, float], None]
    words: dict[str, list[str]]  # synonyms filling the {slots} below
    asr: list[str]  # spoken, first person, as a surgeon narrates while operating
    clean: list[str]  # the same content written down properly
    summaries: list[str]  # one or two sentences for the whole phase
    abstract: list[str]  # a clause for the video abstract, past tense


@dataclass(frozen=True)
class Procedure:
    """One operation the demo can draw: its phases in operating order and how its abstracts read."""

    name: str
    phases: dict[str, PhaseSpec]  # in the order the operation runs through them
    intros: list[str]
    intro_words: dict[str, list[str]]
    closings: list[str]
    colours: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # on top of PALETTE
    stream: int = 0  # appended to each video's seed, so procedures never share a random stream (0: none)
