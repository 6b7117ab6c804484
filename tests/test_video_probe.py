"""What the probe reports (hvl probe, the DataModule's table), and that the samplers of zero-shot
evaluation and of the search index take frames by presentation time."""
import json

import numpy as np
import pytest
from hvl.core.cli import main
from hvl.core.data.records import format_probe_table, probe_videos
from hvl.core.data.schema import PhaseSegment, VideoRecord, load_manifest, write_manifest
from video_kinds import KINDS, vfr_times, write_kind

PROBED = ("hevc", "vfr", "rotated_90", "width_72", "h264_bframes")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("probe")
    (d / "videos").mkdir()
    for name in PROBED:
        write_kind(d / "videos" / name, KINDS[name])
    return d


def test_hvl_probe_prints_and_writes_what_it_saw(folder, capsys):
    out = folder / "probe.json"
    assert main(["probe", str(folder / "videos"), "--json", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "5 video(s): 3 read by decord, 2 read by pyav" in text and "hevc" in text and "variable" in text
    rows = {r["path"].rsplit("/", 1)[-1].split(".")[0]: r for r in json.loads(out.read_text())["videos"]}
    assert set(rows) == set(PROBED)
    assert (rows["hevc"]["backend"], rows["hevc"]["why"]) == ("pyav", "decord does not read hevc frame-exactly")
    assert rows["width_72"]["backend"] == "pyav" and "decord" in rows["width_72"]["why"]
    assert (rows["vfr"]["rate"], rows["vfr"]["duration"], rows["vfr"]["frames"]) == ("variable", 2.4, 60)
    r90 = rows["rotated_90"]
    assert (r90["rotation"], r90["width"], r90["height"], r90["rate"]) == (90, 64, 128, "constant")
    h = rows["h264_bframes"]
    assert (h["container"], h["codec"], h["fps"], h["duration"], h["backend"]) == ("mov", "h264", 25.0, 1.6, "decord")


def test_hvl_probe_of_a_manifest_names_unreadable_videos(folder, capsys):
    (folder / "videos" / "broken.mp4").write_bytes(b"\x00" * 2048)
    try:
        recs = [VideoRecord(video_id="a", path="videos/hevc.mp4"), VideoRecord(video_id="b", path="videos/broken.mp4")]
        m = write_manifest(folder / "m.jsonl", recs)
        assert main(["probe", str(m), "--no-progress", "--video-backend", "pyav"]) == 2
        cap = capsys.readouterr()
        assert "hevc" in cap.out and "unreadable" in cap.out and "broken.mp4" in cap.err
        good, bad = probe_videos(load_manifest(m), "pyav", report=(rows := []))
        assert [r.video_id for r in good] == ["a"] and bad[0]["video_id"] == "b"
        assert [(r["video_id"], r["backend"], r["why"]) for r in rows] == [("a", "pyav", "requested")]
    finally:
        (folder / "videos" / "broken.mp4").unlink()


def test_probe_table_is_bounded_for_big_datasets():
    row = {"path": "v.mp4", "container": "mov", "codec": "h264", "width": 64, "height": 64, "rotation": 0,
           "rate": "constant", "fps": 25.0, "duration": 1.0, "backend": "decord", "why": "-"}
    text = format_probe_table([row] * 100, limit=40)
    assert len(text.splitlines()) == 1 + 40 + 2 and "60 more" in text and "100 video(s): 100 read by decord" in text


def test_zero_shot_samples_the_frame_presented_at_each_time(folder):
    """1 label, 10 fps on the variable-rate file: sample k is the last frame with pts <= k / 10."""
    from helpers import decode_index
    from hvl.core.data.video import open_source
    from hvl.core.evaluation.zeroshot import sample_eval_frames

    path = folder / "videos" / "vfr.mp4"
    rec = VideoRecord(video_id="vfr", path=str(path), phases=[PhaseSegment(start=0.0, end=2.4, label="x", text="x")])
    index, labels, durations = sample_eval_frames([(rec, path)], ["x"], fps=10, chunk=100, size=64)
    pts = np.array(vfr_times()) / 1000
    want = [int(np.flatnonzero(pts <= k / 10 + 1e-9)[-1]) for k in range(24)]
    assert index == [(0, want)] and durations == [pytest.approx(2.4)] and labels[0].tolist() == [0] * 24
    assert decode_index(open_source(path, backend="pyav").get(want)) == want


def test_index_stores_the_embedded_frames_presentation_time(folder):
    from hvl.core.data.transforms import Preprocess
    from hvl.core.search.index import VideoEntry, _frame_dataset

    path = folder / "videos" / "vfr.mp4"
    chunks = list(_frame_dataset([VideoEntry("vfr.mp4", "vfr", "", str(path))], fps=4, preprocess=Preprocess.square(32),
                                  chunk=5))
    t = np.concatenate([c["t"].numpy() for c in chunks])
    pts = np.array(vfr_times()) / 1000
    want = [pts[np.flatnonzero(pts <= k / 4 + 1e-9)[-1]] for k in range(10)]  # not k / 4: when the frame shows
    assert np.allclose(t, want) and not np.allclose(t, np.arange(10) / 4)
