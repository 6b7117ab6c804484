"""Crash safety: `kill -9` in the middle of an epoch, `hvl fit --ckpt_path last`, and the run ends
exactly where an uninterrupted seeded run ends (weights and final validation loss)."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from hvl.core.models.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]
STEPS_PER_EPOCH, EPOCHS, KILL_AT = 4, 2, 6  # killed in epoch 2, its first step checkpointed, the second not


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from hvl.domains.surgical.demo import generate

    out = tmp_path_factory.mktemp("resume_data")
    generate(out, seed=3, n_train=4, n_val=1, n_test=0, size=64, progress=False)
    return out


def _config(tmp: Path, data: Path, name: str, kill: bool) -> Path:
    cfg = yaml.safe_load((ROOT / "recipes" / "surgical" / "demo_pretrain.yaml").read_text())
    t = cfg["trainer"]
    t.update(max_epochs=EPOCHS, deterministic=True, enable_progress_bar=False, log_every_n_steps=1,
             logger={"class_path": "pytorch_lightning.loggers.CSVLogger",
                     "init_args": {"save_dir": str(tmp / name), "name": "", "version": ""}})
    t["callbacks"] = [{"class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
                       "init_args": {"dirpath": str(tmp / name / "ckpt"), "every_n_train_steps": 1,
                                     "save_top_k": 0, "save_last": True}}]
    if kill:
        t["callbacks"].append({"class_path": "resume_callbacks.KillAtStep", "init_args": {"step": KILL_AT}})
    m = cfg["model"]["init_args"]
    m["video_encoder"]["frame_encoder"]["widths"] = [8, 16]
    m.update(embed_dim=32, warmup_steps=2)
    d = cfg["data"]["init_args"]
    d.update(train=str(data / "train.jsonl"), val=str(data / "val.jsonl"), image_size=32, num_workers=0,
             steps_per_epoch=STEPS_PER_EPOCH,
             schedule={"clip": {"frames": 2, "batch_size": 8, "every": 1},
                       "phase": {"frames": 4, "batch_size": 4, "every": 2}})
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _fit(config: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "hvl.core.cli", "fit", "--config", str(config), *extra],
                          env=env, capture_output=True, text=True, timeout=600)


def _final_val_loss(run_dir: Path) -> float:
    rows = [r for r in csv.DictReader((run_dir / "metrics.csv").open()) if r.get("val/loss")]
    return float(rows[-1]["val/loss"])


@pytest.mark.slow
def test_kill_9_then_resume_from_last_matches_uninterrupted_run(tmp_path, tiny_data):
    straight = _fit(_config(tmp_path, tiny_data, "straight", kill=False))
    assert straight.returncode == 0, straight.stderr[-3000:]

    crashed_cfg = _config(tmp_path, tiny_data, "crashed", kill=True)
    crashed = _fit(crashed_cfg)
    assert crashed.returncode == -9, f"expected SIGKILL, got {crashed.returncode}: {crashed.stderr[-2000:]}"
    last = tmp_path / "crashed" / "ckpt" / "last.ckpt"
    state = read_checkpoint(last)  # loadable: written atomically, whatever the kill interrupted
    assert state["global_step"] == KILL_AT - 1 and state["epoch"] == 1, (state["global_step"], state["epoch"])

    resumed = _fit(_config(tmp_path, tiny_data, "crashed", kill=False), "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "not resumable" not in resumed.stderr

    a = read_checkpoint(tmp_path / "straight" / "ckpt" / "last.ckpt")
    b = read_checkpoint(last)
    assert a["global_step"] == b["global_step"] == EPOCHS * STEPS_PER_EPOCH
    # Equal up to float rounding: the frozen text encoder's cache starts empty after the restart, so
    # strings are embedded in other batch compositions (other padding) than in the straight run.
    # Replaying the wrong batches moves weights by ~1e-3 relative; rounding moves them by ~1e-7.
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, rtol=1e-4, atol=1e-6, msg=f"weights differ after resume: {k}")
    assert _final_val_loss(tmp_path / "crashed") == pytest.approx(_final_val_loss(tmp_path / "straight"), rel=1e-5)


@pytest.mark.parametrize("skip", [0, 1, 3, 5])
def test_sampler_skip_replays_the_rest_of_the_epoch(skip):
    """A resumed pass yields exactly the tail of the uninterrupted pass (same items, same seeds),
    once; the epoch after it is whole again."""
    from hvl.core.data.datamodule import Item, LevelConfig, LevelScheduleSampler

    items = {"clip": [Item("clip", i % 5, i) for i in range(24)], "phase": [Item("phase", i % 5, i) for i in range(8)]}
    levels = {"clip": LevelConfig(frames=2, batch_size=4, every=1), "phase": LevelConfig(frames=2, batch_size=2, every=2)}
    sampler = LevelScheduleSampler(items, levels, seed=7, steps_per_epoch=6)
    sampler.set_epoch(1)
    full = list(sampler)
    sampler.resume(1, skip)
    tail = list(sampler)
    assert tail == full[skip:]
    assert list(sampler) == full  # the skip is used once
    sampler.resume(1, 6)  # the epoch was finished: continue with the next one
    assert sampler.epoch == 2 and list(sampler) != full


def test_epochs_differ():
    """Each epoch reshuffles: Lightning reaches the sampler's ``set_epoch`` through ``batch_sampler.sampler``."""
    from hvl.core.data.datamodule import Item, LevelConfig, LevelScheduleSampler
    from lightning_fabric.utilities.data import _set_sampler_epoch
    from torch.utils.data import DataLoader

    items = {"clip": [Item("clip", i % 5, i) for i in range(24)]}
    sampler = LevelScheduleSampler(items, {"clip": LevelConfig(frames=2, batch_size=4)}, seed=7)
    loader = DataLoader(list(range(24)), batch_sampler=sampler, collate_fn=lambda b: b)
    _set_sampler_epoch(loader, 0)
    first = list(sampler)
    _set_sampler_epoch(loader, 1)
    assert list(sampler) != first
