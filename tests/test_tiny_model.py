"""What holds for any model, checked in seconds on a tiny untrained checkpoint and a five-video surgical demo (the
slow tests check the same paths on the trained demo, with learning margins): `hvl adapt` with zero steps is
`hvl zeroshot` exactly and its saved head gives the same numbers again through `hvl zeroshot --head`; the run is
logged to MLflow with the numbers it wrote; the clinical ladder's zero-shot rung is `hvl zeroshot`; WiSE-FT
refuses what it cannot ensemble."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hvl.core.cli import main
from hvl.core.errors import HVLInputError

SAME = ("accuracy", "f1_macro", "jaccard", "pooled", "per_video", "n_videos", "n_frames", "classes", "level", "fps")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(work dir, checkpoint, zero-shot metrics): the demo at 32 px, an untrained 3-level model, its zero-shot run
    logged to MLflow in the work dir."""
    import torch
    from hvl.core.models.module import HierarchicalVLM
    from hvl.domains.surgical.demo import generate

    work = tmp_path_factory.mktemp("tiny")
    generate(work / "data/demo_surgical", n_train=3, n_val=1, n_test=2, size=32, progress=False)
    torch.manual_seed(0)
    m = HierarchicalVLM(video_encoder={"frame_encoder": {"name": "small_cnn", "widths": [8, 16]}}, embed_dim=32)
    ckpt = work / "tiny.ckpt"
    torch.save({"state_dict": {k: v for k, v in m.state_dict().items() if not k.startswith("text.model.")},
                "hyper_parameters": dict(m.hparams),
                "hvl": {"class_path": "hvl.core.models.module.HierarchicalVLM", "frozen_text_dropped": True,
                        "image_size": 32}}, ckpt)
    mp = pytest.MonkeyPatch()
    mp.chdir(work)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    try:
        assert main(["zeroshot", "--config", "surgical/demo_zeroshot", "--ckpt", str(ckpt), "--json", "zs.json",
                     "--no-progress"]) == 0
        yield work, ckpt, json.loads((work / "zs.json").read_text())
    finally:
        mp.undo()


def test_adapt_with_zero_steps_is_zeroshot_and_its_head_gives_the_same_numbers(tiny, monkeypatch):
    work, ckpt, zeroshot = tiny
    monkeypatch.chdir(work)
    assert main(["adapt", "--config", "surgical/demo_zeroshot", "--ckpt", str(ckpt), "--train",
                 "data/demo_surgical/train.jsonl", "--method", "linear", "--steps", "0", "--head-out", "zero.pt",
                 "--cache", "cache", "--json", "adapt.json", "--no-mlflow", "--no-progress"]) == 0
    adapted = json.loads((work / "adapt.json").read_text())
    for k in SAME:
        assert adapted[k] == zeroshot[k], k
    assert adapted["head"]["n_videos"] == 3 and adapted["head"]["fit"]["steps"] == 0
    assert main(["zeroshot", "--config", "surgical/demo_zeroshot", "--ckpt", str(ckpt), "--head", "zero.pt",
                 "--json", "again.json", "--no-mlflow", "--no-progress"]) == 0
    again = json.loads((work / "again.json").read_text())
    for k in SAME:
        assert again[k] == zeroshot[k], k


def test_the_zero_shot_run_is_in_mlflow_with_the_numbers_it_wrote(tiny):
    from mlflow.tracking import MlflowClient

    work, _, zeroshot = tiny
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    (exp,) = [e for e in client.search_experiments() if e.name != "Default"]
    (run,) = client.search_runs([exp.experiment_id])
    for k in ("accuracy", "f1_macro", "jaccard"):  # named zeroshot/<prompt file>/<metric>
        assert run.data.metrics[f"zeroshot/demo/{k}"] == pytest.approx(zeroshot[k])


def test_the_clinical_ladders_zero_shot_rung_is_zeroshot(tiny, tmp_path):
    from hvl.domains.surgical import clinical

    work, ckpt, zeroshot = tiny
    data = work / "data/demo_surgical"
    res = clinical.evaluate_ladder(ckpt, data / "train.jsonl", data / "test.jsonl", "surgical:demo", levels=["phase"],
                                   seeds=[0], windows=[], shots=[1], fractions=[1.0], probe_windows=[],
                                   temporal=False, n_boot=20, num_workers=0, out_dir=tmp_path,
                                   cache_dir=str(work / "cache"))  # the training features `hvl adapt` cached
    assert [r["rung"] for r in res["rows"]] == ["zero-shot", "1 shot / class", "linear probe, 100% of videos"]
    zero = res["rows"][0]
    assert zero["accuracy"]["mean"] == pytest.approx(zeroshot["accuracy"], abs=1e-4)
    assert zero["vs_zeroshot"]["accuracy"] == {"delta": 0.0, "lo": 0.0, "hi": 0.0}
    assert res["table"][0]["Δ accuracy vs zero-shot [95% CI]"] == "+0.000 [+0.000, +0.000]"
    assert Path(res["figure"]).is_file() and Path(res["json"]).is_file()


def test_wise_ft_refuses_an_alpha_outside_0_1_and_a_model_not_fine_tuned_from_a_backbone(tiny, tmp_path):
    from hvl.core.models.wiseft import wise_ft

    _, ckpt, _ = tiny
    with pytest.raises(HVLInputError, match=r"--alpha must be in \[0, 1\]"):
        wise_ft(ckpt, 1.5, tmp_path / "x.ckpt")
    with pytest.raises(HVLInputError, match="not fine-tuned from a pretrained backbone"):
        wise_ft(ckpt, 0.5, tmp_path / "x.ckpt")
    assert not (tmp_path / "x.ckpt").exists()
