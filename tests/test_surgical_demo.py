"""The synthetic cholecystectomy demo: deterministic, well-formed, prompt-clean and visually separable."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import colour_histogram, nearest_centroid
from hvl.core.data.schema import load_manifest, load_prompt_file
from hvl.core.data.video import Video, open_source, read_frames
from hvl.domains.surgical import PROMPTS_DIR, demo
from hvl.domains.surgical.phases import CHOLEC80_PHASES

PROMPTS = PROMPTS_DIR / "demo.yaml"
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, dict]:
    """Default look (128 px, 10 fps), few videos: enough for the checks below in ~15 s."""
    root = tmp_path_factory.mktemp("demo")
    return root, demo.generate(root, seed=0, n_train=4, n_val=1, n_test=2, progress=False)


def _tiny(root: Path, seed: int, **counts) -> dict:
    """Small and coarse (64 px, 2 fps): determinism does not need the full size."""
    kw = {"n_train": 2, "n_val": 1, "n_test": 1, **counts}
    return demo.generate(root, seed=seed, size=64, fps=2.0, progress=False, **kw)


def _all_texts(root: Path) -> list[str]:
    out = []
    for split in SPLITS:
        for v in load_manifest(root / f"{split}.jsonl").videos:
            out += v.texts + [p.text for p in v.phases] + [t for c in v.clips for t in c.texts]
    return out


# ------------------------------------------------------------------ (a) determinism
def test_same_seed_same_dataset_other_seed_differs(tmp_path):
    _tiny(tmp_path / "a", 0)
    _tiny(tmp_path / "b", 0)
    _tiny(tmp_path / "c", 1)
    for split in SPLITS:
        a, b, c = ((tmp_path / r / f"{split}.jsonl").read_bytes() for r in "abc")
        assert a == b
        assert a != c
    for split in SPLITS:
        for v in load_manifest(tmp_path / "a" / f"{split}.jsonl").videos:
            fa, fb, fc = (read_frames(tmp_path / r / v.path, 0.0, 2.0, fps=2.0).numpy() for r in "abc")
            np.testing.assert_array_equal(fa, fb)
            assert not np.array_equal(fa, fc)


def test_any_subset_regenerates_identically(tmp_path):
    """Each video has its own stream: the split sizes do not change the other videos."""
    _tiny(tmp_path / "all", 0)
    _tiny(tmp_path / "some", 0, n_train=1, n_val=0, n_test=1)
    for split in ("train", "test"):
        first_all = (tmp_path / "all" / f"{split}.jsonl").read_text().splitlines()[0]
        first_some = (tmp_path / "some" / f"{split}.jsonl").read_text().splitlines()[0]
        assert first_all == first_some
    assert not (tmp_path / "some" / "val.jsonl").exists()


# ------------------------------------------------------------------ (b) well-formed
def test_manifests_and_videos_are_well_formed(dataset):
    root, summary = dataset
    assert summary["videos"] == {"train": 4, "val": 1, "test": 2}
    assert set(summary["manifests"]) == set(SPLITS)
    for split in SPLITS:
        m = load_manifest(root / f"{split}.jsonl")
        assert [v.video_id for v in m.videos] == [f"demo_{split}_{i:03d}" for i in range(len(m.videos))]
        for v in m.videos:
            assert v.path == f"videos/{v.video_id}.mp4"
            assert 59.0 <= v.duration <= 96.0
            assert len(v.texts) == 1 and len(v.texts[0].split()) > 40
            # the seven phases, in order, back to back over [0, duration], each at least ~5 s
            assert [p.label for p in v.phases] == CHOLEC80_PHASES
            assert v.phases[0].start == 0.0 and v.phases[-1].end == pytest.approx(v.duration)
            for p, q in zip(v.phases, v.phases[1:]):
                assert p.end == pytest.approx(q.start)
            assert all(p.end - p.start >= 4.9 and p.text for p in v.phases)
            # 4 s clips every 2 s covering the video, two narrations each
            assert v.clips[0].start == 0.0 and v.clips[-1].end == pytest.approx(v.duration)
            for c, d in zip(v.clips, v.clips[1:]):
                assert c.start < d.start <= c.end
            assert all(c.end - c.start == pytest.approx(4.0) and len(c.texts) == 2 for c in v.clips)
            # decodable, with the frame count the duration promises
            expected = v.duration * 10.0
            assert abs(Video(open_source(m.resolve(v))).num_frames - expected) <= 1
            frames = read_frames(m.resolve(v), fps=10.0)
            assert frames.shape[1:] == (128, 128, 3) and abs(frames.shape[0] - expected) <= 1


# ------------------------------------------------------------------ (c) prompts never leak into training text
def test_prompt_file_matches_cholec80_phases():
    pf = load_prompt_file(PROMPTS)
    assert pf.level == "phase"
    assert pf.names == CHOLEC80_PHASES
    assert all(2 <= len(c.prompts) <= 3 for c in pf.classes)


def _assert_no_prompt_in(texts: list[str]) -> None:
    prompts = [p.lower() for c in load_prompt_file(PROMPTS).classes for p in c.prompts]
    for text in texts:
        low = text.lower()
        leaked = [p for p in prompts if p in low]
        assert not leaked, f"prompt {leaked[0]!r} appears in training text {text!r}"


def test_no_prompt_appears_in_generated_texts(dataset):
    _assert_no_prompt_in(_all_texts(dataset[0]))


def test_no_prompt_appears_in_any_template_output():
    """Many draws from every text template, far more than one dataset holds."""
    rng = np.random.default_rng(123)
    texts, unrelated, n = [], 0, 0
    for _ in range(300):
        texts.append(demo.abstract(rng))
        for phase in CHOLEC80_PHASES:
            texts.append(demo.phase_summary(phase, rng))
            for _ in range(5):
                pair = demo.narrations(phase, rng)
                texts += pair
                unrelated += pair[1] in {w for _, w in demo.UNRELATED}
                n += 1
    _assert_no_prompt_in(texts)
    assert 0.12 < unrelated / n < 0.28  # about one narration in five is chit-chat


# ------------------------------------------------------------------ (d) phases are visually distinguishable
def _colour_features(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Frames at 1 fps -> joint RGB histogram (4 bins per channel), label index."""
    m = load_manifest(root / f"{split}.jsonl")
    feats, labels = [], []
    for v in m.videos:
        frames = read_frames(m.resolve(v), fps=1.0).numpy()
        for k, f in enumerate(frames):
            feats.append(colour_histogram(f))
            labels.append(CHOLEC80_PHASES.index(v.label_at(float(k))))
    return np.array(feats), np.array(labels)


@pytest.mark.slow
def test_nearest_colour_centroid_recognises_phases(dataset):
    root, _ = dataset
    x_train, y_train = _colour_features(root, "train")
    x_test, y_test = _colour_features(root, "test")
    assert set(y_train) == set(y_test) == set(range(7))
    pred = nearest_centroid(x_train, y_train, x_test)
    accuracy = float((pred == y_test).mean())
    assert accuracy >= 0.6, f"phases not separable by colour: nearest-centroid accuracy {accuracy:.2f}"
    # ... and not a still picture per phase: frames of one phase differ
    assert x_test[y_test == 1].std(0).max() > 0.005
