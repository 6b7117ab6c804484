"""AutoLaparo Task 1 reader and the published prompt file, on a tiny fixture in the released layout."""
import numpy as np
import pytest
from hvl.core.data.records import DatasetSpec, load_videos
from hvl.core.data.schema import load_prompt_file
from hvl.core.data.video import write_video
from hvl.core.errors import HVLInputError
from hvl.core.evaluation.zeroshot import check_inputs
from hvl.core.registry import resolve_prompt_file
from hvl.domains.surgical.autolaparo import read_autolaparo, read_label_file
from hvl.domains.surgical.phases import AUTOLAPARO_PHASES

PUBLISHED = ["I use grasper to grasp and explore the field", "I divide ligament and peritoneum",
             "I divide uterine vessels and ligament", "I use the dissecting hook to transect the vagina",
             "I remove the specimen bag and uterus", "I am suture the tissue", "Washing"]
IDS = [1, 1, 2, 2, 2, 7]  # 6 s: Preparation 0–2 s, Dividing Ligament and Peritoneum 2–5 s, Washing 5–6 s


def _write(root, vid=15, ids=IDS, seconds=None, header="Frame\tPhase"):
    (root / "videos").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(exist_ok=True)
    n = 25 * (seconds if seconds is not None else len(ids))
    write_video(root / "videos" / f"{vid:02d}.mp4", np.zeros((n, 32, 32, 3), np.uint8), 25)
    rows = "".join(f"{k}\t{p}\n" for k, p in enumerate(ids, start=1))
    (root / "labels" / f"label_{vid:02d}.txt").write_text((header + "\n" if header else "") + rows)
    return root


def test_reader_builds_segments_from_1fps_rows(tmp_path):
    [(rec, path)] = read_autolaparo(_write(tmp_path), video_ids=[15])
    assert path.name == "15.mp4" and rec.video_id == "autolaparo15" and rec.duration == pytest.approx(6.0)
    assert [(p.label, p.start, p.end) for p in rec.phases] == [
        ("Preparation", 0.0, 2.0), ("Dividing Ligament and Peritoneum", 2.0, 5.0), ("Washing", 5.0, 6.0)]
    # row k labels the frame at k - 1 s: 1 fps evaluation at t = 0..5 gets the rows' ids back
    assert [AUTOLAPARO_PHASES.index(rec.label_at(t)) + 1 for t in range(6)] == IDS


def test_registered_reader_and_published_prompts_fit_together(tmp_path):
    videos = load_videos(DatasetSpec(reader="autolaparo", path=str(_write(tmp_path)), options={"video_ids": [15]}),
                         "surgical")
    prompts = load_prompt_file(resolve_prompt_file("surgical:autolaparo"))
    assert prompts.names == AUTOLAPARO_PHASES and [c.prompts for c in prompts.classes] == [[p] for p in PUBLISHED]
    check_inputs(videos, prompts)  # every label the reader emits is a prompt class


def test_split_selection(tmp_path):
    root = _write(tmp_path, vid=15)
    _write(root, vid=16)
    assert [r.video_id for r, _ in read_autolaparo(root, video_ids=[15, 16])] == ["autolaparo15", "autolaparo16"]
    with pytest.raises(HVLInputError, match="17.mp4: AutoLaparo video missing"):
        read_autolaparo(root, split="test")
    with pytest.raises(HVLInputError, match="split 'dev' is unknown"):
        read_autolaparo(root, split="dev")


@pytest.mark.parametrize("kw, match", [
    ({"ids": [1, 1, 8]}, r"line 4: field 'phase': id 8 is not one of 1–7"),
    ({"seconds": 12}, "labels 6 s but 15.mp4 lasts 12.0 s"),
])
def test_bad_labels_name_file_line_and_field(tmp_path, kw, match):
    _write(tmp_path, **kw)
    with pytest.raises(HVLInputError, match=match) as e:
        read_autolaparo(tmp_path, video_ids=[15])
    assert "label_15.txt" in str(e.value)


def test_rows_must_count_every_second(tmp_path):
    p = tmp_path / "label_01.txt"
    p.write_text("Frame\tPhase\n1\t1\n3\t1\n")
    with pytest.raises(HVLInputError, match="line 3: field 'frame': expected 2, got 3"):
        read_label_file(p)
    p.write_text("1\t1\n2\t2\n")  # no header line: read as rows
    assert [s.label for s in read_label_file(p)] == AUTOLAPARO_PHASES[:2]
