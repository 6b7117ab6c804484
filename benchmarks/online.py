"""``hvl predict --online``: latency per frame, and what causality costs in accuracy against the offline prediction.

One model per seed is trained through the shipped demo recipe on the realistic surgical preset (``hvl demo surgical
--preset realistic``; the recipe of ``benchmarks/hierarchy.py``, clip+phase+video). Each held-out test video is
remuxed to MPEG-TS (what a recorder writes for ``--online``; the same H.264 packets, so the same pixels) and
predicted twice with the same model: offline (``hvl predict``: centred window, centred majority vote) and online
(``hvl predict --online``: trailing window, trailing majority vote, the file read as a stream that ends after
``--quiet-seconds``). Reported per seed and mean ± std over seeds: accuracy and macro-F1 of both against the phase
labels (frames at ``--fps`` with a label), their difference (the cost of causality), and the share of frames where
the two agree. Latency: per labelled frame, from the moment its picture is decoded to the moment its line is
flushed to ``labels.jsonl`` (model forward, smoothing, write); p50 / p95 over all frames on CPU.

    python benchmarks/online.py [--quick] [--seeds 0 1 2] [--steps 60] [--window 4] [--work DIR] > online.json
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from common import DEFAULT_WORK, emit, log, machine
from hierarchy import fit, make_data

LEVELS = ["clip", "phase", "video"]


def remux_ts(src: Path, dst: Path) -> Path:
    """The video's packets, unchanged, in an MPEG-TS container (as a live recorder writes it)."""
    import av

    if dst.exists():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as box, av.open(str(dst), "w", format="mpegts") as out:
        s = box.streams.video[0]
        o = out.add_stream_from_template(s)
        for pkt in box.demux(s):
            if pkt.dts is None:
                continue
            pkt.stream = o
            out.mux(pkt)
    return dst


def _metrics(pred: list[int], truth: list[int], classes: int) -> dict[str, float]:
    import torch
    from hvl.core.evaluation.metrics import phase_metrics

    m = phase_metrics(torch.tensor(pred), torch.tensor(truth), classes)
    return {"accuracy": m["accuracy"], "f1_macro": m["f1_macro"]}


def evaluate_seed(ckpt: Path, videos: list, work: Path, window: float, fps: float, smooth: int,
                  image_size: int) -> dict[str, Any]:
    from hvl.core.inference.online import CausalScorer, label_growing_video
    from hvl.core.inference.predict import PredictConfig, load_predictor, video_timeline
    from hvl.core.models.spec import ModelSource

    cfg = PredictConfig(inputs=["-"], source=ModelSource(ckpt=str(ckpt)), prompts="surgical:demo", out=str(work),
                        window=window, fps=fps, smooth_window=smooth, num_workers=0, progress=False,
                        video_backend="pyav")
    pred = load_predictor(cfg)
    names = pred.classes
    lookup = {n: i for i, n in enumerate(names)}
    rows: dict[str, list[int]] = {"offline": [], "online": [], "truth": []}
    latencies: list[float] = []
    for rec, path in videos:
        ts = remux_ts(Path(path), work / f"{rec.video_id}.ts")
        off = video_timeline(pred, ts, rec.video_id)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a stream that only decodes finished would not measure --online
            on = label_growing_video(pred, ts, work / "online" / rec.video_id, rec.video_id, quiet_seconds=0.5,
                                     scorer=CausalScorer(pred))
        if on.timeline.t != off.t:
            raise RuntimeError(f"{rec.video_id}: online and offline score different times")
        latencies += on.latencies
        for t, a, b in zip(off.t, off.smoothed, on.timeline.smoothed):
            label = rec.label_at(t)
            if label in lookup:
                rows["offline"].append(a)
                rows["online"].append(b)
                rows["truth"].append(lookup[label])
    off_m = _metrics(rows["offline"], rows["truth"], len(names))
    on_m = _metrics(rows["online"], rows["truth"], len(names))
    agree = float(np.mean(np.asarray(rows["offline"]) == np.asarray(rows["online"])))
    return {"offline": off_m, "online": on_m, "cost": {k: off_m[k] - on_m[k] for k in off_m},
            "agreement": agree, "frames": len(rows["truth"]), "latencies_s": latencies}


def mean_std(xs: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(xs)), "std": float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny data and model, one seed, few steps (CI)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds (default 0 1 2; quick: 0)")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps per fit (default 60 = recipe; quick: 20)")
    p.add_argument("--window", type=float, default=4.0, help="seconds of the window (centred / trailing)")
    p.add_argument("--fps", type=float, default=1.0)
    p.add_argument("--smooth-window", type=int, default=5)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=DEFAULT_WORK / "online")
    a = p.parse_args()
    seeds = a.seeds or ([0] if a.quick else [0, 1, 2])
    steps = a.steps or (20 if a.quick else 60)
    image_size = 32 if a.quick else 64
    t0 = time.perf_counter()
    data, _ = make_data(a.work, "realistic", a.quick, a.data_seed)
    from hvl.core.data.records import manifest_videos

    videos = manifest_videos(data / "test.jsonl")
    per_seed = []
    for seed in seeds:
        run_dir = a.work / f"run_{'quick' if a.quick else 'full'}_{seed}_{steps}"
        log(f"fit seed {seed} ({steps} steps) ...")
        ckpt, wall, _ = fit(run_dir, data, LEVELS, seed, steps, a.quick, image_size)
        log(f"predict offline and online, seed {seed} ...")
        r = evaluate_seed(ckpt, videos, run_dir / "predict", a.window, a.fps, a.smooth_window, image_size)
        per_seed.append({"seed": seed, "fit_wall_s": wall, **r})
    lat = np.asarray([x for r in per_seed for x in r.pop("latencies_s")]) * 1000
    result = {
        "benchmark": "online", "quick": a.quick, "machine": machine("cpu"),
        "config": {"preset": "realistic", "seeds": seeds, "steps": steps, "levels": LEVELS, "window_s": a.window,
                   "fps": a.fps, "smooth_window": a.smooth_window, "image_size": image_size,
                   "test_videos": len(videos), "container": "mpegts"},
        "latency_ms": {"p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95)),
                       "frames": int(lat.size)},
        "accuracy": {mode: {k: mean_std([r[mode][k] for r in per_seed]) for k in ("accuracy", "f1_macro")}
                     for mode in ("offline", "online", "cost")},
        "agreement": mean_std([r["agreement"] for r in per_seed]),
        "per_seed": per_seed, "wall_s": time.perf_counter() - t0,
    }
    emit(result)


if __name__ == "__main__":
    main()
