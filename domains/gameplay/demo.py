"""Seeded gameplay-like clips from a real 2-D physics engine (pymunk), with injected physics bugs.

GamePhysics clips cannot be shipped, so ``hvl demo gameplay`` simulates a stand-in:

* **scenes**: a side view of hilly terrain in one of three "games" (grass hills, desert,
  moon base: own sky, ground and backdrop), with 2-3 objects of distinct kinds (car, ball,
  box, character) and distinct colours (red, blue, yellow, purple). Cars drive on motor-driven
  wheels, balls roll, characters walk, boxes get pushed; all of it is pymunk rigid-body
  physics, rasterised with numpy (no pygame) and written as H.264 .mp4.
* **bugs** (about 60 % of clips), injected into the simulation at a random moment, on one
  object (the victim): ``falling_through_floor`` (its collision with the ground is switched
  off: it sinks into the terrain and stays there, drawn over it as a side-scroller draws its
  sprites), ``floating_flying`` (gravity off, launched upwards, then hovers high in the sky),
  ``stuck_in_object`` (teleported into the middle of another object, tilted and drawn in front
  of it; both freeze), ``stretched_jittering`` (drawn blown up, stretched wide and shaking). Each bug is
  meant to be visible in a single frame, as the GamePhysics bugs players post are. The bug's
  time span is recorded.
* **text**: a caption per clip (scene, objects, what happens; video level) and two 2.5 s
  moments (clip level: what happens in that window, e.g. "the red car sinks into the
  ground"; one before the bug, one on it), each in two phrasings. Bug phrases come from a training vocabulary; the held-out query set (``queries.yaml``)
  words bugs differently ("a car falling through the floor"), and its exact strings never
  appear in a training text.

Layout (the search corpus is the held-out test split, in GamePhysics' layout)::

    <out>/videos/<game>/test_NNNN.mp4   + videos/metadata.csv (post_id,title; titles unused)
    <out>/train_videos/<game>/{train,val}_NNNN.mp4
    <out>/{train,val,test}.jsonl        manifests; test phases are labelled with the bug class
    <out>/queries.yaml                  queries (simple / compound / bug) with relevant video ids

Clip ``i`` of a split is drawn from ``SeedSequence([seed, split, i])``: the same seed gives the
same clips whatever the other counts are.
"""
from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from hvl.core.data.schema import VideoRecord, write_manifest
from hvl.core.data.video import BackgroundWriter
from hvl.core.errors import HVLInputError
from hvl.core.extras import require
from hvl.core.io import atomic_write_bytes

from .texts import bug_phases, build_queries, captions, moments
from .world import BUGS, COLOURS, GAMES, KINDS, MOMENT_SECONDS

# the physics engine: only the demo generator needs it (readers, prompts and search do not)
pymunk = require("pymunk", extra="gameplay", needed_by="the gameplay demo (hvl demo gameplay)")

WORLD = 64.0                     # world units across (and up); pixels = units * size / WORLD
GRAVITY = -300.0
SUBSTEPS = 6                     # physics steps per video frame
BUG_RATE = 0.6
SINK_SPEED = 10.0                # world units / s an object falling through the floor sinks ...
SINK_DEPTH = 7.0                 # ... until its centre is this far below the surface (the ground is 11-19 deep)
SPLITS = {"train": 0, "val": 1, "test": 2}
# decord 0.6 returns misaligned rows for some frame widths (48 px fails, measured); these decode correctly
DECODABLE_SIZES = (32, 64, 96, 128)
GROUND, OBJECTS = 0b01, 0b10     # collision categories


# ============================================================== physics objects
@dataclass
class Part:
    """Something drawn, attached to a body: a polygon (body-local vertices) or a circle."""

    body: pymunk.Body
    rgb: tuple[int, int, int]
    verts: list[tuple[float, float]] | None = None
    radius: float = 0.0
    offset: tuple[float, float] = (0.0, 0.0)


@dataclass
class Thing:
    kind: str
    colour: str
    bodies: list[pymunk.Body]
    shapes: list[pymunk.Shape]
    parts: list[Part]
    motor: pymunk.SimpleMotor | None = None
    walk: float = 0.0
    frozen: bool = False
    hover: bool = False
    stretch: bool = False
    in_front: bool = False
    constraints: list[pymunk.Constraint] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.colour} {self.kind}"

    @property
    def centre(self) -> tuple[float, float]:
        p = self.bodies[0].position
        return float(p.x), float(p.y)


def _darker(rgb: tuple[int, int, int], f: float = 0.6) -> tuple[int, int, int]:
    return tuple(int(c * f) for c in rgb)  # type: ignore[return-value]


def _box_verts(w: float, h: float) -> list[tuple[float, float]]:
    return [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]


def _add_poly(space: pymunk.Space, body: pymunk.Body, verts, friction: float = 0.9) -> pymunk.Shape:
    s = pymunk.Poly(body, verts)
    s.friction, s.filter = friction, pymunk.ShapeFilter(categories=OBJECTS)
    space.add(s)
    return s


def make_thing(space: pymunk.Space, kind: str, colour: str, x: float, ground_y: float, direction: int,
               rng: np.random.Generator) -> Thing:
    rgb = COLOURS[colour]
    if kind == "car":
        w, h, r = 26.0, 7.0, 5.0
        chassis = pymunk.Body(5.0, pymunk.moment_for_box(5.0, (w, h)))
        chassis.position = (x, ground_y + 2 * r + h / 2 + 1)
        space.add(chassis)
        shapes = [_add_poly(space, chassis, _box_verts(w, h))]
        parts = [Part(chassis, rgb, _box_verts(w, h)),
                 Part(chassis, _darker(rgb, 0.75), [(-w / 4, h / 2), (w / 5, h / 2), (w / 8, h / 2 + 5), (-w / 6, h / 2 + 5)])]
        bodies, cons = [chassis], []
        motor = None
        for dx in (-w / 2 + r, w / 2 - r):
            wheel = pymunk.Body(1.0, pymunk.moment_for_circle(1.0, 0, r))
            wheel.position = (x + dx, chassis.position.y - h / 2 - r + 1)
            ws = pymunk.Circle(wheel, r)
            ws.friction, ws.filter = 1.5, pymunk.ShapeFilter(categories=OBJECTS, mask=GROUND | OBJECTS)
            joint = pymunk.PivotJoint(chassis, wheel, wheel.position)
            joint.collide_bodies = False
            space.add(wheel, ws, joint)
            cons.append(joint)
            if motor is None:
                motor = pymunk.SimpleMotor(chassis, wheel, direction * -rng.uniform(2.0, 3.0))
                motor.max_force = 6e3  # gentle: a strong motor's reaction torque flips the car
                space.add(motor)
                cons.append(motor)
            bodies.append(wheel)
            shapes.append(ws)
            parts += [Part(wheel, (35, 35, 35), radius=r), Part(wheel, (170, 170, 170), radius=1.8)]
        return Thing(kind, colour, bodies, shapes, parts, motor=motor, constraints=cons)
    if kind == "ball":
        r = 7.0
        b = pymunk.Body(1.0, pymunk.moment_for_circle(1.0, 0, r))
        b.position = (x, ground_y + r + 1)
        b.velocity = (direction * rng.uniform(15, 30), 0)
        s = pymunk.Circle(b, r)
        s.friction, s.elasticity, s.filter = 0.8, 0.5, pymunk.ShapeFilter(categories=OBJECTS)
        space.add(b, s)
        return Thing(kind, colour, [b], [s], [Part(b, rgb, radius=r), Part(b, (250, 250, 250), radius=1.6, offset=(3.5, 3.5))])
    if kind == "box":
        a = 14.0
        b = pymunk.Body(2.0, pymunk.moment_for_box(2.0, (a, a)))
        b.position = (x, ground_y + a / 2 + 1)
        space.add(b)
        s = _add_poly(space, b, _box_verts(a, a))
        return Thing(kind, colour, [b], [s], [Part(b, rgb, _box_verts(a, a)), Part(b, _darker(rgb), _box_verts(a - 6, a - 6))])
    # character: an upright capsule (rotation locked) that walks; head and legs are drawn
    w, h = 6.0, 14.0
    b = pymunk.Body(1.0, float("inf"))
    b.position = (x, ground_y + h / 2 + 5)
    space.add(b)
    s = _add_poly(space, b, _box_verts(w, h))
    legs = [Part(b, (40, 40, 40), [(-3, -h / 2 - 4), (-1, -h / 2 - 4), (-1, -h / 2), (-3, -h / 2)]),
            Part(b, (40, 40, 40), [(1, -h / 2 - 4), (3, -h / 2 - 4), (3, -h / 2), (1, -h / 2)])]
    feet = pymunk.Poly(b, [(-3, -h / 2 - 4), (3, -h / 2 - 4), (3, -h / 2), (-3, -h / 2)])
    feet.friction, feet.filter = 0.2, pymunk.ShapeFilter(categories=OBJECTS)
    space.add(feet)
    return Thing(kind, colour, [b], [s, feet], [Part(b, rgb, _box_verts(w, h)), *legs,
                                                Part(b, (240, 200, 160), radius=3.5, offset=(0, h / 2 + 3.5))],
                 walk=direction * rng.uniform(10, 16))


# ============================================================== terrain and rendering
def terrain(rng: np.random.Generator) -> np.ndarray:
    """Ground height at 17 knots across the world (piecewise linear): gentle hills."""
    xs = np.linspace(-8, WORLD + 8, 17)
    ph = rng.uniform(0, 2 * math.pi, 2)
    return 15 + 3 * np.sin(xs / 10 + ph[0]) + 1.2 * np.sin(xs / 4 + ph[1])


def ground_at(heights: np.ndarray, x: float) -> float:
    return float(np.interp(x, np.linspace(-8, WORLD + 8, len(heights)), heights))


_GRIDS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates, made once per size (np.mgrid per shape was the renderer's main cost)."""
    if size not in _GRIDS:
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
        _GRIDS[size] = (xs, ys)
    return _GRIDS[size]


def fill_poly(img: np.ndarray, pts: list[tuple[float, float]], rgb) -> None:
    """Fill a convex polygon (pixel coordinates, any winding) by half-plane tests in its box."""
    h, w = img.shape[:2]
    px = [p[0] for p in pts]
    py = [p[1] for p in pts]
    x0, y0 = max(int(min(px)), 0), max(int(min(py)), 0)
    x1, y1 = min(int(max(px)) + 2, w), min(int(max(py)) + 2, h)
    if x0 >= x1 or y0 >= y1:
        return
    gx, gy = _grid(h)
    xs, ys = gx[y0:y1, x0:x1], gy[y0:y1, x0:x1]
    n = len(pts)
    area = sum(px[i] * py[(i + 1) % n] - px[(i + 1) % n] * py[i] for i in range(n))
    sign = 1.0 if area >= 0 else -1.0
    inside = None
    for i in range(n):
        ax, ay, bx, by = px[i], py[i], px[(i + 1) % n], py[(i + 1) % n]
        m = sign * ((bx - ax) * (ys - ay) - (by - ay) * (xs - ax)) >= 0
        inside = m if inside is None else inside & m
    img[y0:y1, x0:x1][inside] = rgb


def fill_circle(img: np.ndarray, c: tuple[float, float], r: float, rgb) -> None:
    h, w = img.shape[:2]
    x0, y0 = max(int(c[0] - r), 0), max(int(c[1] - r), 0)
    x1, y1 = min(int(c[0] + r) + 2, w), min(int(c[1] + r) + 2, h)
    if x0 >= x1 or y0 >= y1:
        return
    gx, gy = _grid(h)
    xs, ys = gx[y0:y1, x0:x1], gy[y0:y1, x0:x1]
    img[y0:y1, x0:x1][(xs - c[0]) ** 2 + (ys - c[1]) ** 2 <= r * r] = rgb


class Renderer:
    """Sky, backdrop and ground (static, drawn once), then the objects over them: an object that
    falls through the floor is seen inside the terrain, as a 2-D game draws sprites over its level."""

    def __init__(self, game: str, heights: np.ndarray, size: int, rng: np.random.Generator):
        g = GAMES[game]
        self.size, self.k = size, size / WORLD
        yy = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
        sky = np.array(g["sky"], np.float32)
        bg = np.broadcast_to(sky * (0.8 + 0.2 * yy), (size, size, 3)).copy()
        back = 28 + 6 * np.sin(np.linspace(0, 1, size) * rng.uniform(6, 14) + rng.uniform(0, 6))
        rows = np.arange(size)[:, None]
        bg[(rows >= size - back[None, :] * self.k)] = g["backdrop"]
        if game == "moon_base":  # stars
            sx, sy = rng.integers(0, size, 12), rng.integers(0, size // 2, 12)
            bg[sy, sx] = 230
        self.bg = bg
        gx = (np.arange(size) + 0.5) / self.k
        gh = np.interp(gx, np.linspace(-8, WORLD + 8, len(heights)), heights)
        ground = rows >= size - gh[None, :] * self.k
        ground_rgb = np.array(g["ground"], np.float32) * (0.85 + 0.15 * rng.random((size, size, 1)))
        bg[ground] = ground_rgb[ground]

    def frame(self, things: list[Thing], jitter: dict[int, tuple[float, float, float, float]],
              noise: np.ndarray) -> np.ndarray:
        img = self.bg.copy()
        k, size = self.k, self.size
        for ti, th in sorted(enumerate(things), key=lambda it: it[1].in_front):
            sx, sy, dx, dy = jitter.get(ti, (1.0, 1.0, 0.0, 0.0))
            cx, cy = th.centre
            for p in th.parts:
                bx, by = p.body.position
                ca, sa = math.cos(p.body.angle), math.sin(p.body.angle)
                local = p.verts if p.verts is not None else [p.offset]
                if p.verts is None and sx != sy:  # a stretched circle is an ellipse: draw it as a 12-gon
                    local = [(p.offset[0] + p.radius * math.cos(a), p.offset[1] + p.radius * math.sin(a))
                             for a in np.linspace(0, 2 * math.pi, 12, endpoint=False)]
                pts = []
                for vx, vy in local:  # body frame -> world -> stretched about the object's centre -> pixels
                    wx, wy = bx + ca * vx - sa * vy, by + sa * vx + ca * vy
                    wx, wy = cx + (wx - cx) * sx + dx, cy + (wy - cy) * sy + dy
                    pts.append((wx * k, size - wy * k))
                if len(pts) > 1:
                    fill_poly(img, pts, p.rgb)
                else:
                    fill_circle(img, pts[0], p.radius * k * sx, p.rgb)  # sx == sy here
        img += noise
        np.clip(img, 0, 255, out=img)
        return img.astype(np.uint8)


# ============================================================== one clip
@dataclass
class BugPlan:
    type: str
    victim: int
    start: float
    end: float
    partner: int | None = None


def _plan(rng: np.random.Generator, seconds: float) -> tuple[str, list[tuple[str, str]], BugPlan | None]:
    game = list(GAMES)[rng.integers(len(GAMES))]
    n = int(rng.integers(2, 4))
    kinds = [KINDS[i] for i in rng.permutation(len(KINDS))[:n]]
    colours = [list(COLOURS)[i] for i in rng.permutation(len(COLOURS))[:n]]
    bug = None
    if rng.uniform() < BUG_RATE:
        kind = BUGS[rng.integers(len(BUGS))]
        victim = int(rng.integers(n))
        start = round(float(rng.uniform(1.2, 2.8)), 2)
        end = min(seconds, start + 2.2) if kind == "stretched_jittering" else seconds
        partner = int(rng.choice([i for i in range(n) if i != victim])) if kind == "stuck_in_object" else None
        bug = BugPlan(kind, victim, start, round(end, 2), partner)
    return game, list(zip(kinds, colours)), bug


def _hover_velocity(body: pymunk.Body, gravity, damping: float, dt: float) -> None:
    """No gravity; rise until high in the sky, then hover there."""
    vy = 35.0 if body.position.y < WORLD * 0.78 else 0.0
    body.velocity = (body.velocity.x * 0.9, vy)


def _sinker(heights: np.ndarray):
    """No ground, no gravity: sink into the terrain and stay there, in view (an object that only
    vanished would leave nothing in a frame to find)."""
    def velocity(body: pymunk.Body, gravity, damping: float, dt: float) -> None:
        deep = body.position.y <= ground_at(heights, body.position.x) - SINK_DEPTH
        body.velocity = (0.0, 0.0) if deep else (body.velocity.x * 0.8, -SINK_SPEED)
        body.angular_velocity *= 0.8
    return velocity


def _inject(bug: BugPlan, things: list[Thing], space: pymunk.Space, heights: np.ndarray) -> None:
    th = things[bug.victim]
    if bug.type == "falling_through_floor":
        for s in th.shapes:
            s.filter = pymunk.ShapeFilter(categories=OBJECTS, mask=0)  # neither the ground nor anything else holds it
        for b in th.bodies:
            b.velocity_func = _sinker(heights)
    elif bug.type == "floating_flying":
        for b in th.bodies:
            b.velocity_func = _hover_velocity
    elif bug.type == "stuck_in_object":
        other = things[bug.partner]
        ox, oy = other.centre
        vx, vy = th.centre
        # in the middle of the other, drawn in front of it: two colours in one place (side by side
        # with a small overlap, as first drawn, looked like two objects touching at 32 px)
        shift = (ox - vx + (2.0 if vx < ox else -2.0), oy - vy + 1.0)
        tilt = 0.7 if vx < ox else -0.7  # wedged at an angle, as stuck game objects are
        th.in_front = True
        for t in (th, other):
            for c in t.constraints:  # joints between two kinematic bodies have no finite mass to solve for
                space.remove(c)
            t.constraints = []
            for b in t.bodies:
                if t is th:
                    rel = (b.position - pymunk.Vec2d(vx, vy)).rotated(tilt)
                    b.position = (vx + shift[0] + rel.x, vy + shift[1] + rel.y)
                    b.angle += tilt
                b.body_type = pymunk.Body.KINEMATIC
                b.velocity, b.angular_velocity = (0, 0), 0
            t.frozen = True
            for s in t.shapes:
                s.filter = pymunk.ShapeFilter(categories=OBJECTS, mask=0)  # nothing pushes them apart
        space.reindex_shapes_for_body(th.bodies[0])
    else:
        th.stretch = True


def render_clip(ss: np.random.SeedSequence, size: int = 64, fps: int = 10,
                seconds: float = 6.0) -> tuple[np.ndarray, dict[str, Any]]:
    """Frames ``uint8 [T, S, S, 3]`` and the clip's plan (game, objects, bug span)."""
    rng = np.random.default_rng(ss)
    game, objs, bug = _plan(rng, seconds)
    heights = terrain(rng)
    space = pymunk.Space()
    space.gravity = (0, GRAVITY)
    knots = np.linspace(-8, WORLD + 8, len(heights))
    for i in range(len(knots) - 1):
        seg = pymunk.Segment(space.static_body, (knots[i], heights[i]), (knots[i + 1], heights[i + 1]), 1.0)
        seg.friction, seg.filter = 1.0, pymunk.ShapeFilter(categories=GROUND)
        space.add(seg)
    for x in (1.0, WORLD - 1.0):  # invisible walls keep the action in view
        wall = pymunk.Segment(space.static_body, (x, 0), (x, 4 * WORLD), 1.0)
        wall.filter = pymunk.ShapeFilter(categories=GROUND)
        space.add(wall)
    slots = rng.permutation([11.0, 32.0, 53.0])[: len(objs)]
    things = []
    for (kind, colour), x in zip(objs, slots):
        direction = 1 if x < WORLD / 2 else -1 if x > WORLD / 2 else int(rng.choice([-1, 1]))
        things.append(make_thing(space, kind, colour, x + rng.uniform(-4, 4), ground_at(heights, x), direction, rng))
    ren = Renderer(game, heights, size, rng)
    n = int(round(seconds * fps))
    frames = np.empty((n, size, size, 3), np.uint8)
    noise = rng.normal(0, 2.0, (4, size, size, 1)).astype(np.float32)
    dt = 1.0 / (fps * SUBSTEPS)
    injected = False
    for i in range(n):
        t = i / fps
        if bug is not None and not injected and t >= bug.start:
            _inject(bug, things, space, heights)
            injected = True
        jitter = {}
        for ti, th in enumerate(things):
            if th.stretch and t < bug.end:
                jitter[ti] = (float(rng.uniform(2.6, 3.2)), float(rng.uniform(1.3, 1.6)),
                              float(rng.uniform(-2, 2)), float(rng.uniform(-2, 2)))
        frames[i] = ren.frame(things, jitter, noise[i % len(noise)])
        for _ in range(SUBSTEPS):
            for th in things:
                if th.walk and not th.frozen:
                    b = th.bodies[0]
                    b.velocity = (th.walk, b.velocity.y)
            space.step(dt)
    return frames, {"game": game, "objects": [{"kind": k, "colour": c} for k, c in objs],
                    "bug": None if bug is None else {"type": bug.type, "victim": bug.victim, "start": bug.start,
                                                     "end": bug.end, "partner": bug.partner}}


# ============================================================== the dataset
def _record(vid: str, rel_path: str, plan: dict[str, Any], seconds: float, rng: np.random.Generator,
            with_phases: bool) -> VideoRecord:
    return VideoRecord(video_id=vid, path=rel_path, texts=captions(plan, rng), duration=seconds,
                       clips=moments(plan, seconds, rng), phases=bug_phases(plan, seconds) if with_phases else [],
                       meta={"game": plan["game"], "objects": plan["objects"], "bug": plan["bug"]})


def generate(out: str | Path, seed: int = 0, n_train: int = 200, n_val: int = 20, n_test: int = 60, size: int = 64,
             fps: int = 10, seconds: float = 6.0, progress: bool = True) -> dict[str, Any]:
    """Write the clips, manifests, metadata CSV and query set; return a summary."""
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    counts = {"train": n_train, "val": n_val, "test": n_test}
    if seed < 0 or min(counts.values()) < 0 or n_train < 2 or n_test < 1:
        raise HVLInputError(f"demo: seed >= 0, n_train >= 2 and n_test >= 1 are needed (got seed={seed}, {counts})")
    if size not in DECODABLE_SIZES or fps < 1 or seconds < 2 * MOMENT_SECONDS:
        raise HVLInputError(f"demo: size in {DECODABLE_SIZES}, fps >= 1 and seconds >= "
                            f"{2 * MOMENT_SECONDS} are needed (got size={size}, fps={fps}, "
                            f"seconds={seconds})")
    out = Path(out)
    records: dict[str, list[VideoRecord]] = {s: [] for s in counts}
    test_plans: list[tuple[str, dict[str, Any]]] = []
    bar = tqdm(total=sum(counts.values()), desc="gameplay clips", unit="clip", disable=not progress)
    n_frames = 0
    with BackgroundWriter(on_done=lambda: bar.update(1)) as writer:
        for split, n in counts.items():
            for i in range(n):
                ss = np.random.SeedSequence([seed, SPLITS[split], i])
                look, text = ss.spawn(2)
                frames, plan = render_clip(look, size=size, fps=fps, seconds=seconds)
                vid = f"{split}_{i:04d}"
                folder = "videos" if split == "test" else "train_videos"
                rec = _record(vid, f"{folder}/{plan['game']}/{vid}.mp4", plan, seconds,
                              np.random.default_rng(text), with_phases=split == "test")
                writer.submit(out / rec.path, frames, fps)
                records[split].append(rec)
                n_frames += len(frames)
                if split == "test":
                    test_plans.append((vid, plan))
    bar.close()
    csv_buf = io.StringIO()
    w = csv.writer(csv_buf)
    w.writerow(["post_id", "title"])
    for vid, plan in test_plans:  # titles as players write them; hvl never ranks by them
        w.writerow([vid, f"lol look at this {plan['objects'][0]['kind']} ({plan['game'].replace('_', ' ')})"])
    (out / "videos" / "metadata.csv").write_text(csv_buf.getvalue())
    queries = build_queries(test_plans, np.random.default_rng([seed, 99]))
    queries_yaml = ("# held-out text queries for `hvl bugsearch-eval`; relevant = test video ids "
                    "(videos/<game>/<id>.mp4)\n" + yaml.safe_dump({"queries": queries}, sort_keys=False, width=200))
    atomic_write_bytes(out / "queries.yaml", queries_yaml.encode())
    manifests = {s: str(write_manifest(out / f"{s}.jsonl", recs)) for s, recs in records.items() if recs}
    by_type = {t: sum(q["type"] == t for q in queries) for t in ("simple", "compound", "bug")}
    return {"root": str(out), "manifests": manifests, "videos": counts, "frames": n_frames, "queries": by_type,
            "seconds": round(time.perf_counter() - t0, 2), "seed": seed}
