"""Sign pose streams: How2Sign's OpenPose JSON and pose-format's .pose (OpenPose 137 and MediaPipe Holistic) read
into one representation, matched to video time, normalised, and the demo signer's skeleton written in both formats.

Fixtures are in the released formats: OpenPose JSON written field by field as OpenPose 1.3 writes it, .pose files
written by pose-format itself."""
import copy
import io
import json
import math
import struct

import numpy as np
import pytest
from hvl.core.data.schema import load_manifest
from hvl.core.data.video import write_video
from hvl.core.errors import HVLInputError
from hvl.domains.sign.how2sign import read_how2sign
from hvl.domains.sign.phoenix import read_phoenix
from hvl.domains.sign.pose_formats import (
    PoseSequence,
    find_pose_beside,
    load_pose,
    load_record_pose,
    read_openpose_folder,
    read_pose_file,
    write_openpose_folder,
    write_pose_file,
)
from hvl.domains.sign.pose_layouts import (
    HAND_JOINTS,
    HOLISTIC_BODY,
    OPENPOSE_137,
    OPENPOSE_BODY,
    OPENPOSE_FACE,
    OPENPOSE_HAND,
    holistic_components,
)
from hvl.domains.sign.pose_normalise import normalise
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions
from pose_format.utils.openpose import OpenPose_Components, load_openpose_directory
from test_sign_readers import H2S_ROWS, PHX_ROWS, write_how2sign, write_phoenix

SENTENCE = "-fZc293MpJk_0-1-rgb_front"      # a How2Sign SENTENCE_NAME (its digits are not the frame number)
NECK, RSH, LSH, RWR, LWR = (OPENPOSE_BODY.index(n) for n in ("Neck", "RShoulder", "LShoulder", "RWrist", "LWrist"))
LEFT0, RIGHT0 = 25 + 70, 25 + 70 + 21


# ====================================================================== OpenPose JSON, written as OpenPose does
def triplets(points: dict[int, tuple[float, float, float]], n: int) -> list[float]:
    """A flat x, y, c list of n points: the given ones, 0, 0, 0 (OpenPose's 'not found') for the rest."""
    out = [0.0] * (3 * n)
    for k, (x, y, c) in points.items():
        out[3 * k:3 * k + 3] = [x, y, c]
    return out


def person(body=None, face=None, left=None, right=None, face_off=False) -> dict:
    return {"person_id": [-1], "pose_keypoints_2d": triplets(body or {}, 25),
            "face_keypoints_2d": [] if face_off else triplets(face or {}, 70),
            "hand_left_keypoints_2d": triplets(left or {}, 21), "hand_right_keypoints_2d": triplets(right or {}, 21),
            "pose_keypoints_3d": [], "face_keypoints_3d": [], "hand_left_keypoints_3d": [], "hand_right_keypoints_3d": []}


def write_frame(folder, i: int, people: list, name: str = SENTENCE) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}_{i:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))


BODY0 = {NECK: (640.5, 300.25, 0.91), RSH: (560.0, 310.0, 0.88), LSH: (720.0, 312.0, 0.87), RWR: (500.0, 520.0, 0.7),
         LWR: (0.0, 0.0, 0.0)}                                          # left wrist not found: zeros
LEFT_HAND0 = {0: (780.0, 500.0, 0.6), 8: (800.0, 430.0, 0.05)}          # wrist and a low-confidence index tip


def how2sign_folder(root):
    """Frames 0-4 of one sentence: 0 has two people (the signer first), 1 has no face (face detector off),
    2 has nobody ("people": []), 3 has no file, 4 is an ordinary frame."""
    folder = root / "openpose_output" / "json" / SENTENCE
    write_frame(folder, 0, [person(BODY0, {8: (640.0, 200.0, 0.8)}, LEFT_HAND0),
                            person({NECK: (100.0, 100.0, 0.9)})])
    write_frame(folder, 1, [person({NECK: (641.0, 301.0, 0.9)}, face_off=True, right={0: (510.0, 530.0, 0.5)})])
    write_frame(folder, 2, [])
    write_frame(folder, 4, [person({NECK: (642.0, 302.0, 0.9), RSH: (561.0, 311.0, 0.8)})])
    return folder


def test_openpose_folder_reads_how2sign_frames(tmp_path):
    folder = how2sign_folder(tmp_path)
    (folder / "README.txt").write_text("not a frame")
    seq = read_openpose_folder(folder, fps=24.0)
    assert seq.points.shape == (5, 137, 2) and seq.confidence.shape == (5, 137) and seq.fps == 24.0
    assert seq.layout == OPENPOSE_137 and seq.missing_frames == (3,)
    # the first person of frame 0, as written
    assert seq.points[0, NECK].tolist() == [640.5, 300.25] and seq.confidence[0, NECK] == pytest.approx(0.91)
    assert seq.points[0, 25 + 8].tolist() == [640.0, 200.0]                      # face point 8 (the chin)
    assert seq.points[0, LEFT0].tolist() == [780.0, 500.0]
    assert seq.confidence[0, LEFT0 + 8] == pytest.approx(0.05)                  # low confidence is kept, not masked
    # OpenPose's 0, 0, 0 is "not found": masked, never a point at the image corner
    assert np.isnan(seq.points[0, LWR]).all() and seq.confidence[0, LWR] == 0
    assert np.isnan(seq.points[0, 25 + 9]).all()
    assert (seq.confidence[1, 25:95] == 0).all() and seq.points[1, RIGHT0].tolist() == [510.0, 530.0]
    for empty in (2, 3):                                                         # nobody / no file
        assert (seq.confidence[empty] == 0).all() and np.isnan(seq.points[empty]).all()
    assert seq.points[4, NECK].tolist() == [642.0, 302.0]
    # the named points: body landmarks and both hands in HAND_JOINTS order
    xy, c = seq.landmark("right_wrist")
    assert xy[0].tolist() == [500.0, 520.0] and c[0] == pytest.approx(0.7)
    hands_xy, _ = seq.hands()
    assert hands_xy.shape == (5, 2, 21, 2) and hands_xy[0, 0, 0].tolist() == [780.0, 500.0]
    assert hands_xy[1, 1, 0].tolist() == [510.0, 530.0] and len(HAND_JOINTS) == 21


@pytest.mark.parametrize("name, frame", [
    (f"{SENTENCE}_000000000123_keypoints.json", 123),       # How2Sign: the digits before _keypoints.json
    ("images0007_keypoints.json", 7),                       # OpenPose over a folder of PNG frames (PHOENIX)
    ("0BZ7Qhtqhrs_3-5-rgb_front_000000000000_keypoints.json", 0),
])
def test_openpose_frame_number_is_the_file_names_last_digits(tmp_path, name, frame):
    (tmp_path / name).write_text(json.dumps({"version": 1.3, "people": [person({NECK: (1.0, 2.0, 0.5)})]}))
    seq = read_openpose_folder(tmp_path, fps=25.0)
    assert len(seq) == frame + 1 and seq.points[frame, NECK].tolist() == [1.0, 2.0]
    assert seq.missing_frames == tuple(range(frame))


def good_frame() -> dict:
    return {"version": 1.3, "people": [person({NECK: (1.0, 2.0, 0.5)})]}


def _set(path, value):
    def edit(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return json.dumps(doc)
    return edit


@pytest.mark.parametrize("make, match", [
    (lambda d: json.dumps(d)[:-7], r"frame 2: not valid JSON"),                                  # cut off
    (_set(["people"], {"0": {}}), r"frame 2: field 'people': expected a list"),
    (_set(["people", 0, "hand_left_keypoints_2d"], [1.0] * 62),
     r"frame 2: field 'people\[0\].hand_left_keypoints_2d': 62 numbers; expected 63"),
    (_set(["people", 0, "pose_keypoints_2d"], ["1.0"] * 75),
     r"frame 2: field 'people\[0\].pose_keypoints_2d': expected numbers only"),
    (_set(["people", 0, "pose_keypoints_2d"], [float("nan")] + [0.5] * 74),   # Python's json writes NaN
     r"frame 2: field 'people\[0\].pose_keypoints_2d': point 0 is \[nan"),
    (_set(["people", 0, "face_keypoints_2d"], [0.0, 0.0, -1.0] * 70),
     r"frame 2: field 'people\[0\].face_keypoints_2d': point 0 .*confidence >= 0"),
    (lambda d: json.dumps({"version": 1.3, "people": [{"pose_keypoints": [0.0] * 75}]}),
     r"frame 2: field 'people\[0\].pose_keypoints_2d' is missing"),
    (lambda d: json.dumps({"version": 1.3, "people": ["signer"]}), r"frame 2: field 'people\[0\]'"),
])
def test_broken_openpose_file_is_one_error_naming_file_frame_and_field(tmp_path, make, match):
    folder = tmp_path / SENTENCE
    for i in (0, 1, 3):
        write_frame(folder, i, good_frame()["people"])
    bad = folder / f"{SENTENCE}_000000000002_keypoints.json"
    bad.write_text(make(good_frame()))
    with pytest.raises(HVLInputError, match=match) as e:
        read_openpose_folder(folder, fps=24.0)
    assert str(bad) in str(e.value)


def test_openpose_folder_errors(tmp_path):
    folder = how2sign_folder(tmp_path)
    with pytest.raises(HVLInputError, match="records no frame rate"):
        read_openpose_folder(folder, fps=float("nan"))
    with pytest.raises(HVLInputError, match="not found"):
        read_openpose_folder(tmp_path / "nowhere", fps=24.0)
    (folder / "a_1_keypoints.json").write_text(json.dumps(good_frame()))           # frame 1 twice
    with pytest.raises(HVLInputError, match="frame 1 is also"):
        read_openpose_folder(folder, fps=24.0)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x_keypoints.json").write_text("{}")
    with pytest.raises(HVLInputError, match="no frame number"):
        read_openpose_folder(empty, fps=24.0)
    (empty / "x_keypoints.json").unlink()
    with pytest.raises(HVLInputError, match=r"no \*_keypoints.json files"):
        read_openpose_folder(empty, fps=24.0)


# ====================================================================== .pose files written by pose-format
def test_pose_file_from_pose_formats_openpose_converter_reads_as_the_json(tmp_path):
    """pose-format's own How2Sign path (load_openpose_directory, then write) gives the arrays the JSON reader gives."""
    folder = how2sign_folder(tmp_path)
    pose = load_openpose_directory(str(folder), fps=24, width=1280, height=720)
    path = tmp_path / f"{SENTENCE}.pose"
    with open(path, "wb") as f:
        pose.write(f)
    a, b = read_openpose_folder(folder, fps=24.0), read_pose_file(path)
    assert b.layout == a.layout == OPENPOSE_137 and b.fps == 24.0 and b.size == (1280, 720)
    # frame 1's empty face list (face detector off) shifts the hands in pose-format 0.15's converter (it does
    # not skip an empty component), so the comparison leaves that frame out; the JSON reader keeps it in place
    same = [0, 2, 3, 4]
    np.testing.assert_array_equal(a.points[same], b.points[same])      # NaN where either says "not found"
    np.testing.assert_array_equal(a.confidence[same], b.confidence[same])
    # our point names are pose-format's, component by component
    assert [list(c.points) for c in OpenPose_Components] == [list(OPENPOSE_BODY), list(OPENPOSE_FACE),
                                                             list(OPENPOSE_HAND), list(OPENPOSE_HAND)]


def holistic_pose(t=6, face_points=468, world=True, people=1, seed=0):
    """A MediaPipe Holistic .pose as pose-format writes one: XYZC, pixels, hands 1 or 0 (found or not)."""
    rng = np.random.default_rng(seed)
    comps = [PoseHeaderComponent(name=c, points=list(points), limbs=[], colors=[(255, 0, 0)], point_format="XYZC")
             for c, points in holistic_components(face_points, world)]
    header = PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(width=640, height=480), components=comps)
    k = header.total_points()
    data = rng.uniform(0, 400, (t, people, k, 3)).astype(np.float32)
    conf = rng.uniform(0.3, 1.0, (t, people, k)).astype(np.float32)
    left = slice(33 + face_points, 33 + face_points + 21)
    conf[1, :, left] = 0                       # the left hand not found in frame 1
    conf[2, :, 11] = 0                         # LEFT_SHOULDER not visible in frame 2
    data[conf == 0] = 0
    return Pose(header, NumPyPoseBody(fps=30.0, data=data, confidence=conf)), data, conf


@pytest.mark.parametrize("face_points, world", [(468, True), (478, False)])
def test_holistic_pose_file_reads_back_its_arrays(tmp_path, face_points, world):
    pose, data, conf = holistic_pose(face_points=face_points, world=world)
    path = tmp_path / "clip.pose"
    with open(path, "wb") as f:
        pose.write(f)
    seq = read_pose_file(path)
    k = 33 + face_points + 42                  # world landmarks (metres, not pixels) are dropped
    assert seq.layout.name == "holistic" and seq.points.shape == (6, k, 2) and seq.fps == 30.0
    assert seq.size == (640, 480)
    expected = np.where(conf[:, 0, :k, None] > 0, data[:, 0, :k, :2], np.nan)
    np.testing.assert_array_equal(seq.points, expected)
    np.testing.assert_array_equal(seq.confidence, conf[:, 0, :k])
    # named points by name: the shoulders are POSE_LANDMARKS 12 (right) and 11 (left); no neck: their midpoint
    rs, ls = HOLISTIC_BODY.index("RIGHT_SHOULDER"), HOLISTIC_BODY.index("LEFT_SHOULDER")
    xy, c = seq.landmark("neck")
    np.testing.assert_allclose(xy[0], (data[0, 0, rs, :2] + data[0, 0, ls, :2]) / 2, rtol=1e-6)
    assert c[0] == pytest.approx(min(conf[0, 0, rs], conf[0, 0, ls])) and c[2] == 0
    hands_xy, hands_c = seq.hands()
    np.testing.assert_array_equal(hands_xy[0, 0], data[0, 0, 33 + face_points:33 + face_points + 21, :2])
    assert (hands_c[1, 0] == 0).all() and (hands_c[1, 1] > 0).all()


def test_pose_file_with_nobody_reads_as_all_missing(tmp_path):
    pose, _, _ = holistic_pose(people=0)
    path = tmp_path / "nobody.pose"
    with open(path, "wb") as f:
        pose.write(f)
    seq = read_pose_file(path)
    assert len(seq) == 6 and (seq.confidence == 0).all() and np.isnan(seq.points).all()


def openpose_pose_bytes(t=4) -> bytes:
    header = PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(width=64, height=64),
                        components=copy.deepcopy(OpenPose_Components))
    data = np.full((t, 1, 137, 2), 10.0, np.float32)
    conf = np.full((t, 1, 137), 0.5, np.float32)
    buf = io.BytesIO()
    Pose(header, NumPyPoseBody(fps=25.0, data=data, confidence=conf)).write(buf)
    return buf.getvalue()


def test_broken_pose_files_name_file_frame_and_field(tmp_path):
    raw = openpose_pose_bytes(t=4)
    body_start = len(raw) - 4 * 137 * 3 * 4 - 10
    per_frame = 137 * 2 * 4
    cases = {
        "cut_points.pose": (raw[:body_start + 10 + 2 * per_frame + 100], r"frame 2: field 'data'"),
        "cut_conf.pose": (raw[:-8], r"frame 3: field 'confidence'"),
        "garbage.pose": (b"\x00\x01garbage", r"field 'header': not a .pose file"),
        "zero_fps.pose": (raw[:body_start] + struct.pack("<f", 0.0) + raw[body_start + 4:], r"field 'fps'"),
    }
    nan = bytearray(raw)
    struct.pack_into("<f", nan, body_start + 10 + 3 * per_frame + 4 * 2 * 4, float("nan"))   # frame 3, point 4 x
    cases["nan.pose"] = (bytes(nan), r"frame 3: field 'pose_keypoints_2d.RWrist'")
    for name, (data, match) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(HVLInputError, match=match) as e:
            read_pose_file(tmp_path / name)
        assert name in str(e.value)
    other = PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(1, 1), components=[
        PoseHeaderComponent(name="BODY_135", points=["a", "b"], limbs=[], colors=[(0, 0, 0)], point_format="XYC")])
    with open(tmp_path / "other.pose", "wb") as f:
        Pose(other, NumPyPoseBody(fps=25.0, data=np.zeros((1, 1, 2, 2), np.float32),
                                  confidence=np.ones((1, 1, 2), np.float32))).write(f)
    with pytest.raises(HVLInputError, match=r"\['BODY_135'\] are neither OpenPose 137 .* nor MediaPipe Holistic"):
        read_pose_file(tmp_path / "other.pose")


def test_writers_round_trip_through_the_readers(tmp_path):
    seq = read_openpose_folder(how2sign_folder(tmp_path / "src"), fps=24.0)
    seq = PoseSequence(seq.points, seq.confidence, 24.0, seq.layout, missing_frames=seq.missing_frames,
                       size=(1280, 720))
    out = write_openpose_folder(tmp_path / "json" / SENTENCE, SENTENCE, seq)
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{SENTENCE}_{i:012d}_keypoints.json" for i in (0, 1, 2, 4)]     # frame 3 stays missing
    assert json.loads((out / names[2]).read_text()) == {"version": 1.3, "people": []}  # nobody in frame 2
    back = read_openpose_folder(out, fps=24.0)
    np.testing.assert_array_equal(back.points, seq.points)
    np.testing.assert_array_equal(back.confidence, seq.confidence)
    back = read_pose_file(write_pose_file(tmp_path / "x.pose", seq))
    np.testing.assert_array_equal(back.points, seq.points)
    assert back.size == (1280, 720) and back.fps == 24.0


# ====================================================================== video time
def test_frames_match_video_time_at_the_pose_streams_own_fps(tmp_path):
    seq = read_openpose_folder(how2sign_folder(tmp_path), fps=24.0)             # 5 frames: [0, 5/24) s
    # a 10 fps video's frames at 0, 0.1, 0.2: pose frames floor(t * 24); at a frame boundary the new frame
    assert seq.frames_at([0.0, 0.1, 0.2, 1 / 24, 5 / 24 - 1e-4, 5 / 24, -0.01]).tolist() == [0, 2, 4, 1, 4, -1, -1]
    shifted = load_pose(tmp_path / "openpose_output" / "json" / SENTENCE, fps=24.0, start=2.0)  # full-video times
    assert shifted.frame_at(2.0) == 0 and shifted.frame_at(2.1) == 2 and shifted.frame_at(1.99) == -1
    at = shifted.at_times([1.5, 2.0, 2.1, 3.0])
    assert at.points.shape == (4, 137, 2) and at.points[1, NECK].tolist() == [640.5, 300.25]
    assert (at.confidence[[0, 3]] == 0).all() and np.isnan(at.points[[0, 3]]).all()
    assert (at.confidence[2] == 0).all()                                         # frame 2 had nobody


# ====================================================================== manifests and corpus layouts
def test_manifest_row_names_its_pose_source(tmp_path):
    how2sign_folder(tmp_path)
    write_video(tmp_path / "clip.mp4", np.zeros((10, 32, 32, 3), np.uint8), 10)
    rows = [{"video_id": "a", "path": "clip.mp4", "pose": {"path": f"openpose_output/json/{SENTENCE}", "fps": 24}},
            {"video_id": "b", "path": "clip.mp4", "pose": {"path": f"openpose_output/json/{SENTENCE}"}},
            {"video_id": "c", "path": "clip.mp4", "pose": {"path": "../elsewhere.pose"}},
            {"video_id": "d", "path": "clip.mp4"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    m = load_manifest(tmp_path / "m.jsonl")
    a, b = (load_record_pose(r, m) for r in m.videos[:2])
    assert a.fps == 24.0 and b.fps == 10.0                    # no pose.fps: the video's own rate (probed)
    assert a.points[0, NECK].tolist() == [640.5, 300.25]
    with pytest.raises(HVLInputError, match="pose.path '../elsewhere.pose' points outside the dataset root"):
        load_record_pose(m.videos[2], m)
    assert load_record_pose(m.videos[3], m) is None
    for bad, field in ([{"path": "x", "fps": 0}, "pose.fps"], [{"path": "x", "start": -1}, "pose.start"],
                       [{"path": "x", "where": 1}, "pose.where"], [{"path": ""}, "pose.path"]):
        (tmp_path / "bad.jsonl").write_text(json.dumps({"video_id": "a", "path": "clip.mp4", "pose": bad}) + "\n")
        with pytest.raises(HVLInputError, match=rf"line 1: invalid entry\n  field '{field}'"):
            load_manifest(tmp_path / "bad.jsonl")
    with pytest.raises(HVLInputError, match="a pose source is a .pose file or a folder"):
        load_pose(tmp_path / "clip.mp4")


def test_how2sign_reader_finds_poses_in_the_corpus_layout(tmp_path):
    root = write_how2sign(tmp_path)
    clips = root / "test_rgb_front_clips"
    for row in H2S_ROWS[:2]:                                   # the keypoint archive, extracted beside raw_videos/
        write_frame(clips / "openpose_output" / "json" / row[3], 0, [person({NECK: (1.0, 2.0, 0.9)})], row[3])
    with pytest.warns(UserWarning, match=r"1 of 3 sentences have no poses .* 0BZ7Qhtqhrs_3-5-rgb_front"):
        recs = read_how2sign(root, split="test")
    assert recs[0][0].pose.path == str((clips / "openpose_output" / "json" / H2S_ROWS[0][3]).resolve())
    assert recs[0][0].pose.fps is None and recs[0][0].pose.start == 0.0 and recs[2][0].pose is None
    seq = load_record_pose(recs[0][0], video_fps=24.0)
    assert seq.points[0, NECK].tolist() == [1.0, 2.0]
    # a .pose beside a clip stands in where the JSON folder is missing; full videos start at START_REALIGNED
    (clips / "raw_videos" / f"{H2S_ROWS[2][3]}.pose").write_bytes(openpose_pose_bytes())
    recs = read_how2sign(root, split="test", mode="full")
    assert [r.pose.start for r, _ in recs] == [0.0, 2.0, 1.1]
    assert recs[2][0].pose.path.endswith(f"{H2S_ROWS[2][3]}.pose")
    assert load_record_pose(recs[1][0], video_fps=24.0).frame_at(2.0) == 0
    with pytest.raises(HVLInputError, match="option poses_dir: .* is not a folder"):
        read_how2sign(root, poses_dir="keypoints")


def test_how2sign_without_poses_reads_as_before(tmp_path, recwarn):
    recs = read_how2sign(write_how2sign(tmp_path), split="test")
    assert all(r.pose is None for r, _ in recs) and not recwarn.list


def test_phoenix_pose_file_beside_the_frame_folder(tmp_path):
    root = write_phoenix(tmp_path, frames=(3, 3))
    frames = root / "features" / "fullFrame-210x260px" / "test"
    name = PHX_ROWS[0].split("|")[0]
    (frames / f"{name}.pose").write_bytes(openpose_pose_bytes())
    (rec, folder), (rec2, _) = read_phoenix(root, split="test")
    assert rec.pose.path == str((frames / f"{name}.pose").resolve()) and rec2.pose is None
    assert find_pose_beside(folder) == frames / f"{name}.pose"
    assert load_record_pose(rec).fps == 25.0
    (tmp_path / "poses").mkdir()
    (tmp_path / "poses" / f"{PHX_ROWS[1].split('|')[0]}.pose").write_bytes(openpose_pose_bytes())
    (rec, _), (rec2, _) = read_phoenix(root, split="test", poses_dir="poses")
    assert rec.pose is None and rec2.pose.path.endswith(".pose")
    with pytest.raises(HVLInputError, match="option poses_dir"):
        read_phoenix(root, split="test", poses_dir="missing")


# ====================================================================== normalisation
def sequence(frames: list[dict[int, tuple[float, float, float]]]) -> PoseSequence:
    t = len(frames)
    points = np.full((t, 137, 2), np.nan, np.float32)
    conf = np.zeros((t, 137), np.float32)
    for f, pts in enumerate(frames):
        for k, (x, y, c) in pts.items():
            points[f, k], conf[f, k] = (x, y), c
    return PoseSequence(points, conf, 24.0, OPENPOSE_137)


def test_normalisation_by_hand():
    body = {NECK: (100.0, 50.0, 0.9), RSH: (80.0, 50.0, 0.9), LSH: (120.0, 50.0, 0.9)}
    frames = [
        body | {RWR: (70.0, 90.0, 0.9), LEFT0: (130.0, 90.0, 0.8), LEFT0 + 8: (134.0, 70.0, 0.8),
                LEFT0 + 4: (126.0, 88.0, 0.1)},                                  # thumb tip below min_confidence
        body | {LWR: (128.0, 92.0, 0.9), LEFT0 + 8: (136.0, 72.0, 0.7)},         # hand wrist missed: body's wrist
        {NECK: (300.0, 300.0, 0.9), RSH: (250.0, 300.0, 0.9), LSH: (350.0, 300.0, 0.9)},   # a wrong detection
        {RIGHT0 + 5: (90.0, 80.0, 0.9)},                                         # no body, no wrists
    ]
    n = normalise(sequence(frames))
    # the clip's median neck (100, 50) and shoulder width 40: the odd frame shifts and rescales nothing
    assert n.centre.tolist() == [100.0, 50.0] and n.scale == 40.0
    assert n.body[0, 1].tolist() == [0.0, 0.0] and n.body[0, 2].tolist() == [-0.5, 0.0]     # neck, right shoulder
    assert n.body[0, 6].tolist() == [-0.75, 1.0] and n.body[2, 2].tolist() == [3.75, 6.25]
    assert n.body_mask[0].tolist() == [False, True, True, True, False, False, True, False]
    assert not n.body_mask[0, 7] and n.body[0, 7].tolist() == [0.0, 0.0]                     # missed: 0 and masked
    # hands: relative to the hand's own wrist (frame 0) or the body's wrist (frame 1), in shoulder widths
    assert n.hands[0, 0, 8].tolist() == pytest.approx([0.1, -0.5]) and n.hands[0, 0, 0].tolist() == [0.0, 0.0]
    assert not n.hands_mask[0, 0, 4] and n.hands[0, 0, 4].tolist() == [0.0, 0.0]
    assert n.hands[1, 0, 8].tolist() == pytest.approx([0.2, -0.5]) and n.hands_mask[1, 0, 8]
    assert not n.hands_mask[3].any() and not n.hands_mask[:, 1].any()       # a hand point without any wrist
    pts, mask = n.features()
    assert pts.shape == (4, 100) and mask.shape == (4, 50) and np.isfinite(pts).all()


def test_normalisation_holistic_neck_is_the_shoulders_midpoint(tmp_path):
    pose, data, conf = holistic_pose()
    with open(tmp_path / "h.pose", "wb") as f:
        pose.write(f)
    seq = read_pose_file(tmp_path / "h.pose")
    n = normalise(seq, min_confidence=0.0)
    rs, ls = HOLISTIC_BODY.index("RIGHT_SHOULDER"), HOLISTIC_BODY.index("LEFT_SHOULDER")
    both = (conf[:, 0, rs] > 0) & (conf[:, 0, ls] > 0)
    mid = (data[both, 0, rs, :2] + data[both, 0, ls, :2]) / 2
    width = np.linalg.norm(data[both, 0, rs, :2] - data[both, 0, ls, :2], axis=-1)
    np.testing.assert_allclose(n.centre, np.median(mid, axis=0), rtol=1e-5)
    assert n.scale == pytest.approx(float(np.median(width)), rel=1e-5)


def test_normalisation_without_a_body_is_fully_masked():
    n = normalise(sequence([{RIGHT0: (1.0, 1.0, 0.9)}, {}]))
    assert not n.body_mask.any() and not n.hands_mask.any() and math.isnan(n.scale)
    assert (n.body == 0).all() and (n.hands == 0).all()


# ====================================================================== the demo signer's skeleton
SEED, SIZE = 5, 64
DEMO = dict(per_sentence={"train": 0, "val": 0, "test": 1}, n_val=0, n_test=3, size=SIZE, progress=False)
BODY_DRAWN = [OPENPOSE_BODY.index(n) for n in ("Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow",
                                                "LWrist")]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from hvl.domains.sign.demo import generate

    out = tmp_path_factory.mktemp("demo_sign")
    generate(out, seed=SEED, **DEMO)
    return out, load_manifest(out / "test.jsonl")


def figure(rec):
    """The figure the generator drew for ``rec`` (same seeds), its skeleton in pixels and the pose noise's seed."""
    from hvl.domains.sign.demo import SPLITS, render_signer
    from hvl.domains.sign.demo_poses import pose_seed, skeleton

    _, split, si, k = rec.video_id.split("_")
    ss = np.random.SeedSequence([SEED, SPLITS[split], int(si), int(k)])
    ss.spawn(1)                                                    # as generate() does for the gloss order
    _, _, track = render_signer(rec.video_id, rec.meta["glosses"], rec.texts[0], ss, SIZE, 10.0)
    truth, has = skeleton(track)
    return track, truth * SIZE - 0.5, has, pose_seed(SEED, SPLITS[split], int(si), int(k))


def test_demo_writes_how2sign_style_openpose_json_and_pose_files(demo):
    out, m = demo
    for rec in m.videos:
        assert rec.pose.path == f"openpose_output/json/{rec.video_id}" and rec.pose.fps == 10.0
        n = round(rec.duration * 10)
        files = sorted((out / rec.pose.path).iterdir())
        assert [f.name for f in files] == [f"{rec.video_id}_{i:012d}_keypoints.json" for i in range(n)]
        for f in files:
            people = json.loads(f.read_text())["people"]
            assert len(people) <= 1
            for p in people:                                   # 137 points: 25 body, 70 face, 21 + 21 hands
                assert [len(p[k]) for k in ("pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d",
                                            "hand_right_keypoints_2d")] == [75, 210, 63, 63]
        seq = load_record_pose(rec, m)
        same = read_pose_file(find_pose_beside(m.resolve(rec)))
        assert len(seq) == n and seq.fps == same.fps == 10.0 and same.size == (SIZE, SIZE)
        np.testing.assert_array_equal(seq.points, same.points)
        np.testing.assert_array_equal(seq.confidence, same.confidence)


def test_demo_poses_are_the_drawn_figure_within_the_jitter(demo):
    from hvl.domains.sign.demo_poses import PoseNoise, demo_poses, hand_speeds

    _, m = demo
    noise = PoseNoise()
    residuals = []
    for rec in m.videos:
        track, truth, has, ss = figure(rec)
        seq = load_record_pose(rec, m)
        again, events = demo_poses(track, np.random.default_rng(ss))
        np.testing.assert_array_equal(again.points, seq.points)          # the files are the seeded noise's
        odd = set(events.dropped_person) | set(events.swapped_hands)
        ok = [f for f in range(len(seq)) if f not in odd]
        inside = has[ok][:, BODY_DRAWN]                              # (a hand at rest may hang below the frame)
        body = (seq.points[ok][:, BODY_DRAWN] - truth[ok][:, BODY_DRAWN])[inside]
        assert np.isfinite(body).all() and inside.mean() > 0.8        # every drawn joint in the frame is found
        assert np.isnan(seq.points[ok][:, BODY_DRAWN][~inside]).all()
        residuals.append(body.ravel())
        sigma_hand = noise.hand_jitter * SIZE * (1 + hand_speeds(track) / noise.fast_speed)     # [T, 2]
        hands_xy, _ = seq.hands()
        for s, first in ((0, LEFT0), (1, RIGHT0)):
            err = np.linalg.norm(hands_xy[ok, s] - truth[ok, first:first + 21], axis=-1)    # NaN where missed
            assert (np.nan_to_num(err) <= 5 * np.sqrt(2) * sigma_hand[ok, s][:, None] + 1e-3).all()
        # the face the figure has (its jaw on the face disc), nothing it does not have (eyes, mouth, legs)
        c = seq.confidence[ok]
        assert (c[:, 25:42] > 0).all() and (c[:, 42:95] == 0).all()
        assert (c[:, [OPENPOSE_BODY.index(n) for n in ("REye", "LEye", "REar", "LEar", "RKnee", "LAnkle")]] == 0).all()
    r = np.concatenate(residuals)
    sigma = noise.jitter * SIZE
    assert np.abs(r).max() <= 5 * sigma + 1e-3                         # within the jitter...
    assert 0.8 * sigma <= r.std() <= 1.2 * sigma                       # ...and the jitter is there


def test_demo_noise_events_are_at_their_seeded_frames(demo):
    from hvl.domains.sign.demo_poses import PoseNoise, demo_poses, hand_speeds

    out, m = demo
    noise = PoseNoise()
    counts = {"dropped_person": 0, "dropped_hand": 0, "swapped_hands": 0, "fast": 0}
    swaps_seen = 0
    for rec in m.videos:
        track, truth, has, ss = figure(rec)
        seq = load_record_pose(rec, m)
        _, ev = demo_poses(track, np.random.default_rng(ss))
        _, other = demo_poses(track, np.random.default_rng(ss.entropy[0] + 1))
        assert (ev.dropped_person, ev.dropped_hand) != (other.dropped_person, other.dropped_hand)   # seeded
        for f in ev.dropped_person:                                  # nobody detected: "people": []
            doc = json.loads((out / rec.pose.path / f"{rec.video_id}_{f:012d}_keypoints.json").read_text())
            assert doc["people"] == [] and (seq.confidence[f] == 0).all()
        for f, side in ev.dropped_hand:                              # one hand missed, the body still there
            first = LEFT0 if side == "left" else RIGHT0
            assert (seq.confidence[f, first:first + 21] == 0).all()
            if f not in ev.dropped_person:
                assert (seq.confidence[f, BODY_DRAWN][has[f, BODY_DRAWN]] > 0).all()
        hands_xy, hands_c = seq.hands()
        for f in ev.swapped_hands:                                   # each hand where the other one is drawn
            for s, other_first in ((0, RIGHT0), (1, LEFT0)):
                if hands_c[f, s, 0] > 0 and has[f, other_first]:
                    assert np.linalg.norm(hands_xy[f, s, 0] - truth[f, other_first]) < 2.0   # hands 20+ px apart
                    swaps_seen += 1
        speed = hand_speeds(track)
        fast = set(ev.fast)
        for f in range(len(seq)):
            for s, side in enumerate(("left", "right")):
                c = hands_c[f, s]
                if not (c > 0).any() or f in ev.swapped_hands:
                    continue
                if (f, side) in fast:                                # blurred: confidence falls with speed
                    assert c.max() <= 0.9 * max((noise.fast_speed / speed[f, s]) ** 2, 0.03) + 1e-6
                else:
                    assert c[c > 0].min() >= 0.55 - 1e-6                 # (0: joints outside the frame)
        for key in counts:
            counts[key] += len(getattr(ev, key))
    assert counts["dropped_person"] >= 3 and counts["dropped_hand"] >= 3 and counts["swapped_hands"] == 3
    assert counts["fast"] >= 3 and swaps_seen >= 4                    # the transitions between signs are fast


def test_demo_clean_poses_are_the_figure(tmp_path):
    from hvl.domains.sign.demo import generate
    from hvl.domains.sign.demo_poses import PoseNoise, demo_poses

    generate(tmp_path, seed=SEED, **(DEMO | {"n_test": 1}), pose_noise=0.0)
    m = load_manifest(tmp_path / "test.jsonl")
    rec = m.videos[0]
    track, truth, has, ss = figure(rec)
    seq = load_record_pose(rec, m)
    np.testing.assert_array_equal(seq.points, np.where(has[..., None], np.round(truth, 3), np.nan).astype(np.float32))
    _, ev = demo_poses(track, np.random.default_rng(ss), PoseNoise().scaled(0.0))
    assert not (ev.dropped_person or ev.dropped_hand or ev.swapped_hands or ev.fast)


def test_demo_poses_add_files_and_change_no_video_or_other_field(tmp_path):
    from hvl.domains.sign.demo import generate

    kw = DEMO | {"size": 32, "n_test": 2}
    generate(tmp_path / "with", seed=SEED, **kw)
    generate(tmp_path / "without", seed=SEED, **kw, poses=False)
    assert not (tmp_path / "without" / "openpose_output").exists()
    assert sorted(p.name for p in (tmp_path / "without" / "videos").iterdir()) == ["sign_test_000_0.mp4",
                                                                                  "sign_test_001_0.mp4"]
    for name in ("sign_test_000_0.mp4", "sign_test_001_0.mp4"):
        assert (tmp_path / "with" / "videos" / name).read_bytes() == (tmp_path / "without" / "videos" / name).read_bytes()
    with_rows = [json.loads(line) for line in (tmp_path / "with" / "test.jsonl").read_text().splitlines()]
    without_rows = [json.loads(line) for line in (tmp_path / "without" / "test.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in r.items() if k != "pose"} for r in with_rows] == without_rows


def test_demo_refuses_a_planted_link_for_its_pose_folder(tmp_path):
    from hvl.domains.sign.demo import generate

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "demo"
    out.mkdir()
    (out / "openpose_output").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(HVLInputError, match="openpose_output: is a symbolic link"):
        generate(out, seed=SEED, **(DEMO | {"size": 32, "n_test": 1}))
    assert list(elsewhere.iterdir()) == []


def test_without_pose_format_pose_files_name_the_extra_and_the_demo_writes_json_only(tmp_path, monkeypatch):
    import sys

    from hvl.core.extras import MissingExtraError
    from hvl.domains.sign.demo import generate

    (tmp_path / "x.pose").write_bytes(openpose_pose_bytes())
    monkeypatch.setitem(sys.modules, "pose_format", None)
    with pytest.raises(MissingExtraError, match=r"\.pose files needs .*pose_format.* pip install 'hvl\[sign\]'"):
        read_pose_file(tmp_path / "x.pose")
    with pytest.warns(UserWarning, match="OpenPose JSON only"):
        generate(tmp_path / "demo", seed=SEED, **(DEMO | {"size": 32, "n_test": 1}))
    assert not list((tmp_path / "demo" / "videos").glob("*.pose"))
    rec = load_manifest(tmp_path / "demo" / "test.jsonl").videos[0]
    assert (tmp_path / "demo" / rec.pose.path).is_dir()
