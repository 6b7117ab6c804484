"""Paragraph <-> whole-video retrieval (LF-VILA's protocol) and sentence-to-moment localisation (issue 38, item 4).

The metrics equal a reference written out in numpy (R@1/5/10/50, median and mean rank, both directions);
`hvl retrieval --level video` ranks whole videos by their paragraph (abstract, else the clips' sentences in time
order) and gives the numbers the reference gives on the same embeddings; the moment metric is checked on
hand-worked examples and `hvl retrieval --moments` runs on ActivityNet Captions' own format.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hvl.core.cli import main
from hvl.core.data.longform import merge_sentences, paragraph_of
from hvl.core.data.schema import ClipSegment, VideoRecord, write_manifest
from hvl.core.errors import HVLInputError
from hvl.core.evaluation.moments import (
    candidate_windows,
    chance_moment_metrics,
    moment_metrics,
    pick_windows,
    temporal_iou,
)
from hvl.core.evaluation.retrieval import retrieval_metrics
from index_helpers import colour_video, tiny_checkpoint


def numpy_reference(sim: np.ndarray) -> dict[str, float]:
    """LF-VILA / CLIP4Clip's protocol for N paragraphs x N videos, paragraph i <-> video i, written out: a query's
    rank is how many wrong candidates score at least as high as the right one (0 = first)."""
    n = sim.shape[0]
    out = {}
    for name, m in (("t2v", sim), ("v2t", sim.T)):
        ranks = np.array([sum(1 for j in range(n) if j != i and m[i, j] >= m[i, i]) for i in range(n)])
        for k in (1, 5, 10, 50):
            out[f"{name}_r{k}"] = 100.0 * np.count_nonzero(ranks < k) / n
        out[f"{name}_medr"] = float(np.median(ranks)) + 1.0
        out[f"{name}_meanr"] = float(ranks.sum()) / n + 1.0
    return out


def test_metrics_equal_the_numpy_reference_at_every_k_both_directions():
    rng = np.random.default_rng(0)
    n = 120
    # a model that is right more often than chance; rounded so that ties with the right candidate happen
    sim = np.round(rng.normal(size=(n, n)) + 2.0 * np.eye(n) * rng.random(n)[:, None], 1)
    ours = retrieval_metrics(torch.tensor(sim), torch.arange(n))
    ref = numpy_reference(sim)
    assert set(ours) == set(ref)
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key
    assert 0 < ref["t2v_r1"] < ref["t2v_r10"] < ref["t2v_r50"] < 100  # every threshold is exercised
    assert np.any((sim == np.diag(sim)[:, None]) & ~np.eye(n, dtype=bool))  # and ties occurred


def test_the_paragraph_is_the_abstract_else_the_clips_sentences_in_time_order():
    clips = [ClipSegment(start=20, end=30, texts=["then  the duct is cut.", "asr"]),
             ClipSegment(start=0, end=10, texts=["first the ports go in."])]
    assert paragraph_of(VideoRecord(video_id="a", path="a.mp4", texts=["the abstract"], clips=clips)) == "the abstract"
    assert paragraph_of(VideoRecord(video_id="b", path="b.mp4", clips=clips)) == \
        "first the ports go in. then the duct is cut."
    assert paragraph_of(VideoRecord(video_id="c", path="c.mp4")) is None


def test_lf_vila_merges_the_shortest_adjacent_pair_until_four_remain():
    s = ["a b c", "d", "e f", "g h i j", "k", "l m n"]
    # word counts 3 1 2 4 1 3: pairs 4 3 6 5 4 -> merge "d"+"e f"; then 3 3 4 1 3: pairs 6 7 5 4 -> "g h i j"? no:
    # pairs (3+3, 3+4, 4+1, 1+3) = 6 7 5 4 -> merge "k"+"l m n"
    assert merge_sentences(s) == ["a b c", "d e f", "g h i j", "k l m n"]
    assert merge_sentences(["x y", "z", "w", "v"]) == ["x y", "z", "w", "v"]       # four already: untouched
    assert merge_sentences(["a", "b", "c", "d", "e"]) == ["a b", "c", "d", "e"]   # a tie: the earliest pair
    assert merge_sentences(["a", "b", "c"], 1) == ["a b c"]
    assert " ".join(merge_sentences(s)) == " ".join(s)                            # the paragraph itself is unchanged


def test_paragraphs_longer_than_the_text_encoder_keeps_are_counted_and_said():
    from types import SimpleNamespace

    from hvl.core.evaluation.retrieval import count_cut_texts, format_table

    words = SimpleNamespace(tokenizer=lambda texts, truncation: {"input_ids": [t.split() for t in texts]},
                            max_length=3)
    assert count_cut_texts(SimpleNamespace(text=words), ["a b c", "a b c d", "a"]) == (1, 3)
    assert count_cut_texts(SimpleNamespace(text=SimpleNamespace()), ["a b c d"]) == (0, None)
    row = dict.fromkeys([f"{d}_{k}" for d in ("t2v", "v2t") for k in ("r1", "r5", "r10", "r50", "medr", "meanr")], 1.0)
    r = row | {"n_videos": 3, "n_sentences": 3, "similarity": "global", "level": "video", "texts_cut": 1,
               "text_max_tokens": 3}
    assert "note: 1 of 3 texts are longer than the text encoder's 3 tokens" in format_table(r)
    assert "note" not in format_table(r | {"texts_cut": 0})


# ----------------------------------------------------------------- hvl retrieval --level video, end to end
N_VIDEOS = 6


def _long_videos(root: Path) -> list[VideoRecord]:
    """Six videos; three with an abstract, three whose paragraph is their clips' sentences."""
    records = []
    for i in range(N_VIDEOS):
        colour_video(root / "videos" / f"long{i}.mp4", i, seconds=4.0, fps=5)
        clips = [ClipSegment(start=2.0, end=4.0, texts=[f"then the square {i} leaves"]),
                 ClipSegment(start=0.0, end=2.0, texts=[f"colour {i} enters first"])]
        texts = [f"an abstract of video {i} in colour {i}"] if i % 2 else []
        records.append(VideoRecord(video_id=f"long{i}", path=f"videos/long{i}.mp4", texts=texts, clips=clips))
    write_manifest(root / "test.jsonl", records)
    return records


def _config(root: Path, **extra) -> Path:
    cfg = {"dataset": {"reader": "manifest", "path": str(root / "test.jsonl")}, "level": "video",
           "similarity": "global", "frames": 4, "num_workers": 0, **extra}
    path = root / "retrieval.yaml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def long_videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("paragraphs")
    return root, _long_videos(root)


@pytest.fixture(scope="module")
def long_data(long_videos):
    root, records = long_videos
    return root, records, tiny_checkpoint(root / "tiny.ckpt")


@pytest.mark.slow
def test_hvl_retrieval_level_video_ranks_whole_videos_by_paragraph_as_the_reference_does(long_data, capsys):
    from hvl.core.data.transforms import FrameTransform, Preprocess
    from hvl.core.data.video import Video, open_source
    from hvl.core.models.checkpoint import load_for_eval

    root, records, ckpt = long_data
    out = root / "r.json"
    assert main(["retrieval", "--config", str(_config(root)), "--ckpt", str(ckpt), "--level", "video",
                 "--json", str(out), "--no-mlflow", "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "R@50" in table and "MedR" in table and "MeanR" in table and "T2V" in table and "V2T" in table
    result = json.loads(out.read_text())
    assert result["n_videos"] == result["n_sentences"] == N_VIDEOS and result["level"] == "video"

    # the reference: every whole video's 4 frames (bin centres) through the model, every paragraph through the text
    # tower, scored and ranked in numpy
    model, _ = load_for_eval(str(ckpt), None, None, False)
    model.eval()
    transform = FrameTransform(32, train=False, preprocess=Preprocess.square(32))
    paragraphs = [r.texts[0] if r.texts else " ".join(c.texts[0] for c in sorted(r.clips, key=lambda c: c.start))
                  for r in records]
    assert paragraphs[0] == "colour 0 enters first then the square 0 leaves"
    with torch.no_grad():
        frames = []
        for r in records:
            v = Video(open_source(root / r.path))
            frames.append(transform(v.source.get([int((k + 0.5) * v.duration / 4 * v.fps) for k in range(4)])))
        videos = model.embed_video(torch.stack(frames), "video")
        texts = model.embed_text(paragraphs, "video")
    ref = numpy_reference((texts @ videos.T).double().numpy())
    for key, value in ref.items():
        assert result[key] == pytest.approx(value, abs=1e-6), key


def test_a_video_without_abstract_or_clips_is_named(long_videos):
    from types import SimpleNamespace

    from hvl.core.evaluation.retrieval import evaluate_retrieval

    root, records = long_videos
    bad = [*records[:2], records[2].model_copy(update={"texts": [], "clips": []})]
    model = SimpleNamespace(video_heads={"video": None})  # refused before anything is embedded
    with pytest.raises(HVLInputError, match="long2\\.mp4: video 'long2' has no text: 'texts' .* 'clips' .* empty"):
        evaluate_retrieval(model, [(r, root / r.path) for r in bad], "video", num_workers=0)


# ----------------------------------------------------------------- moments
def test_temporal_iou_hand_worked():
    assert temporal_iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert temporal_iou((2, 4), (0, 10)) == pytest.approx(0.2)
    assert temporal_iou((3, 7), (3, 7)) == 1.0
    assert temporal_iou((0, 5), (5, 10)) == 0.0      # touching: no overlap
    assert temporal_iou((0, 1), (8, 9)) == 0.0
    with pytest.raises(ValueError, match="start <= end"):
        temporal_iou((5, 1), (0, 2))


def test_moment_metrics_hand_worked():
    truth = [(0, 10), (0, 10), (10, 20), (0, 4)]
    predicted = [(0, 10),      # IoU 1
                 (5, 15),      # 5 / 15 = 0.333: a hit at 0.3 only
                 (10, 15),     # 5 / 10 = 0.5: a hit at 0.3 and 0.5 (>=)
                 (6, 9)]       # 0
    m = moment_metrics(predicted, truth)
    assert m == pytest.approx({"r1_iou0.3": 75.0, "r1_iou0.5": 50.0, "r1_iou0.7": 25.0,
                               "miou": 100 * (1 + 1 / 3 + 0.5 + 0) / 4})
    with pytest.raises(ValueError, match="one prediction per"):
        moment_metrics([(0, 1)], [])
    # chance: a window drawn from (0, 10), (10, 20), (0, 20) against the truth (0, 10): IoUs 1, 0, 0.5
    chance = chance_moment_metrics([(0, 10), (10, 20), (0, 20)], [(0, 10)])
    assert chance == pytest.approx({"chance_r1_iou0.3": 200 / 3, "chance_r1_iou0.5": 200 / 3,
                                    "chance_r1_iou0.7": 100 / 3, "chance_miou": 50.0})


def test_candidate_windows_and_the_best_window_per_sentence():
    assert candidate_windows(3).tolist() == [[0, 0], [0, 1], [0, 2], [1, 1], [1, 2], [2, 2]]
    assert candidate_windows(3, max_window=2).tolist() == [[0, 0], [0, 1], [1, 1], [1, 2], [2, 2]]
    # frames 1 and 2 together match the first sentence best (cos 1; either alone: 0.71); frame 3 the second
    feats = torch.tensor([[0.0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    sentences = torch.nn.functional.normalize(torch.tensor([[1.0, 1, 0], [0, 0, 1]]), dim=-1)
    windows = candidate_windows(4)
    best = pick_windows(feats, sentences, lambda x: torch.nn.functional.normalize(x, dim=-1), windows)
    assert windows[best[0]].tolist() == [1, 2]
    assert windows[best[1]].tolist() == [0, 0]   # frames 0 and 3 tie with the first window of 0..0: the first wins


def numpy_moments(predicted: list[tuple[float, float]], truth: list[tuple[float, float]]) -> dict[str, float]:
    p, t = np.array(predicted, float), np.array(truth, float)
    inter = np.clip(np.minimum(p[:, 1], t[:, 1]) - np.maximum(p[:, 0], t[:, 0]), 0, None)
    iou = inter / (np.maximum(p[:, 1], t[:, 1]) - np.minimum(p[:, 0], t[:, 0]))
    return {"r1_iou0.3": 100 * np.mean(iou >= 0.3), "r1_iou0.5": 100 * np.mean(iou >= 0.5),
            "r1_iou0.7": 100 * np.mean(iou >= 0.7), "miou": 100 * np.mean(iou)}


@pytest.mark.slow
def test_hvl_retrieval_moments_equals_a_window_by_window_reference_on_a_manifest_and_on_activitynet(
        long_data, capsys):
    """Every candidate window embedded on its own (the frames of bins i..j as one clip), the best one per
    sentence mapped back to seconds, IoU in numpy: the same metrics as `hvl retrieval --moments`, whether the
    videos come from a manifest or from ActivityNet Captions' JSON."""
    from hvl.core.data.transforms import FrameTransform, Preprocess
    from hvl.core.data.video import Video, open_source
    from hvl.core.models.checkpoint import load_for_eval

    root, records, ckpt = long_data
    bins, longest = 8, 4
    model, _ = load_for_eval(str(ckpt), None, None, False)
    model.eval()
    transform = FrameTransform(32, train=False, preprocess=Preprocess.square(32))
    predicted, truth, chance_miou = [], [], []
    with torch.no_grad():
        for r in records:
            v = Video(open_source(root / r.path))
            step = v.duration / bins
            frames = transform(v.source.get([int((k + 0.5) * step * v.fps) for k in range(bins)]))
            spans = [(i, j) for i in range(bins) for j in range(i, min(bins, i + longest))]
            windows = torch.cat([model.embed_video(frames[i:j + 1][None], "clip") for i, j in spans])
            for c in sorted(r.clips, key=lambda c: c.start):
                best = int((model.embed_text([c.texts[0]], "clip") @ windows.T)[0].argmax())
                predicted.append((spans[best][0] * step, (spans[best][1] + 1) * step))
                truth.append((c.start, c.end))
                every = [(i * step, (j + 1) * step) for i, j in spans]
                chance_miou.append(numpy_moments(every, [(c.start, c.end)] * len(every))["miou"])
    ref = numpy_moments(predicted, truth)
    assert 0 < ref["miou"] < 100   # neither always right nor never

    anet = {f"v_{r.video_id}": {"duration": 4.0, "timestamps": [[c.start, c.end] for c in r.clips],
                                "sentences": [c.texts[0] for c in r.clips]} for r in records}
    (root / "val_1.json").write_text(json.dumps(anet))
    datasets = {"manifest": {"reader": "manifest", "path": str(root / "test.jsonl")},
                "activitynet": {"reader": "activitynet", "path": str(root / "val_1.json")}}
    for name, dataset in datasets.items():
        out = root / f"m_{name}.json"
        cfg = _config(root, dataset=dataset, moment_frames=bins, moment_max_window=longest)
        assert main(["retrieval", "--config", str(cfg), "--ckpt", str(ckpt), "--moments", "--json", str(out),
                     "--no-mlflow", "--no-progress"]) == 0
        assert "R@1 IoU0.5" in capsys.readouterr().out
        m = json.loads(out.read_text())
        assert m["n_sentences"] == 2 * N_VIDEOS and m["level"] == "clip" and m["windows"] == 8 + 7 + 6 + 5
        for key, value in ref.items():
            assert m[key] == pytest.approx(value, abs=1e-6), (name, key)
        assert m["chance_miou"] == pytest.approx(np.mean(chance_miou), abs=1e-6)


def test_moments_need_clips_with_times(long_videos, tmp_path, capsys):
    root, records = long_videos
    write_manifest(tmp_path / "test.jsonl", [r.model_copy(update={"path": str(root / r.path), "clips": [],
                                                                  "texts": ["x"]}) for r in records])
    cfg = _config(tmp_path)
    # refused before the model is loaded (there is none at that path)
    assert main(["retrieval", "--config", str(cfg), "--ckpt", str(tmp_path / "none.ckpt"), "--moments",
                 "--no-mlflow"]) == 2
    assert "no video has clips with times; --moments needs each sentence's [start, end]" in capsys.readouterr().err
