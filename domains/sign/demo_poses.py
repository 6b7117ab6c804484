"""The demo signer's skeleton, exported as a pose estimator would see it: How2Sign-style OpenPose JSON and ``.pose``.

The figure :mod:`.demo` draws (its :class:`SignerTrack`) has a neck, shoulders, elbows, hands and a face disc. Its skeleton is written in
the OpenPose 137 layout at the joints :func:`.demo.figure_joints` draws (x, y in the video's pixels, pixel
centres at integers as OpenPose writes them): BODY_25 nose (the face's centre), neck, shoulders, elbows and wrists
(the hands' centres), the hip where it is inside the frame; the 17 jaw points of the face on the face disc's
lower edge; 21 joints per hand, laid out for the hand shape drawn (open, fist, flat, point). Every point the
figure does not have (eyes, ears, mouth, legs, feet) has confidence 0.

On top, seeded estimator errors (:class:`PoseNoise`): jitter of every point, frames where nobody is detected
(``"people": []``), frames where one hand is missed, a frame with the hands swapped, and hands whose confidence
falls (and whose points blur) while they move fast, as in the transitions between signs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hvl.core.data.schema import PoseSource, VideoRecord
from hvl.core.extras import missing_modules
from hvl.core.io import confined_dir

from .pose_formats import PoseSequence, write_openpose_folder, write_pose_file
from .pose_layouts import OPENPOSE_137, OPENPOSE_BODY

POSE_DIR = Path("openpose_output") / "json"    # beside videos/, as How2Sign's archives extract beside raw_videos/
POSE_STREAM = 7919                             # a seed word of its own: the videos' random streams stay as they were
_BODY = {name: i for i, name in enumerate(OPENPOSE_BODY)}
_FACE0, _LEFT0, _RIGHT0 = 25, 95, 116          # first face, left-hand and right-hand point of the 137

# (angle from the pointing direction in degrees, radii of the 4 joints from the wrist) per finger, thumb first;
# in units of the figure's scale, sized to the shapes _hand draws (disc radii 0.06 / 0.04, flat bar 0.055,
# pointing finger 0.09)
_CURLED = [(40, (0.012, 0.02, 0.026, 0.03))] + [(a, (0.016, 0.026, 0.03, 0.026)) for a in (15, 0, -15, -30)]
HAND_SHAPES = {
    "open": [(70, (0.015, 0.03, 0.042, 0.052))] + [(a, (0.022, 0.036, 0.048, 0.06)) for a in (25, 5, -15, -35)],
    "fist": _CURLED,
    "flat": [(30, (0.012, 0.025, 0.035, 0.045))] + [(a, (0.02, 0.035, 0.045, 0.055)) for a in (6, 2, -2, -6)],
    "point": [_CURLED[0], (0, (0.03, 0.05, 0.07, 0.09))] + _CURLED[2:],
}


@dataclass(frozen=True)
class SignerTrack:
    """The figure as drawn in each frame (the drawing's jitter included): the truth its poses export."""

    joints: dict[str, np.ndarray]        # demo.figure_joints' joints, [T, 2] unit coordinates each
    shapes: dict[str, tuple[str, ...]]   # "right" / "left": the hand shape drawn in each frame
    scale: float                         # the figure's size (its hands' too)
    face_radius: float                   # unit coordinates
    fps: float
    size: int                            # the video's side, pixels

    def __len__(self) -> int:
        return len(self.shapes["right"])


@dataclass(frozen=True)
class PoseNoise:
    """A pose estimator's errors; :meth:`scaled` grows or removes them all (0 = the clean skeleton)."""

    jitter: float = 0.004       # σ of every point, in frame sizes
    hand_jitter: float = 0.006  # σ of hand joints at rest; grows with the hand's speed (motion blur)
    drop_person: float = 0.03   # share of frames in which nobody is detected (at least one frame when > 0)
    drop_hand: float = 0.05     # share of frames in which one hand is missed (at least one frame when > 0)
    swap_hands: int = 1         # frames whose left and right hands are exchanged
    fast_speed: float = 1.5     # hand speed (frame sizes per second) above which its confidence falls

    def scaled(self, level: float) -> PoseNoise:
        return PoseNoise(self.jitter * level, self.hand_jitter * level, min(self.drop_person * level, 0.5),
                         min(self.drop_hand * level, 0.5), round(self.swap_hands * level),
                         self.fast_speed / level if level > 0 else math.inf)


@dataclass
class NoiseEvents:
    """Where the errors were put (frame numbers), for tests and robustness studies."""

    dropped_person: list[int] = field(default_factory=list)
    dropped_hand: list[tuple[int, str]] = field(default_factory=list)   # (frame, "left" | "right")
    swapped_hands: list[int] = field(default_factory=list)
    fast: list[tuple[int, str]] = field(default_factory=list)           # hand confidence lowered by speed


def _templates() -> dict[str, np.ndarray]:
    """Per shape, ``[20, 2]``: each finger joint's (cos, sin) of its angle times its radius."""
    out = {}
    for shape, fingers in HAND_SHAPES.items():
        rows = [(math.cos(math.radians(a)) * r, math.sin(math.radians(a)) * r) for a, radii in fingers for r in radii]
        out[shape] = np.array(rows)
    return out


_TEMPLATES = _templates()


def _hand_points(wrist: np.ndarray, elbow: np.ndarray, shapes: tuple[str, ...], side: str,
                 scale: float) -> np.ndarray:
    """``[T, 21, 2]`` joints (unit coordinates) of a hand drawn at ``wrist`` with each frame's shape."""
    u = wrist - elbow                              # the shapes continue the forearm, as the pointing finger does
    u = u / np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), 1e-6)
    flat = np.array([s == "flat" for s in shapes])
    u[flat] = [1.0, 0.0] if side == "right" else [-1.0, 0.0]   # the flat hand is drawn level, toward the midline
    mirror = 1.0 if side == "right" else -1.0      # the thumb on the same anatomical side of both hands
    v = np.stack([-u[:, 1], u[:, 0]], axis=-1) * mirror
    tmpl = np.stack([_TEMPLATES[s] for s in shapes]) * scale                      # [T, 20, 2]
    fingers = wrist[:, None] + tmpl[..., :1] * u[:, None] + tmpl[..., 1:] * v[:, None]
    return np.concatenate([wrist[:, None], fingers], axis=1)


def skeleton(track: SignerTrack) -> tuple[np.ndarray, np.ndarray]:
    """The figure's OpenPose-137 points per frame: float64 ``[T, 137, 2]`` unit coordinates, bool ``[T, 137]``
    where the figure has that point inside the frame."""
    j, t = track.joints, len(track)
    pts = np.zeros((t, OPENPOSE_137.num_points, 2))
    has = np.zeros((t, OPENPOSE_137.num_points), bool)
    for name, joint in {"Nose": "face", "Neck": "neck", "MidHip": "hip", "RShoulder": "right_shoulder",
                        "RElbow": "right_elbow", "RWrist": "right_hand", "LShoulder": "left_shoulder",
                        "LElbow": "left_elbow", "LWrist": "left_hand"}.items():
        pts[:, _BODY[name]], has[:, _BODY[name]] = j[joint], True
    jaw = np.pi - np.arange(17) * np.pi / 16            # ear to ear around the chin (image y points down)
    pts[:, _FACE0:_FACE0 + 17] = j["face"][:, None] + track.face_radius * np.stack([np.cos(jaw), np.sin(jaw)], -1)
    has[:, _FACE0:_FACE0 + 17] = True
    for first, side in ((_RIGHT0, "right"), (_LEFT0, "left")):
        pts[:, first:first + 21] = _hand_points(j[f"{side}_hand"], j[f"{side}_elbow"], track.shapes[side], side,
                                                track.scale)
        has[:, first:first + 21] = True
    has &= ((pts >= 0) & (pts <= 1)).all(axis=-1)            # an estimator finds nothing outside the frame
    return pts, has


def hand_speeds(track: SignerTrack) -> np.ndarray:
    """float64 ``[T, 2]`` (left, right): how fast each drawn hand moves, frame sizes per second."""
    xy = np.stack([track.joints["left_hand"], track.joints["right_hand"]], axis=1)     # [T, 2, 2]
    v = np.linalg.norm(np.diff(xy, axis=0), axis=-1) * track.fps
    return np.concatenate([v[:1], v], axis=0) if len(v) else np.zeros((len(xy), 2))


def demo_poses(track: SignerTrack, rng: np.random.Generator,
               noise: PoseNoise = PoseNoise()) -> tuple[PoseSequence, NoiseEvents]:
    """The skeleton as an estimator reports it: pixels rounded as OpenPose writes them (3 decimals,
    confidence 6), NaN and confidence 0 where nothing is detected."""
    truth, has = skeleton(track)
    t, k = has.shape
    hands = {"left": slice(_LEFT0, _LEFT0 + 21), "right": slice(_RIGHT0, _RIGHT0 + 21)}
    speed = hand_speeds(track)
    conf = np.where(np.arange(k) < _FACE0, rng.uniform(0.7, 0.95, (t, k)), rng.uniform(0.6, 0.85, (t, k)))
    xy = truth + rng.normal(0.0, 1.0, truth.shape) * noise.jitter
    events = NoiseEvents()
    for s, side in enumerate(("left", "right")):
        sl = hands[side]
        blur = np.minimum(1.0, (noise.fast_speed / np.maximum(speed[:, s], 1e-9)) ** 2)
        conf[:, sl] = rng.uniform(0.55, 0.9, (t, 21)) * np.maximum(blur, 0.03)[:, None]
        sigma = noise.hand_jitter * (1 + speed[:, s] / noise.fast_speed)
        xy[:, sl] = truth[:, sl] + rng.normal(0.0, 1.0, (t, 21, 2)) * sigma[:, None, None]
        events.fast += [(int(f), side) for f in np.flatnonzero(speed[:, s] > noise.fast_speed)]
    events.fast.sort()
    order = [int(f) for f in rng.permutation(t)]
    n_person = min(math.ceil(noise.drop_person * t), t)
    n_hand = min(math.ceil(noise.drop_hand * t), t - n_person)
    n_swap = min(noise.swap_hands, t - n_person - n_hand)
    events.dropped_person = sorted(order[:n_person])
    sides = rng.integers(0, 2, n_hand)
    events.dropped_hand = sorted((f, ("left", "right")[s]) for f, s in zip(order[n_person:n_person + n_hand], sides))
    events.swapped_hands = sorted(order[n_person + n_hand:n_person + n_hand + n_swap])
    for f in events.swapped_hands:
        left, right = hands["left"], hands["right"]
        xy[f, left], xy[f, right] = xy[f, right].copy(), xy[f, left].copy()
        conf[f, left], conf[f, right] = conf[f, right].copy(), conf[f, left].copy()
        has[f, left], has[f, right] = has[f, right].copy(), has[f, left].copy()
    for f, side in events.dropped_hand:
        has[f, hands[side]] = False
    has[events.dropped_person] = False
    pixels = np.round(xy * track.size - 0.5, 3)
    conf = np.maximum(np.round(conf, 6), 0.01)      # a detected point never rounds to "not detected"
    points = np.where(has[..., None], pixels, np.nan).astype(np.float32)
    confidence = np.where(has, conf, 0.0).astype(np.float32)
    return PoseSequence(points, confidence, track.fps, OPENPOSE_137, size=(track.size, track.size)), events


def pose_file_writable() -> bool:
    """Whether pose-format is installed; without it the demo writes the OpenPose JSON only, and says so."""
    if missing_modules("sign"):
        import warnings

        warnings.warn("pose-format is not installed: the sign demo writes its poses as OpenPose JSON only, no "
                      ".pose files (pip install 'hvl[sign]')", stacklevel=3)
        return False
    return True


def pose_seed(seed: int, split: int, sentence: int, k: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, split, sentence, k, POSE_STREAM])


def write_demo_poses(out: Path, rec: VideoRecord, track: SignerTrack, ss: np.random.SeedSequence,
                     noise: PoseNoise = PoseNoise(), pose_file: bool = True) -> VideoRecord:
    """``out/openpose_output/json/<video_id>/`` (How2Sign-style) and ``<video>.pose`` beside the video (with
    pose-format); the record, naming the JSON folder as its pose source."""
    seq, _ = demo_poses(track, np.random.default_rng(ss), noise)
    folder = POSE_DIR / rec.video_id
    write_openpose_folder(confined_dir(out, *POSE_DIR.parts, create=True) / rec.video_id, rec.video_id, seq)
    if pose_file:
        write_pose_file((out / rec.path).with_suffix(".pose"), seq)
    return rec.model_copy(update={"pose": PoseSource(path=folder.as_posix(), fps=track.fps)})
