"""Metric protocols: the relaxed M2CAI / Cholec80 one (Evaluate.m + Main.m, as released and with its bug fixed) on
examples worked out by hand, and every metrics JSON, table, predictions manifest and MLflow run naming its protocol.

Frame indices below are 0-based; ``fps=0.2`` makes the 10 s tolerance ``t = 2`` frames, small enough to work out.
Phases are class indices in the prompt file's order (Cholec80's phase k is index k - 1)."""
from __future__ import annotations

import json
import math

import pytest
import torch
from hvl.core.evaluation.metrics import PROTOCOLS, phase_metrics, relaxed_phase_scores, relaxed_summary

NAN = math.nan


def _same(got: list[float], want: list[float]) -> bool:
    return all((math.isnan(g) and math.isnan(w)) or g == pytest.approx(w) for g, w in zip(got, want, strict=True))


# ------------------------------------------------------------------ Evaluate.m, one video
def test_late_transition_is_forgiven_in_the_first_t_frames_only_and_counts_for_both_phases():
    gt = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    pred = [0, 0, 0, 0, 0, 0, 0, 1, 1, 1]  # frames 4, 5, 6 still phase 0 (diff -1); t = 2 forgives 4 and 5
    for as_released in (True, False):  # the bug is in the end-of-segment rule only
        s = relaxed_phase_scores(pred, gt, 3, fps=0.2, as_released=as_released)
        assert s["accuracy"] == pytest.approx(0.9)
        # phase 0: union {0..6} = 7 frames, TP {0..5} = 6 (4, 5 forgiven); predicted 7, true 4
        # phase 1: union {4..9} = 6, TP {4, 5, 7, 8, 9} = 5; predicted 3, true 6. Phase 2 is in no truth: NaN
        assert _same(s["jaccard"], [6 / 7, 5 / 6, NAN])
        assert _same(s["precision"], [6 / 7, 5 / 3, NAN])  # a forgiven frame is TP for both: past 1
        assert _same(s["recall"], [6 / 4, 5 / 6, NAN])


def test_early_transition_as_released_is_not_forgiven_and_clears_an_error_at_the_segments_start():
    gt = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    pred = [2, 0, 0, 0, 1, 1, 1, 1, 1, 1]  # frame 0 wrong (diff +2); frames 4, 5 switch early (diff +1)
    released = relaxed_phase_scores(pred, gt, 3, fps=0.2, as_released=True)
    # the mask of the last t frames ([+1, +1] == 1) lands on the first t: frame 0's error is cleared, 4 and 5 stay
    assert released["accuracy"] == pytest.approx(0.8)
    assert _same(released["jaccard"], [4 / 6, 4 / 6, NAN])
    assert _same(released["precision"], [4 / 3, 4 / 6, NAN])
    assert _same(released["recall"], [4 / 6, 4 / 4, NAN])  # phase 2 was predicted, but is in no truth: NaN
    fixed = relaxed_phase_scores(pred, gt, 3, fps=0.2, as_released=False)
    # as intended: frames 4, 5 forgiven, frame 0 stays wrong
    assert fixed["accuracy"] == pytest.approx(0.9)
    assert _same(fixed["jaccard"], [5 / 6, 6 / 6, NAN])
    assert _same(fixed["precision"], [5 / 3, 6 / 6, NAN])
    assert _same(fixed["recall"], [5 / 6, 6 / 4, NAN])


@pytest.mark.parametrize(("gt_phases", "pred", "want"), [
    # Cholec80 phase 6 (index 5) may still be two phases behind at its start: forgiven
    ((3, 5), [3, 3, 3, 3, 3, 3, 5, 5], 1.0),
    # phase 5 (index 4) only one phase behind: a -2 is an error
    ((2, 4), [2, 2, 2, 2, 2, 2, 4, 4], 0.75),
    # phase 3 (index 2) one phase ahead at its end, not two: an error even with the bug fixed
    ((2, 4), [2, 2, 4, 4, 4, 4, 4, 4], 0.75),
    # only phase ids are compared: index 5 preceded by index 0 in the truth still forgives a late 4
    ((0, 5), [0, 0, 0, 0, 4, 4, 5, 5], 1.0),
])
def test_two_phase_jumps(gt_phases, pred, want):
    first, second = gt_phases
    gt = [first] * 4 + [second] * 4
    for as_released in (True, False):
        assert relaxed_phase_scores(pred, gt, 7, fps=0.2, as_released=as_released)["accuracy"] == pytest.approx(want)


def test_phase_4_may_jump_two_phases_ahead_at_its_end_only_with_the_bug_fixed():
    gt, pred = [3, 3, 3, 3, 5, 5, 5, 5], [3, 3, 5, 5, 5, 5, 5, 5]  # diff +2 in phase 4's (index 3) last 2 frames
    assert relaxed_phase_scores(pred, gt, 7, fps=0.2, as_released=False)["accuracy"] == 1.0
    assert relaxed_phase_scores(pred, gt, 7, fps=0.2, as_released=True)["accuracy"] == pytest.approx(0.75)


def test_the_10_second_boundary_at_1_fps():
    gt = [0] * 15 + [1] * 15
    on_the_boundary = [0] * 25 + [1] * 5  # phase 1's first 10 frames (0 s .. 9 s after the change) still phase 0
    assert relaxed_phase_scores(on_the_boundary, gt, 2, fps=1.0)["accuracy"] == 1.0
    one_past = [0] * 26 + [1] * 4  # the 11th frame, 10 s after the change, is outside the tolerance
    assert relaxed_phase_scores(one_past, gt, 2, fps=1.0)["accuracy"] == pytest.approx(29 / 30)


def test_tolerance_is_in_frames_of_the_fps_given_and_capped_at_the_segment():
    """REFERENCES: "25-fps labels evaluated with fps = 1 get a 0.4 s tolerance" (t = 10 frames)."""
    gt, pred = [0] * 300 + [1] * 300, [0] * 550 + [1] * 50  # 250 frames = 10 s late at 25 fps
    assert relaxed_phase_scores(pred, gt, 2, fps=25.0)["accuracy"] == 1.0
    assert relaxed_phase_scores(pred, gt, 2, fps=1.0)["accuracy"] == pytest.approx((600 - 240) / 600)
    # segments of 3 frames at 1 fps: t = min(10, 3), each segment forgiven whole
    assert relaxed_phase_scores([0] * 6 + [1] * 3, [0] * 3 + [1] * 3 + [2] * 3, 3, fps=1.0)["accuracy"] == 1.0


def test_a_phase_never_predicted_but_forgiven_has_infinite_precision_as_in_matlab():
    s = relaxed_phase_scores([0] * 8, [0] * 4 + [1] * 4, 2, fps=0.2)
    # phase 1: no predicted frame, TP = its first 2 frames (forgiven): 2 / 0 = inf; Main.m clips it to 100 %
    assert s["precision"][1] == math.inf and s["recall"][1] == pytest.approx(0.5) and s["jaccard"][1] == 0.5
    assert _same(s["precision"][:1], [6 / 8]) and s["accuracy"] == pytest.approx(6 / 8)


def test_strict_and_relaxed_disagree_on_the_same_frames():
    gt, pred = [0] * 15 + [1] * 15, [0] * 25 + [1] * 5
    strict = phase_metrics(torch.tensor(pred), torch.tensor(gt), 2)
    assert strict["accuracy"] == pytest.approx(20 / 30)
    assert relaxed_phase_scores(pred, gt, 2, fps=1.0)["accuracy"] == 1.0


# ------------------------------------------------------------------ Main.m, over videos
def test_summary_clips_at_1_ignores_missing_phases_and_averages_videos_then_phases():
    v1 = {"accuracy": 0.9, "jaccard": [0.5, 1.0, NAN], "precision": [2.0, 0.5, NAN], "recall": [0.5, 1.0, NAN]}
    v2 = {"accuracy": 0.7, "jaccard": [0.7, NAN, NAN], "precision": [math.inf, NAN, NAN], "recall": [0.9, NAN, NAN]}
    s = relaxed_summary([v1, v2], ["A", "B", "C"])
    # per phase over videos (clipped; NaN = the phase is not in that video's truth), then over the phases present
    # jaccard: A (0.5 + 0.7) / 2 = 0.6, B 1.0, C absent everywhere -> (0.6 + 1.0) / 2
    assert s["jaccard"] == pytest.approx(0.8)
    # precision: A (min(2, 1) + min(inf, 1)) / 2 = 1.0, B 0.5 -> 0.75; recall: A 0.7, B 1.0 -> 0.85
    assert s["precision"] == pytest.approx(0.75) and s["recall"] == pytest.approx(0.85)
    assert s["accuracy"] == pytest.approx(0.8)
    assert s["f1"] == pytest.approx(2 * 0.75 * 0.85 / (0.75 + 0.85))  # of the means
    assert s["f1_mean_over_phases"] == pytest.approx((2 * 1.0 * 0.7 / 1.7 + 2 * 0.5 * 1.0 / 1.5) / 2)
    # std (n - 1): over phases for jaccard / precision / recall, over videos for accuracy
    assert s["std"]["jaccard"] == pytest.approx(math.sqrt(0.08)) and s["std"]["accuracy"] == pytest.approx(
        math.sqrt(0.02))
    a, b, c = s["per_phase"]
    assert (a["n_videos"], b["n_videos"], c["n_videos"]) == (2, 1, 0)
    assert c["jaccard"] is None and c["precision"] is None and c["f1"] is None  # JSON null, not NaN
    json.dumps(s, allow_nan=False)


def test_summarize_names_its_protocol_and_keeps_the_strict_numbers():
    from hvl.core.evaluation.zeroshot.classify import format_table, summarize

    preds = [torch.tensor([0, 0, 0, 0, 0, 0, 0, 1, 1, 1])]
    labels = [torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])]
    strict = summarize(["v"], preds, labels, ["A", "B", "C"], "phase", 0.2)
    assert strict["protocol"] == "strict" and "strict" in strict["protocol_description"]
    assert strict["accuracy"] == pytest.approx(0.7)
    assert format_table(strict).startswith("protocol: strict")
    for protocol in ("relaxed", "relaxed-fixed"):
        r = summarize(["v"], preds, labels, ["A", "B", "C"], "phase", 0.2, protocol)
        assert r["protocol"] == protocol and r["accuracy"] == pytest.approx(0.9)
        assert r["strict"] == {k: strict[k] for k in r["strict"]}  # the strict numbers, unchanged, beside
        assert r["per_video"][0]["recall"] == pytest.approx((1.0 + 5 / 6) / 2)  # clipped, mean over phases in truth
        table = format_table(r)
        assert table.startswith(f"protocol: {protocol}: ") and "\nprotocol: strict" in table
        json.dumps(r, allow_nan=False)
    assert "as released" in summarize(["v"], preds, labels, ["A", "B", "C"], "phase", 0.2, "relaxed")[
        "protocol_description"]


def test_the_cli_choices_are_the_protocols():
    from hvl.core.cli.options import PROTOCOL_CHOICES
    from hvl.core.errors import HVLInputError
    from hvl.core.evaluation.metrics import check_protocol

    assert PROTOCOL_CHOICES == PROTOCOLS
    with pytest.raises(HVLInputError, match="unknown metric protocol 'loose'"):
        check_protocol("loose")


# ------------------------------------------------------------------ the clinical report shows both
def test_clinical_tables_and_notebook_show_both_protocols():
    import pandas as pd
    from hvl.core.evaluation.zeroshot.classify import summarize
    from hvl.domains.surgical import clinical

    preds, labels = [torch.tensor([0, 0, 0, 1, 1])], [torch.tensor([0, 0, 1, 1, 1])]
    strict = summarize(["v"], preds, labels, ["A", "B"], "phase", 1.0)
    relaxed = summarize(["v"], preds, labels, ["A", "B"], "phase", 1.0, "relaxed")
    rows = clinical.protocol_rows(strict, relaxed, first="relaxed")
    assert [r["protocol"] for r in rows] == ["relaxed", "strict"]
    assert rows[0]["accuracy"] == 1.0 and rows[1]["accuracy"] == pytest.approx(0.8)
    assert rows[1]["f1"] == strict["f1_macro"] and rows[0]["f1"] == relaxed["f1"]
    result = {"tables": {"protocols": rows, "protocols_per_phase": relaxed["per_phase"]}, "figures": {}}
    assert [type(x) for x in clinical.notebook_section(result, "protocols")] == [pd.DataFrame, pd.DataFrame]


# ------------------------------------------------------------------ hvl zeroshot / hvl adapt --protocol
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(work dir, untrained 3-level checkpoint) on the surgical demo at 32 px."""
    from hvl.core.models.module import HierarchicalVLM
    from hvl.domains.surgical.demo import generate

    work = tmp_path_factory.mktemp("protocols")
    generate(work / "data/demo_surgical", n_train=2, n_val=1, n_test=2, size=32, progress=False)
    torch.manual_seed(0)
    m = HierarchicalVLM(video_encoder={"frame_encoder": {"name": "small_cnn", "widths": [8, 16]}}, embed_dim=32)
    ckpt = work / "tiny.ckpt"
    torch.save({"state_dict": {k: v for k, v in m.state_dict().items() if not k.startswith("text.model.")},
                "hyper_parameters": dict(m.hparams),
                "hvl": {"class_path": "hvl.core.models.module.HierarchicalVLM", "frozen_text_dropped": True,
                        "image_size": 32}}, ckpt)
    return work, ckpt


@pytest.mark.slow
def test_zeroshot_and_adapt_report_and_record_the_protocol(tiny, monkeypatch, capsys):
    from hvl.core.cli import main
    from hvl.core.data.predictions import PredictionsManifest
    from mlflow import MlflowClient

    work, ckpt = tiny
    monkeypatch.chdir(work)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    base = ["--config", "surgical/demo_zeroshot", "--ckpt", str(ckpt), "--no-progress"]
    assert main(["zeroshot", *base, "--protocol", "relaxed", "--json", "relaxed.json", "--predictions", "pred"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("protocol: relaxed: ") and "\nprotocol: strict" in out
    relaxed = json.loads((work / "relaxed.json").read_text())
    strict = relaxed["strict"]
    assert relaxed["protocol"] == "relaxed" and strict["protocol"] == "strict"
    assert {"precision", "recall", "f1", "std", "per_phase"} <= set(relaxed) and "f1_macro" in strict

    manifest = PredictionsManifest.model_validate_json((work / "pred" / "predictions.json").read_text())
    assert manifest.protocol == "relaxed" and manifest.relaxed_metrics["accuracy"] == relaxed["accuracy"]
    assert manifest.metrics.accuracy == strict["accuracy"]  # the per-frame files stay strict

    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("hvl-surgical-demo").experiment_id])
    assert run.data.params["zeroshot_protocol"] == "relaxed"
    assert run.data.metrics["zeroshot/demo/relaxed/accuracy"] == pytest.approx(relaxed["accuracy"])
    assert run.data.metrics["zeroshot/demo/accuracy"] == pytest.approx(strict["accuracy"])

    # a config's protocol: is the default (--protocol overrides it), and adapt reports the same way
    cfg = work / "relaxed_fixed.yaml"
    cfg.write_text(f"domain: surgical\ndataset: {{reader: manifest, path: {work}/data/demo_surgical/test.jsonl}}\n"
                   "prompts: surgical:demo\nlevel: phase\nprotocol: relaxed-fixed\n")
    assert main(["adapt", "--config", str(cfg), "--ckpt", str(ckpt), "--train", "data/demo_surgical/train.jsonl",
                 "--steps", "0", "--head-out", "h.pt", "--no-cache", "--no-progress", "--no-mlflow",
                 "--json", "adapt.json"]) == 0
    adapted = json.loads((work / "adapt.json").read_text())
    assert adapted["protocol"] == "relaxed-fixed" and "\nprotocol: relaxed-fixed: " in capsys.readouterr().out
    assert adapted["strict"]["per_video"] == strict["per_video"]  # 0 steps = zero-shot, the same frames


@pytest.mark.slow
def test_clinical_review_reports_both_protocols_with_the_chosen_one_first(tiny, tmp_path):
    from hvl.domains.surgical import clinical

    work, ckpt = tiny
    result = clinical.evaluate_clinical(ckpt, work / "data/demo_surgical/test.jsonl", "surgical:demo",
                                        protocol="relaxed-fixed", n_boot=20, gallery_size=1, out_dir=tmp_path / "rep",
                                        mlflow=False, num_workers=0)
    a = result["a"]
    assert result["protocol"] == "relaxed-fixed" and a["relaxed"]["protocol"] == "relaxed-fixed"
    assert [r["protocol"] for r in result["tables"]["protocols"]] == ["relaxed-fixed", "strict"]
    assert result["tables"]["protocols"][1]["accuracy"] == a["zeroshot"]["accuracy"]  # hvl zeroshot's strict
    assert "Metric protocols" in (tmp_path / "rep" / "report.html").read_text()
    saved = json.loads((tmp_path / "rep" / "clinical.json").read_text())
    assert saved["protocol"] == "relaxed-fixed" and saved["a"]["relaxed"]["accuracy"] == a["relaxed"]["accuracy"]
    with pytest.raises(Exception, match="unknown metric protocol"):
        clinical.evaluate_clinical(ckpt, work / "data/demo_surgical/test.jsonl", "surgical:demo", protocol="loose",
                                   mlflow=False)
