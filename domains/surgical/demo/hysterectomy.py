"""The demo's second procedure: a total laparoscopic hysterectomy through AutoLaparo's seven phases.

HecVL's second claim is that one pretrained model transfers to other operations. To test that
without real data, ``hvl demo surgical --procedure hysterectomy`` draws a hysterectomy the
way :mod:`.cholecystectomy` draws a cholecystectomy: new anatomy (uterus, round
ligament, uterine vessels, the colpotomy cup, the vaginal cuff, bowel) handled by the same
instruments doing the same kinds of things (trocars placed, a cautery hook cutting with
smoke, clips and scissors on vessels, a specimen bag pulled out, suction and irrigation),
plus one thing a cholecystectomy never shows (a needle and suture closing the cuff). Labels
are AutoLaparo's phase names, so ``prompts/demo_hysterectomy.yaml`` scores it zero-shot.
Phase shares are rough (a hysterectomy spends most of its time dividing and suturing), not
measured on AutoLaparo.
"""
from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
from hvl.domains.surgical.phases import AUTOLAPARO_PHASES

from .drawing import RGB, Pen, instrument, lerp, polar
from .laparoscopy import PREPARATION, clean_frame, clip_frame
from .spec import Layout, PhaseSpec, Procedure
from .words import BAG, CLIP, CLIPPER, CLIPS, FORCEPS, GRASPER, HOOK, IRRIGATION, SCISSORS, SMOKE, SUCTION

__all__ = ["HYSTERECTOMY"]

COLOURS = {"uterus": (214, 130, 138), "ligament": (236, 206, 196), "cup": (96, 136, 214), "suture": (120, 64, 170),
           "cuff": (150, 46, 52), "bowel": (222, 160, 128), "ovary": (232, 190, 170)}


def _bowel(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB], y: tuple[float, float]) -> None:
    for _ in range(int(rng.integers(3, 5))):
        pen.ellipse((rng.uniform(0, s), rng.uniform(*y) * s), (rng.uniform(0.16, 0.24) * s, 0.09 * s), pal["bowel"],
                    angle=rng.uniform(0, math.pi), shade=0.35)


def _uterus(pen: Pen, c: tuple[float, float], s: float, pal: dict[str, RGB], scale: float = 1.0,
            angle: float = 0.0) -> None:
    pen.ellipse(c, (0.27 * s * scale, 0.2 * s * scale), pal["uterus"], angle=angle, shade=0.35)


def _ligament_scene(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB]) -> Layout:
    """Bowel above, the pink uterus below and a pale ligament band running from it to the pelvic wall."""
    _bowel(pen, rng, s, pal, (0.0, 0.25))
    c = (rng.uniform(0.4, 0.6) * s, rng.uniform(0.6, 0.7) * s)
    side = rng.choice([-1.0, 1.0])
    b0 = (c[0] + side * 0.22 * s, c[1] - 0.08 * s)
    b1 = (b0[0] + side * rng.uniform(0.35, 0.5) * s, b0[1] - rng.uniform(0.15, 0.3) * s)
    pen.line(b0, b1, 0.07 * s, pal["ligament"], shade=0.3)
    pen.ellipse(lerp(b0, b1, 0.6), (0.06 * s, 0.04 * s), pal["ovary"], shade=0.3)
    _uterus(pen, c, s, pal)
    return {"b0": b0, "b1": b1, "top": (c[0] - side * 0.05 * s, c[1] - 0.15 * s), "side": side,
            "hook_a": -math.pi / 2 + side * rng.uniform(0.3, 0.8)}


def _ligament_frame(pen: Pen, L: Layout, s: float, pal: dict[str, RGB], u: float, t: float) -> None:
    """The grasper tilts the uterus away; the hook burns along the ligament, leaving a dark line."""
    instrument(pen, "grasper", L["top"], math.pi / 2 + 0.3 * L["side"] + 0.1 * math.sin(0.3 * t), s, pal,
               opening=0.1)
    k = 0.1 + 0.8 * u
    pen.line(L["b0"], lerp(L["b0"], L["b1"], k), 0.02 * s, pal["burn"], alpha=0.85)
    tip = lerp(L["b0"], L["b1"], k + 0.03 * math.sin(2 * t))
    instrument(pen, "hook", tip, L["hook_a"], s, pal)
    if math.sin(5.0 * t) > 0.6:
        pen.ellipse(tip, (0.025 * s, 0.025 * s), pal["spark"], alpha=0.9)


def _vessel_scene(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB]) -> Layout:
    """Side of the uterus with the dark uterine vein and the artery beside it, ready for clips."""
    side = rng.choice([-1.0, 1.0])
    _uterus(pen, (0.5 * s + side * 0.42 * s, rng.uniform(0.35, 0.5) * s), s, pal, scale=1.3)
    a = math.pi / 2 + rng.uniform(-0.35, 0.35)
    mid = (0.5 * s - side * rng.uniform(0.0, 0.08) * s, 0.5 * s)
    d0, d1 = polar(mid, a + math.pi, 0.75 * s), polar(mid, a, 0.75 * s)
    off = -side * 0.15 * s
    pen.line(*[polar(p, a + math.pi / 2, off) for p in (d0, d1)], 0.04 * s, pal["artery"], shade=0.3)
    pen.line(d0, d1, 0.1 * s, pal["vessel"], shade=0.35)
    pos = sorted(rng.uniform(-0.28, 0.28, 4) * s)
    return {"mid": mid, "a": a, "off": off, "clips": [polar(mid, a, p) for p in pos],
            "cut": polar(mid, a, 0.5 * (pos[1] + pos[2])), "side": side}


def _cup_scene(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB]) -> Layout:
    """The uterus pushed up by the manipulator: the blue rim of the colpotomy cup shows through the vagina."""
    _uterus(pen, (rng.uniform(0.4, 0.6) * s, rng.uniform(0.12, 0.22) * s), s, pal, scale=1.2)
    c = (rng.uniform(0.45, 0.55) * s, rng.uniform(0.6, 0.68) * s)
    r = (rng.uniform(0.3, 0.36) * s, rng.uniform(0.13, 0.16) * s)
    pen.ellipse(c, r, pal["cup"], shade=0.3)
    pen.ellipse(c, (0.82 * r[0], 0.7 * r[1]), pal["tissue"] * 0.9, shade=0.2)
    return {"c": c, "r": r, "start": rng.uniform(0, 2 * math.pi), "dir": rng.choice([-1.0, 1.0])}


def _cup_frame(pen: Pen, L: Layout, s: float, pal: dict[str, RGB], u: float, t: float) -> None:
    """The hook cuts round the cup; the opened part of the ring turns dark."""
    c, r = L["c"], L["r"]

    def at(th: float) -> tuple[float, float]:
        return c[0] + r[0] * math.cos(th), c[1] + r[1] * math.sin(th)

    end = L["start"] + L["dir"] * 2 * math.pi * 0.9 * u
    steps = max(1, int(12 * u))
    for i in range(steps):
        th0 = L["start"] + (end - L["start"]) * i / steps
        th1 = L["start"] + (end - L["start"]) * (i + 1) / steps
        pen.line(at(th0), at(th1), 0.03 * s, pal["hole"], alpha=0.85)
    tip = at(end + 0.05 * math.sin(2 * t))
    instrument(pen, "hook", tip, -math.pi / 2 + 0.6 * math.cos(end) + 0.1 * math.sin(0.5 * t), s, pal)
    if math.sin(5.0 * t) > 0.6:
        pen.ellipse(tip, (0.025 * s, 0.025 * s), pal["spark"], alpha=0.9)


def _removal_scene(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB]) -> Layout:
    """The opened vagina, a dark hole with a red rim, low in the pelvis."""
    _bowel(pen, rng, s, pal, (0.0, 0.2))
    hole = (rng.uniform(0.4, 0.6) * s, rng.uniform(0.78, 0.88) * s)
    pen.ellipse(hole, (0.3 * s, 0.12 * s), pal["cuff"], shade=0.3)
    pen.ellipse(hole, (0.24 * s, 0.08 * s), pal["hole"])
    return {"hole": hole, "start": (rng.uniform(0.35, 0.65) * s, rng.uniform(0.3, 0.42) * s)}


def _removal_frame(pen: Pen, L: Layout, s: float, pal: dict[str, RGB], u: float, t: float) -> None:
    """The uterus, in a white specimen bag, is drawn down into the vagina and shrinks out of view."""
    k = min(1.0, u ** 1.2)
    pos = lerp(L["start"], L["hole"], 0.9 * k)
    r = (0.24 - 0.16 * k) * s
    pen.ellipse(pos, (r, 0.8 * r), pal["bag"], alpha=0.92, shade=0.2)
    pen.ellipse(pos, (0.65 * r, 0.5 * r), pal["uterus"], alpha=0.45)
    top = (pos[0], pos[1] - 0.7 * r)
    instrument(pen, "grasper", top, -math.pi / 2 + 0.5 + 0.1 * math.sin(0.5 * t), s, pal, opening=0.05)


def _suture_scene(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB]) -> Layout:
    """The vaginal cuff, a long red slit, with the stitch positions along it."""
    _bowel(pen, rng, s, pal, (0.0, 0.18))
    c = (rng.uniform(0.45, 0.55) * s, rng.uniform(0.55, 0.65) * s)
    a = rng.uniform(-0.25, 0.25)
    pen.ellipse(c, (0.36 * s, 0.07 * s), pal["cuff"], angle=a, shade=0.3)
    pen.ellipse(c, (0.3 * s, 0.02 * s), pal["hole"], angle=a)
    pos = np.linspace(-0.26, 0.26, int(rng.integers(4, 6))) * s
    return {"c": c, "a": a, "stitches": [polar(c, a, p) for p in pos], "side": rng.choice([-1.0, 1.0])}


def _suture_frame(pen: Pen, L: Layout, s: float, pal: dict[str, RGB], u: float, t: float) -> None:
    """Violet stitches appear one by one; the needle holder's curved needle trails the thread to the next."""
    a, stitches = L["a"], L["stitches"]
    n = min(len(stitches), int(u * (len(stitches) + 1)))
    across = a + math.pi / 2
    for p in stitches[:n]:
        pen.line(polar(p, across, -0.06 * s), polar(p, across, 0.06 * s), 0.02 * s, pal["suture"])
    nxt = stitches[min(n, len(stitches) - 1)]
    hub = polar(nxt, across, -0.08 * s + 0.02 * s * math.sin(3 * t))
    arc = [polar(hub, across + 0.9 * (i / 4 - 0.5) * math.pi, 0.06 * s) for i in range(5)]
    for p0, p1 in itertools.pairwise(arc):
        pen.line(p0, p1, 0.014 * s, pal["tipmetal"], shade=0.3)
    if n:
        pen.line(stitches[n - 1], arc[-1], 0.012 * s, pal["suture"])
    instrument(pen, "grasper", arc[0], (math.pi if L["side"] > 0 else 0.0) - 0.5 * L["side"], s, pal, opening=0.05)


def _wash_scene(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB]) -> Layout:
    """The closed cuff (violet stitches) under a pool of irrigation fluid with some blood."""
    _bowel(pen, rng, s, pal, (0.0, 0.3))
    cuff = (rng.uniform(0.4, 0.6) * s, rng.uniform(0.4, 0.5) * s)
    pen.ellipse(cuff, (0.3 * s, 0.05 * s), pal["cuff"], shade=0.3)
    for x in np.linspace(-0.22, 0.22, 5) * s:
        pen.line((cuff[0] + x, cuff[1] - 0.04 * s), (cuff[0] + x, cuff[1] + 0.04 * s), 0.018 * s, pal["suture"])
    pool = (rng.uniform(0.4, 0.6) * s, rng.uniform(0.68, 0.78) * s)
    r = (rng.uniform(0.42, 0.5) * s, rng.uniform(0.22, 0.28) * s)
    pen.ellipse(pool, r, pal["fluid"], alpha=0.75, shade=0.2)
    blood = [((pool[0] + rng.uniform(-0.6, 0.6) * r[0], pool[1] + rng.uniform(-1.4, 0.3) * r[1]),
              rng.uniform(0.05, 0.1) * s) for _ in range(int(rng.integers(3, 5)))]
    return {"pool": pool, "r": r, "blood": blood, "side": rng.choice([-1.0, 1.0]), "phase": rng.uniform(0, 6)}


UT = ["uterus", "uterus", "womb"]
SPECS: dict[str, PhaseSpec] = {
    "Preparation": dataclasses.replace(PREPARATION, weight=0.06),  # ports go in as in any laparoscopy
    "Dividing Ligament and Peritoneum": PhaseSpec(
        weight=0.27, background="tissue", pan=0.5, haze=0.5, scene=_ligament_scene, frame=_ligament_frame,
        words={"hook": HOOK,
               "grasper": GRASPER, "ut": UT,
               "ligament": ["round ligament", "ligament", "broad ligament", "infundibulopelvic ligament"],
               "peritoneum": ["peritoneum", "bladder peritoneum", "peritoneal fold"],
               "smoke": SMOKE},
        asr=["ok I'm pushing the {ut} over with the {grasper} and taking the {ligament} with the {hook}",
             "{f} now we open the {peritoneum} here with the {hook}",
             "so I'm burning through the {ligament} nice and close to the {ut}",
             "lots of {smoke} let's wait {f}",
             "the {hook} goes along the {ligament} {f} careful with the ureter",
             "now the {peritoneum} over the bladder comes down",
             "I'm dividing the {ligament} on the left side"],
        clean=["I divide the {ligament} with the {hook} while the {grasper} holds the {ut} aside.",
               "With the {hook} I open the {peritoneum}.",
               "I cut through the {ligament} close to the {ut}.",
               "I dissect the {peritoneum} off the bladder with the {hook}."],
        summaries=["Dividing ligament and peritoneum: the {ligament} was cut with the {hook} and the {peritoneum} "
                   "was opened while the {grasper} moved the {ut} aside.",
                   "I divided the {ligament} on both sides with the {hook}. There was some {smoke}.",
                   "The {hook} burned through the {ligament} and the {peritoneum}.",
                   "In this phase the {ligament} and the {peritoneum} were divided."],
        abstract=["the {ligament} and the {peritoneum} were divided with the {hook}",
                  "the {hook} cut the {ligament} on both sides of the {ut}",
                  "the {peritoneum} was opened and the {ligament} divided"]),
    "Dividing Uterine Vessels and Ligament": PhaseSpec(
        weight=0.17, background="tissue", pan=0.4, haze=0.3, scene=_vessel_scene, frame=clip_frame,
        words={"clips": CLIPS, "clip": CLIP,
               "clipper": CLIPPER,
               "scissors": SCISSORS,
               "vessels": ["uterine vessels", "uterine artery", "uterine artery and vein", "vessels"],
               "ligament": ["cardinal ligament", "uterosacral ligament", "ligament"], "ut": UT,
               "n": ["two", "three"]},
        asr=["ok now the {clips} go on the {vessels}",
             "{f} {clipper} on the {vessels} right next to the {ut}",
             "one {clip} here and one more below {f}",
             "now the {scissors} and we cut between the {clips}",
             "I'm cutting the {vessels} with the {scissors}",
             "so the {ligament} comes next after the {vessels}",
             "let me get a {clip} on the {vessels} first"],
        clean=["I apply {clips} to the {vessels} with the {clipper}.",
               "I cut the {vessels} between the {clips} with the {scissors}.",
               "I secure the {vessels} beside the {ut} with {clips}.",
               "I divide the {ligament} after the {vessels} are clipped."],
        summaries=["Dividing uterine vessels and ligament: the {vessels} were closed with {clips} from the "
                   "{clipper} and cut with the {scissors}.",
                   "I placed {n} {clips} on the {vessels} on each side, then cut them with the {scissors}.",
                   "The {vessels} were secured with {clips} and divided together with the {ligament}.",
                   "In this phase the {vessels} were clipped and cut."],
        abstract=["the uterine vessels were clipped with the {clipper} and cut with the {scissors}",
                  "{clips} were applied to the {vessels}, which were then divided with the {ligament}",
                  "the {vessels} were secured with {n} {clips} and cut"]),
    "Transecting the Vagina": PhaseSpec(
        weight=0.12, background="tissue", pan=0.4, haze=0.6, scene=_cup_scene, frame=_cup_frame,
        words={"hook": HOOK,
               "cup": ["colpotomy cup", "cup", "manipulator cup", "vaginal cup"],
               "vagina": ["vagina", "vaginal wall", "vaginal vault"], "ut": UT,
               "smoke": SMOKE},
        asr=["ok now we go round the {cup} with the {hook}",
             "{f} cutting the {vagina} on the rim of the {cup}",
             "you can see the blue {cup} here so we stay on it",
             "lots of {smoke} now {f}",
             "and round the back of the {cup} with the {hook}",
             "the {ut} is almost free from the {vagina} now"],
        clean=["I cut the {vagina} around the {cup} with the {hook}.",
               "With the {hook} I follow the rim of the {cup}.",
               "I open the {vagina} all around the {cup}.",
               "I separate the {ut} from the {vagina} along the {cup}."],
        summaries=["Transecting the vagina: the {vagina} was cut around the {cup} with the {hook}.",
                   "I opened the {vagina} on the rim of the {cup} using the {hook}. There was some {smoke}.",
                   "The {hook} followed the {cup} until the {ut} was free from the {vagina}.",
                   "In this phase the {vagina} was transected around the {cup}."],
        abstract=["the vagina was transected around the {cup} with the {hook}",
                  "the {hook} cut the {vagina} along the {cup}",
                  "colpotomy was done on the {cup} with the {hook}"]),
    "Specimen Removal": PhaseSpec(
        weight=0.07, background="tissue", pan=0.4, haze=0.0, scene=_removal_scene, frame=_removal_frame,
        words={"bag": BAG, "ut": UT,
               "vagina": ["vagina", "vaginal opening", "vault"], "grasper": FORCEPS},
        asr=["ok now the {ut} comes out through the {vagina}",
             "{f} the {ut} is in the {bag} and we pull it down",
             "grabbing the {bag} with the {grasper} {f}",
             "and out it goes through the {vagina} slowly",
             "a bit tight let me turn it {f}",
             "pulling the {bag} into the {vagina} now"],
        clean=["I remove the {ut} in the {bag} through the {vagina}.",
               "The {grasper} pulls the {bag} with the {ut} down into the {vagina}.",
               "I take the specimen out through the {vagina}.",
               "I extract the {bag} from the pelvis."],
        summaries=["Specimen removal: the {ut} was removed in a {bag} through the {vagina}.",
                   "I pulled the {bag} with the {ut} out through the {vagina} with the {grasper}.",
                   "The specimen was taken out of the pelvis through the {vagina}.",
                   "In this phase the {ut} was removed in the {bag}."],
        abstract=["the uterus was removed in a {bag} through the {vagina}",
                  "the specimen was extracted through the {vagina}",
                  "the {ut} was taken out in the {bag}"]),
    "Suturing": PhaseSpec(
        weight=0.25, background="tissue", pan=0.4, haze=0.0, scene=_suture_scene, frame=_suture_frame,
        words={"needle": ["needle", "curved needle", "needle holder", "needle driver"],
               "suture": ["suture", "stitch", "stitches", "thread"],
               "cuff": ["vaginal cuff", "cuff", "vaginal vault"], "n": ["three", "four", "five"]},
        asr=["ok now we close the {cuff} with the {needle}",
             "{f} first {suture} on the corner of the {cuff}",
             "through both edges of the {cuff} with the {needle}",
             "tie that {suture} {f} and the next one",
             "one more {suture} in the middle of the {cuff}",
             "pulling the {suture} tight now"],
        clean=["I close the {cuff} with a {suture}.",
               "I pass the {needle} through both edges of the {cuff}.",
               "I tie the {suture} and place the next one.",
               "I sew the {cuff} shut with {n} stitches."],
        summaries=["Suturing: the {cuff} was closed with {n} stitches using the {needle}.",
                   "I sutured the {cuff} from one corner to the other.",
                   "The edges of the {cuff} were brought together with the {needle} and {suture}.",
                   "In this phase the {cuff} was sutured."],
        abstract=["the vaginal cuff was closed with sutures",
                  "the {cuff} was sutured with {n} stitches",
                  "the {cuff} was sewn shut with the {needle}"]),
    "Washing": PhaseSpec(
        weight=0.06, background="tissue", pan=0.5, haze=0.0, scene=_wash_scene, frame=clean_frame,
        words={"suction": SUCTION,
               "irrigation": IRRIGATION,
               "pelvis": ["pelvis", "pelvic cavity", "vault"],
               "bleeding": ["bleeding", "oozing", "blood"]},
        asr=["ok let's wash out the {pelvis} with the {suction}",
             "{f} some {irrigation} in the {pelvis} and suck it out",
             "no {bleeding} from the {pelvis} that looks dry",
             "I'm washing the {pelvis} with {irrigation}",
             "suck out the {irrigation} {f} and check again"],
        clean=["I wash the {pelvis} with {irrigation} and aspirate with the {suction}.",
               "I check the {pelvis} for {bleeding}.",
               "I irrigate the {pelvis} and suck the fluid out.",
               "I clean the {pelvis} with the {suction}."],
        summaries=["Washing: the {pelvis} was irrigated with {irrigation} and aspirated with the {suction}.",
                   "I washed the {pelvis} and checked for {bleeding}.",
                   "The {pelvis} was cleaned with {suction} and {irrigation} at the end.",
                   "In this phase the {pelvis} was washed."],
        abstract=["the pelvis was washed with suction and irrigation",
                  "the {pelvis} was irrigated and checked for {bleeding}",
                  "the {pelvis} was cleaned with {irrigation}"]),
}
assert list(SPECS) == AUTOLAPARO_PHASES

HYSTERECTOMY = Procedure(
    name="hysterectomy", phases=SPECS,
    intros=["This video shows a total laparoscopic hysterectomy in a {age} year old woman with {why}.",
            "Laparoscopic hysterectomy for {why} in a {age}-year-old woman.",
            "We present a standard total laparoscopic hysterectomy performed for {why}.",
            "A {age} year old woman underwent laparoscopic removal of the uterus for {why}."],
    intro_words={"age": [str(a) for a in range(34, 72, 3)],
                 "why": ["uterine fibroids", "abnormal uterine bleeding", "adenomyosis", "endometrial hyperplasia"]},
    closings=["The procedure ended without complications.", "Blood loss was minimal.",
              "The patient recovered well.", "The vaginal cuff healed well."],
    colours=COLOURS, stream=1)
