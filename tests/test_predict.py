"""`hvl predict`: unlabelled videos -> timelines, equal to `hvl zeroshot --predictions` on labelled ones; resumable,
one bad video reported for itself, output folders confined; the tabular and Cholec80 formats read back."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from index_helpers import colour_video, tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]


class Killed(BaseException):
    """What a SIGKILL is to the run: nothing after it in the process happens."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Three labelled demo videos (surgical demo, 90 s each) and an untrained tiny model: equality needs no training."""
    from hvl.core.cli import main

    work = tmp_path_factory.mktemp("predict")
    assert main(["demo", "surgical", "--out", str(work / "demo"), "--split-sizes", "1", "1", "2"]) == 0
    return work, tiny_checkpoint(work / "tiny.ckpt")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Four short unlabelled videos (3-6 s) in a folder."""
    folder = tmp_path_factory.mktemp("clips")
    for i in range(4):
        colour_video(folder / f"clip{i}.mp4", i, seconds=3.0 + i)
    return folder


def _predict(*args: str) -> int:
    from hvl.core.cli import main

    return main(["predict", *args, "--prompts", "surgical:demo", "--level", "clip", "--no-progress",
                 "--num-workers", "0"])


def _timelines(out: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted(out.glob("*/timeline.json"))}


@pytest.mark.slow
def test_frame_predictions_equal_zeroshot_predictions_exactly(demo, tmp_path, monkeypatch):
    """On labelled videos, per frame: the probabilities of `hvl zeroshot` (the tensors, bit for bit, and the
    --predictions file, rounded as it rounds), the predicted and the smoothed class."""
    from hvl.core.cli import main
    from hvl.core.data.records import manifest_videos
    from hvl.core.data.schema import load_prompt_file
    from hvl.core.evaluation.zeroshot import predict
    from hvl.core.inference.write import read_timeline
    from hvl.core.models.checkpoint import load_model
    from hvl.core.registry import resolve_prompt_file

    work, ckpt = demo
    manifest = work / "demo" / "test.jsonl"
    cfg = tmp_path / "zs.yaml"
    cfg.write_text(f"dataset: {{reader: manifest, path: {manifest}}}\nprompts: surgical:demo\nlevel: clip\n"
                   "num_workers: 0\n")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main(["zeroshot", "--config", str(cfg), "--ckpt", str(ckpt), "--predictions", str(tmp_path / "zs"),
                 "--no-mlflow", "--no-progress"]) == 0
    assert _predict(str(manifest), "--ckpt", str(ckpt), "--out", str(tmp_path / "pred")) == 0

    model, _ = load_model(ckpt)
    videos = manifest_videos(manifest)
    _, _, probs = predict(model, videos, load_prompt_file(resolve_prompt_file("surgical:demo")), "clip",
                          image_size=32, num_workers=0, progress=False)
    zs = json.loads((tmp_path / "zs" / "predictions.json").read_text())
    assert len(zs["videos"]) == len(videos) == 2
    for entry, (rec, _), p in zip(zs["videos"], videos, probs):
        ref = json.loads((tmp_path / "zs" / entry["file"]).read_text())
        tl = read_timeline(tmp_path / "pred" / rec.video_id / "timeline.json")
        at = {round(t, 6): i for i, t in enumerate(tl.t)}
        rows = [at[t] for t in ref["t"]]  # the labelled times zero-shot scored, among every time predict scored
        assert len(rows) == len(ref["t"]) > 40
        assert torch.equal(torch.tensor([tl.probs[i] for i in rows], dtype=torch.float32), p)
        assert [[round(v, 5) for v in tl.probs[i]] for i in rows] == ref["probs"]
        assert [tl.pred[i] for i in rows] == ref["pred"]
        if len(rows) == len(tl.t):  # smoothing sees the same sequence only where every time is labelled
            assert tl.smoothed == ref["smoothed"]

    # the windowed path (every frame encoded once, windows pooled): the same equality
    from hvl.core.data.transforms import Preprocess
    from hvl.core.inference.predict import Predictor, video_timeline

    prompts = load_prompt_file(resolve_prompt_file("surgical:demo"))
    _, _, windowed = predict(model, videos[:1], prompts, "clip", image_size=32, num_workers=0, progress=False,
                             window=4.0)
    tl = video_timeline(Predictor(model, Preprocess.square(32), prompts, Path("p"), "clip", 4.0, None, num_workers=0),
                        videos[0][1])
    at = {round(t, 6): i for i, t in enumerate(tl.t)}
    rows = [at[round(t, 6)] for t in json.loads((tmp_path / "zs" / zs["videos"][0]["file"]).read_text())["t"]]
    assert torch.equal(torch.tensor([tl.probs[i] for i in rows], dtype=torch.float32), windowed[0])


@pytest.mark.slow
def test_a_killed_run_resumes_without_recomputing_finished_videos(demo, clips, tmp_path, monkeypatch):
    """A run stopped after its first video (an injected interrupt, as a kill) is resumed: the finished video is not
    predicted again, and every file equals that of an uninterrupted run. Changed settings predict again."""
    from hvl.core.inference import run

    _, ckpt = demo
    videos = clips
    assert _predict(str(videos), "--ckpt", str(ckpt), "--out", str(tmp_path / "whole"), "--format", "csv") == 0

    real, calls = run.video_timeline, []

    def killed_after_one(predictor, path, *a, **kw):
        if calls:
            raise Killed  # the process dies here: the second video is never written
        calls.append(Path(path).name)
        return real(predictor, path, *a, **kw)

    monkeypatch.setattr(run, "video_timeline", killed_after_one)
    with pytest.raises(Killed):
        _predict(str(videos), "--ckpt", str(ckpt), "--out", str(tmp_path / "resumed"), "--format", "csv")
    assert len(_timelines(tmp_path / "resumed")) == 1

    computed = []

    def counted(predictor, path, *a, **kw):
        computed.append(Path(path).name)
        return real(predictor, path, *a, **kw)

    monkeypatch.setattr(run, "video_timeline", counted)
    assert _predict(str(videos), "--ckpt", str(ckpt), "--out", str(tmp_path / "resumed"), "--format", "csv") == 0
    assert calls[0] not in computed and len(computed) == len(list(videos.glob("*.mp4"))) - 1
    whole, resumed = _timelines(tmp_path / "whole"), _timelines(tmp_path / "resumed")
    assert whole == resumed and len(whole) == 4
    for name in whole:
        assert (tmp_path / "whole" / name / "segments.csv").read_bytes() == \
            (tmp_path / "resumed" / name / "segments.csv").read_bytes()
    summary = json.loads((tmp_path / "resumed" / "predict.json").read_text())
    assert sorted(r["status"] for r in summary["per_video"]) == ["finished"] + ["predicted"] * 3

    computed.clear()  # a renamed file is found by its content: nothing is predicted
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    first = min(videos.glob("*.mp4"))
    shutil.copy(first, renamed / "new_name.mp4")
    assert _predict(str(renamed), "--ckpt", str(ckpt), "--out", str(tmp_path / "resumed")) == 0
    assert computed == []
    moved = json.loads((tmp_path / "resumed" / "new_name" / "timeline.json").read_text())
    assert moved["video_id"] == "new_name" and moved["probs"] == \
        json.loads(whole[first.stem].decode())["probs"]

    assert _predict(str(renamed), "--ckpt", str(ckpt), "--out", str(tmp_path / "resumed"),
                    "--smooth-window", "3") == 0
    assert computed == ["new_name.mp4"]  # another setting: another key


@pytest.mark.slow
def test_an_unreadable_video_is_reported_and_the_others_are_predicted(demo, tmp_path, capsys):
    _, ckpt = demo
    folder = tmp_path / "videos"
    colour_video(folder / "good.mp4", 0, seconds=3.0)
    (folder / "broken.mp4").write_bytes(b"\x00\x01 not a video" * 100)
    assert _predict(str(folder), "--ckpt", str(ckpt), "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "broken.mp4" in err and "1 video(s) could not be predicted" in err
    assert (tmp_path / "out" / "good" / "timeline.json").is_file()
    assert not (tmp_path / "out" / "broken" / "timeline.json").exists()
    rows = {r["video_id"]: r for r in json.loads((tmp_path / "out" / "predict.json").read_text())["per_video"]}
    assert rows["good"]["status"] == "predicted" and rows["broken"]["status"] == "failed"
    assert "broken.mp4" in rows["broken"]["error"]


@pytest.mark.slow
def test_output_folders_are_sanitised_unique_and_confined(demo, tmp_path):
    """Two videos with one stem get two folders; an id from a manifest is data (no path); a link planted where a
    video's folder goes is refused for that video, and nothing is written through it."""
    from hvl.core.inference.sources import find_videos

    _, ckpt = demo
    a = colour_video(tmp_path / "a" / "x.mp4", 0, seconds=2.0)
    b = colour_video(tmp_path / "b" / "x.mp4", 1, seconds=2.0)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"video_id": "../../Evil/ID", "path": str(a)}) + "\n"
                        + json.dumps({"video_id": "X", "path": str(colour_video(tmp_path / "c.mp4", 2))}) + "\n")
    found = find_videos([a, b, manifest, a])
    assert [v.folder for v in found] == ["x", "x-1", "X-2"]  # the manifest's a is a's file: predicted once
    assert find_videos([manifest])[0].folder == "_.._Evil_ID"

    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "x-1").symlink_to(outside, target_is_directory=True)
    assert _predict(str(a), str(b), "--ckpt", str(ckpt), "--out", str(out)) == 2
    assert (out / "x" / "timeline.json").is_file() and list(outside.iterdir()) == []
    rows = json.loads((out / "predict.json").read_text())["per_video"]
    assert rows[1]["status"] == "failed" and "symbolic link" in rows[1]["error"]


def test_bad_options_are_one_error_naming_the_option(tmp_path, capsys):
    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt")
    video = colour_video(tmp_path / "v.mp4", 0)
    assert _predict(str(video), "--ckpt", str(ckpt), "--out", str(tmp_path / "o"), "--fps", "0") == 2
    assert "--fps" in capsys.readouterr().err
    assert _predict(str(tmp_path / "missing.mp4"), "--ckpt", str(ckpt), "--out", str(tmp_path / "o")) == 2
    assert "missing.mp4" in capsys.readouterr().err
    assert _predict(str(video), "--ckpt", str(ckpt), "--out", str(tmp_path / "o"), "--smooth-window", "4") == 2
    assert "--smooth-window" in capsys.readouterr().err


def test_predict_is_a_command_of_hvl():
    from hvl.core.cli import MODULE_COMMANDS, build_parser

    assert MODULE_COMMANDS["predict"][0] == "hvl.core.cli.predict"
    args = build_parser("predict").parse_args(["predict", "v.mp4", "d/", "--ckpt", "c", "--prompts", "p", "--out", "o",
                                               "--format", "csv", "--format", "cholec80"])
    assert args.inputs == ["v.mp4", "d/"] and args.formats == ["csv", "cholec80"]


# ------------------------------------------------------------------ formats, read back
def _timeline(t, smoothed, classes=("Preparation", "ClippingCutting", "CleaningCoagulation"), duration=None, video_fps=25.0,
              fps=1.0):
    from hvl.core.inference.timeline import Timeline, merge_runs

    c = len(classes)
    probs = np.full((len(t), c), 0.1 / max(c - 1, 1))
    probs[np.arange(len(t)), smoothed] = 0.9
    duration = duration or len(t) / fps
    return Timeline(video_id="v", path="/x/v.mp4", duration=duration, fps=fps, video_fps=video_fps,
                    num_frames=int(round(duration * video_fps)), classes=list(classes), t=list(t),
                    probs=probs.tolist(), pred=list(smoothed), smoothed=list(smoothed),
                    segments=merge_runs(t, smoothed, classes, duration, probs))


@pytest.mark.parametrize("video_fps,fps", [(25.0, 1.0), (29.97, 1.0), (10.0, 2.5), (23.976, 0.7)])
def test_cholec80_file_reads_back_to_the_same_timeline(tmp_path, video_fps, fps):
    """hvl's own Cholec80 reader (the domain's) reads the file back: the label at every sampled time and the
    frame count are the timeline's, at frame rates where a boundary falls between frames."""
    from hvl.core.inference.formats import writer
    from hvl.core.inference.timeline import label_at
    from hvl.domains.surgical.cholec80 import read_phase_annotation

    rng = np.random.default_rng(int(video_fps * 100 + fps * 10))
    n = 40
    runs = np.repeat(rng.integers(0, 3, 8), rng.integers(1, 9, 8))[:n]
    t = [k / fps for k in range(len(runs))]
    tl = _timeline(t, runs.tolist(), video_fps=video_fps, fps=fps, duration=len(runs) / fps - 0.01)
    folder = tmp_path / "v"
    folder.mkdir()
    path = writer("cholec80")(tl, folder)
    assert path.name == "v-phase.txt" and path.read_text().startswith("Frame\tPhase\n0\t")
    segs = read_phase_annotation(path, fps=video_fps)
    assert round(segs[-1].end * video_fps) == tl.num_frames
    assert [label_at(segs, x) for x in tl.t] == [tl.classes[k] for k in tl.smoothed]


@pytest.mark.slow
def test_cholec80_round_trip_of_a_predicted_video(demo, tmp_path):
    from hvl.core.inference.timeline import label_at
    from hvl.core.inference.write import read_timeline
    from hvl.domains.surgical.cholec80 import read_phase_annotation

    work, ckpt = demo
    video = min((work / "demo" / "videos").glob("*test*.mp4"))
    assert _predict(str(video), "--ckpt", str(ckpt), "--out", str(tmp_path), "--format", "cholec80") == 0
    tl = read_timeline(tmp_path / video.stem / "timeline.json")
    segs = read_phase_annotation(tmp_path / video.stem / f"{video.stem}-phase.txt", fps=tl.video_fps)
    assert [label_at(segs, x) for x in tl.t] == [tl.classes[k] for k in tl.smoothed]
    assert len((tmp_path / video.stem / f"{video.stem}-phase.txt").read_text().splitlines()) == tl.num_frames + 1


def test_cholec80_refuses_a_class_name_it_cannot_hold(tmp_path):
    from hvl.core.errors import HVLInputError
    from hvl.core.inference.formats import writer

    tl = _timeline([0.0, 1.0], [0, 1], classes=("a\tb", "c"))
    with pytest.raises(HVLInputError, match="rename them in the prompt file"):
        writer("cholec80")(tl, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_json_and_csv_read_back_to_the_segments(tmp_path):
    from hvl.core.inference.formats import writer
    from hvl.core.inference.formats.tabular import read_segments_csv, read_segments_json

    tl = _timeline([0.0, 1.0, 2.0, 3.0, 4.0], [0, 0, 2, 2, 1], classes=("Prep, \"a\"", "b", "c"))
    assert read_segments_json(writer("json")(tl, tmp_path)) == tl.segments
    assert read_segments_csv(writer("csv")(tl, tmp_path)) == tl.segments
    assert json.loads((tmp_path / "segments.json").read_text())[0] == {"start": 0.0, "end": 2.0,
                                                                       "label": "Prep, \"a\"", "confidence": 0.9}
    rows = (tmp_path / "segments.csv").read_text().splitlines()
    assert rows[0] == "start,end,label,confidence" and len(rows) == 4
    frames = writer("frames-csv")(tl, tmp_path).read_text().splitlines()
    assert frames[0] == 't,pred,smoothed,"p_Prep, ""a""",p_b,p_c' and len(frames) == 6
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".") or p.endswith(".tmp")]


@pytest.mark.slow
def test_serve_reviews_timelines_without_ground_truth_and_without_an_index(demo, clips, tmp_path):
    """`hvl serve --zeroshot <predict out> --videos <folder>`: the review page lists the timelines (no metrics, no
    truth ribbon), plays their videos from --videos only; search answers 404 without an index."""
    import argparse

    from fastapi.testclient import TestClient
    from hvl.core.cli.serve import add_arguments, build
    from hvl.core.errors import HVLInputError
    from serve_helpers import LOCAL

    _, ckpt = demo
    out = tmp_path / "timelines"
    assert _predict(str(clips), "--ckpt", str(ckpt), "--out", str(out)) == 0

    def app(*argv: str):
        p = argparse.ArgumentParser()
        add_arguments(p)
        return build(p.parse_args(list(argv)))

    client = TestClient(app("--zeroshot", str(out), "--videos", str(clips)), base_url=LOCAL)
    listed = client.get("/api/review").json()
    assert [v["video_id"] for v in listed["videos"]] == ["clip0", "clip1", "clip2", "clip3"]
    assert listed["metrics"] is None and all(v["metrics"] is None for v in listed["videos"])
    assert listed["level"] == "clip" and listed["smoothing"] == {"method": "mode", "window": 5}
    detail = client.get("/api/review/clip1").json()
    timeline = json.loads((out / "clip1" / "timeline.json").read_text())
    assert detail["truth"] is None and detail["pred"] == timeline["pred"] and detail["probs"] == timeline["probs"]
    assert client.get("/api/review/clip1/video").content == (clips / "clip1.mp4").read_bytes()
    assert client.get("/review").status_code == 200
    assert client.get("/", follow_redirects=False).headers["location"] == "/review"
    assert client.get("/api/info").status_code == 404 and client.post("/api/search", json={"query": "x"}).status_code == 404

    with pytest.raises(HVLInputError, match="--videos"):
        app("--zeroshot", str(out))
    with pytest.raises(HVLInputError, match="outside the served folder"):  # the timelines decide nothing served
        app("--zeroshot", str(out), "--videos", str(tmp_path / "timelines"))
