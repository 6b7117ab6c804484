"""`hvl zeroshot --window SECONDS`: each scored frame embedded with the centred window of frames around it, decoded
once for all windows and pooled by the model's own video encoder; without --window, today's single-frame numbers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
ZEROSHOT = ROOT / "recipes" / "surgical" / "demo_zeroshot.yaml"
KEYS = ("accuracy", "f1_macro", "jaccard")


@pytest.fixture(scope="module")
def demo(trained_demo):
    """The README demo's model, test videos and prompts, loaded once for this module."""
    from hvl.core.data.records import manifest_videos
    from hvl.core.data.schema import load_prompt_file
    from hvl.core.models.checkpoint import load_model
    from hvl.core.registry import resolve_prompt_file

    work, ckpt, metrics = trained_demo
    model, _ = load_model(ckpt)
    videos = manifest_videos(work / "data" / "demo_surgical" / "test.jsonl")
    return work, ckpt, metrics, model, videos, load_prompt_file(resolve_prompt_file("surgical:demo"))


def _zeroshot(work: Path, ckpt: Path, monkeypatch, *extra: str) -> dict:
    from hvl.core.cli import main

    monkeypatch.chdir(work)
    out = work / f"zs{'_'.join(x.strip('-') for x in extra)}.json"
    assert main(["zeroshot", "--config", str(ZEROSHOT), "--ckpt", str(ckpt), "--json", str(out), "--no-mlflow",
                 "--no-progress", *extra]) == 0
    return json.loads(out.read_text())


def _reference_single_frames(model, videos, prompts, level="phase"):
    """The single-frame protocol written out here (the code path before --window existed): every labelled frame at
    1 fps alone through ``embed_frames``, scored ``100 * img @ text.T``."""
    from hvl.core.evaluation.zeroshot.classify import class_embeddings
    from hvl.core.evaluation.zeroshot.frames import FrameChunks, sample_eval_frames

    text = class_embeddings(model, prompts, level)
    index, labels, _ = sample_eval_frames(videos, prompts.names, 1.0, 64, 64)
    chunks = FrameChunks(videos, index, 64)
    probs = [[] for _ in videos]
    with torch.no_grad():
        for i in range(len(chunks)):
            vi, frames = chunks[i]
            probs[vi].append((100.0 * model.embed_frames(frames, level) @ text.T).softmax(-1))
    return [torch.cat(p) for p in probs], labels


def test_without_window_the_numbers_are_the_single_frame_protocols_exactly(demo):
    from hvl.core.evaluation.zeroshot import predict, summarize

    _, _, metrics, model, videos, prompts = demo
    ref_probs, ref_labels = _reference_single_frames(model, videos, prompts)
    preds, labels, probs = predict(model, videos, prompts, "phase", image_size=64, num_workers=0, progress=False)
    for p, pr, rp, y, ry in zip(preds, probs, ref_probs, labels, ref_labels):
        assert torch.equal(pr, rp) and torch.equal(p, rp.argmax(-1)) and torch.equal(y, ry)
    ref = summarize([r.video_id for r, _ in videos], [p.argmax(-1) for p in ref_probs], ref_labels, prompts.names,
                    "phase", 1.0)
    cli = metrics  # `hvl zeroshot --json` of the demo recipe without --window (the trained_demo fixture ran it)
    assert "window" not in cli and {"accuracy", "per_video", "pooled", "n_frames"} <= set(cli)  # today's keys
    for k in KEYS:
        assert cli[k] == ref[k], k
    assert cli["per_video"] == ref["per_video"] and cli["pooled"] == ref["pooled"]


def test_a_window_of_one_frame_gives_the_single_frame_predictions(demo, monkeypatch):
    """--window 0 runs the windowed path (decode every frame, encode, pool windows of 1) and must land on the
    same predictions as the frame-alone path."""
    work, ckpt, metrics, *_ = demo
    one = _zeroshot(work, ckpt, monkeypatch, "--window", "0")
    assert one["window"] == 0
    for k in KEYS:
        assert one[k] == metrics[k], k
    assert [r["n_frames"] for r in one["per_video"]] == [r["n_frames"] for r in metrics["per_video"]]


def test_each_window_is_the_video_encoder_on_its_frames_decoded_once(demo, monkeypatch):
    from hvl.core.data.transforms import FrameTransform, Preprocess
    from hvl.core.data.video import ReaderCache
    from hvl.core.evaluation.zeroshot import frames as frames_mod
    from hvl.core.evaluation.zeroshot.frames import sample_sequences
    from hvl.core.evaluation.zeroshot.windows import frame_features, window_embeddings, window_half

    *_, model, videos, prompts = demo
    videos = videos[:2]
    assert window_half(8, 1.0) == 4 and window_half(1.5, 1.0) == 0 and window_half(3, 2.0) == 3
    decoded = []
    real = frames_mod.FrameChunks.__getitem__
    monkeypatch.setattr(frames_mod.FrameChunks, "__getitem__",
                        lambda self, i: decoded.extend(self.index[i][1]) or real(self, i))
    seqs = sample_sequences(videos, prompts.names, 1.0, 64)
    feats = frame_features(model, videos, seqs, 64, batch_size=16, num_workers=0, progress=False)
    # every frame at 1 fps decoded exactly once, however many windows it belongs to
    assert decoded == [i for s in seqs for i in s.indices]
    assert [f.shape[0] for f in feats] == [len(s.indices) for s in seqs]

    s, f = seqs[0], feats[0]
    emb = window_embeddings(model, f, 4, "phase")
    reader = ReaderCache(1, size=(64, 64))(videos[0][1])
    transform = FrameTransform(64, train=False, preprocess=Preprocess.square(64))
    for centre in (0, 2, 20, len(s.indices) - 1):  # truncated at both ends, whole in the middle
        window = s.indices[max(0, centre - 4):centre + 5]
        clip = transform(reader.source.get(window))
        with torch.no_grad():
            direct = model.embed_video(clip[None], "phase")[0]
        assert torch.allclose(emb[centre], direct, atol=1e-5), centre
    # the labelled positions are the frames the single-frame protocol scores, in its order
    from hvl.core.evaluation.zeroshot.frames import sample_eval_frames

    _, labels, _ = sample_eval_frames(videos, prompts.names, 1.0, 64, 64)
    assert all(torch.equal(q.labels, y) for q, y in zip(seqs, labels))


def test_windowed_predictions_are_files_the_review_page_and_the_clinical_review_read(demo, monkeypatch, tmp_path):
    from hvl.core.search.serve.review import load_review
    from hvl.domains.surgical.clinical import evaluate_clinical

    work, ckpt, metrics, *_ = demo
    pred_dir = tmp_path / "pred"
    win = _zeroshot(work, ckpt, monkeypatch, "--window", "4", "--predictions", str(pred_dir))
    assert win["window"] == 4 and win["n_frames"] == metrics["n_frames"]
    review = load_review(pred_dir)
    summary = review.summary()
    assert len(summary["videos"]) == len(metrics["per_video"])
    first = review.detail(metrics["per_video"][0]["video_id"])
    assert len(first["t"]) == metrics["per_video"][0]["n_frames"]
    # the clinical review with the same window reports the same numbers
    res = evaluate_clinical(ckpt, work / "data" / "demo_surgical" / "test.jsonl", "surgical:demo", window=4,
                            n_boot=50, gallery_size=2, out_dir=tmp_path / "report", mlflow=False, num_workers=0,
                            smoothing_window=5)
    assert res["window"] == 4
    for k in KEYS:
        assert res["a"]["zeroshot"][k] == win[k], k


def test_bad_windows_are_refused_before_the_model_loads(demo, monkeypatch, tmp_path, capsys):
    from hvl.core.cli import main

    work, ckpt, *_ = demo
    monkeypatch.chdir(work)
    assert main(["zeroshot", "--config", str(ZEROSHOT), "--ckpt", str(tmp_path / "missing.ckpt"), "--window", "-2",
                 "--no-mlflow"]) == 2
    assert "--window must be a number of seconds >= 0" in capsys.readouterr().err  # not "checkpoint not found"
    cfg = tmp_path / "zs.yaml"
    cfg.write_text(ZEROSHOT.read_text() + "window: -1\n")
    assert main(["zeroshot", "--config", str(cfg), "--ckpt", str(ckpt), "--no-mlflow"]) == 2
    err = capsys.readouterr().err
    assert str(cfg) in err and "field 'window'" in err
