"""The pose stream's gain on sign retrieval: RGB only, pose only, fused (and late fusion) on the sign demo.

Each stream is the shipped recipe through ``hvl fit`` (``sign/demo_pretrain`` = RGB, ``sign/pose``, ``sign/fused``;
only the seed, the data and, with ``--steps``, the budget overridden), one fit per seed; "late" is score-level
fusion of the RGB-only and pose-only models of the same seed (:func:`hvl.core.evaluation.retrieval.fuse_scores`).
Scored on the demo's held-out sentences (new combinations of trained glosses, one video each) in both spaces the
sign recipes score in (gloss space ``clip`` and sentence space ``video``, frame × word), each stream reported at its
own best space (chosen on the mean over seeds of T2V R@1: read it as the best case of each). Per stream and space:
T2V and V2T R@1 / R@5 / MedR, mean ± std over seeds; per query, hits averaged over seeds, paired bootstrap 95 % CIs
of each stream minus RGB only (:func:`hvl.core.evaluation.stats.bootstrap_ci`, queries resampled).

Also robustness (T2V / V2T R@1 of the pose-aware models on the same test videos with the demo's pose-estimator
errors scaled by ``--noise`` levels; trained at 1) and cost (training wall time per fit, scoring time per video).

    python benchmarks/sign_pose.py [--quick] [--seeds 0 1 2] [--work DIR] > sign_pose.json
    python benchmarks/sign_pose.py --table sign_pose.json
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from common import DEFAULT_WORK, emit, log, machine

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {"rgb": "demo_pretrain", "pose": "pose", "fused": "fused"}
CKPT_DIRS = {"rgb": "sign_demo", "pose": "sign_pose", "fused": "sign_fused"}
SPACES = ("clip", "video")
METRICS = ("t2v_r1", "t2v_r5", "t2v_medr", "v2t_r1", "v2t_r5", "v2t_medr")


def make_data(root: Path, quick: bool, seed: int, noise: float = 1.0, test_only: bool = False) -> Path:
    """The sign demo with poses (cached in ``root``); the test split's videos are the same at every noise level."""
    from hvl.domains.sign.demo import generate

    n_test = 12 if quick else 40
    per = {"train": 1 if quick else 2, "val": 1, "test": 1}
    if test_only:
        per = {**per, "train": 0, "val": 0}
    out = root / f"data_{'quick' if quick else 'full'}_{seed}_noise{noise:g}{'_test' if test_only else ''}"
    if not (out / "test.jsonl").exists():
        log(f"generating the sign demo into {out} ...")
        generate(out, seed=seed, per_sentence=per, n_val=2, n_test=n_test, size=32, progress=False, pose_noise=noise)
    return out


def fit(run_dir: Path, data: Path, stream: str, seed: int, steps: int | None, quick: bool) -> tuple[Path, float]:
    """One ``hvl fit`` of the stream's recipe (reused when already done with the same arguments)."""
    from hvl.core.cli import main

    args = ["fit", "--config", str(ROOT / "recipes" / "sign" / f"{RECIPES[stream]}.yaml"), "--seed_everything",
            str(seed), "--data.init_args.train", str(data / "train.jsonl"), "--data.init_args.val",
            str(data / "val.jsonl"), "--data.init_args.seed", str(seed), "--trainer.logger",
            json.dumps({"class_path": "pytorch_lightning.loggers.CSVLogger", "init_args": {"save_dir": "."}}),
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    if steps is not None:
        args += ["--trainer.max_steps", str(steps)]
    if quick:
        args += ["--data.init_args.num_workers", "0", "--data.init_args.steps_per_epoch", str(steps),
                 "--trainer.max_epochs", "1", "--trainer.num_sanity_val_steps", "0"]
    ckpt, done = run_dir / "checkpoints" / CKPT_DIRS[stream] / "last.ckpt", run_dir / "fit.json"
    if ckpt.exists() and done.exists() and json.loads(done.read_text())["args"] == args:
        return ckpt, json.loads(done.read_text())["wall_s"]
    run_dir.mkdir(parents=True, exist_ok=True)
    old = Path.cwd()
    os.chdir(run_dir)
    try:
        t0 = time.perf_counter()
        if main(args) != 0:
            raise RuntimeError(f"hvl fit failed for {stream} seed {seed}")
        wall = time.perf_counter() - t0
    finally:
        os.chdir(old)
    done.write_text(json.dumps({"args": args, "wall_s": wall}))
    return ckpt, wall


def similarities(model, data: Path, frames: int = 8) -> tuple[dict[str, Any], list[int], float]:
    """Per space ``[S, V]`` sentence × video scores on ``data``'s test split, each video's sentence, and the
    scoring time per video (embedding videos and sentences, all spaces)."""
    import torch
    from hvl.core.data.records import manifest_videos
    from hvl.core.evaluation.retrieval import embed_sentences, embed_videos, group_by_sentence

    videos = manifest_videos(data / "test.jsonl")
    sentences, of_video = group_by_sentence([rec.texts[0] for rec, _ in videos])
    sims = {}
    t0 = time.perf_counter()
    with torch.no_grad():
        for level in SPACES:
            vf, vg = embed_videos(model, videos, level, frames, 32, num_workers=0, progress=False, pose_root=data)
            tt, tm, tg = embed_sentences(model, sentences, level)
            sims[level] = model.pair_scores(level, vf, vg, tt, tm, tg, "finegrained").T.float().cpu()
    return sims, of_video, (time.perf_counter() - t0) / len(videos)


def per_query(sim, of_video: list[int]) -> dict[str, list[float]]:
    """Per T2V query (sentence) and V2T query (video): hit@1, hit@5 (percent) and rank + 1."""
    import torch
    from hvl.core.evaluation.retrieval import retrieval_ranks

    t2v, v2t = retrieval_ranks(sim, torch.tensor(of_video))
    out = {}
    for d, r in (("t2v", t2v), ("v2t", v2t)):
        out[f"{d}_r1"] = (100.0 * (r < 1)).tolist()
        out[f"{d}_r5"] = (100.0 * (r < 5)).tolist()
        out[f"{d}_rank"] = (r + 1).tolist()
    return out


def metrics(q: dict[str, list[float]]) -> dict[str, float]:
    import numpy as np

    return {"t2v_r1": float(np.mean(q["t2v_r1"])), "t2v_r5": float(np.mean(q["t2v_r5"])),
            "t2v_medr": float(np.median(q["t2v_rank"])), "v2t_r1": float(np.mean(q["v2t_r1"])),
            "v2t_r5": float(np.mean(q["v2t_r5"])), "v2t_medr": float(np.median(q["v2t_rank"]))}


def mean_std(xs: list[float]) -> dict[str, float]:
    import numpy as np

    return {"mean": round(float(np.mean(xs)), 2), "std": round(float(np.std(xs)), 2)}


def paired(queries: dict[str, list[dict[str, list[float]]]], stream: str, base: str, n_boot: int) -> dict[str, Any]:
    """Bootstrap CIs of ``stream`` minus ``base`` per query (hits averaged over seeds; T2V and V2T queries)."""
    import numpy as np
    from hvl.core.evaluation.stats import bootstrap_ci

    out = {}
    for d in ("t2v", "v2t"):
        keys = [f"{d}_r1", f"{d}_r5"]
        a = {k: np.mean([q[k] for q in queries[stream]], axis=0) for k in keys}
        b = {k: np.mean([q[k] for q in queries[base]], axis=0) for k in keys}
        rows = [{k: float(a[k][i] - b[k][i]) for k in keys} for i in range(len(a[keys[0]]))]
        out |= {k: {m: round(v, 2) if m != "n_videos" else v for m, v in ci.items()}
                for k, ci in bootstrap_ci(rows, keys, n_boot=n_boot).items()}
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = ["| stream | space | T2V R@1 | T2V R@5 | T2V MedR | V2T R@1 | V2T R@5 | V2T MedR | Δ T2V R@1 vs RGB (95 % CI) "
             "| Δ V2T R@1 vs RGB (95 % CI) |", "|" + "---|" * 10]
    for stream, row in result["streams"].items():
        best = row["best_space"]
        cells = [f"{row['spaces'][best][m]['mean']:.1f} ± {row['spaces'][best][m]['std']:.1f}" for m in METRICS]
        ci = row.get("vs_rgb", {})
        deltas = [f"{ci[k]['mean']:+.1f} [{ci[k]['lo']:+.1f}, {ci[k]['hi']:+.1f}]" if k in ci else "—"
                  for k in ("t2v_r1", "v2t_r1")]
        lines.append(f"| {stream} | {best} | " + " | ".join(cells + deltas) + " |")
    lines += ["", "| noise | " + " | ".join(f"{s} T2V R@1 | {s} V2T R@1" for s in result["robustness"]["streams"])
              + " |", "|---|" + "---|---|" * len(result["robustness"]["streams"])]
    for level, row in result["robustness"]["rows"].items():
        lines.append(f"| {level} | " + " | ".join(f"{row[s]['t2v_r1']['mean']:.1f} | {row[s]['v2t_r1']['mean']:.1f}"
                                                   for s in result["robustness"]["streams"]) + " |")
    lines += ["", "| stream | train s / fit | scoring ms / video |", "|---|---|---|"]
    for stream, c in result["cost"].items():
        lines.append(f"| {stream} | {c['train_s']['mean']:.0f} | {c['score_ms_per_video']['mean']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny data, one seed, few steps (CI)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="model seeds (default 0 1 2; quick: 0)")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps per fit (default: the recipes'; quick 6)")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--noise", type=float, nargs="+", default=None,
                   help="pose noise levels of the robustness test sets (default 0 1 2 4; quick: 0 4)")
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--work", type=Path, default=DEFAULT_WORK / "sign_pose")
    p.add_argument("--table", type=Path, default=None, help="print the markdown tables of a saved result and exit")
    a = p.parse_args()
    if a.table is not None:
        print(markdown(json.loads(a.table.read_text())))
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from hvl.core.evaluation.retrieval import fuse_scores
    from hvl.core.models.checkpoint import load_model

    seeds = a.seeds or ([0] if a.quick else [0, 1, 2])
    steps = a.steps or (6 if a.quick else None)
    noise = a.noise or ([0.0, 4.0] if a.quick else [0.0, 1.0, 2.0, 4.0])
    work = a.work.resolve()
    t_all = time.perf_counter()
    data = make_data(work, a.quick, a.data_seed)
    noisy = {n: make_data(work, a.quick, a.data_seed, n, test_only=True) for n in noise if n != 1.0}
    noisy[1.0] = data
    streams = ["rgb", "pose", "fused", "late"]
    queries: dict[str, dict[str, list]] = {s: {sp: [] for sp in SPACES} for s in streams}
    robust: dict[float, dict[str, list]] = {n: {s: [] for s in ("pose", "fused", "late")} for n in noise}
    cost: dict[str, dict[str, list]] = {s: {"train_s": [], "score_ms_per_video": []} for s in RECIPES}
    for seed in seeds:
        sims_by = {}
        for stream, recipe in RECIPES.items():
            log(f"seed {seed}: {stream} (hvl fit sign/{recipe}) ...")
            ckpt, wall = fit(work / "runs" / f"{'quick' if a.quick else 'full'}_{stream}_s{seed}", data, stream, seed,
                             steps, a.quick)
            model, _ = load_model(ckpt, map_location="cpu")
            model.eval()
            sims, of_video, per_video = similarities(model, data)
            cost[stream]["train_s"].append(wall)
            cost[stream]["score_ms_per_video"].append(1000 * per_video)
            sims_by[stream] = {1.0: sims}
            if stream != "rgb":
                for n in noise:
                    if n != 1.0:
                        sims_by[stream][n] = similarities(model, noisy[n])[0]
            log(f"  {wall:.0f}s to train; clip-space T2V R@1 {metrics(per_query(sims['clip'], of_video))['t2v_r1']:.1f}")
        rgb = sims_by["rgb"][1.0]
        sims_by["late"] = {n: {sp: fuse_scores([rgb[sp], sims_by["pose"][n][sp]]) for sp in SPACES}
                           for n in sims_by["pose"]}
        for stream in streams:
            for sp in SPACES:
                queries[stream][sp].append(per_query(sims_by[stream][1.0][sp], of_video))
        for n in noise:
            for stream in ("pose", "fused", "late"):
                robust[n][stream].append({sp: metrics(per_query(sims_by[stream][n][sp], of_video)) for sp in SPACES})
    result_streams = {}
    for stream in streams:
        spaces = {sp: {m: mean_std([metrics(q)[m] for q in queries[stream][sp]]) for m in METRICS} for sp in SPACES}
        best = max(SPACES, key=lambda sp: spaces[sp]["t2v_r1"]["mean"])
        result_streams[stream] = {"spaces": spaces, "best_space": best}
    for stream in streams[1:]:
        best, base_best = result_streams[stream]["best_space"], result_streams["rgb"]["best_space"]
        result_streams[stream]["vs_rgb"] = paired({stream: queries[stream][best], "rgb": queries["rgb"][base_best]},
                                                  stream, "rgb", a.n_boot)
    robustness = {"streams": ["pose", "fused", "late"], "trained_at": 1.0, "rows": {
        f"{n:g}": {s: {m: mean_std([r[result_streams[s]["best_space"]][m] for r in robust[n][s]])
                       for m in ("t2v_r1", "v2t_r1")} for s in ("pose", "fused", "late")} for n in noise}}
    n_test = len(queries["rgb"]["clip"][0]["t2v_r1"])
    result = {"benchmark": "sign_pose", "quick": a.quick, "machine": machine(),
              "config": {"seeds": seeds, "steps": steps or "recipes' (6 epochs x 40)", "data_seed": a.data_seed,
                         "noise": noise, "n_boot": a.n_boot, "frames": 8, "image_size": 32, "checkpoint": "last",
                         "test_sentences": n_test, "chance_r1": round(100.0 / n_test, 2)},
              "streams": result_streams, "robustness": robustness,
              "cost": {s: {k: mean_std(v) for k, v in c.items()} for s, c in cost.items()},
              "seconds": round(time.perf_counter() - t_all, 1)}
    emit(result)


if __name__ == "__main__":
    main()
