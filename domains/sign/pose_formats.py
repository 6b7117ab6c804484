"""Pose streams as sign corpora ship them, read into one representation (:class:`PoseSequence`).

* **OpenPose JSON** (How2Sign's ``openpose_output/json/<SENTENCE_NAME>/``): one ``*_keypoints.json`` per video
  frame, the frame number the digits before ``_keypoints.json``; ``people[0]`` holds flat ``x, y, c`` triplets.
  OpenPose writes ``0, 0, 0`` for a point it did not find and ``"people": []`` when it found nobody; a frame
  number without a file is a frame it has no record of. All three read as confidence 0 and NaN coordinates:
  a missed point never reads as a point at the image corner. The files carry no frame rate: it is the
  video's (OpenPose writes one file per decoded frame).
* **``.pose``** (``pose-format``): OpenPose 137 or MediaPipe Holistic components (see :mod:`.pose_layouts`),
  its own fps; pose-format masks points of confidence 0, as here. The first person is read, z is dropped.

A frame is matched to video time at the pose stream's own fps (:meth:`PoseSequence.frame_at`). A broken file
is one :class:`~hvl.core.errors.HVLInputError` naming the file, the frame and the field.
"""
from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from hvl.core.errors import HVLInputError
from hvl.core.extras import require
from hvl.core.io import atomic_dir, atomic_writer

from .pose_layouts import OPENPOSE_137, OPENPOSE_FIELDS, PoseLayout, layout_from_components

if TYPE_CHECKING:
    from hvl.core.data.schema import Manifest, VideoRecord

__all__ = ["PoseSequence", "find_pose_beside", "load_pose", "load_record_pose", "read_openpose_folder",
           "read_pose_file", "write_openpose_folder", "write_pose_file"]

# the frame number is the last run of digits before the suffix: How2Sign's `<name>_000000000123_keypoints.json`
# and OpenPose-over-images' `images0123_keypoints.json` alike
FRAME_FILE = re.compile(r"(\d+)_keypoints\.json$")
KEYPOINTS_SUFFIX = "_keypoints.json"


@dataclass(frozen=True, eq=False)
class PoseSequence:
    """One signer's 2D keypoints over time.

    ``points`` float32 ``[T, K, 2]`` (x, y in the pixels of the frames they were estimated on; NaN where nothing
    was detected), ``confidence`` float32 ``[T, K]`` (0 where nothing was detected, the frame has no record or
    nobody was found), ``fps`` the stream's own rate, ``start`` the video time (seconds) at which frame 0 is
    shown, ``layout`` which point is which."""

    points: np.ndarray
    confidence: np.ndarray
    fps: float
    layout: PoseLayout
    source: str = ""
    start: float = 0.0
    missing_frames: tuple[int, ...] = ()     # frame numbers the source has no record of
    size: tuple[int, int] | None = None      # (width, height) of the frames, when the source says

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def duration(self) -> float:
        return len(self) / self.fps

    def frames_at(self, times: np.ndarray | list[float]) -> np.ndarray:
        """int64 pose frame shown at each video time (frame ``i`` during ``[start + i/fps, start + (i+1)/fps)``);
        -1 where the stream has no frame (before its start, after its end)."""
        t = np.asarray(times, np.float64)
        idx = np.floor((t - self.start) * self.fps + 1e-6).astype(np.int64)
        return np.where((idx >= 0) & (idx < len(self)), idx, -1)

    def frame_at(self, t: float) -> int:
        return int(self.frames_at([t])[0])

    def at_times(self, times: np.ndarray | list[float]) -> PoseSequence:
        """The frames shown at ``times`` (e.g. the video frames a model samples); no frame = nothing detected."""
        idx = self.frames_at(times)
        ok = idx >= 0
        points = np.full((len(idx), *self.points.shape[1:]), np.nan, np.float32)
        conf = np.zeros((len(idx), self.confidence.shape[1]), np.float32)
        points[ok], conf[ok] = self.points[idx[ok]], self.confidence[idx[ok]]
        return replace(self, points=points, confidence=conf, fps=self.fps, start=0.0, missing_frames=())

    def landmark(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``([T, 2], [T])`` of a :data:`~.pose_layouts.BODY_LANDMARKS` point; Holistic's neck is the shoulders'
        midpoint, as confident as the less confident shoulder."""
        if name in self.layout.body:
            k = self.layout.body[name]
            return self.points[:, k], self.confidence[:, k]
        if name == "neck":
            r, l = self.layout.body["right_shoulder"], self.layout.body["left_shoulder"]
            return ((self.points[:, r] + self.points[:, l]) / 2,
                    np.minimum(self.confidence[:, r], self.confidence[:, l]))
        raise KeyError(name)

    def hands(self) -> tuple[np.ndarray, np.ndarray]:
        """``([T, 2, 21, 2], [T, 2, 21])``: the left then the right hand, joints in HAND_JOINTS order."""
        idx = np.asarray(self.layout.hands)
        return self.points[:, idx], self.confidence[:, idx]


# ================================================================= OpenPose JSON folders
def _frame_files(folder: Path) -> dict[int, Path]:
    files: dict[int, Path] = {}
    for p in folder.iterdir():
        if not p.name.endswith(KEYPOINTS_SUFFIX) or not p.is_file():
            continue
        m = FRAME_FILE.search(p.name)
        if m is None:
            raise HVLInputError(f"{p}: no frame number before '{KEYPOINTS_SUFFIX}'; OpenPose names its files "
                                "<name>_<frame number>_keypoints.json: rename or remove the file")
        i = int(m.group(1))
        if i in files:
            raise HVLInputError(f"{p}: frame {i} is also {files[i].name}; keep one file per frame")
        files[i] = p
    if not files:
        raise HVLInputError(f"{folder}: no *{KEYPOINTS_SUFFIX} files; point the pose source at the folder "
                            "OpenPose wrote with --write_json")
    return files


def _numbers(path: Path, frame: int, field: str, values: object, n_points: int) -> np.ndarray | None:
    """A field's ``[n, 3]`` triplets, or None for an empty list (that detector found nothing or was off)."""
    where = f"{path}: frame {frame}: field '{field}'"
    if not isinstance(values, list):
        raise HVLInputError(f"{where}: expected a list of x, y, confidence numbers, got {type(values).__name__}")
    if not values:
        return None
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf" or arr.ndim != 1:
        raise HVLInputError(f"{where}: expected numbers only; re-extract the keypoints archive or delete the file")
    if arr.size != 3 * n_points:
        raise HVLInputError(f"{where}: {arr.size} numbers; expected {3 * n_points} ({n_points} points × x, y, "
                            "confidence) or none")
    arr = arr.astype(np.float64).reshape(n_points, 3)
    bad = ~np.isfinite(arr).all(axis=1) | (arr[:, 2] < 0)
    if bad.any():
        k = int(np.argmax(bad))
        raise HVLInputError(f"{where}: point {k} is {arr[k].tolist()} (coordinates must be finite, confidence "
                            ">= 0); re-extract the keypoints archive or delete the file")
    return arr


def read_openpose_folder(folder: str | Path, fps: float, size: tuple[int, int] | None = None) -> PoseSequence:
    """A folder of OpenPose ``*_keypoints.json`` frames (OpenPose 137 layout), frames 0 … the highest number."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HVLInputError(f"{folder}: OpenPose JSON folder not found; extract the keypoints archive there "
                            "or fix the manifest row's pose.path")
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise HVLInputError(f"{folder}: OpenPose JSON records no frame rate and none was given (got {fps!r}); "
                            "set the manifest row's pose.fps to the video's")
    files = _frame_files(folder)
    n = max(files) + 1
    layout = OPENPOSE_137
    sizes = [len(points) for _, points in layout.components]
    points = np.full((n, layout.num_points, 2), np.nan, np.float32)
    conf = np.zeros((n, layout.num_points), np.float32)
    for i, path in sorted(files.items()):
        try:
            frame = json.loads(path.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise HVLInputError(f"{path}: frame {i}: not valid JSON ({e}); re-extract the keypoints archive or "
                                "delete the file (the frame then counts as missing)") from None
        people = frame.get("people") if isinstance(frame, dict) else None
        if not isinstance(people, list):
            raise HVLInputError(f"{path}: frame {i}: field 'people': expected a list of people (OpenPose >= 1.2 "
                                "JSON); re-extract the keypoints archive or delete the file")
        if not people:
            continue                                    # OpenPose found nobody in this frame
        person = people[0]
        if not isinstance(person, dict):
            raise HVLInputError(f"{path}: frame {i}: field 'people[0]': expected an object of keypoint lists")
        k = 0
        for field, n_points in zip(OPENPOSE_FIELDS, sizes):
            if field not in person:
                raise HVLInputError(f"{path}: frame {i}: field 'people[0].{field}' is missing; hvl reads OpenPose "
                                    ">= 1.2 JSON with body, face and hand keypoints")
            arr = _numbers(path, i, f"people[0].{field}", person[field], n_points)
            if arr is not None:
                found = arr[:, 2] > 0
                points[i, k:k + n_points][found] = arr[found, :2]
                conf[i, k:k + n_points] = arr[:, 2]
            k += n_points
    missing = tuple(sorted(set(range(n)) - set(files)))
    return PoseSequence(points, conf, float(fps), layout, source=str(folder), missing_frames=missing, size=size)


def _openpose_triplets(xy: np.ndarray, c: np.ndarray) -> list[float]:
    """Flat x, y, c as OpenPose writes them: pixels to 3 decimals, confidence to 6, zeros for a missed point."""
    found = c > 0
    out = np.zeros((len(c), 3), np.float64)
    out[found, :2] = np.round(xy[found].astype(np.float64), 3)
    out[:, 2] = np.round(c.astype(np.float64), 6)
    return out.ravel().tolist()


def write_openpose_folder(folder: str | Path, name: str, seq: PoseSequence) -> Path:
    """``folder/<name>_<frame:012d>_keypoints.json`` as How2Sign ships them (OpenPose 1.3 JSON, one person).
    A frame with no confident point is ``"people": []``; a frame in ``missing_frames`` gets no file. The folder
    is written whole or not at all."""
    if seq.layout != OPENPOSE_137:
        raise ValueError(f"OpenPose JSON holds the OpenPose 137 layout, not {seq.layout.name}")
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    slices = list(seq.layout.component_slices().values())
    missing = set(seq.missing_frames)
    with atomic_dir(folder) as tmp:
        for i in range(len(seq)):
            if i in missing:
                continue
            people = []
            if (seq.confidence[i] > 0).any():
                person: dict[str, object] = {"person_id": [-1]}
                for field, s in zip(OPENPOSE_FIELDS, slices):
                    person[field] = _openpose_triplets(seq.points[i, s], seq.confidence[i, s])
                person |= {f.replace("_2d", "_3d"): [] for f in OPENPOSE_FIELDS}
                people.append(person)
            # a file of its own in a folder made for this write: no other process can have planted a link here
            with open(tmp / f"{name}_{i:012d}{KEYPOINTS_SUFFIX}", "x", encoding="utf-8") as f:
                f.write(json.dumps({"version": 1.3, "people": people}, separators=(",", ":")))
    return folder


# ================================================================= .pose files (pose-format)
def _pose_format():
    require("pose_format", extra="sign", needed_by="reading and writing .pose files")
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions
    from pose_format.utils.reader import BufferReader

    return Pose, NumPyPoseBody, PoseHeader, PoseHeaderComponent, PoseHeaderDimensions, BufferReader


def _check_body(path: Path, data: bytes, header, offset: int) -> None:
    """A version-0.2 body must hold every frame the file announces: name the frame where it is cut off."""
    if round(header.version, 3) != 0.2:
        return
    if len(data) < offset + 10:
        raise HVLInputError(f"{path}: field 'body': the file ends before the frame count; the file is cut off — "
                            "write it again")
    fps, frames, people = struct.unpack_from("<fIH", data, offset)
    if not (math.isfinite(fps) and fps > 0):
        raise HVLInputError(f"{path}: field 'fps': {fps} is not a frame rate; write the file again")
    points = sum(len(c.points) for c in header.components)
    dims = header.num_dims()
    per_frame, per_conf = people * points * dims * 4, people * points * 4
    left = len(data) - offset - 10
    if left < frames * per_frame:
        raise HVLInputError(f"{path}: frame {left // per_frame if per_frame else 0}: field 'data': the file ends "
                            f"inside the points of frame {left // per_frame if per_frame else 0} of {frames}; the "
                            "file is cut off — write it again")
    left -= frames * per_frame
    if left < frames * per_conf:
        raise HVLInputError(f"{path}: frame {left // per_conf}: field 'confidence': the file ends inside the "
                            f"confidences of frame {left // per_conf} of {frames}; the file is cut off — write it "
                            "again")


def read_pose_file(path: str | Path) -> PoseSequence:
    """A ``.pose`` file (OpenPose 137 or MediaPipe Holistic components), first person, x and y."""
    Pose, _, PoseHeader, _, _, BufferReader = _pose_format()
    path = Path(path)
    if not path.is_file():
        raise HVLInputError(f"{path}: .pose file not found; fix the manifest row's pose.path or write the poses there")
    data = path.read_bytes()
    try:
        reader = BufferReader(data)
        header = PoseHeader.read(reader)
        offset = reader.read_offset
    except (struct.error, UnicodeDecodeError, ValueError, IndexError, TypeError, MemoryError) as e:
        raise HVLInputError(f"{path}: field 'header': not a .pose file ({type(e).__name__}: {e}); write it with "
                            "pose-format") from None
    layout = layout_from_components([(c.name, c.points) for c in header.components], str(path))
    _check_body(path, data, header, offset)
    try:
        pose = Pose.read(data)
    except (struct.error, ValueError, TypeError, NotImplementedError) as e:
        raise HVLInputError(f"{path}: field 'body': unreadable ({type(e).__name__}: {e}); write the file "
                            "again") from None
    body = pose.body
    fps = float(body.fps)
    if not (math.isfinite(fps) and fps > 0):
        raise HVLInputError(f"{path}: field 'fps': {fps} is not a frame rate; write the file again")
    raw = np.asarray(np.ma.getdata(body.data), np.float32)
    raw_conf = np.asarray(np.ma.getdata(body.confidence), np.float32)
    keep = np.concatenate([np.arange(s.start, s.stop) for s in _header_slices(header, layout)])
    t = raw.shape[0]
    if raw.shape[1] == 0:                                      # nobody in any frame
        xy = np.full((t, layout.num_points, 2), np.nan, np.float32)
        conf = np.zeros((t, layout.num_points), np.float32)
    else:
        xy, conf = raw[:, 0][:, keep, :2].copy(), raw_conf[:, 0][:, keep].copy()
    bad_conf = ~np.isfinite(conf) | (conf < 0)
    found = (conf > 0) & ~bad_conf
    bad = bad_conf | (found & ~np.isfinite(xy).all(axis=-1))
    if bad.any():
        f, k = (int(v) for v in np.argwhere(bad)[0])
        raise HVLInputError(f"{path}: frame {f}: field '{layout.names[k]}': point {xy[f, k].tolist()} with "
                            f"confidence {conf[f, k]} (coordinates must be finite, confidence >= 0); write the "
                            "file again")
    xy[~found] = np.nan
    conf[~found] = 0.0
    dims = header.dimensions
    size = (int(dims.width), int(dims.height)) if dims.width and dims.height else None
    return PoseSequence(xy, conf, fps, layout, source=str(path), size=size)


def _header_slices(header, layout: PoseLayout) -> list[slice]:
    """Where each component the layout keeps sits among the file's points."""
    out, k, kept = [], 0, {c for c, _ in layout.components}
    for c in header.components:
        if c.name in kept:
            out.append(slice(k, k + len(c.points)))
        k += len(c.points)
    return out


def write_pose_file(path: str | Path, seq: PoseSequence) -> Path:
    """``seq`` as a ``.pose`` file written by pose-format (one person, x, y, confidence; OpenPose 137 with
    pose-format's own component definitions, limbs and colours included). Atomic."""
    Pose, NumPyPoseBody, PoseHeader, PoseHeaderComponent, PoseHeaderDimensions, _ = _pose_format()
    if seq.layout == OPENPOSE_137:
        import copy

        from pose_format.utils.openpose import OpenPose_Components

        components = copy.deepcopy(OpenPose_Components)
    else:
        components = [PoseHeaderComponent(name=c, points=list(points), limbs=[], colors=[(255, 0, 0)],
                                          point_format="XYC") for c, points in seq.layout.components]
    width, height = seq.size or (0, 0)
    header = PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(width=width, height=height), components=components)
    found = seq.confidence > 0
    data = np.where(found[..., None], seq.points, 0.0).astype(np.float32)[:, None]
    body = NumPyPoseBody(fps=seq.fps, data=data, confidence=seq.confidence.astype(np.float32)[:, None])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as f:
        Pose(header, body).write(f)
    return path


# ================================================================= where a video's poses are
def find_pose_beside(video: str | Path) -> Path | None:
    """The ``.pose`` file of the same name beside a video file or a frame folder (``clip.mp4`` → ``clip.pose``,
    ``frames/<name>/`` → ``frames/<name>.pose``), if there is one."""
    video = Path(video)
    candidate = video.parent / f"{video.name}.pose" if video.is_dir() else video.with_suffix(".pose")
    return candidate if candidate.is_file() else None


def load_pose(path: str | Path, fps: float | None = None, start: float = 0.0) -> PoseSequence:
    """A ``.pose`` file or an OpenPose JSON folder (which needs ``fps``, the video's), frame 0 at ``start``."""
    path = Path(path)
    if path.is_dir():
        seq = read_openpose_folder(path, fps if fps is not None else float("nan"))
    elif path.suffix.lower() == ".pose":
        seq = read_pose_file(path)
    else:
        raise HVLInputError(f"{path}: a pose source is a .pose file or a folder of OpenPose *_keypoints.json "
                            "files; fix the manifest row's pose.path")
    return replace(seq, start=float(start)) if start else seq


def load_record_pose(rec: VideoRecord, manifest: Manifest | None = None, video_fps: float | None = None,
                     allow_outside: bool = False) -> PoseSequence | None:
    """The poses a record names (None if it names none). A relative ``pose.path`` is resolved against the
    manifest's folder and must stay inside it, as video paths do. An OpenPose folder without ``pose.fps`` runs
    at the video's rate: ``video_fps``, or the video is opened to read it."""
    if rec.pose is None:
        return None
    p = Path(rec.pose.path)
    if not p.is_absolute():
        if manifest is None:
            raise HVLInputError(f"video '{rec.video_id}': pose.path '{rec.pose.path}' is relative and no manifest "
                                "folder was given to resolve it")
        full = (manifest.root / p).resolve()
        if not allow_outside and not full.is_relative_to(manifest.root.resolve()):
            raise HVLInputError(f"{manifest.file}: video '{rec.video_id}' pose.path '{rec.pose.path}' points "
                                f"outside the dataset root {manifest.root}; use an absolute path or move the poses "
                                "under the root")
        p = full
    fps = rec.pose.fps or video_fps
    if fps is None and p.is_dir():
        from hvl.core.data.video import open_source

        video = Path(rec.path) if manifest is None else manifest.resolve(rec, allow_outside=True)
        fps = float(open_source(video).fps)
    return load_pose(p, fps=fps, start=rec.pose.start)
