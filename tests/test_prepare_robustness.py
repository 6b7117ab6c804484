"""`hvl prepare` on hostile or broken transcripts (issue 26, item 11): impossible times are refused with the
file, the line and the field; a megabyte "cue" is refused early and never echoed whole into an error or
the report."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from hvl.core.cli import main
from hvl.core.data.prepare.build import PrepareConfig, prepare
from hvl.core.data.prepare.chapters import read_chapters
from hvl.core.data.prepare.subtitles import MAX_CUE_CHARS, read_transcript
from hvl.core.errors import HVLInputError

MB = 3_000_000  # the attack at a few MB: enough to show what grows with the input


@pytest.fixture(scope="module")
def video_template(tmp_path_factory) -> Path:
    from hvl.core.data.video import write_video

    path = tmp_path_factory.mktemp("video") / "v.mp4"
    write_video(path, np.zeros((60, 32, 32, 3), np.uint8), 5)  # 12 s
    return path


def raw_with(tmp_path: Path, video: Path, suffix: str, data: str) -> Path:
    """hvl's layout with one video 'v' and one transcript ``transcripts/v.asr<suffix>``."""
    raw = tmp_path / "raw"
    (raw / "videos").mkdir(parents=True)
    (raw / "transcripts").mkdir()
    (raw / "videos" / "v.mp4").write_bytes(video.read_bytes())
    (raw / "transcripts" / f"v.asr{suffix}").write_text(data)
    return raw


@pytest.mark.parametrize("suffix, data, expect", [
    (".csv", "start,end,text\n0,1,ok\n-5,-1,x\n", "line 3: field 'start' is -5.0"),
    (".csv", "start,end,text\n2,-1,x\n", "line 2: field 'end' is -1.0"),
    (".csv", "start,end,text\n1,inf,x\n", "line 2: field 'end' is inf"),
    (".csv", "start,end,text\n1,1e999,x\n", "line 2: field 'end' is inf"),
    (".csv", "start,end,text\nnan,5,x\n", "line 2: field 'start' is nan"),
    (".json", '{"segments": [{"start": 0, "end": 1, "text": "a"}, {"start": NaN, "end": 1, "text": "x"}]}',
     "segments[1]: field 'start' is nan"),
    (".json", '{"segments": [{"start": 0, "end": Infinity, "text": "x"}]}', "segments[0]: field 'end' is inf"),
    (".json", '{"segments": [{"start": -3, "end": 1, "text": "x"}]}', "segments[0]: field 'start' is -3.0"),
    (".json", '{"segments": [{"text": "x", "words": [{"word": "x", "start": -1e999, "end": 1}]}]}',
     "segments[0]: field 'words[0].start' is -inf"),
])
def test_impossible_times_name_file_place_and_field(tmp_path, video_template, capsys, suffix, data, expect):
    raw = raw_with(tmp_path, video_template, suffix, data)
    # before the fix these reached the manifest schema: a pydantic traceback without file or line
    assert main(["prepare", str(raw), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"v.asr{suffix}, {expect}" in err, err
    assert "Traceback" not in err and "pydantic" not in err


def test_impossible_chapter_times_are_refused(tmp_path):
    (tmp_path / "k.csv").write_text("start,end,step\n0,10,a\n10,-inf,b\n")
    with pytest.raises(HVLInputError, match=r"k.csv, line 3: field 'end' is -inf"):
        read_chapters(tmp_path / "k.csv")


def _one_line(text: str) -> dict[str, str]:
    """The same megabyte cue in each transcript format."""
    return {".srt": f"1\n00:00:01,000 --> 00:00:02,000\n{text}\n",
            ".vtt": f"WEBVTT\n\n00:01.000 --> 00:02.000\n{text}\n",
            ".json": json.dumps({"segments": [{"start": 1.0, "end": 2.0, "text": text}]}),
            ".csv": f"start,end,text\n1,2,{text}\n"}


@pytest.mark.parametrize("suffix, where", [(".srt", "line 2"), (".vtt", "line 3"), (".json", "segments[0]"),
                                           (".csv", "line 2")])
def test_a_megabyte_cue_is_refused_with_file_and_line_not_echoed(tmp_path, video_template, capsys, suffix, where):
    text = " ".join(["word"] * (MB // 5))
    raw = raw_with(tmp_path, video_template, suffix, _one_line(text)[suffix])
    t0 = time.perf_counter()
    assert main(["prepare", str(raw), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    seconds = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert f"v.asr{suffix}, {where}" in err, err[:2000]
    assert len(err) < 1000  # the input is quoted, not echoed
    assert not (tmp_path / "out" / "report.json").exists()
    assert seconds < 20  # refused while reading (a 200 MB cue took 69 s and 4 GB before)


@pytest.mark.parametrize("name", ["big.srt", "big.vtt", "big.csv"])
def test_a_megabyte_timing_or_time_field_is_quoted_not_echoed(tmp_path, name):
    junk = "9" * MB
    data = {"big.srt": f"1\n00:00:01,000 --> {junk}\nhi\n", "big.vtt": f"WEBVTT\n\n00:01.000 --> {junk}\nhi\n",
            "big.csv": f"start,end,text\n{junk}x,2,hi\n"}[name]
    (tmp_path / name).write_text(data)
    with pytest.raises(HVLInputError) as e:
        read_transcript(tmp_path / name)
    assert name in str(e.value) and len(str(e.value)) < 400
    assert "…" in str(e.value) or "131072" in str(e.value)  # cut with an ellipsis, or the CSV field limit named


def test_long_texts_under_the_cap_are_kept_but_the_report_shows_only_their_start(tmp_path, video_template):
    """Cues just under the cap are legal; the manifest keeps them whole, the report does not copy them."""
    words = " ".join(["narration"] * (MAX_CUE_CHARS // 10 - 5))
    srt = "".join(f"{i + 1}\n00:00:{i:02d},000 --> 00:00:{i:02d},900\n{i} {words}\n\n" for i in range(11))
    raw = raw_with(tmp_path, video_template, ".srt", srt)
    out = tmp_path / "out"
    prepare(raw, out, PrepareConfig(split_ratios=(1.0, 0.0, 0.0)), progress=False)
    clips = [c for line in (out / "train.jsonl").read_text().splitlines() for c in json.loads(line)["clips"]]
    assert len(clips) == 11 and all(len(c["texts"][0]) > MAX_CUE_CHARS - 100 for c in clips)
    assert (out / "report.json").stat().st_size < 100_000  # before: every top text and sample whole (> 200 KB)
    assert (out / "report.html").stat().st_size < 100_000


def test_a_line_over_the_csv_field_limit_is_an_input_error(tmp_path):
    (tmp_path / "t.csv").write_text("start,end,text\n0,1,short\n1,2," + "x" * 200_000 + "\n")
    with pytest.raises(HVLInputError, match=r"t.csv, line 3: not readable as CSV"):
        read_transcript(tmp_path / "t.csv")
