"""Drawing the demo's pictures: anti-aliased shapes on a float image, the instruments, the palette, tissue.

Everything draws into float32 ``[3, H, W]`` images (channels first, see :class:`Pen`) with values 0..255; sizes
are in pixels, angles in radians (x right, y down).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["PALETTE", "RGB", "Pen", "Point", "instrument", "lerp", "palette", "polar", "smooth_noise", "tissue"]

Point = tuple[float, float]  # (x, y) in pixels
RGB = np.ndarray  # float32 [3, 1, 1], 0..255 (channels first: see Pen)


# ============================================================== primitives
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


def polar(p: Point, angle: float, dist: float) -> Point:
    return p[0] + dist * math.cos(angle), p[1] + dist * math.sin(angle)


def lerp(a: Point, b: Point, u: float) -> Point:
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
    neck = polar(tip, back, 0.09 * s)
    pen.line(neck, polar(tip, back, 2.0 * s), shaft_w, shaft_rgb, shade=0.55)
    metal = pal["tipmetal"]
    if kind == "grasper":
        for side in (-1, 1):
            a = angle + side * (0.15 + 0.35 * opening)
            pen.line(neck, polar(neck, a, 0.12 * s), 0.032 * s, metal, shade=0.4)
    elif kind == "hook":
        pen.line(neck, tip, 0.022 * s, metal, shade=0.3)
        pen.line(tip, polar(tip, angle + math.pi / 2, 0.045 * s), 0.022 * s, metal, shade=0.3)
    elif kind == "clipper":
        for side in (-1, 1):
            a = angle + side * 0.12
            pen.line(neck, polar(neck, a, 0.12 * s), 0.04 * s, metal, shade=0.4)
        pen.line(polar(tip, angle - math.pi / 2, 0.03 * s), polar(tip, angle + math.pi / 2, 0.03 * s),
                 0.022 * s, pal["clip"])
    elif kind == "scissors":
        for side in (-1, 1):
            a = angle + side * (0.05 + 0.25 * opening)
            pen.line(neck, polar(neck, a, 0.13 * s), 0.018 * s, pal["gold"], shade=0.3)
    elif kind == "suction":
        pen.line(tip, polar(tip, back, 0.02 * s), 0.06 * s, pal["hole"])


# ============================================================== textures and palette
PALETTE: dict[str, tuple[int, int, int]] = {
    "tissue": (196, 96, 88), "wall": (226, 168, 152), "liver": (118, 32, 34), "bed": (165, 66, 52),
    "gallbladder": (150, 172, 70), "fat": (230, 198, 96), "duct": (234, 226, 208), "artery": (208, 122, 112),
    "vessel": (150, 40, 46), "fascia": (242, 216, 204), "metal": (178, 181, 188), "shaft": (64, 66, 72),
    "tipmetal": (208, 210, 214), "clip": (226, 228, 236), "gold": (200, 180, 120), "port": (142, 147, 155),
    "hole": (26, 22, 26), "burn": (58, 36, 28), "smoke": (208, 208, 206), "bag": (236, 238, 242),
    "bagrim": (150, 168, 196), "fluid": (100, 155, 235), "blood": (118, 8, 14), "spark": (255, 250, 235),
}


def palette(rng: np.random.Generator, extra: dict[str, tuple[int, int, int]] | None = None) -> dict[str, RGB]:
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


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    return _upsample(rng.standard_normal((cells + 1, cells + 1)), h, w)


def tissue(rng: np.random.Generator, h: int, w: int, rgb: RGB, pal: dict[str, RGB]) -> np.ndarray:
    """Moist tissue: base colour with blotches, fine grain and a few small vessels."""
    shade = 1.0 + 0.13 * smooth_noise(rng, h, w, 4) + 0.06 * smooth_noise(rng, h, w, 16)
    img = rgb * shade + rng.normal(0.0, 3.0, (h, w)).astype(np.float32)
    pen = Pen(img)
    for _ in range(rng.integers(2, 5)):
        p = (rng.uniform(0, w), rng.uniform(0, h))
        for _ in range(3):
            q = polar(p, rng.uniform(0, 2 * math.pi), rng.uniform(0.1, 0.25) * w)
            pen.line(p, q, rng.uniform(0.008, 0.018) * w, pal["vessel"], alpha=0.55)
            p = q
    return img
