"""Keypoint layouts of the pose streams sign corpora ship, and the named points hvl reads from each.

Two layouts, named as ``pose-format`` names their components and points (so that a How2Sign OpenPose JSON
folder and the same poses converted to ``.pose`` by ``pose_format.utils.openpose`` read as one layout):

* **OpenPose 137** (How2Sign): ``pose_keypoints_2d`` (BODY_25), ``face_keypoints_2d`` (70),
  ``hand_left_keypoints_2d`` and ``hand_right_keypoints_2d`` (21 each); x, y, confidence.
* **MediaPipe Holistic** (the sign-language community's ``.pose`` files): ``POSE_LANDMARKS`` (33),
  ``FACE_LANDMARKS`` (468, or 478 with irises), ``LEFT_HAND_LANDMARKS``, ``RIGHT_HAND_LANDMARKS`` (21 each) and,
  in some files, ``POSE_WORLD_LANDMARKS`` (metres, not image pixels: dropped on reading); x, y, z, confidence.

Left and right are the signer's own in both. Both hand models order their 21 points alike (wrist, then thumb,
index, middle, ring and little finger, each from the palm to the tip), so hand point ``i`` means the same
joint in either layout. Holistic has no neck point: :data:`BODY_LANDMARKS`' ``neck`` is then the midpoint of
the shoulders, which is also how OpenPose's neck is defined in its training labels.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from hvl.core.errors import HVLInputError

# the upper body SEDS / Uni-Sign keep beside the hands (legs and feet are rarely in a signing frame)
BODY_LANDMARKS = ("nose", "neck", "right_shoulder", "left_shoulder", "right_elbow", "left_elbow", "right_wrist",
                  "left_wrist")
HAND_JOINTS = ("wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip", "index_mcp", "index_pip", "index_dip",
               "index_tip", "middle_mcp", "middle_pip", "middle_dip", "middle_tip", "ring_mcp", "ring_pip",
               "ring_dip", "ring_tip", "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip")

# ---------------------------------------------------------------- OpenPose 137 (BODY_25 + face 70 + 2 hands)
OPENPOSE_BODY = ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip",
                 "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe",
                 "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel")
# pose-format's names for the 70 face points, in OpenPose's order (jaw 0-16, brows, nose, eyes, lips, pupils)
OPENPOSE_FACE = tuple([f"FB_{i}" for i in range(17)] + [f"FEB_{i}" for i in range(17, 27)]
                      + [f"FN_{i}" for i in range(27, 36)] + [f"FE_{i}" for i in range(36, 48)]
                      + [f"FLO_{i}" for i in range(48, 60)] + [f"FLI_{i}" for i in range(60, 68)] + ["FP_68", "FP_69"])
OPENPOSE_HAND = ("BASE", "T_STT", "T_BCMC", "T_MCP", "T_IP", "I_CMC", "I_MCP", "I_PIP", "I_DIP", "M_CMC", "M_MCP",
                 "M_PIP", "M_DIP", "R_CMC", "R_MCP", "R_PIP", "R_DIP", "P_CMC", "P_MCP", "P_PIP", "P_DIP")
OPENPOSE_FIELDS = ("pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d")
OPENPOSE_BODY_MAP = {"nose": "Nose", "neck": "Neck", "right_shoulder": "RShoulder", "left_shoulder": "LShoulder",
                     "right_elbow": "RElbow", "left_elbow": "LElbow", "right_wrist": "RWrist", "left_wrist": "LWrist"}

# ---------------------------------------------------------------- MediaPipe Holistic
HOLISTIC_BODY = ("NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE",
                 "RIGHT_EYE_OUTER", "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER",
                 "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY", "RIGHT_PINKY",
                 "LEFT_INDEX", "RIGHT_INDEX", "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP", "RIGHT_HIP", "LEFT_KNEE",
                 "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE", "LEFT_HEEL", "RIGHT_HEEL", "LEFT_FOOT_INDEX",
                 "RIGHT_FOOT_INDEX")
HOLISTIC_HAND = ("WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP", "INDEX_FINGER_MCP", "INDEX_FINGER_PIP",
                 "INDEX_FINGER_DIP", "INDEX_FINGER_TIP", "MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP",
                 "MIDDLE_FINGER_TIP", "RING_FINGER_MCP", "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP",
                 "PINKY_MCP", "PINKY_PIP", "PINKY_DIP", "PINKY_TIP")
HOLISTIC_BODY_MAP = {"nose": "NOSE", "right_shoulder": "RIGHT_SHOULDER", "left_shoulder": "LEFT_SHOULDER",
                     "right_elbow": "RIGHT_ELBOW", "left_elbow": "LEFT_ELBOW", "right_wrist": "RIGHT_WRIST",
                     "left_wrist": "LEFT_WRIST"}
# world landmarks are metres around the hips, not image pixels: mixing them with the others would be wrong
HOLISTIC_WORLD = "POSE_WORLD_LANDMARKS"

_LAYOUTS = {
    # name: (body component, its landmark map, left hand component, right hand component, hand point names)
    "openpose_137": ("pose_keypoints_2d", OPENPOSE_BODY_MAP, "hand_left_keypoints_2d", "hand_right_keypoints_2d",
                     OPENPOSE_HAND),
    "holistic": ("POSE_LANDMARKS", HOLISTIC_BODY_MAP, "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS", HOLISTIC_HAND),
}


@dataclass(frozen=True, eq=False)
class PoseLayout:
    """Which point is which: ``components`` in file order, and where the named points sit among all of them."""

    name: str
    components: tuple[tuple[str, tuple[str, ...]], ...]
    body: Mapping[str, int]                   # BODY_LANDMARKS name -> point index (holistic has no neck)
    hands: tuple[tuple[int, ...], tuple[int, ...]]   # left, right: 21 point indices in HAND_JOINTS order

    @property
    def names(self) -> tuple[str, ...]:
        """``component.point`` for each of the K points."""
        return tuple(f"{c}.{p}" for c, points in self.components for p in points)

    @property
    def num_points(self) -> int:
        return sum(len(points) for _, points in self.components)

    def component_slices(self) -> dict[str, slice]:
        out, k = {}, 0
        for c, points in self.components:
            out[c] = slice(k, k + len(points))
            k += len(points)
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PoseLayout) and (self.name, self.components) == (other.name, other.components)

    __hash__ = None  # type: ignore[assignment]


def layout_from_components(components: Sequence[tuple[str, Sequence[str]]], source: str) -> PoseLayout:
    """The layout of a file's components (``.pose`` header order kept); an error names what is missing."""
    names = [c for c, _ in components]
    kind = "openpose_137" if "pose_keypoints_2d" in names else "holistic" if "POSE_LANDMARKS" in names else None
    if kind is None:
        raise HVLInputError(f"{source}: pose components {names} are neither OpenPose 137 (pose_keypoints_2d, "
                            "face_keypoints_2d, hand_*_keypoints_2d) nor MediaPipe Holistic (POSE_LANDMARKS, "
                            "FACE_LANDMARKS, *_HAND_LANDMARKS); convert the poses to one of these layouts")
    body_c, body_map, left_c, right_c, hand_names = _LAYOUTS[kind]
    kept = tuple((c, tuple(points)) for c, points in components if c != HOLISTIC_WORLD)
    index, k = {}, 0
    for c, points in kept:
        for p in points:
            index.setdefault((c, p), k)
            k += 1

    def find(c: str, p: str) -> int:
        if (c, p) not in index:
            raise HVLInputError(f"{source}: the {kind} layout needs point '{p}' of component '{c}', which the file "
                                "lacks; write the poses with every body and hand point")
        return index[(c, p)]

    body = {name: find(body_c, p) for name, p in body_map.items()}
    hands = (tuple(find(left_c, p) for p in hand_names), tuple(find(right_c, p) for p in hand_names))
    return PoseLayout(kind, kept, MappingProxyType(body), hands)


OPENPOSE_137 = layout_from_components(list(zip(OPENPOSE_FIELDS, (OPENPOSE_BODY, OPENPOSE_FACE, OPENPOSE_HAND,
                                                                  OPENPOSE_HAND))), "OpenPose 137")


def holistic_components(face_points: int = 468, world: bool = False) -> list[tuple[str, tuple[str, ...]]]:
    """MediaPipe Holistic's components as pose-format names them (for writing a Holistic ``.pose`` without
    installing mediapipe, which pose-format's own helper imports)."""
    comps = [("POSE_LANDMARKS", HOLISTIC_BODY), ("FACE_LANDMARKS", tuple(str(i) for i in range(face_points))),
             ("LEFT_HAND_LANDMARKS", HOLISTIC_HAND), ("RIGHT_HAND_LANDMARKS", HOLISTIC_HAND)]
    return comps + ([(HOLISTIC_WORLD, HOLISTIC_BODY)] if world else [])
