"""Peak memory of ``hvl predict`` on a 10-minute and a 60-minute video at 1 fps: does it grow with video length?

Frames are streamed (decoded in chunks of ``--batch-size``, embedded, dropped); what is kept per frame is its class
probabilities. The videos are generated (a square moving across a grey background, 32 x 32 pixels, 1 frame per
second: 600 and 3,600 frames), the model is an untrained tiny hvl checkpoint (the memory of a large model is its
weights, the same for both lengths). Each run is a fresh process (``--num-workers 0``: decoding in that process),
its memory sampled every 100 ms; the figure that matters is the ratio long / short. ``--window`` adds a windowed
run of each (every frame's features kept, the window pooled from them). ``--quick``: 1 and 6 minutes (CI).

    python benchmarks/predict_memory.py [--quick] [--window SECONDS] [--work DIR] > predict_memory.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from common import DEFAULT_WORK, emit, log, machine
from index_memory import peak_memory

ROOT = Path(__file__).resolve().parents[1]
HVL = [sys.executable, "-m", "hvl.core.cli"]


def make_video(path: Path, minutes: float, fps: float = 1.0, size: int = 32) -> Path:
    """A ``minutes`` long video at ``fps``, written in one go (small frames: 3,600 of them are 11 MB)."""
    from hvl.core.data.video import write_video

    if path.is_file():
        return path
    n = int(minutes * 60 * fps)
    frames = np.full((n, size, size, 3), 90, np.uint8)
    x = (np.arange(n) * 7) % (size - 8)
    for i in range(n):
        frames[i, 8:20, x[i]:x[i] + 8] = ((i * 37) % 256, 120, 200)
    return write_video(path, frames, fps)


def tiny_checkpoint(path: Path) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from index_helpers import tiny_checkpoint as make

    return path if path.is_file() else make(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--window", type=float, help="also measure windowed runs (seconds)")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK / "predict_memory")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    ckpt = tiny_checkpoint(a.work / "tiny.ckpt")
    lengths = (1, 6) if a.quick else (10, 60)
    runs = []
    for window in [None] + ([a.window] if a.window else []):
        for minutes in lengths:
            video = make_video(a.work / f"video_{minutes}min.mp4", minutes)
            out = a.work / f"out_{minutes}min_w{window}"
            cmd = [*HVL, "predict", str(video), "--ckpt", str(ckpt), "--prompts", "surgical:demo", "--level", "clip",
                   "--out", str(out), "--num-workers", "0", "--no-progress", "--accelerator", "cpu"]
            cmd += ["--window", str(window)] if window else []
            (out / video.stem / "timeline.json").unlink(missing_ok=True)  # measure a prediction, not a resume
            log(f"hvl predict: {minutes} min, window {window} ...")
            runs.append({"minutes": minutes, "frames": int(minutes * 60), "window": window, **peak_memory(cmd)})
    ratios = {}
    for window in {r["window"] for r in runs}:
        short, long_ = [r for r in runs if r["window"] == window]
        ratios[f"window_{window}"] = round(long_["peak_rss_main_mib"] / short["peak_rss_main_mib"], 3)
    emit({"benchmark": "predict_memory", "quick": a.quick, "machine": machine(),
          "config": {"lengths_min": list(lengths), "video_fps": 1.0, "size": 32, "predict_fps": 1.0,
                     "batch_size": 64, "num_workers": 0, "window": a.window},
          "runs": runs, "ratio_peak_rss_long_vs_short": ratios})


if __name__ == "__main__":
    main()
