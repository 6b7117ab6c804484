"""Transcript, chapter and abstract readers on files written as the tools that make them write them."""
from __future__ import annotations

import json

import pytest
from hvl.core.data.prepare.chapters import read_abstracts, read_chapters
from hvl.core.data.prepare.subtitles import parse_timestamp, read_transcript
from hvl.core.errors import HVLInputError


def write(path, text: str, bom: bool = False, crlf: bool = False):
    data = text.replace("\n", "\r\n") if crlf else text
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))
    return path


SRT = """1
00:00:01,000 --> 00:00:03,500
<i>We insert the</i>
first trocar.

2
00:00:03,500 --> 00:00:05,250
{\\an8}Then the camera &amp; grasper.

3
01:02:03,004 --> 01:02:04,000
Late cue with ünïcode"""  # no final blank line, as many exporters write it


def test_srt_multiline_tags_bom_crlf_no_final_blank(tmp_path):
    for bom, crlf in [(False, False), (True, True)]:
        cues = read_transcript(write(tmp_path / f"a{bom}.srt", SRT, bom=bom, crlf=crlf))
        assert [(c.start, c.end, c.text) for c in cues] == [
            (1.0, 3.5, "We insert the first trocar."), (3.5, 5.25, "Then the camera & grasper."),
            (3723.004, 3724.0, "Late cue with ünïcode")]
        assert [c.where for c in cues] == ["line 2", "line 7", "line 11"]


VTT = """WEBVTT - lecture
Kind: captions
Language: en

STYLE
::cue { color: yellow }

REGION
id:left width:40%

NOTE this note spans
two lines --> and is not a cue? it has no timing line first

intro
00:01.000 --> 00:04.000 align:start position:10% line:0
<v Dr Smith>Good <c.highlight>morning</c></v>,
<00:02.500>everyone.

00:00:04.000 --> 00:00:06.000
&lt;b&gt; is bold &nbsp;here
"""


def test_vtt_settings_note_style_region_tags_hourless(tmp_path):
    cues = read_transcript(write(tmp_path / "a.vtt", VTT, crlf=True))
    assert [(c.start, c.end, c.text) for c in cues] == [(1.0, 4.0, "Good morning, everyone."),
                                                        (4.0, 6.0, "<b> is bold here")]
    assert cues[0].where == "line 15"  # the timing line, after the identifier


def test_whisper_and_whisperx_json(tmp_path):
    whisper = {"text": "x", "language": "en", "segments": [
        {"id": 0, "seek": 0, "start": 0.0, "end": 2.4, "text": " Hello there.", "tokens": [1, 2], "avg_logprob": -0.2},
        {"id": 1, "start": 2.4, "end": 5.0, "text": " Second one."}]}
    cues = read_transcript(write(tmp_path / "w.json", json.dumps(whisper)))
    assert [(c.start, c.end, c.text, c.where) for c in cues] == [(0.0, 2.4, "Hello there.", "segments[0]"),
                                                                 (2.4, 5.0, "Second one.", "segments[1]")]
    x = {"segments": [{"start": 1.0, "end": 2.0, "text": "aligned", "words": [{"word": "aligned", "start": 1.0,
                                                                                "end": 2.0, "score": 0.9}]},
                      {"text": " unaligned segment", "words": [{"word": "unaligned", "start": 3.1, "end": 3.6},
                                                               {"word": "segment", "start": 3.7, "end": 4.2},
                                                               {"word": "7"}]}],  # WhisperX: numbers lack times
         "word_segments": []}
    cues = read_transcript(write(tmp_path / "x.json", json.dumps(x), bom=True))
    assert [(c.start, c.end, c.text) for c in cues] == [(1.0, 2.0, "aligned"), (3.1, 4.2, "unaligned segment")]


def test_peskavlp_csv(tmp_path):
    cues = read_transcript(write(tmp_path / "v.csv", 'start,end,text\n0.5,2.0,"we clip, then cut"\n2.0,4.5,next\n',
                                 crlf=True))
    assert [(c.start, c.end, c.text, c.where) for c in cues] == [(0.5, 2.0, "we clip, then cut", "line 2"),
                                                                 (2.0, 4.5, "next", "line 3")]


def test_chapters_three_formats(tmp_path):
    csv_ = read_chapters(write(tmp_path / "k.csv", "start,end,step,text\n0,10,Preparation,Ports are placed.\n"
                                                   "10,25,Dissection,\n"))
    assert [(c.start, c.end, c.title, c.text) for c in csv_] == [(0.0, 10.0, "Preparation", "Ports are placed."),
                                                                 (10.0, 25.0, "Dissection", "Dissection")]
    vtt = read_chapters(write(tmp_path / "c.vtt", "WEBVTT\n\nch1\n00:00.000 --> 00:12.000\nIntro\n\n"
                                                  "00:12.000 --> 01:00.000\nMain part\n"))
    assert [(c.start, c.end, c.text) for c in vtt] == [(0.0, 12.0, "Intro"), (12.0, 60.0, "Main part")]
    yt = read_chapters(write(tmp_path / "d.txt", "Great video about surgery!\n\nChapters:\n00:00 Intro\n"
                                                 "1:05 - Calot's triangle\n• 12:30 | Clipping\n1:02:03 Closure\n"
                                                 "Thanks for watching\n", bom=True))
    assert [(c.start, c.end, c.text, c.where) for c in yt] == [
        (0.0, None, "Intro", "line 4"), (65.0, None, "Calot's triangle", "line 5"),
        (750.0, None, "Clipping", "line 6"), (3723.0, None, "Closure", "line 7")]


def test_abstracts(tmp_path):
    assert read_abstracts(write(tmp_path / "a.txt", "A patient\nunderwent   surgery.\n", crlf=True)) == [
        "A patient underwent surgery."]
    assert read_abstracts(write(tmp_path / "b.csv", "start,end,text\n0,100,The whole procedure.\n")) == [
        "The whole procedure."]


def test_timestamps():
    assert parse_timestamp("01:02:03,450") == pytest.approx(3723.45)
    assert parse_timestamp("02:03.5") == pytest.approx(123.5)
    assert parse_timestamp("1:02:03") == 3723.0
    assert parse_timestamp("soon") is None


@pytest.mark.parametrize("name, data, expect", [
    ("latin1.srt", "1\n00:00:01,000 --> 00:00:02,000\ncaf\xe9\n".encode("latin-1"), r"latin1.srt, line 3: not UTF-8"),
    ("utf16.vtt", "WEBVTT\n".encode("utf-16"), "UTF-16"),
    ("nohead.vtt", b"00:01.000 --> 00:02.000\nhi\n", "starts with 'WEBVTT'"),
    ("badtime.srt", b"1\n00:00:01,000 --> soon\nhi\n", r"badtime.srt, line 2: bad SubRip timing"),
    ("notiming.srt", b"1\nhello\n", r"notiming.srt, line 2: expected a SubRip timing line"),
    ("bad.json", b'{"segments": [', r"bad.json, line 1: not valid JSON"),
    ("noseg.json", b'{"text": "hi"}', "'segments' list"),
    ("segtime.json", b'{"segments": [{"start": "a", "end": 1, "text": "x"}]}', r"segments\[0\]: field 'start'/'end'"),
    ("cols.csv", b"begin,stop,text\n0,1,x\n", r"cols.csv, line 1: CSV header .* lacks column\(s\) \['start', 'end'\]"),
    ("num.csv", b"start,end,text\n0,abc,x\n", r"num.csv, line 2: field 'end' is 'abc'"),
    ("a.docx", b"x", "unknown transcript format"),
])
def test_bad_transcripts_name_the_file_and_place(tmp_path, name, data, expect):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(HVLInputError, match=expect):
        read_transcript(tmp_path / name)


def test_bad_chapters(tmp_path):
    with pytest.raises(HVLInputError, match="no chapter lines found"):
        read_chapters(write(tmp_path / "c.txt", "just a description\n"))
    with pytest.raises(HVLInputError, match=r"k.csv, line 1: .*lacks column\(s\) \['step'\]"):
        read_chapters(write(tmp_path / "k.csv", "start,end,title\n0,1,x\n"))
