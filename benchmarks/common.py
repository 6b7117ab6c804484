"""Shared helpers for the benchmark scripts: machine description, JSON output, seeded data sets.

Every benchmark prints exactly one JSON object on stdout (progress goes to stderr) and
compares against a baseline measured in the same run, so figures taken on a busy machine
can still be read as ratios.
"""
from __future__ import annotations

import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORK = ROOT / "data" / "bench"   # data/ is git-ignored
DEMO_RECIPE = ROOT / "recipes" / "surgical" / "demo_pretrain.yaml"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def log(*args: Any) -> None:
    """Progress for humans: stderr, so stdout stays one JSON object."""
    print(*args, file=sys.stderr, flush=True)


def seed_all(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def ffmpeg_version() -> str | None:
    exe = shutil.which("ffmpeg")
    if exe is None:
        return None
    out = subprocess.run([exe, "-version"], capture_output=True, text=True).stdout
    return out.split("\n", 1)[0].split(" ")[2] if out else "unknown"


def machine(device: str = "cpu") -> dict[str, Any]:
    """What the figures were measured on; the load average says how busy the machine was."""
    import torch

    info: dict[str, Any] = {"cpu_count": os.cpu_count(), "torch": torch.__version__, "device": device,
                            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                            "platform": platform.platform(), "load_avg_1m": round(os.getloadavg()[0], 2)}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    try:
        import decord

        info["decord"] = decord.__version__
    except ImportError:
        pass
    return info


def emit(result: dict[str, Any]) -> None:
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()


def recipe_init_args() -> tuple[dict[str, Any], dict[str, Any]]:
    """The demo recipe's model and data ``init_args`` (speed is measured on what users run)."""
    import yaml

    cfg = yaml.safe_load(DEMO_RECIPE.read_text())
    return cfg["model"]["init_args"], cfg["data"]["init_args"]


def demo_data(work: Path, n_train: int = 16, n_test: int = 6) -> Path:
    """The surgical demo (128x128, 10 fps), generated once per size into ``work`` and reused."""
    from hvl.domains.surgical import demo

    out = work / f"demo_{n_train}_{n_test}"
    if not (out / "train.jsonl").exists():
        log(f"generating demo videos into {out} ...")
        t0 = time.perf_counter()
        demo.generate(out, seed=0, n_train=n_train, n_val=0, n_test=n_test, progress=False)
        log(f"  done in {time.perf_counter() - t0:.1f}s")
    return out


def _moving_frames(rng: np.random.Generator, n: int, size: int, fps: float) -> np.ndarray:
    """Textured background panning slowly, three blobs moving, brightness drift and light noise."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = rng.uniform(0, 255, (3, 1, 1)).astype(np.float32)
    tex = rng.normal(0, 1, (8, 8)).astype(np.float32)
    tex = np.kron(tex, np.ones((size // 8 + 1, size // 8 + 1), np.float32))[: 2 * size, : 2 * size]
    tex = np.pad(tex, ((0, 2 * size - tex.shape[0]), (0, 2 * size - tex.shape[1])), mode="wrap")
    blobs = rng.uniform(0, 1, (3, 5)).astype(np.float32)  # cx, cy, vx, vy, colour
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        t = i / fps
        ox, oy = int(size * 0.5 * (1 + np.sin(0.05 * t))), int(size * 0.5 * (1 + np.cos(0.04 * t)))
        img = base + 40 * tex[oy: oy + size, ox: ox + size][None] * (1 + 0.2 * np.sin(0.3 * t))
        for cx, cy, vx, vy, c in blobs:
            px, py = (cx + 0.05 * vx * t) % 1, (cy + 0.05 * vy * t) % 1
            d2 = (xx - px) ** 2 + (yy - py) ** 2
            img = img + (255 * c - img) * np.exp(-d2 / 0.004)[None]
        img += rng.normal(0, 2, (1, size, size)).astype(np.float32)
        out[i] = np.clip(img, 0, 255).transpose(1, 2, 0).astype(np.uint8)
    return out


def long_data(work: Path, n_videos: int = 8, seconds: float = 60.0, fps: float = 25.0, size: int = 224,
              gop: int = 25, seed: int = 0) -> Path:
    """Longer, larger videos than the demo (default 8 x 60 s, 224x224, 25 fps, a keyframe a second)
    with a manifest in hvl's format: 4 s clips every 2 s, 10 s phases, one abstract per video."""
    from hvl.core.data.schema import ClipSegment, PhaseSegment, VideoRecord, write_manifest
    from hvl.core.data.video import write_video

    out = work / f"long_{n_videos}x{int(seconds)}s_{size}px_{int(fps)}fps_gop{gop}"
    if (out / "train.jsonl").exists():
        return out
    log(f"generating {n_videos} x {seconds:.0f}s {size}x{size} videos into {out} ...")
    t0 = time.perf_counter()
    records = []
    for v in range(n_videos):
        rng = np.random.default_rng([seed, v])
        n = int(round(seconds * fps))
        write_video(out / "videos" / f"long_{v:03d}.mp4", _moving_frames(rng, n, size, fps), fps, keyframe_every=gop)
        dur = n / fps
        clips = [ClipSegment(start=s, end=min(s + 4.0, dur), texts=[f"narration {v} {s:.0f}", f"asr {v} {s:.0f}"])
                 for s in np.arange(0.0, dur - 4.0 + 1e-9, 2.0)]
        phases = [PhaseSegment(start=s, end=min(s + 10.0, dur), text=f"phase {k} of video {v}", label=f"p{k % 7}")
                  for k, s in enumerate(np.arange(0.0, dur - 1e-9, 10.0))]
        records.append(VideoRecord(video_id=f"long_{v:03d}", path=f"videos/long_{v:03d}.mp4", duration=dur,
                                   texts=[f"abstract of video {v}"], phases=phases, clips=clips))
    write_manifest(out / "train.jsonl", records)
    log(f"  done in {time.perf_counter() - t0:.1f}s")
    return out
