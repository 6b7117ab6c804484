"""What any laparoscopy in the demo shows: ports going in (the preparation phase, the same in every procedure),
clips and scissors on a vessel or duct, and suction through irrigation fluid (frames drawn over a procedure's own
scene)."""
from __future__ import annotations

import math

import numpy as np

from .drawing import RGB, Pen, instrument, polar
from .spec import Layout, PhaseSpec

__all__ = ["PREPARATION", "clean_frame", "clip_frame"]


def _prep_scene(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB]) -> Layout:
    """Light abdominal wall from inside with fascia, fat and the ports already placed."""
    for _ in range(3):
        p = (rng.uniform(0, s), rng.uniform(0, s))
        pen.line(p, polar(p, rng.uniform(0, math.pi), 0.5 * s), 0.03 * s, pal["fascia"], alpha=0.5)
    for _ in range(rng.integers(2, 4)):
        pen.ellipse((rng.uniform(0, s), rng.uniform(0, s)), (0.12 * s, 0.07 * s), pal["fat"],
                    angle=rng.uniform(0, math.pi), alpha=0.35)
    for _ in range(rng.integers(2, 4)):
        pen.ring((rng.uniform(0.15, 0.85) * s, rng.uniform(0.15, 0.85) * s), rng.uniform(0.08, 0.12) * s,
                 pal["port"], pal["hole"])
    return {"new": (rng.uniform(0.3, 0.7) * s, rng.uniform(0.3, 0.7) * s), "angle": rng.uniform(0, 2 * math.pi)}


def _prep_frame(pen: Pen, L: Layout, s: float, pal: dict[str, RGB], u: float, t: float) -> None:
    """A new trocar pushing through the wall: its ring widens as it goes in."""
    r = (0.04 + 0.08 * min(1.0, 1.6 * u)) * s
    pen.ring(L["new"], r, pal["port"], pal["hole"])
    if u < 0.6:  # the sharp obturator tip still shows in the middle
        pen.ellipse(L["new"], (0.35 * r, 0.35 * r), pal["tipmetal"], shade=0.5)


def clip_frame(pen: Pen, L: Layout, s: float, pal: dict[str, RGB], u: float, t: float) -> None:
    """Clips appear one by one (clip applier), then the scissors cut between them."""
    a, clips = L["a"], L["clips"]
    n = min(len(clips), int(u / 0.6 * (len(clips) + 1)))
    across = a + math.pi / 2
    for p in clips[:n]:
        pen.line(polar(p, across, -0.065 * s), polar(p, across, 0.065 * s), 0.028 * s, pal["clip"], shade=0.3)
        q = polar(p, across, L["off"])
        pen.line(polar(q, across, -0.04 * s), polar(q, across, 0.04 * s), 0.022 * s, pal["clip"], shade=0.3)
    from_below = across if L["side"] > 0 else across + math.pi
    if u < 0.6:
        target = clips[min(n, len(clips) - 1)]
        instrument(pen, "clipper", polar(target, from_below, 0.02 * s * math.sin(3 * t)),
                   from_below + math.pi + 0.3 * L["side"], s, pal)
    else:
        if u > 0.85:  # duct divided
            c = L["cut"]
            pen.line(polar(c, across, -0.06 * s), polar(c, across, 0.06 * s), 0.035 * s, pal["tissue"])
        instrument(pen, "scissors", L["cut"], from_below + math.pi - 0.4 * L["side"], s, pal,
                   opening=0.5 + 0.5 * math.sin(4 * t))


def clean_frame(pen: Pen, L: Layout, s: float, pal: dict[str, RGB], u: float, t: float) -> None:
    """Blood pools shrink as the suction cannula sweeps through the fluid; light glints on it."""
    for c, r in L["blood"]:
        pen.ellipse(c, (r * (1 - 0.5 * u), 0.7 * r * (1 - 0.5 * u)), pal["blood"], alpha=0.85)
    pool, r, ph = L["pool"], L["r"], L["phase"]
    for k in range(3):
        g = (pool[0] + 0.7 * r[0] * math.sin(0.9 * t + 2.1 * k + ph), pool[1] + 0.5 * r[1] * math.cos(1.3 * t + k))
        pen.ellipse(g, (0.012 * s, 0.012 * s), pal["spark"], alpha=0.9)
    tip = (pool[0] + 0.5 * r[0] * math.sin(0.6 * t + ph), pool[1] + 0.4 * r[1] * math.sin(0.9 * t))
    ang = (math.pi if L["side"] > 0 else 0.0) - 0.5 * L["side"] + 0.1 * math.sin(0.4 * t)
    instrument(pen, "suction", tip, ang, s, pal)


PREPARATION = PhaseSpec(
    weight=0.05, background="wall", pan=1.0, haze=0.0, scene=_prep_scene, frame=_prep_frame,
    words={"port": ["trocar", "port", "trocar port", "working port"],
           "ports": ["trocars", "ports", "trocar ports"],
           "wall": ["abdominal wall", "abdomen", "belly wall"],
           "cavity": ["abdominal cavity", "peritoneal cavity", "abdomen"],
           "scope": ["camera", "scope", "laparoscope"], "n": ["three", "four"]},
    asr=["ok so first we put the {ports} in through the {wall}",
         "{f} I'm inserting the next {port} here under vision",
         "now the {port} goes in nice and slow through the {wall}",
         "so we have the {scope} in and I'm placing the other {ports}",
         "let me put the {port} in on the right side {f}",
         "the {ports} are going in and we have a look around the {cavity}",
         "I'm just checking the {cavity} before the other {ports} go in",
         "pushing the {port} through the {wall} now watch the tip"],
    clean=["I insert the {ports} through the {wall}.",
           "Now I place another {port} under {scope} view.",
           "I push a {port} through the {wall} while watching its tip.",
           "I inspect the {cavity} and put in the remaining {ports}."],
    summaries=["Preparation: the {ports} were inserted through the {wall} and the {cavity} was inspected.",
               "During preparation I placed {n} {ports} under vision. "
               "The {scope} gave a first look at the {cavity}.",
               "The operation started by placing {n} {ports} in the {wall}.",
               "In preparation the {ports} went in through the {wall} one after the other."],
    abstract=["the {ports} were placed through the {wall}",
              "{n} {ports} were inserted and the {cavity} was inspected",
              "the {cavity} was entered and {n} {ports} were positioned"])
