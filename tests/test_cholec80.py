"""Cholec80 reader on a tiny fixture in exactly the published on-disk format."""
import numpy as np
import pytest
from hvl.core.data.video import write_video
from hvl.core.errors import HVLInputError
from hvl.domains.surgical.cholec80 import read_cholec80, read_phase_annotation
from hvl.domains.surgical.phases import CHOLEC80_PHASES

# 3 s at 25 fps: Preparation 0–29, CalotTriangleDissection 30–59, ClippingCutting 60–74
RUNS = [("Preparation", 30), ("CalotTriangleDissection", 30), ("ClippingCutting", 15)]


def _write(root, vid=49, runs=RUNS, header="Frame\tPhase", frames=None):
    (root / "videos").mkdir(parents=True, exist_ok=True)
    (root / "phase_annotations").mkdir(exist_ok=True)
    rows = [p for p, n in runs for _ in range(n)]
    n = frames if frames is not None else len(rows)
    write_video(root / "videos" / f"video{vid:02d}.mp4", np.zeros((n, 32, 32, 3), np.uint8), 25)
    text = header + "\n" + "".join(f"{i}\t{p}\n" for i, p in enumerate(rows))
    (root / "phase_annotations" / f"video{vid:02d}-phase.txt").write_text(text)
    return root


def test_reader_builds_segments_and_labels(tmp_path):
    [(rec, path)] = read_cholec80(_write(tmp_path), video_ids=[49])
    assert path.name == "video49.mp4" and rec.video_id == "video49" and rec.duration == pytest.approx(3.0)
    assert [(p.label, p.start, p.end) for p in rec.phases] == [
        ("Preparation", 0.0, 1.2), ("CalotTriangleDissection", 1.2, 2.4), ("ClippingCutting", 2.4, 3.0)]
    # 1 fps evaluation samples frames 0, 25, 50: the labels of those annotation rows
    assert [rec.label_at(t) for t in (0, 1, 2)] == ["Preparation", "Preparation", "CalotTriangleDissection"]


def test_split_selection(tmp_path):
    root = _write(tmp_path, vid=49)
    _write(root, vid=50)
    assert [r.video_id for r, _ in read_cholec80(root, split="test", video_ids=[49, 50])] == ["video49", "video50"]
    with pytest.raises(HVLInputError, match="video01.mp4: Cholec80 video missing"):
        read_cholec80(root, split="train")
    with pytest.raises(HVLInputError, match="split 'dev' is unknown"):
        read_cholec80(root, split="dev")


@pytest.mark.parametrize("kw, match", [
    ({"header": "Frame,Phase"}, "line 1: header must be"),
    ({"runs": [("Preparation", 10), ("Cleaning", 5)]}, "line 12: field 'Phase': unknown phase 'Cleaning'"),
    ({"frames": 200}, "annotates 75 frames but video49.mp4 has 200"),
])
def test_bad_annotations_name_file_line_and_field(tmp_path, kw, match):
    _write(tmp_path, **kw)
    with pytest.raises(HVLInputError, match=match) as e:
        read_cholec80(tmp_path, video_ids=[49])
    assert "video49" in str(e.value)


def test_frames_must_be_consecutive(tmp_path):
    p = tmp_path / "video01-phase.txt"
    p.write_text("Frame\tPhase\n0\tPreparation\n2\tPreparation\n")
    with pytest.raises(HVLInputError, match="line 3: field 'Frame': expected frame 1"):
        read_phase_annotation(p)


def test_phase_order_constant():
    assert CHOLEC80_PHASES[0] == "Preparation" and CHOLEC80_PHASES[-1] == "GallbladderRetraction"
    assert len(CHOLEC80_PHASES) == 7
