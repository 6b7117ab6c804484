"""Seeded synthetic laparoscopic-cholecystectomy dataset: the project's embedded demo.

Real surgical video (Cholec80, SVL) cannot be shipped, so ``hvl demo`` draws a small
stand-in that exercises the whole HecVL pipeline on a CPU in minutes:

* **videos**: 128x128 H.264 at 10 fps, 60-95 s each, running through the seven Cholec80
  phases in order. Every phase has its own picture (ports on the abdominal wall, grasper
  and hook at Calot's triangle, clips on the duct, smoke at the liver border, a white
  specimen bag, blue irrigation fluid and blood, the bag pulled to a trocar), randomised
  per video (colours, layout, instrument angles) and per frame (motion, camera pan,
  brightness, sensor noise), so a model has to learn the look, not memorise frames.
* **text at three levels**: ASR-like first-person narrations per 4 s clip (about 20 %
  chit-chat unrelated to the picture) plus a cleaner paraphrase; a summary per phase; an
  abstract per video. They share vocabulary (trocars, grasper, hook, cystic duct, clips,
  specimen bag, suction, ...) with ``prompts/demo.yaml`` but never its sentences, so
  zero-shot phase recognition is learnable without leaking the prompts.

``procedure="hysterectomy"`` draws a second operation with AutoLaparo's phases instead
(:mod:`hvl.domains.surgical.hysterectomy`), for testing transfer across procedures.

Everything is a function of ``seed``: each video draws from its own
``numpy.random.SeedSequence([seed, split, index])`` (one child stream for pixels, one for
text), so any subset regenerates identically and no global random state is touched.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from hvl.core.data.schema import ClipSegment, PhaseSegment, VideoRecord, write_manifest
from hvl.core.data.video import BackgroundWriter
from hvl.core.errors import HVLInputError
from hvl.domains.surgical.phases import CHOLEC80_PHASES
from hvl.domains.surgical.presets import INSTRUMENT_COLOURS, DemoPreset, get_preset

Point = tuple[float, float]  # (x, y) in pixels
RGB = np.ndarray  # float32 [3, 1, 1], 0..255 (channels first: see Pen)

CLIP_SECONDS, CLIP_STRIDE = 4.0, 2.0
MIN_PHASE_SECONDS = 5.0
DURATION_RANGE = (60.0, 95.0)
UNRELATED_RATE = 0.2
SENSOR_NOISE = 2.0  # grey levels, per frame
SPLITS = {"train": 0, "val": 1, "test": 2}  # part of each video's seed: splits never share a stream


# ============================================================== drawing primitives
class Pen:
    """Draws anti-aliased shapes onto a float32 ``[3, H, W]`` image, only inside each shape's box.

    Channels come first so that per-pixel weights ``[h, w]`` broadcast over whole rows;
    with ``[H, W, 3]`` numpy loops over runs of 3 values and every blend is ~4x slower.

    ``origin`` shifts every coordinate: the static scene is drawn on a canvas larger than the
    frame (origin = margin) and moving parts are drawn in frame coordinates under the current
    camera pan (origin = -pan), so both stay registered.
    """

    def __init__(self, img: np.ndarray, origin: Point = (0.0, 0.0)):
        self.img, self.ox, self.oy = img, float(origin[0]), float(origin[1])

    def _window(self, x0: float, x1: float, y0: float, y1: float):
        h, w = self.img.shape[1:]
        xa, xb = max(int(math.floor(x0)), 0), min(int(math.ceil(x1)) + 1, w)
        ya, yb = max(int(math.floor(y0)), 0), min(int(math.ceil(y1)) + 1, h)
        if xa >= xb or ya >= yb:
            return None
        xs = np.arange(xa, xb, dtype=np.float32)[None, :]
        ys = np.arange(ya, yb, dtype=np.float32)[:, None]
        return self.img[:, ya:yb, xa:xb], xs, ys

    @staticmethod
    def _blend(region: np.ndarray, weight: np.ndarray, rgb: np.ndarray) -> None:
        region += weight * (rgb - region)

    def ellipse(self, c: Point, r: tuple[float, float], rgb: RGB, angle: float = 0.0,
                alpha: float = 1.0, shade: float = 0.0) -> None:
        """Filled ellipse with half-axes ``r = (along angle, across)``; ``shade`` darkens the rim (volume)."""
        cx, cy = c[0] + self.ox, c[1] + self.oy
        rx, ry = max(r[0], 0.5), max(r[1], 0.5)
        big = max(rx, ry) + 1
        win = self._window(cx - big, cx + big, cy - big, cy + big)
        if win is None:
            return
        region, xs, ys = win
        ca, sa = math.cos(angle), math.sin(angle)
        dx, dy = xs - cx, ys - cy
        q = np.sqrt(((dx * ca + dy * sa) / rx) ** 2 + ((dy * ca - dx * sa) / ry) ** 2)
        weight = _unit((1.0 - q) * min(rx, ry) + 0.5, alpha)
        col = rgb if not shade else rgb * (1.0 - shade * np.minimum(q, 1.0) ** 2)
        self._blend(region, weight, col)

    def line(self, p0: Point, p1: Point, width: float, rgb: RGB, alpha: float = 1.0,
             shade: float = 0.0) -> None:
        """Thick segment with round caps; ``shade`` gives a cylinder look (instrument shafts)."""
        x0, y0, x1, y1 = p0[0] + self.ox, p0[1] + self.oy, p1[0] + self.ox, p1[1] + self.oy
        hw = max(width / 2.0, 0.5)
        span = _clip_segment(x0, y0, x1, y1, -hw - 1, -hw - 1, self.img.shape[2] + hw, self.img.shape[1] + hw)
        if span is None:
            return
        x0, y0, x1, y1 = span  # a cut-off end lies outside the image, so its cap never shows
        win = self._window(min(x0, x1) - hw, max(x0, x1) + hw, min(y0, y1) - hw, max(y0, y1) + hw)
        if win is None:
            return
        region, xs, ys = win
        vx, vy = x1 - x0, y1 - y0
        dxs, dys, inv = xs - x0, ys - y0, 1.0 / (vx * vx + vy * vy + 1e-6)
        t = _unit(dxs * (vx * inv) + dys * (vy * inv))  # position of the nearest point along the segment
        d = np.hypot(dxs - t * vx, dys - t * vy)
        weight = _unit(hw + 0.5 - d, alpha)
        col = rgb if not shade else rgb * (1.0 - shade * np.minimum(d / hw, 1.0) ** 2)
        self._blend(region, weight, col)

    def ring(self, c: Point, r: float, rgb: RGB, hole: RGB) -> None:
        """A trocar port seen from inside: metal ring, dark lumen, a highlight on the rim."""
        self.ellipse(c, (r, r), rgb, shade=0.4)
        self.ellipse(c, (0.62 * r, 0.62 * r), hole)
        self.ellipse((c[0] - 0.55 * r, c[1] - 0.55 * r), (0.16 * r, 0.16 * r), rgb * 1.3, alpha=0.6)


def _unit(a: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Clamp to [0, 1] in place (np.clip's Python overhead matters at thousands of calls per video)."""
    np.minimum(np.maximum(a, 0.0, out=a), 1.0, out=a)
    if scale != 1.0:
        a *= scale
    return a


def _clip_segment(x0: float, y0: float, x1: float, y1: float, xmin: float, ymin: float, xmax: float,
                  ymax: float) -> tuple[float, float, float, float] | None:
    """Liang-Barsky: the part of a segment inside a box (long instrument shafts cost only what shows)."""
    dx, dy, lo, hi = x1 - x0, y1 - y0, 0.0, 1.0
    for p, q in ((-dx, x0 - xmin), (dx, xmax - x0), (-dy, y0 - ymin), (dy, ymax - y0)):
        if p == 0:
            if q < 0:
                return None
            continue
        r = q / p
        if p < 0:
            lo = max(lo, r)
        else:
            hi = min(hi, r)
        if lo > hi:
            return None
    return x0 + lo * dx, y0 + lo * dy, x0 + hi * dx, y0 + hi * dy


def _polar(p: Point, angle: float, dist: float) -> Point:
    return p[0] + dist * math.cos(angle), p[1] + dist * math.sin(angle)


def _lerp(a: Point, b: Point, u: float) -> Point:
    return a[0] + (b[0] - a[0]) * u, a[1] + (b[1] - a[1]) * u


def instrument(pen: Pen, kind: str, tip: Point, angle: float, s: float, pal: dict[str, RGB],
               opening: float = 0.5) -> None:
    """An instrument entering from the border and pointing along ``angle`` (radians, x right, y down).

    The tips are what tells them apart: grasper = two jaws, hook = an L, clipper = broad jaws
    holding a clip, scissors = two thin crossed blades, suction = a long bare cannula.
    """
    back = angle + math.pi
    shaft_w = {"suction": 0.055, "clipper": 0.085}.get(kind, 0.07) * s
    shaft_rgb = pal["metal"] if kind in ("suction", "clipper") else pal["shaft"]
    neck = _polar(tip, back, 0.09 * s)
    pen.line(neck, _polar(tip, back, 2.0 * s), shaft_w, shaft_rgb, shade=0.55)
    metal = pal["tipmetal"]
    if kind == "grasper":
        for side in (-1, 1):
            a = angle + side * (0.15 + 0.35 * opening)
            pen.line(neck, _polar(neck, a, 0.12 * s), 0.032 * s, metal, shade=0.4)
    elif kind == "hook":
        pen.line(neck, tip, 0.022 * s, metal, shade=0.3)
        pen.line(tip, _polar(tip, angle + math.pi / 2, 0.045 * s), 0.022 * s, metal, shade=0.3)
    elif kind == "clipper":
        for side in (-1, 1):
            a = angle + side * 0.12
            pen.line(neck, _polar(neck, a, 0.12 * s), 0.04 * s, metal, shade=0.4)
        pen.line(_polar(tip, angle - math.pi / 2, 0.03 * s), _polar(tip, angle + math.pi / 2, 0.03 * s),
                 0.022 * s, pal["clip"])
    elif kind == "scissors":
        for side in (-1, 1):
            a = angle + side * (0.05 + 0.25 * opening)
            pen.line(neck, _polar(neck, a, 0.13 * s), 0.018 * s, pal["gold"], shade=0.3)
    elif kind == "suction":
        pen.line(tip, _polar(tip, back, 0.02 * s), 0.06 * s, pal["hole"])


# ============================================================== textures and palette
PALETTE: dict[str, tuple[int, int, int]] = {
    "tissue": (196, 96, 88), "wall": (226, 168, 152), "liver": (118, 32, 34), "bed": (165, 66, 52),
    "gallbladder": (150, 172, 70), "fat": (230, 198, 96), "duct": (234, 226, 208), "artery": (208, 122, 112),
    "vessel": (150, 40, 46), "fascia": (242, 216, 204), "metal": (178, 181, 188), "shaft": (64, 66, 72),
    "tipmetal": (208, 210, 214), "clip": (226, 228, 236), "gold": (200, 180, 120), "port": (142, 147, 155),
    "hole": (26, 22, 26), "burn": (58, 36, 28), "smoke": (208, 208, 206), "bag": (236, 238, 242),
    "bagrim": (150, 168, 196), "fluid": (100, 155, 235), "blood": (118, 8, 14), "spark": (255, 250, 235),
}


def _palette(rng: np.random.Generator, extra: dict[str, tuple[int, int, int]] | None = None) -> dict[str, RGB]:
    """Per-video colours: each colour jittered, plus one white-balance tint for the whole video.

    ``extra``: a procedure's own colours, drawn after the shared ones (so the shared stream is unchanged)."""
    tint = rng.normal(0.0, 4.0, 3)
    return {k: np.clip(np.array(v) + tint + rng.normal(0.0, 6.0, 3), 0, 255).astype(np.float32)[:, None, None]
            for k, v in {**PALETTE, **(extra or {})}.items()}


def _upsample(grid: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize of a coarse 2-D grid (smooth random fields without scipy)."""
    gy, gx = np.linspace(0, grid.shape[0] - 1, h), np.linspace(0, grid.shape[1] - 1, w)
    y0 = np.minimum(gy.astype(int), grid.shape[0] - 2)
    x0 = np.minimum(gx.astype(int), grid.shape[1] - 2)
    fy, fx = (gy - y0)[:, None], (gx - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bot = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return (top * (1 - fy) + bot * fy).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    return _upsample(rng.standard_normal((cells + 1, cells + 1)), h, w)


def _tissue(rng: np.random.Generator, h: int, w: int, rgb: RGB, pal: dict[str, RGB]) -> np.ndarray:
    """Moist tissue: base colour with blotches, fine grain and a few small vessels."""
    shade = 1.0 + 0.13 * _smooth_noise(rng, h, w, 4) + 0.06 * _smooth_noise(rng, h, w, 16)
    img = rgb * shade + rng.normal(0.0, 3.0, (h, w)).astype(np.float32)
    pen = Pen(img)
    for _ in range(rng.integers(2, 5)):
        p = (rng.uniform(0, w), rng.uniform(0, h))
        for _ in range(3):
            q = _polar(p, rng.uniform(0, 2 * math.pi), rng.uniform(0.1, 0.25) * w)
            pen.line(p, q, rng.uniform(0.008, 0.018) * w, pal["vessel"], alpha=0.55)
            p = q
    return img


# ============================================================== the seven phase scenes
# Each phase has a ``scene`` function (samples the layout, draws the static part on the
# canvas, returns what the moving part needs) and a ``frame`` function (draws what moves,
# given the phase progress u in [0, 1) and the time t in seconds). Sizes are fractions of s.
Layout = dict[str, object]


def _liver(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB],
           centre_y: tuple[float, float] = (-0.05, 0.08)) -> Point:
    """The dark-red liver as a big ellipse; ``centre_y`` (fractions) says how much of the view it fills."""
    c = (rng.uniform(0.3, 0.7) * s, rng.uniform(*centre_y) * s)
    pen.ellipse(c, (rng.uniform(0.7, 0.85) * s, rng.uniform(0.3, 0.4) * s), pal["liver"],
                angle=rng.uniform(-0.2, 0.2), shade=0.35)
    return c


def _prep_scene(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB]) -> Layout:
    """Light abdominal wall from inside with fascia, fat and the ports already placed."""
    for _ in range(3):
        p = (rng.uniform(0, s), rng.uniform(0, s))
        pen.line(p, _polar(p, rng.uniform(0, math.pi), 0.5 * s), 0.03 * s, pal["fascia"], alpha=0.5)
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


def _calot_scene(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB]) -> Layout:
    """Liver on top, gallbladder held up, yellow fatty triangle at its neck with a white duct."""
    for _ in range(4):  # fatty omentum and peritoneum all around the triangle
        pen.ellipse((rng.uniform(0, s), rng.uniform(0.3, 1.0) * s), (rng.uniform(0.2, 0.3) * s, 0.16 * s), pal["fat"],
                    angle=rng.uniform(0, math.pi), alpha=0.5)
    _liver(pen, rng, s, pal, centre_y=(-0.15, -0.02))
    a = rng.uniform(-0.75, -0.35)
    c = (rng.uniform(0.48, 0.6) * s, rng.uniform(0.33, 0.45) * s)
    rx = rng.uniform(0.28, 0.34) * s
    neck, fundus = _polar(c, a + math.pi, rx * 0.9), _polar(c, a, rx * 0.85)
    duct_end = _polar(neck, a + math.pi + rng.uniform(0.3, 0.6), 0.6 * s)
    pen.line(neck, duct_end, 0.05 * s, pal["duct"], shade=0.3)
    pen.line(_polar(neck, a + math.pi / 2, 0.06 * s), _polar(duct_end, a + math.pi / 2, 0.1 * s), 0.028 * s,
             pal["artery"], shade=0.3)
    pen.ellipse(c, (rx, rng.uniform(0.15, 0.18) * s), pal["gallbladder"], angle=a, shade=0.35)
    fat_c = _polar(neck, a + math.pi + 0.5, 0.16 * s)
    pen.ellipse(fat_c, (0.24 * s, 0.16 * s), pal["fat"], angle=a, alpha=0.65, shade=0.2)
    for _ in range(6):
        pen.ellipse(_polar(fat_c, rng.uniform(0, 2 * math.pi), rng.uniform(0.1, 0.25) * s), (0.08 * s, 0.05 * s),
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
    d0, d1 = _polar(mid, a + math.pi, 0.75 * s), _polar(mid, a, 0.75 * s)
    off = rng.choice([-1, 1]) * 0.16 * s
    art = [_polar(p, a + math.pi / 2, off) for p in (d0, d1)]
    pen.line(*art, 0.04 * s, pal["artery"], shade=0.3)
    pen.line(d0, d1, 0.11 * s, pal["duct"], shade=0.35)
    for _ in range(3):
        pen.ellipse(_polar(mid, rng.uniform(0, 2 * math.pi), rng.uniform(0.15, 0.35) * s), (0.06 * s, 0.04 * s),
                    pal["fat"], angle=rng.uniform(0, math.pi), alpha=0.5)
    pos = sorted(rng.uniform(-0.28, 0.28, 4) * s)
    return {"mid": mid, "a": a, "off": off, "clips": [_polar(mid, a, p) for p in pos],
            "cut": _polar(mid, a, 0.5 * (pos[1] + pos[2])), "side": rng.choice([-1.0, 1.0])}


def _clip_frame(pen: Pen, L: Layout, s: float, pal: dict[str, RGB], u: float, t: float) -> None:
    """Clips appear one by one (clip applier), then the scissors cut between them."""
    a, clips = L["a"], L["clips"]
    n = min(len(clips), int(u / 0.6 * (len(clips) + 1)))
    across = a + math.pi / 2
    for p in clips[:n]:
        pen.line(_polar(p, across, -0.065 * s), _polar(p, across, 0.065 * s), 0.028 * s, pal["clip"], shade=0.3)
        q = _polar(p, across, L["off"])
        pen.line(_polar(q, across, -0.04 * s), _polar(q, across, 0.04 * s), 0.022 * s, pal["clip"], shade=0.3)
    from_below = across if L["side"] > 0 else across + math.pi
    if u < 0.6:
        target = clips[min(n, len(clips) - 1)]
        instrument(pen, "clipper", _polar(target, from_below, 0.02 * s * math.sin(3 * t)),
                   from_below + math.pi + 0.3 * L["side"], s, pal)
    else:
        if u > 0.85:  # duct divided
            c = L["cut"]
            pen.line(_polar(c, across, -0.06 * s), _polar(c, across, 0.06 * s), 0.035 * s, pal["tissue"])
        instrument(pen, "scissors", L["cut"], from_below + math.pi - 0.4 * L["side"], s, pal,
                   opening=0.5 + 0.5 * math.sin(4 * t))


def _dissect_scene(pen: Pen, rng: np.random.Generator, s: float, pal: dict[str, RGB]) -> Layout:
    """Gallbladder lifted off the liver: whitish border with burn marks along it."""
    _liver(pen, rng, s, pal, centre_y=(0.68, 0.8))
    c = (rng.uniform(0.42, 0.58) * s, rng.uniform(0.28, 0.38) * s)
    a = rng.uniform(-0.25, 0.25)
    r = (rng.uniform(0.3, 0.36) * s, rng.uniform(0.14, 0.17) * s)
    pen.ellipse(c, r, pal["gallbladder"], angle=a, shade=0.35)
    b0 = _polar(_polar(c, a + math.pi, 0.8 * r[0]), a + math.pi / 2, r[1] * 0.9)
    b1 = _polar(_polar(c, a, 0.8 * r[0]), a + math.pi / 2, r[1] * 0.9)
    pen.line(b0, b1, 0.04 * s, pal["fascia"], alpha=0.75)
    for _ in range(8):
        p = _lerp(b0, b1, rng.uniform())
        pen.ellipse((p[0], p[1] + rng.normal(0, 0.02 * s)), (rng.uniform(0.02, 0.04) * s, 0.018 * s), pal["burn"],
                    angle=rng.uniform(0, math.pi), alpha=0.85)
    return {"b0": b0, "b1": b1, "top": _polar(c, a - math.pi / 2, r[1] * 0.8), "a": a,
            "hook_a": rng.uniform(-2.6, -2.0) if rng.uniform() < 0.5 else rng.uniform(-1.1, -0.5)}


def _dissect_frame(pen: Pen, L: Layout, s: float, pal: dict[str, RGB], u: float, t: float) -> None:
    """The hook travels along the border while the grasper pulls the gallbladder up."""
    instrument(pen, "grasper", L["top"], L["a"] + math.pi / 2 + 0.3 * math.sin(0.2 * t), s, pal, opening=0.1)
    tip = _lerp(L["b0"], L["b1"], 0.15 + 0.7 * u + 0.05 * math.sin(2 * t))
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
            "rim": _polar(mouth, math.pi if start[0] > 0.5 * s else 0.0, 0.7 * r[0])}


def _pack_frame(pen: Pen, L: Layout, s: float, pal: dict[str, RGB], u: float, t: float) -> None:
    """The grasper carries the gallbladder into the bag; once inside it shows through the plastic."""
    k = min(1.0, u / 0.7)
    pos = _lerp(L["start"], L["mouth"], k) if k < 1 else _lerp(L["mouth"], L["inside"], min(1.0, (u - 0.7) / 0.2))
    inside = u > 0.65
    pen.ellipse(pos, (0.17 * s, 0.09 * s), pal["gallbladder"], angle=0.3 * math.sin(0.7 * t),
                alpha=0.4 if inside else 1.0, shade=0.3)
    side = 0.0 if L["rim"][0] < 0.5 * s else math.pi
    instrument(pen, "grasper", L["rim"], side + 0.6, s, pal, opening=0.1)
    if not inside:
        instrument(pen, "grasper", _polar(pos, -math.pi / 2, 0.06 * s), math.pi / 2 + 0.4 * math.sin(0.3 * t),
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


def _clean_frame(pen: Pen, L: Layout, s: float, pal: dict[str, RGB], u: float, t: float) -> None:
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
    pos = _lerp(L["start"], port, 0.85 * k)
    r = (0.2 - 0.12 * k) * s
    neck = _lerp(pos, port, 0.45)
    pen.line(pos, neck, 0.05 * s, pal["bag"], shade=0.2)
    pen.ellipse(pos, (r, 0.8 * r), pal["bag"], alpha=0.92, shade=0.2)
    pen.ellipse(pos, (0.6 * r, 0.4 * r), pal["gallbladder"], alpha=0.3)
    ang = math.atan2(neck[1] - port[1], neck[0] - port[0]) + 0.1 * math.sin(0.5 * t)
    instrument(pen, "grasper", neck, ang, s, pal, opening=0.05)


# ============================================================== per-phase table
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


GB = ["gallbladder", "gallbladder", "gall bladder"]
PHASES: dict[str, PhaseSpec] = {
    "Preparation": PhaseSpec(
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
                  "the {cavity} was entered and {n} {ports} were positioned"]),
    "CalotTriangleDissection": PhaseSpec(
        weight=0.39, background="tissue", pan=0.5, haze=0.15, scene=_calot_scene, frame=_calot_frame,
        words={"grasper": ["grasper", "grasping forceps", "forceps"],
               "hook": ["hook", "cautery hook", "electrocautery hook", "diathermy hook"],
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
        weight=0.07, background="tissue", pan=0.4, haze=0.0, scene=_clip_scene, frame=_clip_frame,
        words={"clips": ["clips", "titanium clips", "metal clips"], "clip": ["clip", "titanium clip"],
               "clipper": ["clip applier", "clipper", "clip applicator"],
               "scissors": ["scissors", "laparoscopic scissors", "scissor"],
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
        words={"hook": ["hook", "cautery hook", "electrocautery hook", "diathermy hook"],
               "grasper": ["grasper", "grasping forceps", "forceps"], "gb": GB,
               "liver": ["liver", "liver bed", "liver surface"],
               "plane": ["plane", "dissection plane", "connective tissue", "layer"],
               "smoke": ["smoke", "smoke plume", "vapour"]},
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
        words={"bag": ["specimen bag", "retrieval bag", "endobag", "bag"], "gb": GB,
               "grasper": ["grasper", "forceps"]},
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
        weight=0.07, background="tissue", pan=0.5, haze=0.05, scene=_clean_scene, frame=_clean_frame,
        words={"suction": ["suction", "suction irrigation", "suction cannula", "irrigator"],
               "irrigation": ["irrigation", "saline", "irrigation fluid", "water"],
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
        words={"bag": ["specimen bag", "retrieval bag", "endobag", "bag"],
               "port": ["trocar", "port", "umbilical port", "trocar site"],
               "grasper": ["grasper", "forceps"], "gb": GB},
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
INTROS = ["This video shows a laparoscopic cholecystectomy in a {age} year old {sex} with {why}.",
          "Laparoscopic cholecystectomy for {why} in a {age}-year-old {sex}.",
          "We present a standard four-port laparoscopic cholecystectomy performed for {why}.",
          "A {age} year old {sex} underwent laparoscopic removal of the gallbladder for {why}."]
INTRO_WORDS = {"age": [str(a) for a in range(28, 80, 3)], "sex": ["woman", "man", "patient"],
               "why": ["symptomatic gallstones", "chronic cholecystitis", "biliary colic", "gallbladder polyps"]}
CONNECTORS = ["Then", "Next,", "After that,", "Subsequently,", "Afterwards,"]
CLOSINGS = ["The procedure ended without complications.", "Blood loss was minimal.",
            "The patient recovered well.", "There were no intraoperative complications."]


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


CHOLECYSTECTOMY = Procedure("cholecystectomy", PHASES, INTROS, INTRO_WORDS, CLOSINGS)
PROCEDURES = ("cholecystectomy", "hysterectomy")


def get_procedure(procedure: str | Procedure | None) -> Procedure:
    """``cholecystectomy`` (Cholec80's phases, the default) or ``hysterectomy`` (AutoLaparo's phases)."""
    if procedure is None or procedure == "cholecystectomy":
        return CHOLECYSTECTOMY
    if isinstance(procedure, Procedure):
        return procedure
    if procedure == "hysterectomy":
        from hvl.domains.surgical.hysterectomy import HYSTERECTOMY

        return HYSTERECTOMY
    raise HVLInputError(f"demo: unknown procedure '{procedure}'; use one of {list(PROCEDURES)}")


# ============================================================== text generation
def _pick(rng: np.random.Generator, items: list[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _fill(template: str, words: dict[str, list[str]], rng: np.random.Generator) -> str:
    """Replace each ``{slot}`` by a synonym (``{f}`` is a filler word)."""
    pool = {"f": FILLERS, **words}
    return re.sub(r"\{(\w+)\}", lambda m: _pick(rng, pool[m.group(1)]), template)


def _asr(text: str, rng: np.random.Generator) -> str:
    """Make a sentence look transcribed: lower case, no punctuation, extra fillers, misheard words."""
    words = re.sub(r"[^\w' -]", "", text.lower()).split()
    words = [ASR_SLIPS[w] if w in ASR_SLIPS and rng.uniform() < 0.15 else w for w in words]
    if rng.uniform() < 0.3:
        words.insert(int(rng.integers(len(words) + 1)), _pick(rng, ["um", "uh", "er"]))
    return " ".join(words)


def _sentence(text: str) -> str:
    text = text.strip()
    return text[0].upper() + text[1:] + ("" if text[-1] in ".?!" else ".")


def narrations(phase: str, rng: np.random.Generator, proc: Procedure = CHOLECYSTECTOMY) -> list[str]:
    """Two narrations for one clip: ASR speech, then a cleaner paraphrase (chit-chat 20 % of the time)."""
    if rng.uniform() < UNRELATED_RATE:
        spoken, written = UNRELATED[int(rng.integers(len(UNRELATED)))]
        return [_asr(spoken, rng), written]
    spec = proc.phases[phase]
    return [_asr(_fill(_pick(rng, spec.asr), spec.words, rng), rng),
            _sentence(_fill(_pick(rng, spec.clean), spec.words, rng))]


def phase_summary(phase: str, rng: np.random.Generator, proc: Procedure = CHOLECYSTECTOMY) -> str:
    spec = proc.phases[phase]
    return _fill(_pick(rng, spec.summaries), spec.words, rng)


def abstract(rng: np.random.Generator, proc: Procedure = CHOLECYSTECTOMY) -> str:
    """A paragraph over the whole procedure: intro, the phases in order, a closing line."""
    parts = [_fill(_pick(rng, proc.intros), proc.intro_words, rng)]
    for i, (phase, spec) in enumerate(proc.phases.items()):
        clause = _fill(_pick(rng, spec.abstract), spec.words, rng)
        lead = "First," if i == 0 else "Finally," if i == len(proc.phases) - 1 else _pick(rng, CONNECTORS)
        parts.append(f"{lead} {clause}.")
    parts.append(_pick(rng, proc.closings))
    return " ".join(parts)


# ============================================================== one video
@dataclass
class _PhasePlan:
    name: str
    first: int  # first frame
    stop: int  # one past the last frame


def _plan_phases(rng: np.random.Generator, fps: float, proc: Procedure = CHOLECYSTECTOMY) -> list[_PhasePlan]:
    """Durations: at least MIN_PHASE_SECONDS each, the rest shared by the phases' jittered proportions."""
    total = rng.uniform(*DURATION_RANGE)
    names = list(proc.phases)
    w = np.array([proc.phases[p].weight for p in names]) * rng.lognormal(0.0, 0.25, len(names))
    secs = MIN_PHASE_SECONDS + (total - MIN_PHASE_SECONDS * len(names)) * w / w.sum()
    bounds = np.round(np.concatenate([[0.0], np.cumsum(secs)]) * fps).astype(int)
    return [_PhasePlan(p, int(a), int(b)) for p, a, b in zip(names, bounds[:-1], bounds[1:])]


def _render_phase(plan: _PhasePlan, rng: np.random.Generator, size: int, fps: float, pal: dict[str, RGB],
                  vignette: np.ndarray, noise: np.ndarray, out: np.ndarray, like: str | None = None,
                  proc: Procedure = CHOLECYSTECTOMY) -> None:
    """Draw one phase's frames into ``out[plan.first:plan.stop]``: static canvas once, moving parts per frame.

    ``like``: draw the scene, instruments and camera motion of that phase instead (a look-alike
    phase of the realistic preset); only this phase's own smoke density is kept."""
    spec = proc.phases[plan.name]
    if like is not None:
        spec = PhaseSpec(**{**spec.__dict__, **{k: getattr(proc.phases[like], k) for k in ("background", "pan",
                                                                                            "scene", "frame")}})
    s, m = float(size), max(2, round(0.08 * size))
    big = size + 2 * m
    canvas = _tissue(rng, big, big, pal[spec.background], pal)
    layout = spec.scene(Pen(canvas, (m, m)), rng, s, pal)
    haze = np.clip(_smooth_noise(rng, big, big, 3) * 0.6 + 0.4, 0.0, 1.0) * spec.haze
    amp = rng.uniform(0.5, 1.0, 2) * spec.pan * m
    freq, phase0 = rng.uniform(0.05, 0.15, 2), rng.uniform(0, 2 * math.pi, 2)
    n = plan.stop - plan.first
    for k in range(n):
        t = (plan.first + k) / fps
        shake = rng.integers(-1, 2, 2)
        px, py = (np.clip(np.round(amp * np.sin(2 * math.pi * freq * t + phase0)) + shake, -m, m)).astype(int)
        frame = canvas[:, m + py:m + py + size, m + px:m + px + size].copy()
        spec.frame(Pen(frame, (-px, -py)), layout, s, pal, k / n, t)
        if spec.haze:
            a = haze[m + py:m + py + size, m + px:m + px + size] * (0.6 + 0.4 * math.sin(1.1 * t))
            frame += a * (pal["smoke"] - frame)
        frame *= vignette * (1.0 + 0.03 * math.sin(0.7 * t))  # vignette carries the camera's brightness
        frame += noise[int(rng.integers(len(noise)))]
        out[plan.first + k] = np.clip(frame, 0, 255, out=frame).transpose(1, 2, 0)


def _clips(duration: float) -> list[tuple[float, float]]:
    """4 s windows every 2 s, plus one window ending at the end (or the last one moved there if the
    uncovered tail is short, so no two windows nearly coincide)."""
    spans = [(float(a), float(a) + CLIP_SECONDS) for a in np.arange(0.0, duration - CLIP_SECONDS + 1e-6, CLIP_STRIDE)]
    if not spans:
        return [(0.0, duration)]
    if spans[-1][1] < duration - 1e-6:
        tail = (duration - CLIP_SECONDS, duration)
        if duration - spans[-1][1] < CLIP_STRIDE / 2:
            spans[-1] = tail
        else:
            spans.append(tail)
    return spans


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
        return [_asr(spoken, rng), written if preset.clean_paraphrase else _asr(spoken, rng)]
    spec = proc.phases[plan.phase]
    said = _fill(_pick(rng, spec.asr), spec.words, rng)
    second = _sentence(_fill(_pick(rng, spec.clean), spec.words, rng)) if preset.clean_paraphrase else _asr(said, rng)
    return [_asr(said, rng), second]


def render_video(video_id: str, ss: np.random.SeedSequence, size: int = 128,
                 fps: float = 10.0, preset: str | DemoPreset | None = None,
                 procedure: str | Procedure | None = None) -> tuple[np.ndarray, VideoRecord]:
    """Frames ``uint8 [T, H, W, 3]`` and the manifest record of one video.

    Pixels and texts come from two child streams of ``ss``, so rewording a template never
    changes a picture (and the other way round). ``preset``: see :mod:`hvl.domains.surgical.presets`;
    ``procedure``: see :func:`get_procedure`.
    """
    preset, proc = get_preset(preset), get_procedure(procedure)
    look_rng, text_rng = (np.random.default_rng(c) for c in ss.spawn(2))
    plans = _plan_phases(look_rng, fps, proc)
    n_frames = plans[-1].stop
    pal = _palette(look_rng, proc.colours)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    vignette = (look_rng.uniform(0.92, 1.08) * (1.0 - 0.9 * (xx ** 2 + yy ** 2))).astype(np.float32)
    if not preset.is_default:  # another centre's camera, light and instruments (no-ops for the realistic preset)
        wb, tint = np.float32(preset.white_balance)[:, None, None], np.float32(preset.instrument_tint)[:, None, None]
        pal = {k: np.clip(v + wb + (tint if k in INSTRUMENT_COLOURS else 0.0), 0, 255).astype(np.float32)
               for k, v in pal.items()}
        vignette = vignette * np.float32(preset.gain)
    noise = look_rng.normal(0.0, SENSOR_NOISE, (6, size, size)).astype(np.float32)
    frames = np.empty((n_frames, size, size, 3), np.uint8)
    for plan in plans:
        like = preset.lookalike.get(plan.name)
        _render_phase(plan, look_rng, size, fps, pal, vignette, noise, frames, like=like if like in proc.phases else None,
                      proc=proc)
    if look_rng.uniform() < 0.5:  # mirrored set-up (surgeon on the other side): layouts vary more
        frames = frames[:, :, ::-1]

    duration = round(n_frames / fps, 6)
    sec = lambda f: round(f / fps, 6)  # noqa: E731
    phases = [PhaseSegment(start=sec(p.first), end=sec(p.stop) if p is not plans[-1] else duration,
                           text=phase_summary(p.name, text_rng, proc), label=p.name) for p in plans]
    def phase_at(t: float) -> str:
        f = min(int(t * fps), n_frames - 1)
        return next(p.name for p in plans if p.first <= f < p.stop)

    clips = []
    if preset.is_default:
        for a, b in _clips(duration):
            clips.append(ClipSegment(start=round(a, 6), end=round(b, 6), texts=narrations(phase_at((a + b) / 2),
                                                                                             text_rng, proc)))
    else:
        for n in plan_narrations(_clips(duration), phase_at, duration, preset, text_rng):
            if n.spoken:
                clips.append(ClipSegment(start=round(n.start, 6), end=round(n.end, 6),
                                         texts=realistic_narrations(n, preset, text_rng, proc)))
    return frames, VideoRecord(video_id=video_id, path=f"videos/{video_id}.mp4", texts=[abstract(text_rng, proc)],
                               duration=duration, phases=phases, clips=clips)


# ============================================================== the dataset
def _srt_time(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def _vtt_time(t: float) -> str:
    return _srt_time(t).replace(",", ".")


def write_raw_layout(out: Path, records: dict[str, list[VideoRecord]]) -> dict[str, int]:
    """The demo's texts as a user would bring them, for ``hvl prepare``: per video an ASR-style SubRip
    transcript (``transcripts/<id>.asr.srt``), a clean WebVTT one with a NOTE block and voice tags
    (``<id>.clean.vtt``), chapters (WebVTT for even-numbered videos, YouTube ``MM:SS Title`` lines for
    the others), an abstract (``abstracts/<id>.txt``) and ``splits.csv``. Cues do not overlap: each clip's
    narration is spoken from its start until the next clip starts."""
    for sub in ("transcripts", "chapters", "abstracts"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    split_rows = ["video_id,split"]
    for split, recs in records.items():
        for i, r in enumerate(recs):
            split_rows.append(f"{r.video_id},{split}")
            ends = [c.start for c in r.clips[1:]] + [r.clips[-1].end]
            srt = [f"{n}\n{_srt_time(c.start)} --> {_srt_time(e)}\n{c.texts[0]}\n"
                   for n, (c, e) in enumerate(zip(r.clips, ends), start=1)]
            (out / "transcripts" / f"{r.video_id}.asr.srt").write_text("\n".join(srt), encoding="utf-8")
            vtt = ["WEBVTT\n", "NOTE written by hvl's surgical demo\n"]
            vtt += [f"{_vtt_time(c.start)} --> {_vtt_time(e)} align:start\n<v Narrator>{c.texts[1]}</v>\n"
                    for c, e in zip(r.clips, ends)]
            (out / "transcripts" / f"{r.video_id}.clean.vtt").write_text("\n".join(vtt), encoding="utf-8")
            if i % 2 == 0:
                chap = ["WEBVTT\n"] + [f"{_vtt_time(p.start)} --> {_vtt_time(p.end)}\n{p.text}\n" for p in r.phases]
                (out / "chapters" / f"{r.video_id}.vtt").write_text("\n".join(chap), encoding="utf-8")
            else:
                lines = [f"{int(p.start) // 60:02d}:{int(p.start) % 60:02d} {p.text}" for p in r.phases]
                (out / "chapters" / f"{r.video_id}.txt").write_text("Chapters:\n" + "\n".join(lines) + "\n",
                                                                    encoding="utf-8")
            (out / "abstracts" / f"{r.video_id}.txt").write_text(r.texts[0] + "\n", encoding="utf-8")
    (out / "splits.csv").write_text("\n".join(split_rows) + "\n", encoding="utf-8")
    return {split: len(recs) for split, recs in records.items()}


def generate(out: str | Path, seed: int = 0, n_train: int = 16, n_val: int = 2, n_test: int = 6,
             size: int = 128, fps: float = 10.0, progress: bool = True, raw_layout: bool = False,
             preset: str | DemoPreset | None = None, procedure: str | Procedure | None = None) -> dict:
    """Write ``out/videos/*.mp4`` and ``out/{train,val,test}.jsonl``; return a summary.

    Video ``i`` of a split is drawn from ``SeedSequence([seed, split, i])``, so the same seed
    gives byte-identical manifests and identical pixels, whatever the other counts are.
    ``raw_layout``: instead of manifests, the texts as subtitle, chapter and abstract files
    (:func:`write_raw_layout`), the input of ``hvl prepare``.
    ``preset``: ``default`` (the original demo) or ``realistic`` (look-alike phases, sparse, unrelated and
    lagged narration; :mod:`hvl.domains.surgical.presets`). A non-default preset is stored as ``preset.json``.
    ``procedure``: ``cholecystectomy`` (default, Cholec80's phases) or ``hysterectomy`` (AutoLaparo's phases,
    :mod:`hvl.domains.surgical.hysterectomy`), e.g. to test transfer to another operation.
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    counts = {"train": n_train, "val": n_val, "test": n_test}
    if seed < 0 or min(counts.values()) < 0 or not sum(counts.values()):
        raise HVLInputError(f"demo: seed and video counts must be >= 0 with at least one video "
                            f"(got seed={seed}, {counts})")
    if fps <= 0 or abs(fps - round(fps)) > 1e-9 or size < 32:
        raise HVLInputError(f"demo: fps must be a whole number > 0 (H.264 stream rate) and size >= 32 "
                            f"(got fps={fps}, size={size})")
    preset, proc = get_preset(preset), get_procedure(procedure)
    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    if not preset.is_default:
        (out / "preset.json").write_text(preset.model_dump_json(indent=2) + "\n", encoding="utf-8")
    bar = tqdm(total=sum(counts.values()), desc="demo videos", unit="video", disable=not progress)
    records: dict[str, list[VideoRecord]] = {split: [] for split in counts}
    n_frames = 0
    with BackgroundWriter(on_done=lambda: bar.update(1)) as writer:
        for split, n in counts.items():
            for i in range(n):
                entropy = [seed, SPLITS[split], i] + ([proc.stream] if proc.stream else [])
                frames, rec = render_video(f"demo_{split}_{i:03d}", np.random.SeedSequence(entropy),
                                           size=size, fps=fps, preset=preset, procedure=proc)
                writer.submit(out / rec.path, frames, fps)
                records[split].append(rec)
                n_frames += len(frames)
    bar.close()
    if raw_layout:
        write_raw_layout(out, records)
        manifests = {}
    else:  # manifests last: one that exists always points at finished videos
        manifests = {split: str(write_manifest(out / f"{split}.jsonl", recs))
                     for split, recs in records.items() if recs}
    seconds = sum(r.duration for recs in records.values() for r in recs)
    return {"root": str(out), "manifests": manifests, "videos": counts, "frames": n_frames,
            "video_seconds": round(seconds, 1), "seconds": round(time.perf_counter() - t0, 2), "seed": seed,
            "preset": preset.name, "procedure": proc.name}


def main(argv: list[str] | None = None) -> None:
    """``python -m hvl.domains.surgical.demo OUT --raw-layout``: the demo as raw files for ``hvl prepare``."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m hvl.domains.surgical.demo", description=main.__doc__)
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--raw-layout", action="store_true", help="subtitles, chapters, abstracts instead of manifests")
    p.add_argument("--videos", type=int, nargs=3, default=[16, 2, 6], metavar=("TRAIN", "VAL", "TEST"))
    p.add_argument("--preset", default="default", help="default | realistic (see hvl.domains.surgical.presets)")
    p.add_argument("--procedure", default="cholecystectomy", help=" | ".join(PROCEDURES))
    a = p.parse_args(argv)
    n_train, n_val, n_test = a.videos
    print(json.dumps(generate(a.out, seed=a.seed, n_train=n_train, n_val=n_val, n_test=n_test,
                              raw_layout=a.raw_layout, preset=a.preset, procedure=a.procedure), indent=2))


if __name__ == "__main__":
    main()
