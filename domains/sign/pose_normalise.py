"""Pose normalisation for sign retrieval: the body in shoulder widths around the neck, each hand around its wrist.

* **Body** (as SignCLIP, through pose-format's ``normalize``): centred on the neck and scaled so that the
  shoulder width is 1. Centre and width are the clip's (medians over the frames where the neck and both
  shoulders are confident), not each frame's: the signer's own movement of the trunk stays in the stream, and one
  jittered or mis-detected frame neither shifts nor rescales the others.
* **Hands** (as Uni-Sign): each hand's 21 joints relative to that hand's wrist (the body's wrist of the same
  side where the hand's own is not confident), but scaled by the body's shoulder width rather than each hand's
  own box (SEDS) or the body's box (Uni-Sign): a fist and an open hand keep their sizes relative to the body,
  and a missed or tiny hand detection is not blown up to full scale.
* **Confidence**: points below ``min_confidence`` are zeroed (as SEDS and Uni-Sign do) and also masked, so that
  a zero is never read as a point on the neck or the wrist.

Output points are float32, ``NaN``-free: masked ones are 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hvl.core.data.keypoints import KeypointReader, KeypointTrack
from hvl.core.data.schema import Manifest, VideoRecord

from .pose_formats import PoseSequence, find_pose_beside, load_pose, load_record_pose
from .pose_layouts import BODY_LANDMARKS

__all__ = ["KEYPOINTS", "MIN_CONFIDENCE", "NormalisedPose", "normalise", "record_keypoints", "video_keypoints"]

# OpenPose hand confidences commonly sit at 0.2-0.5 on blurred frames; below 0.2 the points are mostly guesses
MIN_CONFIDENCE = 0.2


@dataclass(frozen=True, eq=False)
class NormalisedPose:
    body: np.ndarray         # float32 [T, 8, 2]: BODY_LANDMARKS, neck at the origin, shoulder width 1
    hands: np.ndarray        # float32 [T, 2, 21, 2]: left, right; relative to the wrist, in shoulder widths
    body_mask: np.ndarray    # bool [T, 8]: True = a confident point
    hands_mask: np.ndarray   # bool [T, 2, 21]
    centre: np.ndarray       # float32 [2]: the neck, in the source's pixels (NaN when never seen)
    scale: float             # shoulder width in the source's pixels (NaN when never seen: everything masked)
    fps: float

    def features(self) -> tuple[np.ndarray, np.ndarray]:
        """``([T, 100], [T, 50])``: the 8 body and 42 hand points flattened per frame, and their mask."""
        t = self.body.shape[0]
        pts = np.concatenate([self.body, self.hands.reshape(t, 42, 2)], axis=1)
        mask = np.concatenate([self.body_mask, self.hands_mask.reshape(t, 42)], axis=1)
        return pts.reshape(t, -1), mask


def _visible(xy: np.ndarray, conf: np.ndarray, min_confidence: float) -> np.ndarray:
    return (conf >= min_confidence) & (conf > 0) & np.isfinite(xy).all(axis=-1)


def normalise(seq: PoseSequence, min_confidence: float = MIN_CONFIDENCE) -> NormalisedPose:
    """``seq`` normalised as the module says; a clip without one frame of confident neck and shoulders comes
    back fully masked (there is no body to measure)."""
    t = len(seq)
    marks = [seq.landmark(name) for name in BODY_LANDMARKS]
    body_xy = np.stack([xy for xy, _ in marks], axis=1).astype(np.float64)            # [T, 8, 2]
    body_vis = np.stack([_visible(xy, c, min_confidence) for xy, c in marks], axis=1)  # [T, 8]
    neck, rs, ls = (BODY_LANDMARKS.index(n) for n in ("neck", "right_shoulder", "left_shoulder"))
    anchored = body_vis[:, neck] & body_vis[:, rs] & body_vis[:, ls]
    if not anchored.any():
        return NormalisedPose(np.zeros((t, 8, 2), np.float32), np.zeros((t, 2, 21, 2), np.float32),
                              np.zeros((t, 8), bool), np.zeros((t, 2, 21), bool),
                              np.full(2, np.nan, np.float32), float("nan"), seq.fps)
    centre = np.median(body_xy[anchored, neck], axis=0)
    widths = np.linalg.norm(body_xy[anchored, rs] - body_xy[anchored, ls], axis=-1)
    scale = float(np.median(widths))
    if not scale > 0:   # shoulders on one pixel in every frame: no body size to measure
        scale = float("nan")
        body_vis = np.zeros_like(body_vis)
    body = np.where(body_vis[..., None], (body_xy - centre) / scale, 0.0)

    hand_xy, hand_conf = seq.hands()
    hand_xy = hand_xy.astype(np.float64)
    hand_vis = _visible(hand_xy, hand_conf, min_confidence) & np.isfinite(scale)      # [T, 2, 21]
    wrist = hand_xy[:, :, 0].copy()                                                   # [T, 2, 2]
    wrist_vis = hand_vis[:, :, 0].copy()
    for side, name in enumerate(("left_wrist", "right_wrist")):
        k = BODY_LANDMARKS.index(name)
        use_body = ~wrist_vis[:, side] & body_vis[:, k]
        wrist[use_body, side] = body_xy[use_body, k]
        wrist_vis[:, side] |= use_body
    hand_vis &= wrist_vis[:, :, None]
    hands = np.where(hand_vis[..., None], (hand_xy - wrist[:, :, None]) / scale, 0.0)
    return NormalisedPose(body.astype(np.float32), hands.astype(np.float32), body_vis, hand_vis,
                          centre.astype(np.float32), scale, seq.fps)


def record_keypoints(rec: VideoRecord, root: Path | None, video_fps: float) -> KeypointTrack | None:
    """The poses ``rec`` names, normalised, as the generic per-frame keypoints a pose-aware model reads
    (:attr:`NormalisedPose.features`: 8 body + 42 hand points, x and y); None when it names none."""
    manifest = None if root is None else Manifest(file=Path(root) / "manifest.jsonl", videos=[rec])
    seq = load_record_pose(rec, manifest, video_fps=video_fps)
    if seq is None:
        return None
    points, mask = normalise(seq).features()
    return KeypointTrack(points.reshape(len(seq), -1, 2), mask, seq.fps, seq.start)


def video_keypoints(video: Path, video_fps: float) -> KeypointTrack | None:
    """The poses beside a video no manifest describes (``hvl index`` of a folder), normalised: ``<name>.pose``
    beside it, else How2Sign's and the demo's ``../openpose_output/json/<name>/`` (at the video's fps)."""
    video = Path(video)
    source = find_pose_beside(video)
    if source is None:
        folder = video.parent.parent / "openpose_output" / "json" / video.stem
        source = folder if folder.is_dir() else None
    if source is None:
        return None
    seq = load_pose(source, fps=video_fps)
    points, mask = normalise(seq).features()
    return KeypointTrack(points.reshape(len(seq), -1, 2), mask, seq.fps, seq.start)


KEYPOINTS = KeypointReader(points=50, channels=2, load=record_keypoints, beside=video_keypoints)
