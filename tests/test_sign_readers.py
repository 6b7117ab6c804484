"""How2Sign and PHOENIX-2014T readers on tiny fixtures in exactly the released on-disk formats."""
import numpy as np
import pytest
from helpers import decode_index, index_frames, write_index_folder
from hvl.core.data.video import Video, open_source, write_video
from hvl.core.errors import HVLInputError
from hvl.core.registry import get_domain
from hvl.domains.sign.how2sign import read_how2sign
from hvl.domains.sign.phoenix import read_phoenix

H2S_HEADER = "VIDEO_ID\tVIDEO_NAME\tSENTENCE_ID\tSENTENCE_NAME\tSTART_REALIGNED\tEND_REALIGNED\tSENTENCE"
H2S_ROWS = [
    ("-fZc293MpJk", "-fZc293MpJk-1-rgb_front", "-fZc293MpJk_0", "-fZc293MpJk_0-1-rgb_front", "0.0", "1.5",
     "Hi."),
    ("-fZc293MpJk", "-fZc293MpJk-1-rgb_front", "-fZc293MpJk_1", "-fZc293MpJk_1-1-rgb_front", "2.0", "4.2",
     "The aileron is the control surface in the wing, it has a tab."),
    ("0BZ7Qhtqhrs", "0BZ7Qhtqhrs-5-rgb_front", "0BZ7Qhtqhrs_3", "0BZ7Qhtqhrs_3-5-rgb_front", "1.1", "2.9", "Hi."),
]


def write_how2sign(root, rows=H2S_ROWS, header=H2S_HEADER, split="test", skip_clip=None):
    clips = root / f"{split}_rgb_front_clips" / "raw_videos"
    full = root / f"{split}_raw_videos" / "raw_videos"
    clips.mkdir(parents=True, exist_ok=True)
    full.mkdir(parents=True, exist_ok=True)
    for r in rows:
        if r[3] != skip_clip:
            write_video(clips / f"{r[3]}.mp4", np.zeros((10, 32, 32, 3), np.uint8), 10)
        if not (full / f"{r[1]}.mp4").exists():
            write_video(full / f"{r[1]}.mp4", index_frames(50, 32), 10)   # 5 s, frame i shows i
    lines = [header] + ["\t".join(r) for r in rows]
    (root / f"how2sign_realigned_{split}.csv").write_text("\n".join(lines) + "\n")
    return root


def test_how2sign_clips(tmp_path):
    recs = read_how2sign(write_how2sign(tmp_path), split="test")
    assert [r.video_id for r, _ in recs] == [r[3] for r in H2S_ROWS]
    rec, path = recs[1]
    assert rec.texts == [H2S_ROWS[1][6]] and rec.span is None and path.name == "-fZc293MpJk_1-1-rgb_front.mp4"
    assert rec.meta == {"video_id": "-fZc293MpJk", "video_name": "-fZc293MpJk-1-rgb_front",
                        "sentence_id": "-fZc293MpJk_1"}


def test_how2sign_full_videos_are_cut_by_realigned_times(tmp_path):
    from hvl.core.evaluation.retrieval import _span, _VideoFrames

    recs = read_how2sign(write_how2sign(tmp_path), split="test", mode="full")
    rec, path = recs[1]
    assert path.name == "-fZc293MpJk-1-rgb_front.mp4" and rec.span == (2.0, 4.2)
    # retrieval samples frames inside [2.0, 4.2) only: frames 20..41 at 10 fps
    v = Video(open_source(path))
    idx = v.indices_uniform(*rec.span, 4)
    assert idx == [22, 28, 33, 39] and decode_index(v.source.get(idx)) == idx
    assert _span(rec, v) == (2.0, 4.2)
    assert _VideoFrames([(rec, path)], 4, 32)[0].shape == (4, 3, 32, 32)


@pytest.mark.parametrize("kw, match", [
    ({"header": H2S_HEADER.replace("\t", ",")}, r"line 1: header must be"),
    ({"rows": [H2S_ROWS[0][:4] + ("1.0", "0.5", "x")]}, r"line 2: field 'END_REALIGNED'"),
    ({"rows": [H2S_ROWS[0][:4] + ("soon", "2", "x")]}, r"line 2: field 'START_REALIGNED': 'soon'"),
    ({"rows": [H2S_ROWS[0], H2S_ROWS[0]]}, r"line 3: field 'SENTENCE_NAME': .* repeats line 2"),
    ({"rows": [H2S_ROWS[0][:6]]}, r"line 2: expected 7 tab-separated fields, got 6"),
    ({"rows": [H2S_ROWS[0][:6] + (" ",)]}, r"line 2: field 'SENTENCE' is empty"),
])
def test_how2sign_bad_tables_name_file_line_and_field(tmp_path, kw, match):
    write_how2sign(tmp_path, **kw)
    with pytest.raises(HVLInputError, match=match) as e:
        read_how2sign(tmp_path)
    assert "how2sign_realigned_test.csv" in str(e.value)


def test_how2sign_missing_clip_names_row_and_fix(tmp_path):
    write_how2sign(tmp_path, skip_clip=H2S_ROWS[2][3])
    with pytest.raises(HVLInputError, match=r"how2sign_realigned_test.csv, line 4: field 'SENTENCE_NAME': video "
                                            r".*0BZ7Qhtqhrs_3-5-rgb_front.mp4 not found; download it"):
        read_how2sign(tmp_path)
    with pytest.raises(HVLInputError, match="table not found"):
        read_how2sign(tmp_path, split="val")


PHX_HEADER = "name|video|start|end|speaker|orth|translation"
PHX_ROWS = [
    "11August_2010_Wednesday_tagesschau-2|11August_2010_Wednesday_tagesschau-2/1/*.png|-1|-1|Signer08|"
    "DRUCK TIEF KOMMEN|tiefer luftdruck bestimmt in den nächsten tagen unser wetter",
    "11August_2010_Wednesday_tagesschau-3|11August_2010_Wednesday_tagesschau-3/1/*.png|-1|-1|Signer08|"
    "ES-BEDEUTET VIEL WOLKE|das bedeutet viele wolken und immer wieder zum teil kräftige schauer und gewitter",
]


def write_phoenix(root, rows=PHX_ROWS, header=PHX_HEADER, split="test", frames=(30, 20)):
    ann = root / "annotations" / "manual"
    ann.mkdir(parents=True, exist_ok=True)
    (ann / f"PHOENIX-2014-T.{split}.corpus.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    for row, n in zip(rows, frames):
        folder = root / "features" / "fullFrame-210x260px" / split / row.split("|")[0]
        if n:
            write_index_folder(folder, n)
        else:
            folder.mkdir(parents=True, exist_ok=True)
    return root


def test_phoenix_reads_frame_folders_at_25_fps(tmp_path):
    recs = read_phoenix(write_phoenix(tmp_path), split="test")
    (rec, path), (rec2, _) = recs
    assert rec.video_id == "11August_2010_Wednesday_tagesschau-2" and path.is_dir()
    assert rec.texts == ["tiefer luftdruck bestimmt in den nächsten tagen unser wetter"]
    assert rec.meta["orth"] == "DRUCK TIEF KOMMEN" and rec.meta["speaker"] == "Signer08"
    assert rec.duration == pytest.approx(30 / 25) and rec2.duration == pytest.approx(20 / 25)
    v = Video(open_source(path))
    assert v.fps == 25.0 and decode_index(v.read(0.0, 0.4, fps=25.0)) == list(range(10))


def test_phoenix_dev_split_and_val_alias(tmp_path):
    write_phoenix(tmp_path, split="dev")
    assert len(read_phoenix(tmp_path, split="val")) == 2
    with pytest.raises(HVLInputError, match="split 'validation' is unknown"):
        read_phoenix(tmp_path, split="validation")


@pytest.mark.parametrize("kw, match", [
    ({"header": "name,video,start,end,speaker,orth,translation"}, r"line 1: header must be"),
    ({"rows": [PHX_ROWS[0].rsplit("|", 1)[0]]}, r"line 2: expected 7 '\|'-separated fields, got 6"),
    ({"rows": [PHX_ROWS[0], PHX_ROWS[0]]}, r"line 3: field 'name': .* repeats line 2"),
    ({"rows": [PHX_ROWS[0].rsplit("|", 1)[0] + "| "]}, r"line 2: field 'translation' is empty"),
    ({"frames": (30, 0)}, r"line 3: frame folder .*tagesschau-3 has no PNG frames"),
])
def test_phoenix_bad_annotations(tmp_path, kw, match):
    write_phoenix(tmp_path, **kw)
    with pytest.raises(HVLInputError, match=match) as e:
        read_phoenix(tmp_path)
    assert "PHOENIX-2014-T.test.corpus.csv" in str(e.value)


def test_phoenix_missing_frame_folder(tmp_path):
    write_phoenix(tmp_path, rows=PHX_ROWS[:1], frames=(30,))
    (tmp_path / "annotations" / "manual" / "PHOENIX-2014-T.test.corpus.csv").write_text(
        "\n".join([PHX_HEADER, *PHX_ROWS]) + "\n")
    with pytest.raises(HVLInputError, match=r"corpus.csv, line 3: field 'name': frame folder .*tagesschau-3 "
                                            r"not found; extract the frames there"):
        read_phoenix(tmp_path)


def test_domain_registers_readers_prompts_and_demo():
    d = get_domain("sign")
    assert set(d.readers) == {"how2sign", "phoenix"}
    assert (d.prompts_dir / "demo_glosses.yaml").is_file()


def test_span_is_validated_in_manifests():
    from hvl.core.data.schema import VideoRecord
    from pydantic import ValidationError

    assert VideoRecord(video_id="a", path="a.mp4", span=(1.0, 2.5)).span == (1.0, 2.5)
    with pytest.raises(ValidationError, match="0 <= start < end"):
        VideoRecord(video_id="a", path="a.mp4", span=(2.0, 1.0))
    with pytest.raises(ValidationError, match="beyond the video's duration"):
        VideoRecord(video_id="a", path="a.mp4", duration=2.0, span=(1.0, 3.0))
