"""A real tracking server on loopback: a tiny recipe logs params, metrics, config and checkpoint to it,
and a run that crashes ends FAILED, not RUNNING."""
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import free_port
from hvl.domains.surgical.demo import generate

pytestmark = pytest.mark.server

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "surgical" / "demo_pretrain.yaml"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    proc = subprocess.Popen([str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'db.sqlite'}",
                             "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("mlflow server did not come up within 120 s")
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("srv_data"), n_train=2, n_val=2, n_test=0, progress=False)["manifests"]


def _fit(tmp_path, url, train, val, *extra):
    hvl = shutil.which("hvl", path=str(BIN)) or "hvl"
    cmd = [hvl, "fit", "--config", str(RECIPE), "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
           "--trainer.enable_progress_bar", "false", "--data.init_args.train", train, "--data.init_args.val", val,
           "--data.init_args.num_workers", "0", "--trainer.logger.init_args.experiment_name", "server-test", *extra]
    env = {**os.environ, "MLFLOW_TRACKING_URI": url}
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def _runs(url):
    from mlflow import MlflowClient

    client = MlflowClient(url)
    exp = client.get_experiment_by_name("server-test")
    return client, client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


def test_training_logs_everything_to_the_server(tmp_path, server, data):
    run = _fit(tmp_path, server, data["train"], data["val"])
    assert run.returncode == 0, run.stderr[-3000:]
    client, runs = _runs(server)
    r = runs[-1]
    assert r.info.status == "FINISHED"
    assert r.data.params["embed_dim"] == "128" and "train" in r.data.params
    assert {"train/loss_clip_epoch", "val/loss"} <= set(r.data.metrics)
    files = {a.path for a in client.list_artifacts(r.info.run_id)}
    assert {"config.yaml", "best"} <= files
    assert any(a.path.endswith(".ckpt") for a in client.list_artifacts(r.info.run_id, "best"))


def test_crashed_run_ends_failed(tmp_path, server, data):
    # A video that breaks mid-training (the policy check is switched off so the crash happens in a step).
    broken = tmp_path / "broken"
    shutil.copytree(Path(data["train"]).parent, broken)
    for v in (broken / "videos").glob("*.mp4"):
        v.write_bytes(b"")
    run = _fit(tmp_path, server, str(broken / "train.jsonl"), data["val"], "--data.init_args.on_bad_video", "ignore")
    assert run.returncode != 0
    assert "Traceback" not in run.stderr and "hvl: error:" in run.stderr and "empty (0 bytes)" in run.stderr
    _, runs = _runs(server)
    assert runs[-1].info.status == "FAILED"
