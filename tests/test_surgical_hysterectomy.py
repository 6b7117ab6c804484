"""The demo's second procedure (hysterectomy, AutoLaparo's phases): well-formed, seeded, prompt-clean, separable."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import colour_histogram, nearest_centroid
from hvl.core.data.schema import load_manifest, load_prompt_file
from hvl.core.errors import HVLInputError
from hvl.domains.surgical import PROMPTS_DIR, demo
from hvl.domains.surgical.demo import get_procedure, render_video
from hvl.domains.surgical.phases import AUTOLAPARO_PHASES, CHOLEC80_PHASES
from hvl.domains.surgical.presets import DemoPreset

PROMPTS = PROMPTS_DIR / "demo_hysterectomy.yaml"
HYST = get_procedure("hysterectomy")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generates_autolaparo_phases_in_order_seeded_and_apart_from_the_first_procedure(tmp_path):
    kw = {"seed": 2, "n_train": 2, "n_val": 0, "n_test": 1, "size": 32, "fps": 2.0, "progress": False}
    summary = demo.generate(tmp_path / "a", procedure="hysterectomy", **kw)
    demo.generate(tmp_path / "b", procedure="hysterectomy", **kw)
    demo.generate(tmp_path / "c", **kw)
    assert summary["procedure"] == "hysterectomy"
    a, b, c = (_files(tmp_path / x) for x in "abc")
    assert a == b  # seeded
    videos = load_manifest(tmp_path / "a" / "train.jsonl").videos
    for v in videos:
        assert [p.label for p in v.phases] == AUTOLAPARO_PHASES
        assert all(p.text for p in v.phases) and v.clips
        assert "uterus" in v.texts[0] and "gallbladder" not in v.texts[0]
    cholec = load_manifest(tmp_path / "c" / "train.jsonl").videos
    assert [p.label for p in cholec[0].phases] == CHOLEC80_PHASES
    assert a["videos/demo_train_000.mp4"] != c["videos/demo_train_000.mp4"]
    # its own random stream: phase timing is not the cholecystectomy's with other labels
    assert [p.end for p in videos[0].phases] != [p.end for p in cholec[0].phases]


def test_prompt_file_names_the_phases_and_never_appears_in_generated_text():
    pf = load_prompt_file(PROMPTS)
    assert pf.level == "phase" and pf.names == AUTOLAPARO_PHASES
    prompts = [p.lower() for c in pf.classes for p in c.prompts]
    rng = np.random.default_rng(7)
    texts = []
    for _ in range(300):
        texts.append(demo.abstract(rng, HYST))
        for phase in AUTOLAPARO_PHASES:
            texts.append(demo.phase_summary(phase, rng, HYST))
            for _ in range(5):
                texts += demo.narrations(phase, rng, HYST)
    for text in texts:
        leaked = [p for p in prompts if p in text.lower()]
        assert not leaked, f"prompt {leaked[0]!r} appears in training text {text!r}"


def _colour_features(frames: np.ndarray, rec, fps: float) -> tuple[np.ndarray, np.ndarray]:
    feats, labels = [], []
    for k in range(0, len(frames), int(fps)):  # 1 frame per second
        feats.append(colour_histogram(frames[k]))
        labels.append(AUTOLAPARO_PHASES.index(rec.label_at(k / fps)))
    return np.array(feats), np.array(labels)


def _features(split: int, n: int, preset: str = "default") -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for i in range(n):
        frames, rec = render_video(f"v{i}", np.random.SeedSequence([4, split, i, 1]), size=48, fps=2.0,
                                   preset=preset, procedure="hysterectomy")
        x, y = _colour_features(frames, rec, 2.0)
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def test_nearest_colour_centroid_recognises_phases():
    """Every phase has its own picture (as in the first procedure), so transfer can be scored at all."""
    x_train, y_train = _features(0, 4)
    x_test, y_test = _features(2, 2)
    assert set(y_train) == set(y_test) == set(range(7))
    pred = nearest_centroid(x_train, y_train, x_test)
    accuracy = float((pred == y_test).mean())
    assert accuracy >= 0.6, f"phases not separable by colour: nearest-centroid accuracy {accuracy:.2f}"


def test_unknown_procedure_and_mixed_lookalike_are_clear_errors(tmp_path, capsys):
    from hvl.core.cli import main

    with pytest.raises(HVLInputError, match="unknown procedure 'appendectomy'"):
        get_procedure("appendectomy")
    with pytest.raises(ValueError, match="pairs phases of two procedures"):
        DemoPreset(name="x", lookalike={"Suturing": "ClippingCutting"})
    assert main(["demo", "surgical", "--out", str(tmp_path / "x"), "--procedure", "appendectomy"]) == 2
    assert "unknown procedure 'appendectomy'" in capsys.readouterr().err
    assert not (tmp_path / "x" / "train.jsonl").exists()
    assert main(["demo", "sign", "--out", str(tmp_path / "s"), "--procedure", "hysterectomy"]) == 2
    assert "--procedure: the sign demo has no such option (it is the surgical demo's)" in capsys.readouterr().err
