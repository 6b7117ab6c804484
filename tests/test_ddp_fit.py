"""The demo recipe runs data-parallel by changing only trainer.devices / trainer.strategy (2 CPU processes, gloo)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hvl.core.data.schema import load_manifest
from hvl.domains.surgical.demo import generate

pytestmark = pytest.mark.distributed

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "surgical" / "demo_pretrain.yaml"


def test_fit_on_two_processes(tmp_path):
    # the demo's own validation set (2 videos: one per device) with a small training set
    data = generate(tmp_path / "data", n_train=4, n_test=0, progress=False)["manifests"]
    assert len(load_manifest(data["val"]).videos) == 2
    hvl = shutil.which("hvl", path=str(Path(sys.executable).parent)) or "hvl"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    cmd = [hvl, "fit", "--config", str(RECIPE), "--trainer.accelerator", "cpu", "--trainer.devices", "2",
           "--trainer.strategy", "ddp", "--trainer.max_epochs", "2", "--trainer.enable_progress_bar", "false",
           "--data.init_args.train", data["train"], "--data.init_args.val", data["val"],
           "--data.init_args.num_workers", "0"]
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stderr + run.stdout
    assert "world_size: 2" in out or "distributed_backend=gloo" in out
    # what `hvl fit` prints is worth reading: none of the messages a user can do nothing about
    for noise in ("args parameter", "in eval mode at the start of training", "litlogger", "litmodels", "LeafSpec"):
        assert noise not in out, noise
    assert "videos of" in out and "read by decord" in out  # the probe's table in the training log
    ckpt = torch.load(tmp_path / "checkpoints" / "surgical_demo" / "last.ckpt", weights_only=True)
    # what the probe saw is in the MLflow run: every video, its codec, frame rate and decoder
    from mlflow import MlflowClient

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    probe = json.loads(Path(client.download_artifacts(ckpt["hvl"]["mlflow_run_id"], "data/video_probe.json",
                                                      str(tmp_path))).read_text())["manifests"]
    rows = probe[str(Path(data["val"]))]
    assert len(rows) == 2 and {(r["codec"], r["rate"], r["backend"]) for r in rows} == {("h264", "constant", "decord")}
    assert sum(len(r) for r in probe.values()) == 6
    # each rank took half of each global batch: steps = clips // (32 per device × 2 devices), and steps
    # without the phase or video level (they train every 3rd / 5th step) ran too
    n_clips = sum(len(v.clips) for v in load_manifest(data["train"]).videos)
    assert ckpt["global_step"] == 2 * (n_clips // 64) >= 3
