"""`hvl predict --online`: a video labelled while a recorder writes it. Every frame is labelled, each label is the
causal computation on the finished file and does not change when later frames arrive (runs on truncated
recordings), the run ends after the quiet period, and with no window and no smoothing the labels are the offline
ones. Recordings are written frame by frame by FFmpeg's own encoder and muxers (PyAV), in a background thread."""
from __future__ import annotations

import json
import math
import threading
import time
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from index_helpers import COLOURS, tiny_checkpoint

VIDEO_FPS = 10
# what a recorder must set so the file can be read while it is written (docs/predict.md says the same)
CONTAINERS = {"mpegts": ("rec.ts", "mpegts", {}),
              "fragmented-mp4": ("rec.mp4", "mp4", {"movflags": "frag_keyframe+empty_moov"}),
              "plain-mp4": ("rec.mp4", "mp4", {})}


def scene(n: int, size: int = 32) -> np.ndarray:
    """A square moving across grey, changing colour every second: frames differ, so do their labels."""
    frames = np.full((n, size, size, 3), 90, np.uint8)
    for i in range(n):
        x = int(i * (size - 10) / max(n - 1, 1))
        frames[i, 10:22, x:x + 10] = COLOURS[(i // VIDEO_FPS) % len(COLOURS)]
    return frames


def record(path: Path, frames: np.ndarray, pace: float = 0.0, container: str = "mpegts",
           closed: dict | None = None) -> Path:
    """``frames`` encoded one by one (H.264, no lookahead, one thread: the bytes of a prefix are those of a
    shorter recording), each packet flushed to the file, ``pace`` seconds apart; ``closed["at"]``: when it ended."""
    _, fmt, extra = CONTAINERS[container]
    box = av.open(str(path), "w", format=fmt, options={"flush_packets": "1", **extra})
    s = box.add_stream("libx264", rate=VIDEO_FPS, options={"tune": "zerolatency", "preset": "ultrafast",
                                                           "threads": "1", "g": str(VIDEO_FPS)})
    s.width = s.height = frames.shape[1]
    s.pix_fmt = "yuv420p"
    for a in frames:
        for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
            box.mux(p)
        time.sleep(pace)
    for p in s.encode():
        box.mux(p)
    box.close()
    if closed is not None:
        closed["at"] = time.monotonic()
    return path


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """An untrained tiny model (equalities need no training), loaded once; of its seeds, one whose labels change
    along :func:`scene` (most untrained ones give every frame one class)."""
    from hvl.core.models.checkpoint import load_for_eval

    ckpt = tiny_checkpoint(tmp_path_factory.mktemp("online") / "tiny.ckpt", seed=3)
    return ckpt, load_for_eval(str(ckpt), None, None, False)


def predictor(loaded, tmp_path: Path, **kw):
    from hvl.core.inference.predict import PredictConfig, load_predictor
    from hvl.core.models.spec import ModelSource

    ckpt, model_meta = loaded
    cfg = PredictConfig(inputs=["unused"], source=ModelSource(ckpt=str(ckpt)), prompts="surgical:demo",
                        level="clip", out=str(tmp_path / "out"), video_backend="pyav", num_workers=0,
                        progress=False, **kw)
    return load_predictor(cfg, model_meta)


def label(pred, path: Path, folder: Path, quiet: float = 0.3, **kw):
    from hvl.core.inference.online import label_growing_video

    return label_growing_video(pred, path, folder, quiet_seconds=quiet, **kw)


@torch.no_grad()
def causal_reference(pred, path: Path) -> tuple[list[int], list[int], torch.Tensor]:
    """The labels computed from the finished file with the project's offline decoder, written out: frames at the
    predictor's fps, each embedded with the frames of the trailing window, scored against the prompts, then the
    trailing majority vote."""
    from hvl.core.data.transforms import FrameTransform
    from hvl.core.data.video import Video, open_source
    from hvl.core.evaluation.zeroshot.classify import class_embeddings
    from hvl.core.evaluation.zeroshot.windows import window_half

    m, size = pred.model, pred.preprocess.output_size[0]
    v = Video(open_source(path, size=(size, size), backend="pyav"))
    times = [k / pred.fps for k in range(math.ceil(v.duration * pred.fps - 1e-9))]
    x = FrameTransform(size, preprocess=pred.preprocess)(v.source.get([v.index_at(t) for t in times]))
    feats = m.video.frames(x).float()
    span = 2 * window_half(pred.window, pred.fps) + 1
    emb = torch.cat([m.embed_video(feats[max(0, i - span + 1):i + 1][None], pred.level) for i in range(len(times))])
    probs = (100.0 * emb @ class_embeddings(m, pred.prompts, pred.level).T).softmax(-1)
    y = probs.argmax(-1).tolist()
    smoothed = []
    for i in range(len(y)):  # the majority of the frame and the ones before it; a tie keeps the frame's class
        w = y[max(0, i - pred.smooth_window + 1):i + 1]
        best = max(w.count(c) for c in w)
        smoothed.append(y[i] if w.count(y[i]) == best else min(c for c in w if w.count(c) == best))
    return y, smoothed, probs


@pytest.mark.slow
def test_a_recording_is_labelled_while_it_is_written_causally_and_ends_after_the_quiet_period(loaded, tmp_path):
    from hvl.core.inference.online import CausalScorer
    from hvl.core.inference.write import read_timeline

    pred = predictor(loaded, tmp_path, window=1.0, fps=5.0, smooth_window=3)
    scorer = CausalScorer(pred)  # the prompts embedded before the recorder starts, as a live run does
    path, frames, closed = tmp_path / "rec.ts", scene(60), {}
    recorder = threading.Thread(target=record, args=(path, frames, 0.1, "mpegts", closed))
    seen = []
    quiet = 1.5
    recorder.start()
    res = label(pred, path, tmp_path / "out", quiet, scorer=scorer,
                on_label=lambda row: seen.append((time.monotonic(), row)))
    ended = time.monotonic()
    recorder.join()

    # every frame at 5 fps of the 6-s recording, labelled in order, the first ones while it was still written
    assert [r["frame"] for _, r in seen] == list(range(30)) == list(range(len(res.timeline.t)))
    assert seen[0][0] < closed["at"], "nothing was labelled before the recording ended"
    assert quiet - 0.2 <= ended - closed["at"] < quiet + 5  # closed["at"]: a moment after the last byte written
    lines = [json.loads(x) for x in (tmp_path / "out" / "labels.jsonl").read_text().splitlines()]
    assert lines == [r for _, r in seen]
    assert len(res.latencies) == 30 and all(x >= 0 for x in res.latencies)

    # each label is the causal computation on the finished file
    y, smoothed, probs = causal_reference(pred, path)
    assert res.timeline.pred == y and res.timeline.smoothed == smoothed
    np.testing.assert_allclose(res.timeline.probs, probs.numpy(), atol=1e-5)
    assert len(set(y)) > 1  # the check means something: the labels change along the recording
    timeline = read_timeline(tmp_path / "out" / "timeline.json")
    assert timeline.settings["online"] and timeline.settings["smoothing"]["method"] == "trailing-mode"
    assert timeline.duration == pytest.approx(6.0) and timeline.segments[-1].end == pytest.approx(6.0)

    # causality: the labels of the first frames are those of the recording cut off after them
    for n in (7, 47):
        cut = record(tmp_path / f"cut{n}.ts", frames[:n])
        part = label(pred, cut, tmp_path / f"cut{n}").timeline
        k = len(part.t)
        assert k == math.ceil(n / VIDEO_FPS * 5 - 1e-9)
        assert part.pred == res.timeline.pred[:k] and part.smoothed == res.timeline.smoothed[:k]
        np.testing.assert_allclose(part.probs, res.timeline.probs[:k], atol=1e-6)


@pytest.mark.parametrize("window", [None, 0.0])
def test_without_window_and_smoothing_online_labels_are_the_offline_ones(loaded, tmp_path, window):
    from hvl.core.inference.predict import video_timeline

    pred = predictor(loaded, tmp_path, window=window, fps=5.0, smooth_window=1)
    path = record(tmp_path / "rec.ts", scene(30))
    online = label(pred, path, tmp_path / "out").timeline
    offline = video_timeline(pred, path)
    assert online.t == offline.t and len(online.t) == 15
    assert online.pred == offline.pred == online.smoothed and len(set(online.pred)) > 1
    np.testing.assert_allclose(online.probs, offline.probs, atol=1e-5)
    assert [s.label for s in online.segments] == [s.label for s in offline.segments]
    assert online.duration == offline.duration and online.num_frames == offline.num_frames


def _temporal_head(pred, path: Path, causal: bool) -> Path:
    from hvl.core.evaluation.adapt.heads import TemporalHead, save_head, space_fingerprint
    from hvl.core.evaluation.zeroshot.classify import class_embeddings

    torch.manual_seed(0)
    weight = class_embeddings(pred.model, pred.prompts, pred.level)
    head = TemporalHead(weight, pred.classes, pred.level, None, pred.fps, stages=2, layers=2, channels=8,
                        causal=causal)
    for stage in head.stages:  # trained heads are not the zero-shot classifier they start as
        torch.nn.init.normal_(stage.out.weight, std=0.5)
    return save_head(head, path, space_fingerprint(pred.model, pred.level))


@pytest.mark.slow
def test_a_causal_temporal_head_scores_online_as_on_the_whole_video_and_a_non_causal_one_is_refused(loaded,
                                                                                                    tmp_path):
    from hvl.core.errors import HVLInputError
    from hvl.core.inference.online import CausalScorer, receptive_field
    from hvl.core.inference.predict import video_timeline

    base = predictor(loaded, tmp_path, fps=5.0)
    head = _temporal_head(base, tmp_path / "causal.pt", causal=True)
    pred = predictor(loaded, tmp_path, fps=5.0, smooth_window=1, head=str(head))
    assert receptive_field(pred.head) == 13
    path = record(tmp_path / "rec.ts", scene(50))  # 25 scored frames: more than the head's receptive field
    online = label(pred, path, tmp_path / "out").timeline
    offline = video_timeline(pred, path)  # the head over the whole video at once
    assert len(online.t) == 25 and online.pred == offline.pred
    np.testing.assert_allclose(online.probs, offline.probs, atol=1e-5)

    future = predictor(loaded, tmp_path, fps=5.0, head=str(_temporal_head(base, tmp_path / "centred.pt", False)))
    with pytest.raises(HVLInputError, match="--causal"):
        CausalScorer(future)


def test_trailing_smoothing_uses_the_past_only():
    from hvl.core.inference.online import smooth_trailing

    assert smooth_trailing([0, 0, 1, 1, 2, 1, 0], 3) == [0, 0, 0, 1, 1, 1, 0]  # worked by hand; the last: a tie
    assert smooth_trailing([2, 0, 1], 1) == [2, 0, 1]
    seq = [0, 1, 1, 0, 2, 2, 1, 0, 0, 1]
    assert all(smooth_trailing(seq[:k], 5) == smooth_trailing(seq, 5)[:k] for k in range(1, len(seq)))


def test_a_growing_file_waits_for_more_bytes_then_ends_after_the_quiet_period(tmp_path):
    from hvl.core.errors import HVLInputError
    from hvl.core.inference.follow import GrowingFile

    path = tmp_path / "grow.bin"
    path.write_bytes(b"abc")

    def append():
        time.sleep(0.3)
        with path.open("ab") as f:
            f.write(b"def")

    writer = threading.Thread(target=append)
    writer.start()
    with GrowingFile(path, quiet_seconds=0.6, poll_seconds=0.01) as g:
        assert g.read(10) == b"abc"
        start = time.monotonic()
        assert g.read(10) == b"def"  # waited for the writer, did not end
        writer.join()
        assert 0.2 < time.monotonic() - start
        start = time.monotonic()
        assert g.read(10) == b"" and g.ended
        assert 0.6 <= time.monotonic() - start < 3
    path.write_bytes(b"ab")  # replaced by a shorter file: not the recording that was being read
    with GrowingFile(path, quiet_seconds=0.5, poll_seconds=0.01) as g:
        g.offset = 3
        with pytest.raises(HVLInputError, match="shrank"):
            g.read(10)


@pytest.mark.slow
@pytest.mark.parametrize("container", ["fragmented-mp4", "plain-mp4"])
def test_the_containers_a_recorder_may_write(loaded, tmp_path, container):
    """Fragmented MP4 is read while it grows; a plain MP4 (its index at the end) only once finished, with a warning
    saying what to record instead. Both get every frame's label."""
    name = CONTAINERS[container][0]
    pred = predictor(loaded, tmp_path, fps=5.0, smooth_window=1)
    path, closed, seen = tmp_path / name, {}, []
    recorder = threading.Thread(target=record, args=(path, scene(30), 0.1, container, closed))
    recorder.start()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # a fragment reaches the file when the next keyframe is encoded: quiet for up to one keyframe interval (1 s),
        # longer when a loaded machine slows the recorder (2.5 s lost the last fragment at load 10): 8 s
        res = label(pred, path, tmp_path / "out", 8.0, on_label=lambda row: seen.append(time.monotonic()))
    recorder.join()
    told = [str(w.message) for w in caught if "while it is written" in str(w.message)]
    assert len(res.timeline.t) == len(seen) == 15
    if container == "fragmented-mp4":
        assert seen[0] < closed["at"] and not told  # one fragment per second: labelled while written
    else:
        assert seen[0] > closed["at"] and told and "-f mpegts" in told[0]


@pytest.mark.slow
def test_cli_online_writes_labels_and_timeline_and_refuses_several_inputs(loaded, tmp_path, capsys):
    from hvl.core.cli import main

    ckpt, _ = loaded
    path = record(tmp_path / "rec.ts", scene(20))
    args = ["--ckpt", str(ckpt), "--prompts", "surgical:demo", "--level", "clip", "--out", str(tmp_path / "out"),
            "--online", "--quiet-seconds", "0.3", "--fps", "2", "--no-progress", "--format", "csv"]
    assert main(["predict", str(path), *args, "--json", str(tmp_path / "run.json")]) == 0
    folder = tmp_path / "out" / "rec"
    assert len((folder / "labels.jsonl").read_text().splitlines()) == 4
    assert (folder / "timeline.json").is_file() and list(folder.glob("*.csv"))
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["predicted"] == 1 and run["online"]["latency"]["p50_ms"] > 0
    assert main(["predict", str(path), str(path), *args]) == 2
    assert "one recording" in capsys.readouterr().err
