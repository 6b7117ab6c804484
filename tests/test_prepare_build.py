"""`hvl prepare` on raw folders: manifests in the training schema, report, cache, checks, layouts, re-encoding."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hvl.core.cli import main
from hvl.core.data.prepare.build import PrepareConfig, prepare
from hvl.core.data.prepare.clips import ClipConfig
from hvl.core.data.prepare.report import render_html
from hvl.core.data.schema import load_manifest
from hvl.core.data.video import Video, open_source
from hvl.core.errors import HVLInputError

FPS, SECONDS = 5, 12.0


def frames(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)


SRT = "1\n00:00:00,500 --> 00:00:02,000\nfirst we place\nthe ports\n\n2\n00:00:06,000 --> 00:00:07,000\nnow we clip\n"
VTT = ("WEBVTT\n\nNOTE clean transcript\n\n00:00.000 --> 00:01.500 line:0\n<v Dr A>We place the ports.</v>\n\n"
       "00:05.500 --> 00:07.500\nWe clip the duct.\n\n00:09.000 --> 00:11.000\nWe are done.\n")
WHISPER = {"segments": [{"start": 1.0, "end": 3.0, "text": " Opening the abdomen.",
                         "words": [{"word": "Opening", "start": 1.0, "end": 1.6}]},
                        {"start": 3.0, "end": 4.0, "text": " um"}, {"start": 4.0, "end": 8.0, "text": " Dissecting."}]}


@pytest.fixture(scope="module")
def raw_template(tmp_path_factory) -> Path:
    """Four tiny videos (12 s, 5 fps, 32 px) in hvl's layout, with transcripts in every format."""
    from hvl.core.data.video import write_video

    root = tmp_path_factory.mktemp("raw")
    for i in range(4):
        write_video(root / "videos" / f"case{i}.mp4", frames(int(SECONDS * FPS), i), FPS)
    t, c, a = (root / d for d in ("transcripts", "chapters", "abstracts"))
    for d in (t, c, a):
        d.mkdir()
    (t / "case0.aws.srt").write_bytes(b"\xef\xbb\xbf" + SRT.replace("\n", "\r\n").encode())
    (t / "case0.whisper.vtt").write_text(VTT)
    (t / "case1.whisper.json").write_text(json.dumps(WHISPER))
    (t / "case1.aws.csv").write_text("start,end,text\n1.0,2.0,opening\n4.5,6.0,dissect the triangle\n")
    (t / "case2.aws.srt").write_text(SRT)
    (t / "case3.aws.srt").write_text(SRT)
    (c / "case0.csv").write_text("start,end,step,text\n0,6,Preparation,Ports are placed.\n6,12,Clipping,\n")
    (c / "case1.txt").write_text("Chapters\n0:00 Opening\n0:04 Dissection & <more>\n")
    (c / "case2.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:12.000\nWhole case\n")
    (a / "case0.txt").write_text("A short case.\n")
    (a / "case1.csv").write_text("start,end,text\n0,12,Another case.\n")
    return root


@pytest.fixture
def raw(raw_template, tmp_path) -> Path:
    return Path(shutil.copytree(raw_template, tmp_path / "raw"))


def records(out: Path) -> dict:
    return {r.video_id: r for s in ("train", "val", "test") if (out / f"{s}.jsonl").is_file()
            for r in load_manifest(out / f"{s}.jsonl").videos}


def test_manifests_follow_the_schema_and_the_clip_rules(raw, tmp_path):
    out = tmp_path / "out"
    report = prepare(raw, out, PrepareConfig(clips=ClipConfig(anchor="aws")), progress=False)
    recs = records(out)
    assert sorted(recs) == ["case0", "case1", "case2", "case3"]
    r0 = recs["case0"]
    assert r0.duration == SECONDS and r0.texts == ["A short case."] and r0.meta == {"anchor": "aws",
                                                                                  "sources": ["aws", "whisper"]}
    # anchor 'first we place the ports' [0.5, 2] widened to 4 s around 1.25 -> [0, 4]; whisper cues overlapping it
    assert [(c.start, c.end, c.texts) for c in r0.clips] == [
        (0.0, 4.0, ["first we place the ports", "We place the ports."] + ["first we place the ports"]),
        (4.5, 8.5, ["now we clip", "We clip the duct.", "now we clip"])]
    assert [(p.start, p.end, p.text) for p in r0.phases] == [(0, 6, "Ports are placed."), (6, 12, "Clipping")]
    r1 = recs["case1"]  # YouTube chapters: end = next start, last = video end; the filler 'um' is gone
    assert [(p.start, p.end, p.text) for p in r1.phases] == [(0, 4, "Opening"), (4, 12, "Dissection & <more>")]
    assert r1.clips[1].texts == ["dissect the triangle", "Dissecting."] + ["dissect the triangle"]
    assert recs["case3"].phases == [] and recs["case3"].texts == []
    assert Path(r0.path).is_absolute() and Path(r0.path).is_file()
    # report: hours, counts, per-split rows that add up, escaped HTML
    assert report["total"]["videos"] == 4 and report["total"]["hours"] == pytest.approx(4 * SECONDS / 3600, abs=1e-4)
    assert sum(s["clips"] for s in report["splits"].values()) == report["total"]["clips"] == 8
    assert report["counts"]["filler_texts"] == 1 and report["levels"] == ["clip", "phase", "video"]
    assert 0 < report["total"]["clip_text_coverage"] <= 1
    assert report["top_clip_texts"][0] == {"text": "first we place the ports", "count": 3}
    assert json.loads((out / "report.json").read_text()) == {k: v for k, v in report.items() if k != "_run"}
    html = (out / "report.html").read_text()
    assert all(f"<td>{s['video_id']}</td>" in html for lv in ("clip", "phase", "video") for s in report["samples"][lv])
    assert len(report["samples"]["clip"]) == 3 and len(report["samples"]["video"]) == 2
    report["samples"]["phase"] = [{"video_id": "x", "start": 0, "end": 1, "text": "Dissection & <script>"}]
    assert "Dissection &amp; &lt;script&gt;" in render_html(report) and "<script>" not in render_html(report)
    assert sorted(s for s in ("train", "val", "test") if (out / f"{s}.jsonl").is_file()) == ["test", "train", "val"]


def test_rerun_is_byte_identical_and_rebuilds_only_what_changed(raw, tmp_path):
    out = tmp_path / "out"
    first = prepare(raw, out, progress=False)["_run"]
    snap = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    again = prepare(raw, out, progress=False)["_run"]
    assert (first["rebuilt_videos"], again["rebuilt_videos"], again["cached_videos"]) == (4, 0, 4)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == snap
    (raw / "transcripts" / "case2.aws.srt").write_text(SRT.replace("now we clip", "now we cut"))
    assert prepare(raw, out, progress=False)["_run"]["rebuilt_videos"] == 1
    assert records(out)["case2"].clips[1].texts[0] == "now we cut"
    other = tmp_path / "other"  # another output folder, same inputs and seed: the same bytes
    prepare(raw, other, progress=False)
    assert (other / "train.jsonl").read_bytes() == (out / "train.jsonl").read_bytes()


def _outside(raw):
    (raw / "transcripts" / "case2.aws.srt").write_text(SRT + "\n3\n00:00:11,000 --> 00:00:15,000\ntoo late\n")
    return "case2.aws.srt, line 11: cue_outside_video"


def _order(raw):
    (raw / "transcripts" / "case2.aws.srt").write_text(SRT + "\n3\n00:00:03,000 --> 00:00:04,000\nback\n")
    return "case2.aws.srt, line 11: cue_order"


def _bad_cue(raw):
    (raw / "transcripts" / "case1.whisper.json").write_text(json.dumps(
        {"segments": WHISPER["segments"] + [{"start": 9.0, "end": 9.0, "text": "zero"}]}))
    return r"case1.whisper.json, segments\[3\]: bad_cue"


def _no_transcript(raw):
    for p in (raw / "transcripts").glob("case3.*"):
        p.unlink()
    return "case3.mp4: video_without_transcript"


def _no_video(raw):
    (raw / "transcripts" / "ghost.aws.srt").write_text(SRT)
    return "ghost.aws.srt: transcript_without_video"


def _undecodable(raw):
    (raw / "videos" / "case3.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(300))
    return "case3.mp4: undecodable_video"


def _chapter_outside(raw):
    (raw / "chapters" / "case2.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:20.000\nWhole case\n")
    return "case2.vtt, line 3: chapter_outside_video"


@pytest.mark.parametrize("break_it, kind", [(_outside, "cue_outside_video"), (_order, "cue_order"), (_bad_cue, "bad_cue"),
                                            (_no_transcript, "video_without_transcript"),
                                            (_no_video, "transcript_without_video"),
                                            (_undecodable, "undecodable_video"),
                                            (_chapter_outside, "chapter_outside_video")])
def test_each_problem_stops_the_run_or_is_repaired_under_warn(raw, tmp_path, break_it, kind):
    where = break_it(raw)
    out = tmp_path / "out"
    with pytest.raises(HVLInputError, match=where) as e:
        prepare(raw, out, PrepareConfig(on_bad_video="error"), progress=False)
    assert f"--warn {kind}" in str(e.value) and "nothing was written" in str(e.value)
    assert not (out / "train.jsonl").exists()
    # by default the video with the problem is left out, named, and the others are written (issue 34)
    run = prepare(raw, out, progress=False)["_run"]
    assert re.search(where, run["left_out"]) and f"--warn {kind}" in run["left_out"]
    kept = set(records(out))
    broken = "ghost" if kind == "transcript_without_video" else re.search(r"case\d", where)[0]
    assert broken not in kept and len(kept) == (4 if broken == "ghost" else 3)
    report = prepare(raw, out, PrepareConfig(warn=[kind]), progress=False)
    assert report["problems"]["by_kind"] == {kind: 1}
    assert report["problems"]["first"][0]["kind"] == kind
    recs = records(out)
    if kind in ("video_without_transcript", "undecodable_video"):
        assert "case3" not in recs and report["layout"]["videos_kept"] == 3
    if kind == "cue_outside_video":
        assert report["counts"]["clipped_cues"] == 1 and recs["case2"].clips[-1].end == SECONDS
    if kind == "cue_order":
        starts = [c.start for c in recs["case2"].clips]
        assert starts == sorted(starts) and len(starts) == 3
    if kind == "bad_cue":
        assert report["counts"]["dropped_bad_cues"] == 1
    if kind == "chapter_outside_video":
        assert recs["case2"].phases[0].end == SECONDS


def test_overlapping_cues_are_legal_kept_and_counted(raw, tmp_path):
    """WebVTT and SubRip show overlapping cues together: no flag needed, the report counts them."""
    (raw / "transcripts" / "case2.aws.srt").write_text(SRT + "\n3\n00:00:06,500 --> 00:00:08,000\nover\n")
    report = prepare(raw, tmp_path / "out", progress=False)
    assert report["counts"]["overlapping_cues"] == 1 and report["problems"]["count"] == 0
    assert [c.texts[0] for c in records(tmp_path / "out")["case2"].clips][-1] == "over"
    # commands written for earlier versions, which needed the flag, still run
    assert prepare(raw, tmp_path / "o2", PrepareConfig(warn=["cue_overlap"]), progress=False)["problems"]["count"] == 0


def test_cli_reports_errors_and_prints_the_table(raw, tmp_path, capsys):
    _no_video(raw)
    assert main(["prepare", str(raw), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "transcript_without_video" in capsys.readouterr().err
    assert main(["prepare", str(raw), "--out", str(tmp_path / "o"), "--no-progress", "--warn", "all"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("split  videos") and "\ntotal " in printed
    assert "rebuilt 0 video(s), 4 from cache" in printed  # the stopped run's per-video work was kept


def test_bad_options_and_empty_folders(raw, tmp_path):
    with pytest.raises(HVLInputError, match="unknown problem kind"):
        prepare(raw, tmp_path / "o", PrepareConfig(warn=["typo"]), progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(HVLInputError, match="no videos"):
        prepare(tmp_path / "empty", tmp_path / "o", progress=False)
    (raw / "splits.csv").write_text("video_id,split\ncase0,train\ncase1,val\n")
    with pytest.raises(HVLInputError, match=r"splits.csv: no split for video\(s\) \['case2', 'case3'\]"):
        prepare(raw, tmp_path / "o", progress=False)
    (raw / "splits.csv").write_text("video_id,split\ncase0,train\ncase1,val\ncase2,test\ncase3,holdout\n")
    with pytest.raises(HVLInputError, match=r"unknown split name\(s\) \['holdout'\]"):
        prepare(raw, tmp_path / "o", progress=False)
    (raw / "splits.csv").write_text("video_id,split\ncase0,train\ncase0,val\n")
    with pytest.raises(HVLInputError, match=r"splits.csv, line 3: video 'case0' is in split 'val' and in 'train'"):
        prepare(raw, tmp_path / "o", progress=False)


def test_split_file_is_followed(raw, tmp_path):
    (raw / "splits.csv").write_text("video_id,split\ncase0,train\ncase1,train\ncase2,val\ncase3,test\n")
    report = prepare(raw, tmp_path / "o", progress=False)
    assert [r.video_id for r in load_manifest(tmp_path / "o" / "val.jsonl").videos] == ["case2"]
    assert report["layout"]["splits"].endswith("splits.csv")


def test_without_chapters_there_is_no_phase_level(raw, tmp_path):
    shutil.rmtree(raw / "chapters")
    report = prepare(raw, tmp_path / "o", progress=False)
    assert "phase" not in report["levels"] and all(not r.phases for r in records(tmp_path / "o").values())
    assert any("drop 'phase'" in a for a in report["advice"])


def test_peskavlp_layout_needs_no_conversion(raw_template, tmp_path):
    root = tmp_path / "svl"
    (root / "videos").mkdir(parents=True)
    for d in ("splits", "aws_narration_texts", "whisper_narration_texts", "keystep_texts", "abstract_texts"):
        (root / d).mkdir()
    names = ["vd01en1354e", "vd02en2000a", "vd03en3000b"]
    for i, n in enumerate(names):
        shutil.copy(raw_template / "videos" / f"case{i}.mp4", root / "videos" / f"{n}.mp4")
        (root / "aws_narration_texts" / f"{n}.csv").write_text(
            "start,end,text\n0.0,3.0,we insert the trocars\n5.0,8.0,we dissect calot\n")
        (root / "whisper_narration_texts" / f"{n}.csv").write_text(
            "start,end,text\n0.2,2.5,We insert the trocars.\n2.5,4.0,Good.\n5.5,7.0,Dissecting Calot's triangle.\n")
        (root / "keystep_texts" / f"{n}.csv").write_text(
            "start,end,step,text\n0,4,port placement,The ports are placed.\n4,12,calot dissection,Calot is dissected.\n")
        (root / "abstract_texts" / f"{n}.csv").write_text("start,end,text\n0,12,A cholecystectomy.\n")
    (root / "splits" / "train_narration.csv").write_text("video_path\nvd01en1354e.mp4\nvd02en2000a.mp4\n")
    (root / "splits" / "train_keystep.csv").write_text("video_path\nvd01en1354e.mp4\n")
    (root / "splits" / "val.csv").write_text("video_path\nvd03en3000b.mp4\n")
    report = prepare(root, tmp_path / "o", PrepareConfig(clips=ClipConfig(anchor="aws")), progress=False)
    assert report["layout"]["kind"] == "peskavlp"
    train = load_manifest(tmp_path / "o" / "train.jsonl").videos
    assert [r.video_id for r in train] == names[:2]
    assert [r.video_id for r in load_manifest(tmp_path / "o" / "val.jsonl").videos] == names[2:]
    r = train[0]
    assert r.meta["sources"] == ["aws", "whisper"] and r.texts == ["A cholecystectomy."]
    # Whisper's 'We insert the trocars.' repeats the anchor (case and punctuation aside): dropped, then padded
    assert [c.texts for c in r.clips] == [["we insert the trocars", "Good.", "we insert the trocars"],
                                          ["we dissect calot", "Dissecting Calot's triangle.", "we dissect calot"]]
    assert [p.text for p in r.phases] == ["The ports are placed.", "Calot is dissected."]


def test_reencoded_copies_and_frame_folders_are_what_the_manifest_points_at(raw, tmp_path):
    out = tmp_path / "o"
    prepare(raw, out, PrepareConfig(reencode="h264", size=64, gop=4), progress=False)
    r = records(out)["case0"]
    assert r.path == "videos/case0.mp4" and r.meta["original"].endswith("case0.mp4")
    copy = Video(open_source(out / r.path))
    orig = Video(open_source(raw / "videos" / "case0.mp4"))
    assert copy.num_frames == orig.num_frames and copy.source.get([0]).shape[1:] == (64, 64, 3)
    import av

    with av.open(str(out / r.path)) as box:
        keys = [p.is_keyframe for p in box.demux(box.streams.video[0]) if p.size]
    assert [i for i, k in enumerate(keys) if k][:4] == [0, 4, 8, 12]
    stamp = (out / r.path).stat().st_mtime_ns
    prepare(raw, out, PrepareConfig(reencode="h264", size=64, gop=4), progress=False)  # resumed: nothing redone
    assert (out / r.path).stat().st_mtime_ns == stamp

    prepare(raw, out, PrepareConfig(frames_fps=2.0), progress=False)
    r = records(out)["case0"]
    assert r.path == "frames/case0"
    v = Video(open_source(out / r.path))
    assert v.fps == 2.0 and v.num_frames == SECONDS * 2 and v.duration == SECONDS
    np.testing.assert_allclose(v.source.get([3]).float().mean(), orig.source.get([int(1.5 * FPS)]).float().mean(),
                               atol=8)  # frame 3 at 2 fps shows t = 1.5 s
