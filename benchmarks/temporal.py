"""Time and peak memory of the video level's temporal aggregation, per video, as videos get longer: the mean of
the frames (HecVL), full attention and windowed attention (``video_encoder.temporal: windowed``), same run.

Input: one video's cached frame features ``[1, T, dim]`` (512: CLIP ViT-B's), at each length. ``full`` is the
windowed encoder with every window at least the length (the same stages and weights, every frame attending to
every frame: today's ``transformer`` cannot go past 128 frames); ``windowed`` has windows 2, 4, 8, 16, 32,
computed by blocks of 64 queries; ``windowed_dense_mask`` is the same attention with the band as one
``T × (T + 2w)`` boolean mask (why the blocks: see its memory).
Each is measured in ``inference`` (forward, no gradient) and ``train`` (forward and backward) mode:
``ms`` is the median of ``--repeats`` runs after one warm-up, ``peak_mib`` the memory the run adds at its
peak, the input included (CPU: the process's resident-set high-water mark, reset before each run through
``/proc/self/clear_refs``, glibc told to hand freed blocks back; CUDA: ``max_memory_allocated``). ``growth``
is each figure's exponent in length: the least-squares slope of log(value) on log(T) over all lengths, and
between the two longest (1 = linear, 2 = quadratic).

    python benchmarks/temporal.py [--quick] [--device cuda] > temporal.json
"""
from __future__ import annotations

import argparse
import ctypes
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, log, machine, seed_all

LENGTHS = [64, 256, 1024, 4096]
WINDOWS = [2, 4, 8, 16, 32]
METHODS = ("mean", "full", "windowed", "windowed_dense_mask")


def _status_mib(field: str) -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", text).group(1)) / 1024


def _release_freed_memory() -> bool:
    """glibc keeps freed blocks for reuse, so a peak of the resident set would miss memory a run took from them:
    serve every block over 64 KiB from its own mapping, returned to the system when freed. False off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-3, 64 * 1024) and libc.mallopt(-1, 0))  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    except OSError:
        return False


def peak_mib(run: Callable[[], Any], device: str) -> float | None:
    """Memory ``run`` adds at its peak, in MiB; None where this platform cannot say."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        run()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
    except OSError:
        return None
    before = _status_mib("VmRSS")
    run()
    return max(0.0, _status_mib("VmHWM") - before)


def slope(lengths: list[int], values: list[float | None]) -> dict[str, float | None]:
    """Exponent of ``values`` in ``lengths``: fit over all, and between the two longest."""
    if len(lengths) < 2 or any(v is None or v <= 0 for v in values):
        return {"fit": None, "last_two": None}
    xs, ys = [math.log(n) for n in lengths], [math.log(v) for v in values]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    fit = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return {"fit": round(fit, 2), "last_two": round((ys[-1] - ys[-2]) / (xs[-1] - xs[-2]), 2)}


def build(method: str, dim: int, heads: int, windows: list[int], longest: int, device: str):
    import torch
    from hvl.core.models.encoders import WindowedTemporal

    if method == "mean":
        return lambda x: x.mean(1)
    m = WindowedTemporal(dim, [longest] * len(windows) if method == "full" else windows, heads).to(device)
    if method == "windowed_dense_mask":  # one block: the band as a T × (T + 2w) mask, memory quadratic in T
        for layer in m.stages:
            layer.block = longest
    with torch.no_grad():
        torch.nn.init.normal_(m.out.weight, std=0.02)  # trained-like: the zero output layer would skip no work
    return lambda x: m(x).mean(1)


def measure(fn, feats, length: int, train: bool, repeats: int, device: str) -> dict[str, float | None]:
    import torch

    def once():
        x = feats[:, :length].clone().requires_grad_(train)
        if train:
            fn(x).square().sum().backward()
        else:
            with torch.no_grad():
                fn(x)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    once()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        once()
        times.append((time.perf_counter() - t0) * 1000)
    peak = peak_mib(once, device)
    return {"ms": round(statistics.median(times), 3), "peak_mib": None if peak is None else round(peak, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="16 and 64 frames of 32-d features: a few seconds")
    ap.add_argument("--lengths", type=int, nargs="+", default=None)
    ap.add_argument("--dim", type=int, default=None)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--windows", type=int, nargs="+", default=WINDOWS)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    lengths = a.lengths or ([16, 64] if a.quick else LENGTHS)
    dim = a.dim or (32 if a.quick else 512)
    heads, windows = (2, [2, 4]) if a.quick else (a.heads, a.windows)
    repeats = 1 if a.quick else a.repeats

    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    released = _release_freed_memory() if a.device == "cpu" else None
    seed_all(0)
    load_start = [round(x, 2) for x in os.getloadavg()]
    feats = torch.randn(1, max(lengths), dim, device=a.device)
    methods: dict[str, dict[str, Any]] = {}
    growth: dict[str, dict[str, Any]] = {}
    for method in METHODS:
        fn = build(method, dim, heads, windows, max(lengths), a.device)
        rows = {}
        for n in lengths:
            rows[str(n)] = {mode: measure(fn, feats, n, mode == "train", repeats, a.device)
                            for mode in ("inference", "train")}
            log(f"{method} {n} frames: {rows[str(n)]}")
        methods[method] = rows
        growth[method] = {f"{mode}_{what}": slope(lengths, [rows[str(n)][mode][key] for n in lengths])
                          for mode in ("inference", "train") for what, key in (("time", "ms"), ("memory", "peak_mib"))}
    emit({"benchmark": "temporal", "quick": a.quick,
          "config": {"lengths": lengths, "dim": dim, "heads": heads, "windows": windows, "stages": len(windows),
                     "repeats": repeats, "batch": 1, "glibc_releases_freed_memory": released},
          "machine": machine(a.device) | {"load_average": load_start,
                                          "load_average_end": [round(x, 2) for x in os.getloadavg()]},
          "methods": methods, "growth": growth})


if __name__ == "__main__":
    main()
