"""hvl.domains.surgical.clinical: intervals over videos, confusion, prompt comparison, failures, report."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import decode_index, write_index_video
from hvl.core.data.schema import PhaseSegment, VideoRecord
from hvl.core.evaluation.metrics import mean_over_videos, phase_metrics
from hvl.core.evaluation.stats import bootstrap_ci
from hvl.core.io import atomic_write_bytes
from hvl.domains.surgical import clinical

T = torch.tensor


# ------------------------------------------------------------------ bootstrap over videos
def test_resampling_is_over_videos_not_frames():
    """One long perfect video and one short wrong one: the mean is 0.5 and the interval spans [0, 1].

    Resampling frames would centre near the pooled accuracy (1000/1010 ≈ 0.99) with a narrow
    interval; resampling videos cannot, because a resample may hold the short video twice.
    """
    preds = [torch.zeros(1000, dtype=torch.long), torch.ones(10, dtype=torch.long)]
    labels = [torch.zeros(1000, dtype=torch.long), torch.zeros(10, dtype=torch.long)]
    rows = clinical.per_video_table(["long", "short"], preds, labels, ["A", "B"])
    ci = bootstrap_ci(rows, ["accuracy"], n_boot=4000, seed=0)["accuracy"]
    assert ci["mean"] == pytest.approx(0.5)
    assert ci["lo"] == pytest.approx(0.0) and ci["hi"] == pytest.approx(1.0)
    assert phase_metrics(torch.cat(preds), torch.cat(labels), 2)["accuracy"] > 0.98  # what frame resampling centres on


# ------------------------------------------------------------------ per-video table
def test_per_video_table_reuses_zeroshot_metrics_and_marks_undefined_phases():
    p, y = T([0, 0, 1, 1, 2]), T([0, 0, 1, 0, 0])
    (row,) = clinical.per_video_table(["v"], [p], [y], ["A", "B", "C", "D"])
    assert {k: row[k] for k in ("accuracy", "f1_macro", "jaccard")} == phase_metrics(p, y, 4)
    assert row["n_frames"] == 5
    assert row["precision/A"] == pytest.approx(1.0) and row["recall/A"] == pytest.approx(0.5)
    assert row["precision/B"] == pytest.approx(0.5) and row["recall/B"] == pytest.approx(1.0)
    assert row["precision/C"] == 0.0 and math.isnan(row["recall/C"])  # predicted, never true
    assert all(math.isnan(row[f"{m}/D"]) for m in ("precision", "recall", "f1"))  # neither


def test_zeroshot_summary_has_evaluates_shape_and_means():
    preds, labels = [T([0, 1, 1]), T([2, 2])], [T([0, 1, 0]), T([2, 1])]
    s = clinical.zeroshot_summary(["a", "b"], preds, labels, ["x", "y", "z"], "phase", 1.0)
    rows = [phase_metrics(p, y, 3) for p, y in zip(preds, labels)]
    assert {k: s[k] for k in ("accuracy", "f1_macro", "jaccard")} == mean_over_videos(rows)
    assert s["n_videos"] == 2 and s["n_frames"] == 5 and [r["video_id"] for r in s["per_video"]] == ["a", "b"]


# ------------------------------------------------------------------ confusion, progress
def test_confusion_rows_are_normalised_by_true_phase():
    preds, labels = [T([0, 1, 1]), T([1, 2])], [T([0, 0, 1]), T([1, 1])]
    cm = clinical.confusion(preds, labels, 4)
    expected = torch.tensor([[0.5, 0.5, 0, 0], [0, 2 / 3, 1 / 3, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert torch.allclose(cm, expected, atol=1e-6)
    assert torch.allclose(cm.sum(1)[:2], torch.ones(2))


def test_accuracy_by_progress_is_per_video_then_averaged():
    # video 1: first half right, second wrong; video 2 (short): all right
    preds = [T([0] * 10), T([1, 1])]
    labels = [T([0] * 5 + [1] * 5), T([1, 1])]
    acc = clinical.accuracy_by_progress(preds, labels, bins=2)
    assert acc == pytest.approx([1.0, 0.5])


# ------------------------------------------------------------------ prompt comparison
def _rows(ids, acc, f1_a):
    return [{"video_id": i, "accuracy": a, "f1_macro": a, "jaccard": a, "f1/P": f, "recall/P": f, "f1/Q": 0.5,
             "recall/Q": math.nan} for i, a, f in zip(ids, acc, f1_a)]


def test_prompt_comparison_deltas_are_paired_per_video():
    a = _rows(["v1", "v2", "v3"], [0.2, 0.5, 0.8], [0.1, 0.4, math.nan])
    b = _rows(["v3", "v1", "v2"], [0.9, 0.3, 0.6], [0.7, 0.2, 0.6])  # another order: matched by video id
    cmp = clinical.compare_prompts(a, b, ["P", "Q"], n_boot=2000, seed=0)
    acc = next(r for r in cmp["overall"] if r["metric"] == "accuracy")
    assert acc["a"] == pytest.approx(0.5) and acc["b"] == pytest.approx(0.6)
    assert acc["delta"] == pytest.approx(0.1)
    # every video gains exactly 0.1: paired resampling gives a zero-width interval (unpaired would not)
    assert acc["delta_lo"] == pytest.approx(0.1) and acc["delta_hi"] == pytest.approx(0.1)
    p = next(r for r in cmp["per_phase"] if r["phase"] == "P")
    assert p["f1_a"] == pytest.approx(0.25) and p["f1_b"] == pytest.approx(0.5)
    assert p["f1_delta"] == pytest.approx(0.15)  # v3 has no F1 for P with A: mean of +0.1 (v1), +0.2 (v2)
    q = next(r for r in cmp["per_phase"] if r["phase"] == "Q")
    assert q["f1_delta"] == 0.0 and math.isnan(q["recall_delta"])


def test_prompt_comparison_needs_the_same_videos():
    with pytest.raises(ValueError, match="same videos"):
        clinical.compare_prompts(_rows(["v1", "v2"], [0.1, 0.2], [0.1, 0.2]), _rows(["v1"], [0.1], [0.1]), ["P", "Q"])


# ------------------------------------------------------------------ failures
def test_confident_errors_are_the_most_probable_wrong_frames():
    preds = [T([0, 1, 1]), T([2, 0])]
    labels = [T([0, 0, 0]), T([1, 0])]
    probs = [T([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.4, 0.6, 0.0]]), T([[0.0, 0.05, 0.95], [0.99, 0.0, 0.01]])]
    errs = clinical.confident_errors(preds, labels, probs, k=2)
    assert [(e["video"], e["position"], e["true"], e["pred"]) for e in errs] == [(1, 0, 1, 2), (0, 1, 0, 1)]
    assert errs[0]["prob"] == pytest.approx(0.95)
    assert len(clinical.confident_errors(preds, labels, probs, k=10)) == 3  # only wrong frames


def test_gallery_frames_are_the_scored_frames(tmp_path):
    """Frame indices recomputed as zero-shot samples them decode to the frames it scored."""
    video = write_index_video(tmp_path / "idx.mp4", n=50, fps=10)
    rec = VideoRecord(video_id="idx", path=str(video), duration=5.0,
                      phases=[PhaseSegment(start=1.0, end=3.0, label="A"), PhaseSegment(start=3.0, end=5.0, label="B")])
    videos = [(rec, video)]
    idx = clinical.eval_frame_indices(videos, ["A", "B"], fps=2.0)
    assert idx == [[10, 15, 20, 25, 30, 35, 40, 45]]  # t = 1.0 … 4.5 s; [0, 1) s has no label
    frames = clinical.decode_frames(videos, [(0, idx[0][3]), (0, idx[0][7])])
    assert decode_index(np.stack([f for f, _ in frames])) == [25, 45]
    assert [t for _, t in frames] == [2.5, 4.5]


# ------------------------------------------------------------------ report
def test_report_writes_figures_and_self_contained_html(tmp_path):
    names = ["A", "B", "C"]
    cm = clinical.confusion([T([0, 1, 2, 2])], [T([0, 1, 1, 2])], 3)
    figs = {"confusion_a": clinical.plot_confusion(cm, names),
            "ribbon_v1": clinical.plot_ribbon(T([0, 0, 1, 2]), T([0, 1, 1, 2]), T([0, 1, 1, 2]), names, 1.0, "v1"),
            "gallery": clinical.plot_gallery([np.zeros((8, 8, 3), np.uint8)], ["true: A\npred: B"])}
    blocks = [("h2", "Overall <check escaping>"), ("table", [{"metric": "accuracy", "mean": 0.5, "ci_low": math.nan}]),
              ("figure", "confusion_a", "caption"), ("figure", "ribbon_v1")]
    out = clinical.write_report(tmp_path / "rep", "title", blocks, figs)
    for name in figs:
        png = tmp_path / "rep" / f"{name}.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert out["figures"][name] == png
    text = out["html"].read_text()
    assert out["html"] == tmp_path / "rep" / "report.html"
    assert "href='confusion_a.png'" in text and "href='ribbon_v1.png'" in text
    assert text.count("data:image/png;base64,") == 2  # embedded: the page alone is the report
    assert "&lt;check escaping&gt;" in text and "<td>0.500</td>" in text and "<td>—</td>" in text
    assert not list((tmp_path / "rep").glob(".*tmp"))  # atomic writes leave no temporaries
    with pytest.raises(ValueError, match="not given"):
        clinical.write_report(tmp_path / "rep", "t", [("figure", "missing")], {})


def test_jsonable_turns_nan_into_null():
    assert clinical.jsonable({"a": math.nan, "b": [T([1, 2])], "c": np.float32(0.5)}) == {"a": None, "b": [[1, 2]],
                                                                                          "c": 0.5}


def test_notebook_sections_show_tables_and_figures(tmp_path):
    import pandas as pd
    from IPython.display import Image, Markdown

    png = tmp_path / "f.png"
    atomic_write_bytes(png, clinical.figure_png(clinical.plot_progress({"A": [1.0, 0.5]})))
    row = [{"metric": "accuracy", "mean": 0.5}]
    tables = {k: row for k in ("summary", "pooled", "per_phase", "per_video", "failures")}
    figs = {k: png for k in ("confusion_a", "progress", "ribbon_v1", "failures")}
    result = {"tables": tables, "figures": figs, "ribbons": ["ribbon_v1"]}
    kinds = {name: [type(x) for x in clinical.notebook_section(result, name)] for name in clinical.NOTEBOOK_SECTIONS}
    assert kinds["overall"] == [pd.DataFrame, pd.DataFrame]
    assert kinds["per_phase"] == [pd.DataFrame, Image]
    assert kinds["where"] == [Image, Image]
    assert kinds["comparison"] == [Markdown]  # no prompt file B
    assert kinds["failures"] == [pd.DataFrame, Image]
    result["tables"].update(comparison=row, comparison_per_phase=row)
    result["figures"].update(prompt_comparison=png, confusion_b=png)
    assert [type(x) for x in clinical.notebook_section(result, "comparison")] == [pd.DataFrame, pd.DataFrame, Image]
    assert len(clinical.notebook_section(result, "per_phase")) == 3
    with pytest.raises(ValueError, match="unknown section"):
        clinical.notebook_section(result, "nope")


def test_unknown_dataset_format_names_the_readers(tmp_path):
    from hvl.core.errors import HVLInputError

    with pytest.raises(HVLInputError, match="cholec80"):
        clinical.load_videos(tmp_path, "cholec81")
