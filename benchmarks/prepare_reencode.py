"""How much faster training reads ``hvl prepare --reencode`` copies than the originals (ratio, same run).

Originals: long-GOP H.264 (x264's default keyframe interval, 250 frames) at 224², as screen or
lecture recordings usually are. Copies: ``hvl prepare``'s re-encoding (short GOP, same size). Both are read
the way training reads clips: a reader kept open (ReaderCache), 4 frames spread over a random 4 s window,
decoded at the training image size. The same windows, interleaved, best of ``--repeats``.

    python benchmarks/prepare_reencode.py [--videos 4] [--seconds 60] [--reads 200] > reencode.json
"""
from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
from common import DEFAULT_WORK, emit, log, machine
from hvl.core.data.prepare.reencode import reencode_h264
from hvl.core.data.video import ReaderCache


def long_gop_video(path: Path, seconds: float, fps: int, size: int, seed: int) -> Path:
    """Moving noise blobs, x264 defaults (keyint 250): what a recording straight off a camera looks like."""
    import av

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size * 2, size * 2, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as box:
        s = box.add_stream("libx264", rate=fps)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        s.options = {"crf": "23", "preset": "veryfast"}
        for i in range(int(seconds * fps)):
            x, y = int(size / 2 + size / 2 * np.sin(i / 40)), int(size / 2 + size / 2 * np.cos(i / 55))
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(base[y:y + size, x:x + size]),
                                                         format="rgb24")):
                box.mux(p)
        for p in s.encode():
            box.mux(p)
    return path


def read_windows(paths: list[Path], windows: list[tuple[int, float]], image_size: int) -> float:
    cache = ReaderCache(1, size=(image_size, image_size))
    t0 = time.perf_counter()
    for vi, start in windows:
        cache(paths[vi]).read(start, start + 4.0, num=4)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--gop", type=int, default=8)
    ap.add_argument("--image-size", type=int, default=224, help="decode size, as data.image_size")
    ap.add_argument("--reads", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK / "reencode")
    a = ap.parse_args()
    orig = [a.work / "orig" / f"v{i}.mp4" for i in range(a.videos)]
    for i, p in enumerate(orig):
        if not p.is_file():
            log(f"writing {p}")
            long_gop_video(p, a.seconds, a.fps, a.size, i)
    copies = [a.work / "copies" / f"v{i}.mp4" for i in range(a.videos)]
    t0 = time.perf_counter()
    for src, dst in zip(orig, copies):
        reencode_h264(src, dst, a.size, a.gop)
    reencode_s = time.perf_counter() - t0
    rng = random.Random(0)
    # sorted by video, as the level-schedule sampler hands a worker its keys
    windows = sorted((rng.randrange(a.videos), rng.uniform(0, a.seconds - 4.0)) for _ in range(a.reads))
    best = {"original": float("inf"), "reencoded": float("inf")}
    for r in range(a.repeats):
        best["original"] = min(best["original"], read_windows(orig, windows, a.image_size))
        best["reencoded"] = min(best["reencoded"], read_windows(copies, windows, a.image_size))
        log(f"repeat {r}: {best}")
    emit({"benchmark": "prepare_reencode", "machine": machine(), "settings": vars(a) | {"work": str(a.work)},
          "clip_reads": a.reads,
          "ms_per_clip": {k: round(v / a.reads * 1000, 2) for k, v in best.items()},
          "speedup_reencoded_vs_original": round(best["original"] / best["reencoded"], 2),
          "bytes": {"original": sum(p.stat().st_size for p in orig), "reencoded": sum(p.stat().st_size for p in copies)},
          "reencode_seconds_per_video_minute": round(reencode_s / (a.videos * a.seconds / 60), 2)})


if __name__ == "__main__":
    main()
