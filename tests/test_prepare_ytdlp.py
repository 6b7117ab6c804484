"""Transcripts as people download them with yt-dlp (issue 30): YouTube's rolling auto-captions read to
their words once, yt-dlp's flat folder and .info.json, and `hvl prepare` on such a folder with no flags."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hvl.core.cli import main
from hvl.core.data.prepare.build import PrepareConfig, prepare
from hvl.core.data.prepare.chapters import read_abstracts, read_chapters
from hvl.core.data.prepare.clips import ClipConfig, prepare_sentences
from hvl.core.data.prepare.layout import discover
from hvl.core.data.prepare.subtitles import read_transcript
from hvl.core.data.prepare.ytdlp import description_abstract, parse_ytdlp_name, read_info_json, split_ytdlp_name
from hvl.core.data.schema import load_manifest
from hvl.core.errors import HVLInputError


def ts(t: float) -> str:
    ms = round(t * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def youtube_vtt(lines: list[list[tuple[float, str]]], end: float) -> str:
    """Auto-captions the way YouTube writes them: each line's cue repeats the previous line (a single space in
    its place at the start), then the new words with <time><c> word</c> tags; a 10 ms cue then repeats the
    finished line plain, followed by a line of one space."""
    out = ["WEBVTT", "Kind: captions", "Language: en", ""]
    shown = " "
    for k, line in enumerate(lines):
        start = line[0][0]
        nxt = lines[k + 1][0][0] if k + 1 < len(lines) else end
        first, *rest = line
        tagged = first[1] + "".join(f"<{ts(t)}><c> {w}</c>" for t, w in rest)
        plain = " ".join(w for _, w in line)
        out += [f"{ts(start)} --> {ts(nxt - 0.01)} align:start position:0%", shown, tagged, "",
                f"{ts(nxt - 0.01)} --> {ts(nxt)} align:start position:0%", plain, " ", ""]
        shown = plain
    return "\n".join(out)


# What was said: three sentences, a pause of 1.5 s between them, 0.3 s from word to word inside one; the
# display breaks lines every four words, across sentence ends, as YouTube does.
SENTENCES = ["today we look at the gallbladder and the liver", "first the ports are placed under vision",
             "then the cystic duct is clipped"]


def spoken(t0: float = 1.0) -> list[tuple[float, str]]:
    out, t = [], t0
    for s in SENTENCES:
        for w in s.split():
            out.append((round(t, 3), w))
            t += 0.3
        t += 1.2
    return out


def display_lines(words: list[tuple[float, str]], per_line: int = 4) -> list[list[tuple[float, str]]]:
    return [words[i:i + per_line] for i in range(0, len(words), per_line)]


def test_auto_captions_are_read_to_each_spoken_word_once_with_its_time(tmp_path):
    words = spoken()
    lines = [[(0.0, "[Music]")]] + display_lines(words)
    vtt = tmp_path / "talk.en.vtt"
    vtt.write_text(youtube_vtt(lines, end=words[-1][0] + 2.0))
    assert "\n \n" in vtt.read_text()  # single-space lines inside cues, as YouTube writes them
    counts = Counter()
    cues = read_transcript(vtt, counts)
    got = [w for c in cues for w in c.words]
    assert [w for _, w in got] == ["[Music]"] + [w for _, w in words]
    assert [t for t, _ in got[1:]] == [t for t, _ in words]  # the <c> tag times, kept
    assert len(cues) == len(lines)  # one cue per displayed line, never a repeat
    # rolling repeat in every cue after the first + the 10 ms flash cue of every line
    assert counts == {"caption_repeated_lines": 2 * len(lines) - 1, "caption_flash_cues": len(lines)}
    assert cues[1].where == "line 13" and cues[1].text == " ".join(w for _, w in lines[1])


def test_sentences_are_rebuilt_from_words_by_pauses_across_display_lines(tmp_path):
    words = spoken()
    vtt = tmp_path / "talk.en.vtt"
    vtt.write_text(youtube_vtt([[(0.0, "[Music]")]] + display_lines(words), end=words[-1][0] + 2.0))
    counts = Counter()
    sents = prepare_sentences("en", read_transcript(vtt, counts), ClipConfig(), counts)
    assert [s.text for s in sents] == SENTENCES
    assert counts["sound_tags"] == 1
    first = [t for t, _ in words[:len(SENTENCES[0].split())]]
    # finer than the cues: from the first word's time to a second after the last one's (a pause follows)
    assert sents[0].start == first[0] and sents[0].end == pytest.approx(first[-1] + 1.0)
    # a run without pauses longer than max_seconds is cut at its longest inner gap
    long = [(round(i * 0.4 + (0.5 if i >= 14 else 0), 3), f"w{i}") for i in range(30)]  # 13 s, 0.9 s before w14
    vtt.write_text(youtube_vtt(display_lines(long), end=14.0))
    sents = prepare_sentences("en", read_transcript(vtt), ClipConfig(max_seconds=10), Counter())
    assert [s.text.split()[0] for s in sents] == ["w0", "w14"] and all(s.end - s.start <= 10 for s in sents)


def test_ordinary_webvtt_keeps_its_cues_and_whitespace_lines_do_not_end_a_cue(tmp_path):
    """The WebVTT parser ends a payload only at an empty line; a line of spaces belongs to it."""
    vtt = tmp_path / "a.vtt"
    vtt.write_text("WEBVTT\nKind: captions\nLanguage: en\n\n1\n00:00:01.000 --> 00:00:03.000 line:0\n \n"
                   "We clip.\n   \nThe duct.\n00:00:04.000 --> 00:00:05.000\nno blank line before me\n")
    cues = read_transcript(vtt)
    assert [(c.start, c.end, c.text, c.where) for c in cues] == [(1.0, 3.0, "We clip. The duct.", "line 6"),
                                                                 (4.0, 5.0, "no blank line before me", "line 11")]
    # karaoke timing tags without a rolling display: ordinary captions, one cue one text
    vtt.write_text("WEBVTT\n\n00:01.000 --> 00:03.000\nWe <00:02.000>clip.\n\n00:03.000 --> 00:04.000\nWe cut.\n")
    cues = read_transcript(vtt)
    assert [(c.text, c.words) for c in cues] == [("We clip.", ()), ("We cut.", ())]
    vtt.write_text("WEBVTTX\n\n00:01.000 --> 00:02.000\nhi\n")
    with pytest.raises(HVLInputError, match=r"a.vtt, line 1: a WebVTT file starts with 'WEBVTT'"):
        read_transcript(vtt)
    vtt.write_text("WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n\njust text\nmore text\n")
    with pytest.raises(HVLInputError, match=r"a.vtt, line 6: expected a WebVTT timing line"):
        read_transcript(vtt)


def test_ytdlp_names():
    assert split_ytdlp_name("Lecture 3 [Part 1] [dQw4w9WgXcQ].en-orig.vtt") == ("Lecture 3 [Part 1]", "dQw4w9WgXcQ",
                                                                                ".en-orig.vtt")
    assert parse_ytdlp_name("/x/Talk [a-b_C1].info.json") == ("Talk", "a-b_C1")
    assert parse_ytdlp_name("Talk [abc].mp4") == ("Talk", "abc")
    assert parse_ytdlp_name("case01.mp4") is None and parse_ytdlp_name("Talk [abc]") is None


INFO = {"id": "dQw4w9WgXcQ", "title": "Laparoscopic cholecystectomy, step by step", "uploader": "Surgery Lectures",
        "upload_date": "20240131", "duration": 30.0, "tags": ["surgery"], "formats": [{"format_id": "18"}],
        "description": "How a laparoscopic cholecystectomy is done, from port placement\nto clipping the duct.\n\n"
                       "Slides: https://example.org/slides.pdf\n#surgery #laparoscopy\n\n"
                       "0:00 Introduction\n0:12 Clipping\n\nSubscribe for more lectures!",
        "chapters": [{"start_time": 0.0, "end_time": 12.0, "title": "Port placement"},
                     {"start_time": 12.0, "end_time": 30.0, "title": "Clipping the cystic duct"}]}


def test_info_json_is_read_tolerantly_and_bad_chapter_times_are_refused(tmp_path):
    p = tmp_path / "T [dQw4w9WgXcQ].info.json"
    p.write_text(json.dumps(INFO))
    info = read_info_json(p)
    assert (info["title"], info["uploader"], info["upload_date"]) == (INFO["title"], "Surgery Lectures", "20240131")
    assert info["chapters"] == [{"start_time": 0.0, "end_time": 12.0, "title": "Port placement"},
                                {"start_time": 12.0, "end_time": 30.0, "title": "Clipping the cystic duct"}]
    assert [(c.start, c.end, c.text, c.where) for c in read_chapters(p)] == [
        (0.0, 12.0, "Port placement", "chapters[0]"), (12.0, 30.0, "Clipping the cystic duct", "chapters[1]")]
    abstract = "How a laparoscopic cholecystectomy is done, from port placement to clipping the duct."
    assert read_abstracts(p) == [abstract]  # the first paragraph; the links, hashtags and chapters dropped
    assert read_abstracts(p, "title") == [INFO["title"]] and read_abstracts(p, "none") == []
    p.write_text(json.dumps({"id": "x"}))  # a site without title, chapters or description
    assert read_info_json(p)["chapters"] == [] and read_chapters(p) == [] and read_abstracts(p) == []
    p.write_text(json.dumps({"description": "Intro text.\n\n0:00 Start\n0:20 End part"}))  # chapters from lines
    assert [(c.start, c.text, c.where) for c in read_chapters(p)] == [(0.0, "Start", "description, line 3"),
                                                                       (20.0, "End part", "description, line 4")]
    for bad, field in [('{"chapters": [{"start_time": 0}, {"start_time": Infinity}]}', "chapters[1].start_time"),
                       ('{"chapters": [{"start_time": -4, "end_time": 3}]}', "chapters[0].start_time"),
                       ('{"chapters": [{"start_time": 0, "end_time": NaN}]}', "chapters[0].end_time")]:
        p.write_text(bad)
        with pytest.raises(HVLInputError, match=rf"info.json: invalid entry\n  field '{field}'".replace("[", r"\[")):
            read_info_json(p)
    p.write_text('{"title": ')
    with pytest.raises(HVLInputError, match=r"info.json, line 1: not valid JSON"):
        read_info_json(p)


def test_description_abstract_drops_links_hashtags_timestamps_and_calls():
    d = "Follow us on twitter!\n\nWe remove the gallbladder.\nIt takes an hour. #surgery\nhttps://x.org\n\nSecond."
    assert description_abstract(d) == "We remove the gallbladder. It takes an hour. #surgery"
    assert description_abstract(d, "description") == "We remove the gallbladder. It takes an hour. #surgery Second."
    assert description_abstract("https://only.links\n#a #b") is None and description_abstract(None) is None


def write_mp4(path: Path, seconds: float, fps: int = 2) -> None:
    from hvl.core.data.video import write_video

    n = int(seconds * fps)
    frames = np.random.default_rng(len(path.name)).integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)
    write_video(path, frames, fps)


IDS = ["dQw4w9WgXcQ", "a-b_C1d2e3f", "Zz9_8-7yXwV"] + [f"lecture{k:02d}-x" for k in range(3, 15)]


def ytdlp_folder(root: Path, n: int = 3, seconds: float = 30.0) -> dict[str, list[tuple[float, str]]]:
    """``n`` lectures as yt-dlp leaves them; returns each one's spoken words."""
    said = {}
    for k, vid in enumerate(IDS[:n]):
        title = f"Lecture {k + 1} [Part {k + 1}]: cholecystectomy"
        base = root / f"{title} [{vid}]"
        write_mp4(base.with_name(base.name + ".mp4"), seconds)
        words = spoken(t0=1.0 + k % 3)
        said[vid] = words
        base.with_name(base.name + ".en.vtt").write_text(youtube_vtt(
            [[(0.0, "[Music]")]] + display_lines(words), end=seconds))
        base.with_name(base.name + ".info.json").write_text(json.dumps({**INFO, "id": vid, "title": title}))
        base.with_name(base.name + ".webp").write_bytes(b"RIFF")  # the thumbnail: not an input
    # manual English subtitles beside the auto-captions of the first lecture: a second source
    (root / "Lecture 1 [Part 1]: cholecystectomy [dQw4w9WgXcQ].en-GB.srt").write_text(
        "1\n00:00:01,000 --> 00:00:04,500\nToday we will look at the gall bladder and liver.\n\n"
        "2\n00:00:05,000 --> 00:00:07,000\nFirst, ports are placed under direct vision.\n")
    return said


def test_ytdlp_folder_layout_is_recognised_with_strays_listed(tmp_path):
    ytdlp_folder(tmp_path)
    (tmp_path / "Lecture 9 [zzzzzzzzzzz].f137.mp4").write_bytes(b"\x00")
    (tmp_path / "Lecture 9 [zzzzzzzzzzz].f251.webm.part").write_bytes(b"\x00")
    (tmp_path / "Lecture 1 [Part 1]: cholecystectomy [dQw4w9WgXcQ].en.srt").write_text("1\n00:00:01,000 --> "
                                                                                        "00:00:02,000\nx\n")
    (tmp_path / "Lecture 2 [Part 2]: cholecystectomy [a-b_C1d2e3f].live_chat.json").write_text("{}")
    (tmp_path / "My playlist [PL123].info.json").write_text('{"_type": "playlist"}')
    layout = discover(tmp_path)
    assert layout.kind == "ytdlp" and sorted(layout.inputs) == ["Zz9_8-7yXwV", "a-b_C1d2e3f", "dQw4w9WgXcQ"]
    first = layout.inputs["dQw4w9WgXcQ"]
    assert sorted(first.transcripts) == ["en", "en-GB"] and first.transcripts["en"].suffix == ".vtt"
    assert first.info == first.chapters == first.abstract and first.info.name.endswith(".info.json")
    stray = "\n".join(layout.stray)
    assert "f137.mp4: an unfinished or unmerged" in stray and "webm.part: an unfinished" in stray
    assert "[dQw4w9WgXcQ].en.srt: a second 'en' subtitle file" in stray and "live chat" in stray
    assert "PL123].info.json: no video with id 'PL123'" in stray
    # --write-description without --write-info-json: the .description gives the abstract (and chapter lines)
    third = layout.inputs["Zz9_8-7yXwV"]
    third.info.unlink()
    third.info.with_name(third.info.name.replace(".info.json", ".description")).write_text(INFO["description"])
    (tmp_path / "splits.csv").write_text("video_id,split\ndQw4w9WgXcQ,train\na-b_C1d2e3f,val\nZz9_8-7yXwV,test\n")
    layout = discover(tmp_path)
    third = layout.inputs["Zz9_8-7yXwV"]
    assert third.info is None and third.abstract == third.chapters and third.abstract.suffix == ".description"
    assert read_abstracts(third.abstract) == [read_abstracts(first.info)[0]]
    assert [c.text for c in read_chapters(third.chapters)] == ["Introduction", "Clipping"]
    assert layout.splits == {"dQw4w9WgXcQ": "train", "a-b_C1d2e3f": "val", "Zz9_8-7yXwV": "test"}


@pytest.mark.slow
def test_hvl_prepare_on_a_ytdlp_folder_with_no_flags(tmp_path, capsys, monkeypatch):
    raw = tmp_path / "ytdl"
    raw.mkdir()
    said = ytdlp_folder(raw, n=15)  # split 11 / 2 / 2: each level of val has two samples to contrast
    out = tmp_path / "prepared"
    assert main(["prepare", str(raw), "--out", str(out), "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "levels: clip, phase, video" in table
    report = json.loads((out / "report.json").read_text())
    assert report["layout"]["kind"] == "ytdlp" and report["layout"]["videos_kept"] == 15
    assert report["problems"]["count"] == 0
    recs = {r.video_id: r for s in ("train", "val", "test") if (out / f"{s}.jsonl").is_file()
            for r in load_manifest(out / f"{s}.jsonl").videos}
    assert sorted(recs) == sorted(said)  # the yt-dlp ids
    r = recs["dQw4w9WgXcQ"]
    assert r.meta["title"] == "Lecture 1 [Part 1]: cholecystectomy" and r.meta["upload_date"] == "20240131"
    assert r.meta["uploader"] == "Surgery Lectures" and r.meta["sources"] == ["en", "en-GB"]
    assert [(p.start, p.end, p.text) for p in r.phases] == [(0, 12, "Port placement"),
                                                            (12, 30, "Clipping the cystic duct")]
    assert r.texts == ["How a laparoscopic cholecystectomy is done, from port placement to clipping the duct."]
    # each spoken sentence is one clip, once; the manual subtitles are its extra positives
    assert [c.texts[0] for c in r.clips] == SENTENCES
    assert r.clips[0].texts[1] == "Today we will look at the gall bladder and liver."
    for vid, words in said.items():
        anchors = " ".join(c.texts[0] for c in recs[vid].clips)
        assert anchors.split() == [w for _, w in words]  # every spoken word once, none twice
    c = report["counts"]
    lines = 1 + -(-len(said["dQw4w9WgXcQ"]) // 4)
    assert c["caption_repeated_lines"] == 15 * (2 * lines - 1) and c["caption_flash_cues"] == 15 * lines
    distinct = [t for rec in recs.values() for clip in rec.clips for t in dict.fromkeys(clip.texts)]
    # the manual subtitles are extra positives: sentence 1 of clips 1 and 2 (its window reaches it), sentence 2
    assert report["total"]["clips"] == 45 and len(distinct) == 45 + 3
    assert report["total"]["words"]["clip"] == round(np.mean([len(t.split()) for t in distinct]), 2)
    assert report["layout"]["stray_files"] == []  # thumbnails are not inputs, nor strays

    # the recipe in docs/prepare.md: the prepared folder trains as it is
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main(["fit", "--config", "surgical/demo_pretrain", "--data.init_args.train", str(out / "train.jsonl"),
                 "--data.init_args.val", str(out / "val.jsonl"), "--data.init_args.num_workers", "0",
                 "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1",
                 "--trainer.enable_progress_bar", "false"]) == 0


def test_abstract_and_pause_are_configurable(tmp_path):
    raw = tmp_path / "ytdl"
    raw.mkdir()
    ytdlp_folder(raw)
    cfg = PrepareConfig(abstract_from="title", clips=ClipConfig(pause_seconds=5.0), split_ratios=(1.0, 0.0, 0.0))
    prepare(raw, tmp_path / "o", cfg, progress=False)
    r = {r.video_id: r for r in load_manifest(tmp_path / "o" / "train.jsonl").videos}["a-b_C1d2e3f"]
    assert r.texts == ["Lecture 2 [Part 2]: cholecystectomy"]
    # no pause of 5 s: the three sentences' 9.7 s (the last word given a second) fit max_seconds as one
    assert [c.texts[0] for c in r.clips] == [" ".join(SENTENCES)]
