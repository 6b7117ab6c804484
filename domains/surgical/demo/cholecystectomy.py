"""The demo's first procedure: a laparoscopic cholecystectomy through Cholec80's seven phases.

Every phase has its own picture (ports on the abdominal wall, grasper and hook at Calot's triangle, clips on the
duct, smoke at the liver border, a white specimen bag, blue irrigation fluid and blood, the bag pulled to a trocar)
and its own words; shares of the procedure are roughly Cholec80's mean phase durations.
"""
from __future__ import annotations

import math

import numpy as np
from hvl.domains.surgical.phases import CHOLEC80_PHASES

from .drawing import RGB, Pen, Point, instrument, lerp, polar
from .laparoscopy import PREPARATION, clean_frame, clip_frame
from .spec import Layout, PhaseSpec, Procedure
from .words import BAG, CLIP, CLIPPER, CLIPS, FORCEPS, GRASPER, HOOK, IRRIGATION, SCISSORS, SMOKE, SUCTION

__all__ = ["CHOLECYSTECTOMY", "PHASES"]


# ============================================================== the phase scenes
def _liver(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB],
           centre_y: tuple[float, float] = (-0.05, 0.08)) -> Point:
    """The dark-red liver as a big ellipse; ``centre_y`` (fractions) says how much of the view it fills."""
    c = (rng.uniform(0.3, 0.7) * s, rng.uniform(*centre_y) * s)
    pen.ellipse(c, (rng.uniform(0.7, 0.85) * s, rng.uniform(0.3, 0.4) * s), pal["liver"],
                angle=rng.uniform(-0.2, 0.2), shade=0.35)
    return c


def _calot_scene(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB]) -> Layout:
    """Liver on top, gallbladder held up, yellow fatty triangle at its neck with a white duct."""
    for _ in range(4):  # fatty omentum and peritoneum all around the triangle
        pen.ellipse((rng.uniform(0, s), rng.uniform(0.3, 1.0) * s), (rng.uniform(0.2, 0.3) * s, 0.16 * s), pal["fat"],
                    angle=rng.uniform(0, math.pi), alpha=0.5)
    _liver(pen, rng, s, pal, centre_y=(-0.15, -0.02))
    a = rng.uniform(-0.75, -0.35)
    c = (rng.uniform(0.48, 0.6) * s, rng.uniform(0.33, 0.45) * s)
    rx = rng.uniform(0.28, 0.34) * s
    neck, fundus = polar(c, a + math.pi, rx * 0.9), polar(c, a, rx * 0.85)
    duct_end = polar(neck, a + math.pi + rng.uniform(0.3, 0.6), 0.6 * s)
    pen.line(neck, duct_end, 0.05 * s, pal["duct"], shade=0.3)
    pen.line(polar(neck, a + math.pi / 2, 0.06 * s), polar(duct_end, a + math.pi / 2, 0.1 * s), 0.028 * s,
             pal["artery"], shade=0.3)
    pen.ellipse(c, (rx, rng.uniform(0.15, 0.18) * s), pal["gallbladder"], angle=a, shade=0.35)
    fat_c = polar(neck, a + math.pi + 0.5, 0.16 * s)
    pen.ellipse(fat_c, (0.24 * s, 0.16 * s), pal["fat"], angle=a, alpha=0.65, shade=0.2)
    for _ in range(6):
        pen.ellipse(polar(fat_c, rng.uniform(0, 2 * math.pi), rng.uniform(0.1, 0.25) * s), (0.08 * s, 0.05 * s),
                    pal["fat"], angle=rng.uniform(0, math.pi), alpha=0.55)
    return {"fundus": fundus, "triangle": fat_c, "a": a, "hook_a": rng.uniform(-2.2, -1.2)}


def _calot_frame(pen: Pen, L: Layout, s: float, pal: dict[str, RGB], u: float, t: float) -> None:
    """Grasper holds the fundus; the hook circles over the triangle."""
    f = L["fundus"]
    instrument(pen, "grasper", (f[0] + 2 * math.sin(t), f[1] + 2 * math.cos(1.3 * t)), L["a"] + math.pi + 0.2,
               s, pal, opening=0.15)
    tri = L["triangle"]
    tip = (tri[0] + 0.06 * s * math.cos(1.7 * t), tri[1] + 0.05 * s * math.sin(2.3 * t))
    instrument(pen, "hook", tip, L["hook_a"] + 0.15 * math.sin(0.5 * t), s, pal)


def _clip_scene(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB]) -> Layout:
    """Close-up of the dissected duct and artery, gallbladder neck in a corner."""
    corner = (rng.choice([-0.05, 1.05]) * s, rng.uniform(-0.05, 0.1) * s)
    pen.ellipse(corner, (0.35 * s, 0.22 * s), pal["gallbladder"], angle=rng.uniform(-0.5, 0.5), shade=0.3)
    a = rng.uniform(-0.35, 0.35)
    mid = (0.5 * s, rng.uniform(0.5, 0.62) * s)
    d0, d1 = polar(mid, a + math.pi, 0.75 * s), polar(mid, a, 0.75 * s)
    off = rng.choice([-1, 1]) * 0.16 * s
    art = [polar(p, a + math.pi / 2, off) for p in (d0, d1)]
    pen.line(*art, 0.04 * s, pal["artery"], shade=0.3)
    pen.line(d0, d1, 0.11 * s, pal["duct"], shade=0.35)
    for _ in range(3):
        pen.ellipse(polar(mid, rng.uniform(0, 2 * math.pi), rng.uniform(0.15, 0.35) * s), (0.06 * s, 0.04 * s),
                    pal["fat"], angle=rng.uniform(0, math.pi), alpha=0.5)
    pos = sorted(rng.uniform(-0.28, 0.28, 4) * s)
    return {"mid": mid, "a": a, "off": off, "clips": [polar(mid, a, p) for p in pos],
            "cut": polar(mid, a, 0.5 * (pos[1] + pos[2])), "side": rng.choice([-1.0, 1.0])}


def _dissect_scene(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB]) -> Layout:
    """Gallbladder lifted off the liver: whitish border with burn marks along it."""
    _liver(pen, rng, s, pal, centre_y=(0.68, 0.8))
    c = (rng.uniform(0.42, 0.58) * s, rng.uniform(0.28, 0.38) * s)
    a = rng.uniform(-0.25, 0.25)
    r = (rng.uniform(0.3, 0.36) * s, rng.uniform(0.14, 0.17) * s)
    pen.ellipse(c, r, pal["gallbladder"], angle=a, shade=0.35)
    b0 = polar(polar(c, a + math.pi, 0.8 * r[0]), a + math.pi / 2, r[1] * 0.9)
    b1 = polar(polar(c, a, 0.8 * r[0]), a + math.pi / 2, r[1] * 0.9)
    pen.line(b0, b1, 0.04 * s, pal["fascia"], alpha=0.75)
    for _ in range(8):
        p = lerp(b0, b1, rng.uniform())
        pen.ellipse((p[0], p[1] + rng.normal(0, 0.02 * s)), (rng.uniform(0.02, 0.04) * s, 0.018 * s), pal["burn"],
                    angle=rng.uniform(0, math.pi), alpha=0.85)
    return {"b0": b0, "b1": b1, "top": polar(c, a - math.pi / 2, r[1] * 0.8), "a": a,
            "hook_a": rng.uniform(-2.6, -2.0) if rng.uniform() < 0.5 else rng.uniform(-1.1, -0.5)}


def _dissect_frame(pen: Pen, L: Layout, s: float, pal: dict[str, RGB], u: float, t: float) -> None:
    """The hook travels along the border while the grasper pulls the gallbladder up."""
    instrument(pen, "grasper", L["top"], L["a"] + math.pi / 2 + 0.3 * math.sin(0.2 * t), s, pal, opening=0.1)
    tip = lerp(L["b0"], L["b1"], 0.15 + 0.7 * u + 0.05 * math.sin(2 * t))
    instrument(pen, "hook", tip, L["hook_a"], s, pal)
    if math.sin(5.0 * t) > 0.6:  # cautery spark
        pen.ellipse(tip, (0.025 * s, 0.025 * s), pal["spark"], alpha=0.9)


def _pack_scene(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB]) -> Layout:
    """Empty liver bed above, an open white specimen bag below."""
    lc = _liver(pen, rng, s, pal)
    pen.ellipse((lc[0], lc[1] + 0.2 * s), (0.3 * s, 0.1 * s), pal["bed"], alpha=0.8)
    bag = (rng.uniform(0.4, 0.6) * s, rng.uniform(0.62, 0.72) * s)
    r = (rng.uniform(0.32, 0.38) * s, rng.uniform(0.25, 0.3) * s)
    pen.ellipse(bag, r, pal["bag"], alpha=0.9, shade=0.15)
    mouth = (bag[0], bag[1] - 0.6 * r[1])
    pen.ellipse(mouth, (0.7 * r[0], 0.28 * r[1]), pal["bagrim"], shade=0.2)
    pen.ellipse(mouth, (0.6 * r[0], 0.2 * r[1]), pal["bag"] * 0.7)
    start = (rng.choice([0.2, 0.8]) * s, rng.uniform(0.2, 0.3) * s)
    return {"start": start, "mouth": mouth, "inside": (bag[0], bag[1] + 0.1 * r[1]),
            "rim": polar(mouth, math.pi if start[0] > 0.5 * s else 0.0, 0.7 * r[0])}


def _pack_frame(pen: Pen, L: Layout, s: float, pal: dict[str, RGB], u: float, t: float) -> None:
    """The grasper carries the gallbladder into the bag; once inside it shows through the plastic."""
    k = min(1.0, u / 0.7)
    pos = lerp(L["start"], L["mouth"], k) if k < 1 else lerp(L["mouth"], L["inside"], min(1.0, (u - 0.7) / 0.2))
    inside = u > 0.65
    pen.ellipse(pos, (0.17 * s, 0.09 * s), pal["gallbladder"], angle=0.3 * math.sin(0.7 * t),
                alpha=0.4 if inside else 1.0, shade=0.3)
    side = 0.0 if L["rim"][0] < 0.5 * s else math.pi
    instrument(pen, "grasper", L["rim"], side + 0.6, s, pal, opening=0.1)
    if not inside:
        instrument(pen, "grasper", polar(pos, -math.pi / 2, 0.06 * s), math.pi / 2 + 0.4 * math.sin(0.3 * t),
                   s, pal, opening=0.1)


def _clean_scene(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB]) -> Layout:
    """Liver bed under blue-ish irrigation fluid."""
    lc = _liver(pen, rng, s, pal)
    pen.ellipse((lc[0], lc[1] + 0.25 * s), (0.35 * s, 0.12 * s), pal["bed"], alpha=0.85)
    pool = (rng.uniform(0.4, 0.6) * s, rng.uniform(0.66, 0.76) * s)
    r = (rng.uniform(0.42, 0.5) * s, rng.uniform(0.24, 0.3) * s)
    pen.ellipse(pool, r, pal["fluid"], alpha=0.75, shade=0.2)
    blood = [((pool[0] + rng.uniform(-0.6, 0.6) * r[0], pool[1] + rng.uniform(-1.6, 0.3) * r[1]),
              rng.uniform(0.05, 0.1) * s) for _ in range(rng.integers(3, 5))]
    return {"pool": pool, "r": r, "blood": blood, "side": rng.choice([-1.0, 1.0]), "phase": rng.uniform(0, 6)}


def _retract_scene(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB]) -> Layout:
    """Empty, burnt liver bed and a large port at the edge the bag will leave through."""
    lc = _liver(pen, rng, s, pal, centre_y=(0.0, 0.12))
    bed = (lc[0], lc[1] + 0.25 * s)
    pen.ellipse(bed, (0.35 * s, 0.13 * s), pal["bed"], alpha=0.9, shade=0.2)
    for _ in range(6):
        pen.ellipse((bed[0] + rng.uniform(-0.3, 0.3) * s, bed[1] + rng.uniform(-0.08, 0.08) * s),
                    (0.02 * s, 0.014 * s), pal["burn"], alpha=0.8)
    port = (rng.choice([0.02, 0.98]) * s, rng.uniform(0.08, 0.3) * s)
    pen.ring(port, 0.18 * s, pal["port"], pal["hole"])
    return {"port": port, "start": (rng.uniform(0.4, 0.6) * s, rng.uniform(0.6, 0.72) * s)}


def _retract_frame(pen: Pen, L: Layout, s: float, pal: dict[str, RGB], u: float, t: float) -> None:
    """The closed bag (gallbladder inside) is dragged by its neck towards the port and shrinks away."""
    port = L["port"]
    k = min(1.0, u ** 1.3)
    pos = lerp(L["start"], port, 0.85 * k)
    r = (0.2 - 0.12 * k) * s
    neck = lerp(pos, port, 0.45)
    pen.line(pos, neck, 0.05 * s, pal["bag"], shade=0.2)
    pen.ellipse(pos, (r, 0.8 * r), pal["bag"], alpha=0.92, shade=0.2)
    pen.ellipse(pos, (0.6 * r, 0.4 * r), pal["gallbladder"], alpha=0.3)
    ang = math.atan2(neck[1] - port[1], neck[0] - port[0]) + 0.1 * math.sin(0.5 * t)
    instrument(pen, "grasper", neck, ang, s, pal, opening=0.05)


# ============================================================== per-phase table
GB = ["gallbladder", "gallbladder", "gall bladder"]
PHASES: dict[str, PhaseSpec] = {
    "Preparation": PREPARATION,
    "CalotTriangleDissection": PhaseSpec(
        weight=0.39, background="tissue", pan=0.5, haze=0.15, scene=_calot_scene, frame=_calot_frame,
        words={"grasper": GRASPER,
               "hook": HOOK,
               "triangle": ["calot triangle", "calot's triangle", "hepatocystic triangle", "triangle of calot"],
               "duct": ["cystic duct", "duct"], "artery": ["cystic artery", "artery"], "gb": GB,
               "fat": ["fat", "fatty tissue", "peritoneum", "yellow fat"]},
        asr=["ok I'm holding the {gb} up with the {grasper} and going in with the {hook}",
             "{f} so we're dissecting the {triangle} here with the {hook}",
             "now I'm taking the {fat} off the {duct} with the {hook}",
             "you can see the {duct} coming out of the {fat} now",
             "{f} pulling the {gb} up and to the right to open the {triangle}",
             "I'm looking for the {artery} here just behind the {duct}",
             "let's clean this {fat} away from the {triangle}",
             "{grasper} on the fundus of the {gb} and the {hook} on the {fat}"],
        clean=["I hold the {gb} with the {grasper} and dissect the {triangle} with the {hook}.",
               "With the {hook} I remove the {fat} to show the {duct} and the {artery}.",
               "I retract the {gb} upwards to open the {triangle}.",
               "I free the {duct} from the {fat} in the {triangle}."],
        summaries=["Calot triangle dissection: the {gb} was held up with the {grasper} while the {hook} cleared the "
                   "{fat} to expose the cystic duct and cystic artery.",
                   "I dissected the {triangle} with the {hook}. The cystic duct and the cystic artery were exposed.",
                   "The {fat} of the {triangle} was removed with the {hook} while the {grasper} retracted the {gb}.",
                   "In this phase the {triangle} was opened and the {duct} and {artery} were identified."],
        abstract=["the calot triangle was dissected with the {hook} to expose the cystic duct and cystic artery",
                  "the {grasper} retracted the {gb} and the {triangle} was cleared of {fat}",
                  "dissection of the {triangle} showed the {duct} and the {artery}"]),
    "ClippingCutting": PhaseSpec(
        weight=0.07, background="tissue", pan=0.4, haze=0.0, scene=_clip_scene, frame=clip_frame,
        words={"clips": CLIPS, "clip": CLIP,
               "clipper": CLIPPER,
               "scissors": SCISSORS,
               "duct": ["cystic duct", "duct"], "artery": ["cystic artery", "artery"],
               "n": ["two", "three"]},
        asr=["ok now I'm putting the {clips} on the {duct}",
             "{clipper} going in on the {duct}",
             "{f} one {clip} here and another one on the {artery}",
             "so {n} {clips} stay on the patient side and one on the gallbladder side",
             "now the {scissors} {f} and we cut between the {clips}",
             "I'm cutting the {duct} with the {scissors} now",
             "let me get a {clip} on the {artery} first",
             "nice the {clips} are on so we can divide it"],
        clean=["I apply {clips} to the {duct} with the {clipper}.",
               "I place a {clip} on the {artery}.",
               "I cut the {duct} between the {clips} with the {scissors}.",
               "Once the {clips} are on I divide the {duct} and the {artery}."],
        summaries=["Clipping and cutting: the {duct} and {artery} were closed with {clips} from the {clipper} and "
                   "divided with the {scissors}.",
                   "I placed {n} {clips} on the {duct} and on the {artery}, then cut them with the {scissors}.",
                   "The {clipper} secured the cystic structures with {clips}. The {scissors} then divided them.",
                   "In this phase the {duct} was clipped and cut."],
        abstract=["the cystic duct and cystic artery were clipped with the {clipper} and cut with the {scissors}",
                  "{clips} were applied to the {duct} and {artery}, which were then divided",
                  "the {duct} was secured with {n} {clips} and cut"]),
    "GallbladderDissection": PhaseSpec(
        weight=0.35, background="tissue", pan=0.5, haze=0.7, scene=_dissect_scene, frame=_dissect_frame,
        words={"hook": HOOK,
               "grasper": GRASPER, "gb": GB,
               "liver": ["liver", "liver bed", "liver surface"],
               "plane": ["plane", "dissection plane", "connective tissue", "layer"],
               "smoke": SMOKE},
        asr=["ok now I'm taking the {gb} off the {liver} with the {hook}",
             "{f} staying in the right {plane} between {gb} and {liver}",
             "lots of {smoke} here let's wait a second {f}",
             "I'm burning through the {plane} with the {hook}",
             "{grasper} pulls the {gb} up and the {hook} goes along the edge",
             "careful here we don't want to go into the {liver}",
             "so we just keep peeling the {gb} off the {liver}",
             "a bit more {hook} along this border {f}"],
        clean=["I dissect the {gb} from the {liver} with the {hook}.",
               "With the {hook} I cut the {plane} between the {gb} and the {liver}.",
               "The {grasper} lifts the {gb} while I free it from the {liver}.",
               "I separate the {gb} from the {liver} along the {plane}."],
        summaries=["Gallbladder dissection: the {gb} was detached from the {liver} with the {hook} while the "
                   "{grasper} held it up.",
                   "I separated the {gb} from the liver bed using the {hook}. There was some {smoke}.",
                   "The {hook} burned through the {plane} between {gb} and {liver} until the {gb} was free.",
                   "In this phase the {gb} was dissected off the {liver}."],
        abstract=["the gallbladder was dissected from the {liver} with the {hook}",
                  "the {gb} was freed from the liver bed along the {plane}",
                  "the {hook} detached the {gb} from the {liver}"]),
    "GallbladderPackaging": PhaseSpec(
        weight=0.04, background="tissue", pan=0.4, haze=0.0, scene=_pack_scene, frame=_pack_frame,
        words={"bag": BAG, "gb": GB,
               "grasper": FORCEPS},
        asr=["ok so the {bag} is open and I'm putting the {gb} in",
             "{f} let's get the {gb} into the {bag}",
             "holding the {bag} open with the {grasper} {f}",
             "and the {gb} goes in the {bag} there we go",
             "now we drop the {gb} inside the {bag}",
             "I'm opening the {bag} here",
             "almost in just push it a bit more into the {bag}"],
        clean=["I put the {gb} into the {bag}.",
               "I hold the {bag} open and place the {gb} inside.",
               "The {gb} goes into the {bag} with the {grasper}.",
               "I pack the {gb} in the {bag}."],
        summaries=["Packaging: the {gb} was placed in the {bag}.",
                   "I opened the {bag} and put the {gb} inside it with the {grasper}.",
                   "The free {gb} was packed into a {bag}. The bag was then closed.",
                   "In this phase the {gb} went into the {bag}."],
        abstract=["the gallbladder was put into a {bag}",
                  "the {gb} was packed in the {bag}",
                  "the specimen was placed inside the {bag}"]),
    "CleaningCoagulation": PhaseSpec(
        weight=0.07, background="tissue", pan=0.5, haze=0.05, scene=_clean_scene, frame=clean_frame,
        words={"suction": SUCTION,
               "irrigation": IRRIGATION,
               "bleeding": ["bleeding", "bleeding points", "oozing", "blood"],
               "liver": ["liver bed", "gallbladder bed", "liver"],
               "coag": ["coagulate", "cauterise", "burn"]},
        asr=["ok let's clean up with the {suction}",
             "{f} some {irrigation} on the {liver} and we suck it out",
             "a little {bleeding} here let me {coag} that",
             "I'm washing the {liver} with {irrigation} now",
             "suck out the {irrigation} {f} and look for {bleeding}",
             "no more {bleeding} the {liver} looks dry",
             "let me {coag} this spot on the {liver}"],
        clean=["I irrigate the {liver} and aspirate with the {suction}.",
               "I {coag} the {bleeding} on the {liver}.",
               "I wash the field with {irrigation} and suck it out.",
               "I check the {liver} for {bleeding} after cleaning."],
        summaries=["Cleaning and coagulation: the {liver} was washed with {irrigation} and the {bleeding} was "
                   "coagulated.",
                   "I used the {suction} to clean the field and stopped the {bleeding}.",
                   "The {liver} was irrigated, aspirated and checked for {bleeding}. Small vessels were coagulated.",
                   "In this phase the field was cleaned with {suction} and {irrigation}."],
        abstract=["the field was cleaned with suction and irrigation and {bleeding} was coagulated",
                  "the {liver} was irrigated and checked for {bleeding}",
                  "{bleeding} on the {liver} was coagulated after irrigation"]),
    "GallbladderRetraction": PhaseSpec(
        weight=0.03, background="tissue", pan=0.4, haze=0.0, scene=_retract_scene, frame=_retract_frame,
        words={"bag": BAG,
               "port": ["trocar", "port", "umbilical port", "trocar site"],
               "grasper": FORCEPS, "gb": GB},
        asr=["ok now we pull the {bag} out through the {port}",
             "{f} grabbing the {bag} with the {grasper}",
             "and the {bag} comes out {f} slowly through the {port}",
             "getting the {gb} out now in the {bag}",
             "pulling it towards the {port} {f}",
             "a bit tight let me widen the {port}"],
        clean=["I grasp the {bag} and pull it out through the {port}.",
               "I remove the {bag} with the {gb} through the {port}.",
               "The {grasper} pulls the {bag} towards the {port}.",
               "I extract the {bag} from the abdomen."],
        summaries=["Retraction: the {bag} with the {gb} was pulled out through the {port}.",
                   "I grasped the {bag} and removed it through the {port}.",
                   "The {bag} was retracted towards the {port} and taken out of the abdomen.",
                   "In this phase the {gb} was removed in the {bag}."],
        abstract=["the {bag} was removed through the {port}",
                  "the specimen was retracted in the {bag} through the {port}",
                  "the {bag} was pulled out of the abdomen through the {port}"]),
}
assert list(PHASES) == CHOLEC80_PHASES

INTROS = ["This video shows a laparoscopic cholecystectomy in a {age} year old {sex} with {why}.",
          "Laparoscopic cholecystectomy for {why} in a {age}-year-old {sex}.",
          "We present a standard four-port laparoscopic cholecystectomy performed for {why}.",
          "A {age} year old {sex} underwent laparoscopic removal of the gallbladder for {why}."]
INTRO_WORDS = {"age": [str(a) for a in range(28, 80, 3)], "sex": ["woman", "man", "patient"],
               "why": ["symptomatic gallstones", "chronic cholecystitis", "biliary colic", "gallbladder polyps"]}
CLOSINGS = ["The procedure ended without complications.", "Blood loss was minimal.",
            "The patient recovered well.", "There were no intraoperative complications."]

CHOLECYSTECTOMY = Procedure("cholecystectomy", PHASES, INTROS, INTRO_WORDS, CLOSINGS)
