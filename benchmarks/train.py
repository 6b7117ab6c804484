"""Training speed of the demo recipe on CPU, and what the frozen text encoder's cache buys.

* ``trainer``: ``pytorch_lightning.Trainer`` fitting the recipe's ``HierarchicalVLM`` on the
  recipe's ``HVLDataModule`` (demo videos, 2 workers) for ``--steps`` steps: steps/s after
  ``--warmup`` steps, peak RSS of the main process and of the loader workers.
* ``model_only``: the same model on batches decoded beforehand (one full level-schedule
  period, replayed), so the loader is out of the picture: forward + backward + AdamW.
  Run twice: with the frozen ``TextEncoder``'s cache (embeddings looked up by string), and
  with the cache cleared before every step (every text re-encoded, as an unfrozen or
  cache-less encoder would). Their ratio is the cache's gain.

    python benchmarks/train.py [--quick] [--work DIR] > train.json
"""
from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path
from typing import Any

import psutil
import pytorch_lightning as pl
import torch
from common import DEFAULT_WORK, demo_data, emit, log, machine, recipe_init_args, seed_all
from hvl.core.data.datamodule import HVLDataModule
from hvl.core.models.module import HierarchicalVLM


class StepClock(pl.Callback):
    """Wall time at the end of every step, and the loader workers' peak RSS while they live."""

    def __init__(self) -> None:
        self.ends: list[float] = []
        self.worker_peak_mb = 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.ends.append(time.perf_counter())
        self.worker_peak_mb = max(self.worker_peak_mb, workers_hwm_mb())


def workers_hwm_mb() -> float:
    """Sum of the child processes' peak resident memory (VmHWM), in MiB."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            with open(f"/proc/{child.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def rate(ends: list[float], warmup: int) -> float:
    """Steps/s between the end of step ``warmup`` and the end of the last step."""
    return (len(ends) - warmup) / (ends[-1] - ends[warmup - 1])


def make(model_args: dict[str, Any], data_args: dict[str, Any], manifest: Path, steps: int,
         workers: int) -> tuple[HierarchicalVLM, HVLDataModule]:
    data = {**data_args, "train": str(manifest), "val": None, "steps_per_epoch": steps, "num_workers": workers}
    return HierarchicalVLM(**model_args), HVLDataModule(**data)


def bench_trainer(model_args: dict, data_args: dict, manifest: Path, steps: int, warmup: int,
                  workers: int) -> dict[str, Any]:
    seed_all(0)
    model, dm = make(model_args, data_args, manifest, steps, workers)
    clock = StepClock()
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=steps, max_epochs=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         use_distributed_sampler=False, num_sanity_val_steps=0, limit_val_batches=0,
                         callbacks=[clock])
    t0 = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    return {"steps": len(clock.ends), "warmup_steps": warmup, "steps_per_s": round(rate(clock.ends, warmup), 3),
            "first_step_s": round(clock.ends[0] - t0, 2), "total_s": round(time.perf_counter() - t0, 2),
            "peak_rss_main_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "peak_rss_workers_mb": round(clock.worker_peak_mb, 1)}


def model_steps(model: HierarchicalVLM, batches: list[dict], steps: int, clear_cache: bool) -> list[float]:
    """Forward (all levels in the batch, recipe weights) + backward + AdamW; step end times."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=model.hparams.lr)
    model.train()
    ends = []
    for s in range(steps):
        batch = batches[s % len(batches)]
        if clear_cache:
            model.text.clear_cache()
        losses = [model.loss_weights[lv] * model.level_loss(lv, b) for lv, b in batch.items()]
        loss = sum(losses) / sum(model.loss_weights[lv] for lv in batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ends.append(time.perf_counter())
    return ends


def bench_model_only(model_args: dict, data_args: dict, manifest: Path, steps: int, warmup: int,
                     workers: int) -> dict[str, Any]:
    seed_all(0)
    model, dm = make(model_args, data_args, manifest, 15, workers)  # 15 steps = one clip/phase/video period
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    out: dict[str, Any] = {"steps": steps, "warmup_steps": warmup, "replayed_batches": len(batches)}
    for name, clear in (("text_cache", False), ("no_text_cache", True)):
        model.text.clear_cache()
        ends = model_steps(model, batches, steps, clear)
        out[name] = {"steps_per_s": round(rate(ends, warmup), 3)}
        log(f"  model only, {name}: {out[name]}")
    out["text_cache_speedup"] = round(out["text_cache"]["steps_per_s"] / out["no_text_cache"]["steps_per_s"], 2)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few steps on a small demo (for tests)")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help="where generated videos are cached")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.quick:
        a.steps, a.warmup = 8, 2
    seed_all(a.seed)
    model_args, data_args = recipe_init_args()
    root = demo_data(a.work, *((3, 0) if a.quick else (16, 6)))
    log("Trainer.fit with the data module ...")  # first: the peak RSS figures are this run's
    fit = bench_trainer(model_args, data_args, root / "train.jsonl", a.steps, a.warmup, a.workers)
    log(f"  {fit}\nmodel only (replayed batches) ...")
    model_only = bench_model_only(model_args, data_args, root / "train.jsonl", a.steps, a.warmup, a.workers)
    emit({"benchmark": "train", "machine": machine(), "quick": a.quick, "seed": a.seed,
          "recipe": "recipes/surgical/demo_pretrain.yaml", "schedule": data_args["schedule"], "trainer": fit,
          "model_only": model_only,
          "loader_bound": round(fit["steps_per_s"] / model_only["text_cache"]["steps_per_s"], 3)})


if __name__ == "__main__":
    main()
