"""Seeded synthetic sign-language dataset: a stick-figure signer performing gloss sentences.

Real sign corpora (How2Sign, PHOENIX-2014T) cannot be shipped, so ``hvl demo sign`` draws a
stand-in that exercises text ↔ sign-video retrieval end to end on a CPU:

* **glosses**: 15 signs (5 subjects, 5 verbs, 5 objects), each a distinct motion of one or both
  hands (trajectory, place of articulation, hand shape: open, fist, point, flat);
* **videos**: H.264 .mp4 of a signer (random clothes, skin, background, position, size and
  signing speed) performing a subject-verb-object sentence in SVO or SOV gloss order, with
  transitions and rest poses; the gloss segments' times are known (``phases`` / ``clips``,
  ``label`` = gloss);
* **text**: video level = the English translation ("my friend wants a car"); segment level = the
  gloss and its word.

Test (and val) sentences are subject-verb-object combinations never signed in training, made of
glosses that are: retrieving them needs gloss ↔ segment / word alignment, not memorised sentences.
Every video draws from ``SeedSequence([seed, split, index])``: same seed, same bytes.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hvl.core.data.schema import ClipSegment, PhaseSegment, VideoRecord, write_manifest
from hvl.core.data.video import BackgroundWriter
from hvl.core.errors import HVLInputError

from .demo_poses import SignerTrack

SPLITS = {"train": 0, "val": 1, "test": 2}
Point = tuple[float, float]


# ============================================================== vocabulary and sentences
@dataclass(frozen=True)
class Gloss:
    name: str
    word: str                                  # its English word (zero-shot prompts use it)
    dom: tuple[Point, ...]                     # dominant-hand keyframes (image coordinates, 0..1)
    dom_shape: str
    non: tuple[Point, ...] | None = None       # non-dominant hand keyframes; None = at rest
    non_shape: str = "fist"
    reps: int = 1                              # the keyframe path is performed this many times
    end_shape: str | None = None               # hand shape changes to this half-way (LIKE)


def _circle(c: Point, r: float, n: int = 8, phase: float = 0.0) -> tuple[Point, ...]:
    return tuple((c[0] + r * math.cos(phase + 2 * math.pi * k / n), c[1] + r * math.sin(phase + 2 * math.pi * k / n))
                 for k in range(n + 1))


GLOSSES: dict[str, Gloss] = {g.name: g for g in [
    Gloss("I", "I", ((0.41, 0.53), (0.48, 0.50)), "point", reps=2),
    Gloss("YOU", "you", ((0.40, 0.56), (0.24, 0.46)), "point", reps=2),
    Gloss("TEACHER", "teacher", ((0.41, 0.15), (0.30, 0.25)), "flat", ((0.59, 0.15), (0.70, 0.25)), "flat", reps=2),
    Gloss("FRIEND", "friend", _circle((0.46, 0.44), 0.045), "fist", _circle((0.54, 0.44), 0.045, phase=math.pi), "fist"),
    Gloss("WANT", "want", ((0.30, 0.60), (0.40, 0.71)), "open", ((0.70, 0.60), (0.60, 0.71)), "open", reps=2),
    Gloss("SEE", "see", ((0.44, 0.19), (0.28, 0.31)), "point", reps=2),
    Gloss("BUY", "buy", ((0.51, 0.63), (0.42, 0.53), (0.28, 0.58)), "fist", ((0.56, 0.66), (0.56, 0.66)), "flat"),
    Gloss("LIKE", "like", ((0.48, 0.47), (0.29, 0.45)), "open", end_shape="fist"),
    Gloss("HOUSE", "house", ((0.48, 0.17), (0.36, 0.29), (0.36, 0.45)), "flat",
          ((0.52, 0.17), (0.64, 0.29), (0.64, 0.45)), "flat"),
    Gloss("CAR", "car", ((0.37, 0.50), (0.37, 0.63)), "fist", ((0.63, 0.63), (0.63, 0.50)), "fist", reps=2),
    Gloss("BOOK", "book", ((0.48, 0.58), (0.35, 0.54)), "flat", ((0.52, 0.58), (0.65, 0.54)), "flat"),
    Gloss("APPLE", "apple", _circle((0.39, 0.27), 0.03), "fist", reps=2),
    Gloss("MOTHER", "mother", ((0.45, 0.33), (0.40, 0.37)), "open", reps=3),
    Gloss("GIVE", "give", ((0.45, 0.50), (0.24, 0.62)), "flat", ((0.55, 0.50), (0.76, 0.62)), "flat"),
    Gloss("BALL", "ball", ((0.36, 0.36), (0.45, 0.36)), "open", ((0.64, 0.36), (0.55, 0.36)), "open", reps=2),
]}
SUBJECTS = {"I": "I", "YOU": "you", "TEACHER": "the teacher", "FRIEND": "my friend", "MOTHER": "my mother"}
VERBS = {"WANT": ("want", "wants"), "SEE": ("see", "sees"), "BUY": ("buy", "buys"), "LIKE": ("like", "likes"),
         "GIVE": ("give away", "gives away")}
OBJECTS = {"HOUSE": "a house", "CAR": "a car", "BOOK": "a book", "APPLE": "an apple", "BALL": "a ball"}
COMBOS = [(s, v, o) for s in SUBJECTS for v in VERBS for o in OBJECTS]


def translation(s: str, v: str, o: str) -> str:
    verb = VERBS[v][0] if s in ("I", "YOU") else VERBS[v][1]
    return f"{SUBJECTS[s]} {verb} {OBJECTS[o]}"


def split_sentences(seed: int, n_val: int, n_test: int) -> dict[str, list[tuple[str, str, str]]]:
    """Disjoint sentence sets; every gloss still occurs in training (test = new combinations only)."""
    rng = np.random.default_rng([seed, 99])
    for _ in range(100):
        order = [COMBOS[i] for i in rng.permutation(len(COMBOS))]
        test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
        if {g for c in train for g in c} == set(GLOSSES):
            return {"train": train, "val": val, "test": test}
    raise HVLInputError(f"demo: cannot hold out {n_val + n_test} of {len(COMBOS)} sentences and still train every gloss")


# ============================================================== drawing
class Canvas:
    """Anti-aliased discs and round-capped thick segments on a float32 ``[H, W, 3]`` image (unit coordinates)."""

    def __init__(self, img: np.ndarray):
        self.img = img
        n = img.shape[0]
        self.n = n
        self.ys, self.xs = np.mgrid[0:n, 0:n].astype(np.float32) + 0.5

    def _paint(self, dist: np.ndarray, radius: float, rgb: np.ndarray, box: tuple[int, int, int, int]) -> None:
        y0, y1, x0, x1 = box
        w = np.clip(radius + 0.5 - dist, 0.0, 1.0)[..., None]
        region = self.img[y0:y1, x0:x1]
        region += w * (rgb - region)

    def _box(self, xa: float, xb: float, ya: float, yb: float, r: float) -> tuple[int, int, int, int] | None:
        x0, x1 = max(int(xa - r - 1), 0), min(int(xb + r + 2), self.n)
        y0, y1 = max(int(ya - r - 1), 0), min(int(yb + r + 2), self.n)
        return (y0, y1, x0, x1) if x0 < x1 and y0 < y1 else None

    def segment(self, p: Point, q: Point, width: float, rgb: np.ndarray) -> None:
        px, py, qx, qy = p[0] * self.n, p[1] * self.n, q[0] * self.n, q[1] * self.n
        r = max(width * self.n / 2, 0.5)
        box = self._box(min(px, qx), max(px, qx), min(py, qy), max(py, qy), r)
        if box is None:
            return
        y0, y1, x0, x1 = box
        xs, ys = self.xs[y0:y1, x0:x1], self.ys[y0:y1, x0:x1]
        vx, vy = qx - px, qy - py
        t = np.clip(((xs - px) * vx + (ys - py) * vy) / (vx * vx + vy * vy + 1e-9), 0.0, 1.0)
        self._paint(np.hypot(xs - px - t * vx, ys - py - t * vy), r, rgb, box)

    def disc(self, c: Point, radius: float, rgb: np.ndarray) -> None:
        self.segment(c, c, 2 * radius, rgb)


@dataclass
class Signer:
    """One person's look and manner: colours, place in the frame, size, speed, jitter."""

    background: np.ndarray
    shirt: np.ndarray
    skin: np.ndarray
    hair: np.ndarray
    dx: float
    dy: float
    scale: float
    speed: float
    jitter: float

    @staticmethod
    def draw(rng: np.random.Generator) -> Signer:
        bg = rng.uniform(40, 200, 3)
        shirt = rng.uniform(20, 235, 3)
        while np.abs(shirt - bg).sum() < 150:   # the body must stand out from the wall
            shirt = rng.uniform(20, 235, 3)
        tone = rng.uniform(0.35, 1.0)
        skin = np.array([255, 205, 170]) * tone + np.array([60, 35, 20]) * (1 - tone)
        return Signer(bg.astype(np.float32), shirt.astype(np.float32), skin.astype(np.float32),
                      rng.uniform(10, 120, 3).astype(np.float32), dx=float(rng.uniform(-0.06, 0.06)),
                      dy=float(rng.uniform(-0.03, 0.04)), scale=float(rng.uniform(0.9, 1.08)) * ZOOM,
                      speed=float(rng.uniform(0.8, 1.25)), jitter=float(rng.uniform(0.002, 0.008)))

    def place(self, p: Point) -> Point:
        return 0.5 + (p[0] - 0.5) * self.scale + self.dx, 0.4 + (p[1] - 0.4) * self.scale + self.dy


ZOOM = 1.3  # upper-body framing, as sign corpora film: hands stay large enough to read at 32 px
REST = ((0.37, 0.82), (0.63, 0.82))
SHOULDERS = ((0.37, 0.38), (0.63, 0.38))
ARM = 0.215  # upper arm = forearm length


def _elbow(shoulder: Point, hand: Point, outward: float) -> Point:
    """Two-bone arm: the elbow bends down and away from the body."""
    dx, dy = hand[0] - shoulder[0], hand[1] - shoulder[1]
    d = max(math.hypot(dx, dy), 1e-6)
    mid = (shoulder[0] + dx / 2, shoulder[1] + dy / 2)
    h = math.sqrt(max(ARM ** 2 - (d / 2) ** 2, 0.0))
    px, py = -dy / d, dx / d
    if outward * px + py < 0:
        px, py = -px, -py
    return mid[0] + h * px, mid[1] + h * py


def _hand(c: Canvas, sg: Signer, pos: Point, shape: str, elbow: Point) -> None:
    s = sg.scale
    # sizes chosen to stay visible at 32 px: shapes differ in area and outline, not only in detail
    if shape == "open":
        c.disc(pos, 0.06 * s, sg.skin)
    elif shape == "fist":
        c.disc(pos, 0.04 * s, sg.skin)
    elif shape == "flat":
        c.segment((pos[0] - 0.055 * s, pos[1]), (pos[0] + 0.055 * s, pos[1]), 0.045 * s, sg.skin)
    elif shape == "point":
        ux, uy = pos[0] - elbow[0], pos[1] - elbow[1]
        n = max(math.hypot(ux, uy), 1e-6)
        c.disc(pos, 0.035 * s, sg.skin)
        c.segment(pos, (pos[0] + 0.09 * s * ux / n, pos[1] + 0.09 * s * uy / n), 0.03 * s, sg.skin)


NECK, HIP, HEAD, FACE = (0.5, 0.34), (0.5, 0.9), (0.5, 0.2), (0.5, 0.215)
HEAD_RADIUS, FACE_RADIUS = 0.085, 0.07


def figure_joints(sg: Signer, dom: Point, non: Point) -> dict[str, Point]:
    """Where :func:`draw_pose` puts the figure's joints (unit coordinates); the skeleton the demo's poses export.
    The signer faces the camera: the dominant hand, on the image's left, is the signer's right."""
    out = {"neck": sg.place(NECK), "hip": sg.place(HIP), "head": sg.place(HEAD), "face": sg.place(FACE)}
    for side, hand, shoulder, outward in (("right", dom, SHOULDERS[0], -1.0), ("left", non, SHOULDERS[1], 1.0)):
        sh, hd = sg.place(shoulder), sg.place(hand)
        out |= {f"{side}_shoulder": sh, f"{side}_elbow": _elbow(sh, hd, outward), f"{side}_hand": hd}
    return out


def draw_pose(img: np.ndarray, sg: Signer, dom: Point, dom_shape: str, non: Point, non_shape: str) -> None:
    c = Canvas(img)
    s = sg.scale
    j = figure_joints(sg, dom, non)
    c.segment(j["neck"], j["hip"], 0.27 * s, sg.shirt)                       # torso
    c.segment(sg.place((0.37, 0.39)), sg.place((0.63, 0.39)), 0.07 * s, sg.shirt)
    c.disc(j["head"], HEAD_RADIUS * s, sg.hair)              # head with hair, face in front
    c.disc(j["face"], FACE_RADIUS * s, sg.skin)
    for side, shape in (("right", dom_shape), ("left", non_shape)):
        sh, el, hd = j[f"{side}_shoulder"], j[f"{side}_elbow"], j[f"{side}_hand"]
        c.segment(sh, el, 0.07 * s, sg.shirt * 0.6)   # sleeve darker than the torso: the arm reads against it
        c.segment(el, hd, 0.055 * s, sg.skin * 0.85)
        _hand(c, sg, hd, shape, el)


def _path(points: tuple[Point, ...], u: float, reps: int) -> Point:
    """Position at progress ``u`` in [0, 1] along keyframes traced ``reps`` times (there and back)."""
    pts = list(points)
    if reps > 1:
        back = pts[::-1][1:]
        pts = pts + (back + pts[1:]) * (reps - 1) if len(pts) > 2 else pts * reps
    k = u * (len(pts) - 1)
    i = min(int(k), len(pts) - 2)
    f = 0.5 - 0.5 * math.cos(math.pi * (k - i))  # eased: hands slow down at keyframes
    return pts[i][0] + (pts[i + 1][0] - pts[i][0]) * f, pts[i][1] + (pts[i + 1][1] - pts[i][1]) * f


def _pose(g: Gloss, u: float) -> tuple[Point, str, Point, str]:
    dom = _path(g.dom, u, g.reps)
    shape = g.end_shape if g.end_shape and u > 0.5 else g.dom_shape
    non = _path(g.non, u, g.reps) if g.non else REST[1]
    return dom, shape, non, g.non_shape if g.non else "fist"


# ============================================================== one video
SIGN_SECONDS, TRANSITION_SECONDS, REST_SECONDS = 1.0, 0.3, 0.3


def render_video(video_id: str, glosses: list[str], text: str, ss: np.random.SeedSequence, size: int = 64,
                 fps: float = 10.0) -> tuple[np.ndarray, VideoRecord]:
    """Frames ``uint8 [T, H, W, 3]`` and the record: rest, (transition, gloss)*, transition, rest."""
    frames, rec, _ = render_signer(video_id, glosses, text, ss, size, fps)
    return frames, rec


def render_signer(video_id: str, glosses: list[str], text: str, ss: np.random.SeedSequence, size: int = 64,
                  fps: float = 10.0) -> tuple[np.ndarray, VideoRecord, SignerTrack]:
    """:func:`render_video` plus the figure's track (for its skeleton)."""
    rng = np.random.default_rng(ss)
    sg = Signer.draw(rng)
    # timeline of (kind, start, end, gloss)
    plan, t = [], REST_SECONDS / sg.speed
    for g in glosses:
        trans = TRANSITION_SECONDS / sg.speed * rng.uniform(0.8, 1.2)
        dur = SIGN_SECONDS / sg.speed * rng.uniform(0.85, 1.15)
        plan.append((t + trans, t + trans + dur, GLOSSES[g]))
        t += trans + dur
    end_of_signing = t
    total = t + (TRANSITION_SECONDS + REST_SECONDS) / sg.speed
    n = int(math.ceil(total * fps))
    duration = n / fps
    rest = (REST[0], "fist", REST[1], "fist")
    frames = np.empty((n, size, size, 3), np.uint8)
    noise = rng.normal(0, 3.0, (4, size, size, 1)).astype(np.float32)
    yy = np.linspace(0.9, 1.1, size, dtype=np.float32)[:, None, None]
    base = np.broadcast_to(sg.background * yy, (size, size, 3))
    drawn = []
    for f in range(n):
        tf = (f + 0.5) / fps
        pose = _pose_at(tf, plan, rest, end_of_signing, sg.speed)
        jit = rng.normal(0, sg.jitter, 4)
        img = base.copy()
        drawn.append(((pose[0][0] + jit[0], pose[0][1] + jit[1]), pose[1], (pose[2][0] + jit[2], pose[2][1] + jit[3]),
                      pose[3]))
        draw_pose(img, sg, *drawn[-1])
        img += noise[f % len(noise)]
        frames[f] = np.clip(img, 0, 255)
    r6 = lambda x: round(min(x, duration), 6)  # noqa: E731
    phases = [PhaseSegment(start=r6(a), end=r6(b), text=g.word, label=g.name) for a, b, g in plan]
    clips = [ClipSegment(start=r6(a), end=r6(b), texts=[g.word, f"the sign {g.name}"]) for a, b, g in plan]
    rec = VideoRecord(video_id=video_id, path=f"videos/{video_id}.mp4", texts=[text], duration=round(duration, 6),
                      phases=phases, clips=clips, meta={"glosses": glosses, "signer_speed": round(sg.speed, 3)})
    joints = [figure_joints(sg, dom, non) for dom, _, non, _ in drawn]
    track = SignerTrack(joints={k: np.array([j[k] for j in joints]) for k in joints[0]},
                        shapes={"right": tuple(d[1] for d in drawn), "left": tuple(d[3] for d in drawn)},
                        scale=sg.scale, face_radius=FACE_RADIUS * sg.scale, fps=fps, size=size)
    return frames, rec, track


def _pose_at(t: float, plan, rest, end_of_signing: float, speed: float):
    """Pose at time ``t``: in a gloss, along its path; between glosses, a straight move from the last pose."""
    prev_end, prev_pose = 0.0, rest
    for a, b, g in plan:
        if t < a:  # transition into g
            return _blend(prev_pose, _pose(g, 0.0), (t - prev_end) / max(a - prev_end, 1e-6))
        if t < b:
            return _pose(g, (t - a) / (b - a))
        prev_end, prev_pose = b, _pose(g, 1.0)
    return _blend(prev_pose, rest, (t - end_of_signing) / (TRANSITION_SECONDS / speed))


def _blend(p, q, u: float):
    u = min(max(u, 0.0), 1.0)
    lerp = lambda a, b: (a[0] + (b[0] - a[0]) * u, a[1] + (b[1] - a[1]) * u)  # noqa: E731
    return lerp(p[0], q[0]), p[1] if u < 0.5 else q[1], lerp(p[2], q[2]), p[3] if u < 0.5 else q[3]


# ============================================================== the dataset
def generate(out: str | Path, seed: int = 0, per_sentence: dict[str, int] | None = None, n_val: int = 4,
             n_test: int = 25, size: int = 64, fps: float = 10.0, progress: bool = True, poses: bool = True,
             pose_noise: float = 1.0) -> dict:
    """Write ``out/videos/*.mp4`` and ``out/{train,val,test}.jsonl``; return a summary.

    ``per_sentence``: videos per sentence and split (different signers); default train 2, val 2, test 2.
    Of the 125 sentences, ``n_test`` and ``n_val`` are held out and the rest are for training.
    ``poses``: also the signer's skeleton with seeded estimator errors (``pose_noise`` scales them, 0 = clean),
    as How2Sign-style OpenPose JSON ``out/openpose_output/json/<video_id>/`` (each row's ``pose``) and, with
    pose-format installed, ``out/videos/<video_id>.pose`` (see :mod:`.demo_poses`).
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    per = {"train": 2, "val": 2, "test": 2} | (per_sentence or {})
    if seed < 0 or size < 24 or fps <= 0 or abs(fps - round(fps)) > 1e-9 or min(per.values()) < 0:
        raise HVLInputError(f"demo: need seed >= 0, size >= 24, a whole fps > 0 and per-sentence counts >= 0 "
                            f"(got seed={seed}, size={size}, fps={fps}, per_sentence={per})")
    sentences = split_sentences(seed, n_val, n_test)
    jobs = []
    for split, combos in sentences.items():
        for si, combo in enumerate(combos):
            for k in range(per[split]):
                jobs.append((split, si, combo, k))
    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    records: dict[str, list[VideoRecord]] = {s: [] for s in sentences}
    if poses:
        from .demo_poses import PoseNoise, pose_file_writable, pose_seed, write_demo_poses

        noise, pose_file = PoseNoise().scaled(pose_noise), pose_file_writable()
    n_frames = 0
    bar = tqdm(total=len(jobs), desc="demo videos", unit="video", disable=not progress)
    with BackgroundWriter(on_done=lambda: bar.update(1)) as writer:
        for split, si, (s, v, o), k in jobs:
            ss = np.random.SeedSequence([seed, SPLITS[split], si, k])
            order_rng = np.random.default_rng(ss.spawn(1)[0])
            glosses = [s, v, o] if order_rng.uniform() < 0.5 else [s, o, v]   # SVO or SOV
            frames, rec, track = render_signer(f"sign_{split}_{si:03d}_{k}", glosses, translation(s, v, o), ss, size,
                                               fps)
            writer.submit(out / rec.path, frames, fps)
            if poses:
                rec = write_demo_poses(out, rec, track, pose_seed(seed, SPLITS[split], si, k), noise, pose_file)
            records[split].append(rec)
            n_frames += len(frames)
    bar.close()
    manifests = {s: str(write_manifest(out / f"{s}.jsonl", recs)) for s, recs in records.items() if recs}
    return {"root": str(out), "manifests": manifests, "videos": {s: len(r) for s, r in records.items()},
            "sentences": {s: len(c) for s, c in sentences.items()}, "frames": n_frames,
            "seconds": round(time.perf_counter() - t0, 2), "seed": seed}
