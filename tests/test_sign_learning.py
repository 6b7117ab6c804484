"""End to end on a small sign demo: generate → `hvl fit` (the shipped recipe) → `hvl retrieval`.

The claim: text → video R@1 on held-out sentences (new combinations of trained glosses) is at
least 5× chance, scored as the shipped retrieval recipe does (gloss space, frame × word).
Measured with this test's data at seeds 0 / 1: 37.5 % / 27.5 % (15× / 11× chance). Chance R@1 is 1 / (number of test sentences) for both directions (a random
ranking puts one of a sentence's videos first with probability videos(s) / videos, which averages
to 1 / sentences). The untrained model of the same seed is the control.
"""
import json
from pathlib import Path

import pytest
import torch
from hvl.core.cli import main

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes" / "sign"
N_TEST = 40
CHANCE = 100.0 / N_TEST  # percent
MARGIN = 5.0


@pytest.mark.slow
def test_fit_then_retrieval_beats_chance(tmp_path, monkeypatch, capsys):
    from hvl.domains.sign.demo import generate

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    generate("data/demo_sign", seed=0, per_sentence={"train": 2, "val": 1, "test": 1}, n_val=2, n_test=N_TEST,
             size=32, progress=False)
    assert main(["fit", "--config", str(RECIPES / "demo_pretrain.yaml"), "--trainer.enable_progress_bar", "false",
                 "--trainer.enable_model_summary", "false"]) == 0
    ckpt = tmp_path / "checkpoints" / "sign_demo" / "best.ckpt"
    assert main(["retrieval", "--config", str(RECIPES / "demo_retrieval.yaml"), "--ckpt", str(ckpt),
                 "--json", "metrics.json", "--no-progress"]) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["retrieval", "--config", str(RECIPES / "demo_retrieval.yaml"), "--ckpt", str(ckpt),
                 "--level", "phase", "--no-progress", "--no-mlflow"]) == 2   # a level the checkpoint lacks
    err = capsys.readouterr().err.strip().splitlines()[-1]   # after the text model's loading bar
    assert err.startswith("hvl: error: ") and str(ckpt) in err and "'phase'" in err and "['clip', 'video']" in err, err
    assert m["n_sentences"] == N_TEST and m["n_videos"] == N_TEST
    assert m["similarity"] == "finegrained" and m["level"] == "clip"
    assert m["chance_r1"] == pytest.approx(CHANCE, abs=1e-3)
    assert m["t2v_r1"] >= MARGIN * CHANCE, m
    assert m["t2v_meanr"] < (N_TEST + 1) / 2, m     # a random ranking's expected mean rank

    # control: the same architecture untrained ranks at about chance
    from hvl.core.data.records import manifest_videos
    from hvl.core.evaluation.retrieval import evaluate_retrieval
    from hvl.core.models.checkpoint import load_model, read_checkpoint

    hp = {k: v for k, v in read_checkpoint(ckpt)["hyper_parameters"].items() if not k.startswith("_")}
    trained, _ = load_model(ckpt)
    torch.manual_seed(0)
    untrained = type(trained)(**hp).eval()
    videos = manifest_videos(tmp_path / "data" / "demo_sign" / "test.jsonl")
    ctrl = evaluate_retrieval(untrained, videos, "clip", "finegrained", frames=m["frames"], image_size=32,
                              num_workers=0, progress=False)
    assert ctrl["t2v_r1"] < m["t2v_r1"] - 2 * CHANCE and ctrl["t2v_meanr"] > m["t2v_meanr"], (ctrl, m)

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("hvl-sign-demo").experiment_id])
    assert run.data.metrics["retrieval/clip/finegrained/t2v_r1"] == pytest.approx(m["t2v_r1"])
