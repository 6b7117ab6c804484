"""The gameplay demo's texts: captions per clip (video level), moments (clip level), bug phases for zero-shot, and
the held-out query set, whose phrasings never occur in a training text."""
from __future__ import annotations

from typing import Any

import numpy as np
from hvl.core.data.schema import ClipSegment, PhaseSegment

from .world import BUGS, COLOURS, GAMES, KINDS, MOMENT_SECONDS, NO_BUG

__all__ = ["bug_phases", "build_queries", "captions", "moment_spans", "moments"]

# ---- training vocabulary (captions and moments). The query phrasings below must never occur in it.
BUG_PHRASES = {
    "falling_through_floor": ["the {o} sinks into the ground and vanishes", "the {o} drops through the terrain",
                              "the {o} clips into the ground and disappears below it"],
    "floating_flying": ["the {o} is launched up into the sky", "the {o} shoots upward and hovers high above the ground",
                        "the {o} rises into the air and stays up there"],
    "stuck_in_object": ["the {o} gets wedged inside the {p} and stops moving", "the {o} ends up lodged inside the {p}",
                        "the {o} and the {p} overlap and freeze"],
    "stretched_jittering": ["the {o} stretches out wide and shakes", "the {o} is distorted and trembles",
                            "the {o} becomes elongated and vibrates"],
}
ACTIONS = {"car": ["the {o} drives across the hills", "the {o} drives along the track", "the {o} rolls on its wheels"],
           "ball": ["the {o} rolls along the ground", "the {o} bounces and rolls", "the {o} rolls down the slope"],
           "box": ["the {o} rests on the ground", "the {o} sits still on the slope", "the {o} slides a little"],
           "character": ["the {o} walks along the ground", "the {o} strolls across the map", "the {o} is walking"]}
QUERY_BUG = {"falling_through_floor": "a {k} falling through the floor", "floating_flying": "a {k} flying in the air",
             "stuck_in_object": "a {k} stuck inside another object", "stretched_jittering": "a stretched {k} jittering"}


def _pick(rng: np.random.Generator, items: list[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _listing(objs: list[dict[str, str]]) -> str:
    names = [f"a {o['colour']} {o['kind']}" for o in objs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _bug_sentence(plan: dict[str, Any], rng: np.random.Generator, colour: bool = True) -> str:
    b, objs = plan["bug"], plan["objects"]
    v = objs[b["victim"]]
    p = objs[b["partner"]] if b["partner"] is not None else None
    name = (lambda o: f"{o['colour']} {o['kind']}") if colour else (lambda o: o["kind"])
    return _pick(rng, BUG_PHRASES[b["type"]]).format(o=name(v), p=name(p) if p else "")


def captions(plan: dict[str, Any], rng: np.random.Generator) -> list[str]:
    """Two video-level descriptions: scene, objects, what happens."""
    scene = _pick(rng, GAMES[plan["game"]]["scene"])
    out = []
    for _ in range(2):
        acts = [_pick(rng, ACTIONS[o["kind"]]).format(o=f"{o['colour']} {o['kind']}") for o in plan["objects"]]
        what = f"{acts[int(rng.integers(len(acts)))].capitalize()}."
        if plan["bug"] is not None:
            what += f" Then {_bug_sentence(plan, rng)}."
        else:
            what += " Everything behaves normally."
        out.append(f"{_pick(rng, ['In', 'On'])} {scene}: {_listing(plan['objects'])}. {what}")
    return out


def moment_spans(plan: dict[str, Any], seconds: float) -> list[tuple[float, float, bool]]:
    """Two non-overlapping 2.5 s windows ``(start, end, shows_bug)``: before the bug and on it.

    Overlapping windows of one clip would carry near-identical texts that the contrastive loss
    then treats as negatives of each other (measured: validation loss stayed at chance).
    """
    bug = plan["bug"]
    if bug is None:
        return [(0.0, MOMENT_SECONDS, False), (seconds - MOMENT_SECONDS, seconds, False)]
    # the bug window sits where the bug is fully developed: a bug that lasts to the end of the clip
    # (sunk, hovering, stuck) is shown by its last seconds, not by its first frames, which still
    # look normal (measured, 160 steps: falling-through-floor queries found in the top 5: 3 of 4 -> 4 of 4)
    on = min(bug["start"], seconds - MOMENT_SECONDS) if bug["end"] < seconds else seconds - MOMENT_SECONDS
    return [(0.0, min(bug["start"], MOMENT_SECONDS), False), (on, on + MOMENT_SECONDS, True)]


def _action(plan: dict[str, Any], rng: np.random.Generator, exclude: int | None = None,
            pick: int | None = None) -> list[str]:
    """Two phrasings of one object's (``pick``'s, else a random one's) action, sometimes placed next to another."""
    idx = [i for i in range(len(plan["objects"])) if i != exclude]
    i = pick if pick is not None else idx[int(rng.integers(len(idx)))]
    o = plan["objects"][i]
    name = f"{o['colour']} {o['kind']}"
    a, b = (ACTIONS[o["kind"]][j].format(o=name) for j in rng.permutation(len(ACTIONS[o["kind"]]))[:2])
    others = [q for j, q in enumerate(plan["objects"]) if j != i]
    if others and rng.uniform() < 0.5:
        q = others[int(rng.integers(len(others)))]
        a += f" near the {q['colour']} {q['kind']}"
    return [a, b]


def moments(plan: dict[str, Any], seconds: float, rng: np.random.Generator) -> list[ClipSegment]:
    """Moment texts (clip level): the bug in two phrasings on the bug window, else an action."""
    out = []
    for a, b, on_bug in moment_spans(plan, seconds):
        if on_bug:
            # one phrasing names the colour, one does not: what is wrong must not hinge on the colour
            # (measured: with colours in every bug text, "a car falling through the floor" retrieved
            # cars of the colours its nearest training texts happened to name)
            texts = [_bug_sentence(plan, rng), _bug_sentence(plan, rng, colour=False)]
        elif plan["bug"] is not None:
            # before the bug, the same object behaving normally: with per_video batches this is the hard
            # negative of the bug moment (same clip, same object: only what happens differs)
            texts = _action(plan, rng, pick=plan["bug"]["victim"])
        else:
            texts = _action(plan, rng)
        out.append(ClipSegment(start=round(a, 6), end=round(b, 6), texts=texts))
    return out


def bug_phases(plan: dict[str, Any], seconds: float) -> list[PhaseSegment]:
    """Per-time bug class for zero-shot evaluation: the bug's span, ``no_bug`` around it."""
    b = plan["bug"]
    if b is None:
        return [PhaseSegment(start=0.0, end=seconds, label=NO_BUG)]
    spans = [(0.0, b["start"], NO_BUG), (b["start"], b["end"], b["type"]), (b["end"], seconds, NO_BUG)]
    return [PhaseSegment(start=s, end=e, label=lab) for s, e, lab in spans if e - s > 1e-6]


# ============================================================== queries
def build_queries(test: list[tuple[str, dict[str, Any]]], rng: np.random.Generator,
                  max_compound: int = 16) -> list[dict[str, Any]]:
    """Simple ("a red car"), compound ("a red car next to a blue box") and bug ("a car falling
    through the floor") queries, each with the test clips that answer it."""
    qs: list[dict[str, Any]] = []
    have = lambda plan, c, k: any(o["colour"] == c and o["kind"] == k for o in plan["objects"])  # noqa: E731
    for c in COLOURS:
        for k in KINDS:
            rel = [vid for vid, p in test if have(p, c, k)]
            if rel:
                qs.append({"type": "simple", "text": f"a {c} {k}", "relevant": rel})
    pairs = sorted({tuple(sorted(((o["colour"], o["kind"]), (q["colour"], q["kind"]))))
                    for _, p in test for o in p["objects"] for q in p["objects"] if o != q})
    for i in rng.permutation(len(pairs))[:max_compound]:
        (c1, k1), (c2, k2) = pairs[i]
        rel = [vid for vid, p in test if have(p, c1, k1) and have(p, c2, k2)]
        qs.append({"type": "compound", "text": f"a {c1} {k1} next to a {c2} {k2}", "relevant": rel})
    for bug in BUGS:
        for k in KINDS:
            rel = [vid for vid, p in test if p["bug"] and p["bug"]["type"] == bug
                   and p["objects"][p["bug"]["victim"]]["kind"] == k]
            if rel:
                qs.append({"type": "bug", "text": QUERY_BUG[bug].format(k=k), "relevant": rel, "bug": bug})
    return [{"id": f"q{i:03d}", **q} for i, q in enumerate(qs)]
