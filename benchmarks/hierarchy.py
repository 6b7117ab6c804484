"""Does the hierarchy help? Clip-only vs clip+phase vs clip+phase+video pretraining, same data, same steps.

HecVL's claim is that phase- and video-level text on top of clip narration improves zero-shot
phase recognition. This trains, through the shipped demo recipe (``hvl fit`` = LightningCLI,
only overrides), on one generated data set (``--preset realistic`` by default):

* ``clip``: ``model.levels [clip]``, schedule with the clip level only;
* ``clip+phase``: levels ``[clip, phase]``;
* ``clip+phase+video``: the recipe as shipped;
* ``clip+phase+video+smooth``: the same trained models, predictions smoothed over time at
  evaluation (centred mode filter of ``--smooth-window`` frames at 1 fps) — a fourth row, not
  a fourth training.

Every scheme runs the same number of optimiser steps (``--steps``; one step = one AdamW update,
whatever levels its batch holds) for each seed in ``--seeds``. Zero-shot phase recognition on
the held-out test videos (``prompts/demo.yaml``) is measured in each level's embedding space the
model has; reported per scheme: accuracy / macro-F1 / Jaccard (mean over test videos), mean ±
std over seeds, a paired per-video bootstrap CI of the difference to clip-only (clip space;
per-video scores averaged over seeds first, videos resampled), and fit wall time per scheme
(the hierarchy's cost). The last checkpoint of each fit is evaluated (no validation selection).

Two transfer test sets are scored with the same models: ``centre_b`` (the same procedure filmed
in another hospital, preset ``realistic_centre_b``) and ``hysterectomy`` (another procedure,
AutoLaparo's seven phases, with its own prompt file ``prompts/demo_hysterectomy.yaml``; HecVL's
cross-procedure claim). ``--preset-set key=value`` changes one property of the preset (e.g.
``--preset-set narration_rate=1.0``) to see which property makes which scheme win or lose.

    python benchmarks/hierarchy.py [--quick] [--seeds 0 1 2] [--steps 60] [--work DIR] > hierarchy.json
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import DEFAULT_WORK, DEMO_RECIPE, emit, log, machine

LEVELS = ("clip", "phase", "video")
METRICS = ("accuracy", "f1_macro", "jaccard")
RECIPE_SCHEDULE = {"clip": {"frames": 4, "batch_size": 32, "every": 1},
                   "phase": {"frames": 8, "batch_size": 16, "every": 3},
                   "video": {"frames": 16, "batch_size": 8, "every": 5}}
QUICK_SCHEDULE = {"clip": {"frames": 2, "batch_size": 8, "every": 1},
                  "phase": {"frames": 4, "batch_size": 4, "every": 3},
                  "video": {"frames": 4, "batch_size": 2, "every": 5}}
QUICK_ENCODER = {"frame_encoder": {"name": "small_cnn", "widths": [8, 16, 32, 64]}, "temporal": "mean"}
SCHEMES = {"clip": ["clip"], "clip+phase": ["clip", "phase"], "clip+phase+video": ["clip", "phase", "video"]}
SMOOTHED = "clip+phase+video+smooth"
TRANSFER = ("centre_b", "hysterectomy")  # test sets besides the pretraining procedure's own


@contextlib.contextmanager
def chdir(path: Path):
    old = Path.cwd()
    path.mkdir(parents=True, exist_ok=True)
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def make_data(root: Path, preset, quick: bool, seed: int, test_only: bool = False,
              procedure: str = "cholecystectomy") -> tuple[Path, dict[str, Any]]:
    """A demo data set (cached in ``root``); ``preset`` a name or a DemoPreset (keyed by its content)."""
    from hvl.domains.surgical import demo
    from hvl.domains.surgical.presets import PRESETS, get_preset

    counts = ({"n_train": 4, "n_val": 2, "n_test": 2, "size": 64, "fps": 4.0} if quick
              else {"n_train": 16, "n_val": 2, "n_test": 6})  # full: the demo's default size
    if test_only:
        counts = {**counts, "n_train": 0, "n_val": 0}
    preset = get_preset(preset)
    key = preset.name if PRESETS.get(preset.name) == preset else \
        f"{preset.name}-{hashlib.blake2b(preset.model_dump_json().encode(), digest_size=4).hexdigest()}"
    proc = "" if procedure == "cholecystectomy" else f"_{procedure}"
    out = root / f"data_{key}{proc}_{'quick' if quick else 'full'}_{seed}"
    if not (out / "test.jsonl").exists():
        log(f"generating the {key} {procedure} demo into {out} ...")
        summary = demo.generate(out, seed=seed, progress=False, preset=preset, procedure=procedure, **counts)
        (out / "summary.json").write_text(json.dumps(summary))
    return out, {**json.loads((out / "summary.json").read_text()), "counts": counts}


def fit_args(data: Path, levels: list[str], seed: int, steps: int, quick: bool, image_size: int) -> list[str]:
    """``hvl fit`` arguments: the shipped demo recipe, only levels, schedule rows, seed and budget overridden."""
    schedule = {lv: cfg for lv, cfg in (QUICK_SCHEDULE if quick else RECIPE_SCHEDULE).items() if lv in levels}
    args = ["fit", "--config", str(DEMO_RECIPE), "--seed_everything", str(seed),
            "--model.init_args.levels", json.dumps(levels),
            "--model.init_args.loss_weights", json.dumps({lv: 1.0 for lv in levels}),
            "--data.init_args.train", str(data / "train.jsonl"), "--data.init_args.val", str(data / "val.jsonl"),
            "--data.init_args.schedule", json.dumps(schedule), "--data.init_args.seed", str(seed),
            "--data.init_args.steps_per_epoch", str(steps), "--data.init_args.image_size", str(image_size),
            "--trainer.max_epochs", "1", "--trainer.max_steps", str(steps),
            "--trainer.logger", json.dumps({"class_path": "pytorch_lightning.loggers.CSVLogger",
                                            "init_args": {"save_dir": "."}}),  # no MLflow run per ablation fit
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    if quick:
        args += ["--model.init_args.video_encoder", json.dumps(QUICK_ENCODER), "--model.init_args.embed_dim", "32",
                 "--data.init_args.num_workers", "0", "--trainer.limit_val_batches", "1",
                 "--trainer.num_sanity_val_steps", "0"]
    return args


def fit(run_dir: Path, data: Path, levels: list[str], seed: int, steps: int, quick: bool,
        image_size: int) -> tuple[Path, float, bool]:
    """One ``hvl fit`` of the demo recipe with this scheme's levels: last checkpoint, wall time, whether reused."""
    from hvl.core.cli import main

    args = fit_args(data, levels, seed, steps, quick, image_size)
    ckpt, done = run_dir / "checkpoints" / "surgical_demo" / "last.ckpt", run_dir / "fit.json"
    if ckpt.exists() and done.exists() and json.loads(done.read_text())["args"] == args:
        log("  (reusing the finished fit in this run directory)")  # a killed harness resumes where it stopped
        return ckpt, json.loads(done.read_text())["wall_s"], True
    t0 = time.perf_counter()
    with chdir(run_dir):
        if main(args) != 0:
            raise RuntimeError(f"hvl fit failed for {levels} seed {seed}")
    wall = time.perf_counter() - t0
    done.write_text(json.dumps({"args": args, "wall_s": wall}))
    return ckpt, wall, False


def evaluate_run(ckpt: Path, test_sets: dict[str, tuple[list, Any]], image_size: int, window: int) -> dict[str, Any]:
    """Zero-shot metrics per test set (videos, its prompt file) and level space, raw and smoothed over time."""
    from hvl.core.evaluation.temporal import smooth_mode
    from hvl.core.evaluation.zeroshot import predict, summarize
    from hvl.core.models.checkpoint import load_model

    model, _ = load_model(ckpt)
    out: dict[str, Any] = {}
    for name, (videos, prompts) in test_sets.items():
        ids = [rec.video_id for rec, _ in videos]
        for lv in model.video_heads:
            preds, labels, _ = predict(model, videos, prompts, lv, fps=1.0, image_size=image_size, num_workers=0,
                                       progress=False)
            out[f"{name}:{lv}"] = summarize(ids, preds, labels, prompts.names, lv, 1.0)
            smoothed = [smooth_mode(p, window, len(prompts.names)) for p in preds]
            out[f"{name}:{lv}/smooth"] = summarize(ids, smoothed, labels, prompts.names, lv, 1.0)
    return out


def mean_std(xs: list[float]) -> dict[str, Any]:
    a = np.asarray(xs, dtype=np.float64)
    return {"mean": round(float(a.mean()), 4), "std": round(float(a.std(ddof=1)) if len(a) > 1 else 0.0, 4),
            "per_seed": [round(float(x), 4) for x in a]}


def per_video_over_seeds(results: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Per test video, each metric averaged over seeds (the unit the bootstrap resamples)."""
    rows: dict[str, dict[str, list[float]]] = {}
    for res in results:
        for r in res["per_video"]:
            for m in METRICS:
                rows.setdefault(r["video_id"], {}).setdefault(m, []).append(float(r[m]))
    return [{"video_id": v, **{m: float(np.mean(ms[m])) for m in METRICS}} for v, ms in sorted(rows.items())]


def paired_vs(rows: list[dict[str, float]], base: list[dict[str, float]], n_boot: int) -> dict[str, Any]:
    from hvl.core.evaluation.stats import bootstrap_ci

    b = {r["video_id"]: r for r in base}
    deltas = [{m: r[m] - b[r["video_id"]][m] for m in METRICS} for r in rows]
    ci = bootstrap_ci(deltas, METRICS, n_boot=n_boot)
    return {m: {"delta": round(ci[m]["mean"], 4), "lo": round(ci[m]["lo"], 4), "hi": round(ci[m]["hi"], 4)}
            for m in METRICS}


def markdown(result: dict[str, Any]) -> str:
    """The benchmarks/README table of one run: per scheme and embedding space, mean ± std over seeds, paired CI."""
    def ms(v: dict[str, Any]) -> str:
        return f"{v['mean']:.3f} ± {v['std']:.3f}"

    def ci(v: dict[str, Any]) -> str:
        return f"{v['delta']:+.3f} [{v['lo']:+.3f}, {v['hi']:+.3f}]"

    lines = ["| scheme | space | accuracy | macro-F1 | Jaccard | Δ accuracy vs clip-only [95 % CI] | Δ F1 [95 % CI] "
             "| centre B accuracy | hysterectomy accuracy | hysterectomy Δ accuracy [95 % CI] | fit wall s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in result["schemes"].items():
        for lv, v in s["spaces"].items():
            hy = v.get("hysterectomy")
            lines.append(f"| {name} | {lv} | {ms(v['accuracy'])} | {ms(v['f1_macro'])} | {ms(v['jaccard'])} "
                         f"| {ci(v['vs_clip_only']['accuracy'])} | {ci(v['vs_clip_only']['f1_macro'])} "
                         f"| {ms(v['centre_b']['accuracy']) if 'centre_b' in v else '–'} "
                         f"| {ms(hy['accuracy']) if hy else '–'} | {ci(hy['vs_clip_only']['accuracy']) if hy else '–'} "
                         f"| {s['fit_wall_s']['mean']:.0f} |")
    return "\n".join(lines)


def ablation_markdown(results: list[dict[str, Any]]) -> str:
    """One row per (result, trained scheme): what was changed in the preset, scores in the primary space."""
    lines = ["| preset change | scheme | space | accuracy | macro-F1 | Δ accuracy vs clip-only [95 % CI] "
             "| Δ F1 [95 % CI] |", "|---|---|---|---|---|---|---|"]
    for r in results:
        change = ", ".join(f"`{k}={json.dumps(v)}`" for k, v in r["config"].get("preset_set", {}).items()) or "none"
        for name, s in r["schemes"].items():
            if s["smoothed"]:
                continue
            v = s["spaces"][s["primary_space"]]
            d = v["vs_clip_only"]
            lines.append(f"| {change} | {name} | {s['primary_space']} | {v['accuracy']['mean']:.3f} ± "
                         f"{v['accuracy']['std']:.3f} | {v['f1_macro']['mean']:.3f} ± {v['f1_macro']['std']:.3f} "
                         f"| {d['accuracy']['delta']:+.3f} [{d['accuracy']['lo']:+.3f}, {d['accuracy']['hi']:+.3f}] "
                         f"| {d['f1_macro']['delta']:+.3f} [{d['f1_macro']['lo']:+.3f}, {d['f1_macro']['hi']:+.3f}] |")
    return "\n".join(lines)


def majority_share(videos: list, prompts) -> float:
    """Accuracy of always answering the most frequent phase (at 1 fps), the other floor besides chance."""
    labels = np.array([prompts.names.index(rec.label_at(t)) for rec, _ in videos for t in range(int(rec.duration))
                       if rec.label_at(t)])
    return round(float(np.bincount(labels).max() / len(labels)), 4)


def parse_preset_set(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs (value as JSON, else a string) for DemoPreset fields."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--preset-set: expected key=value, got '{item}' (e.g. narration_rate=1.0)")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny data and model, 2 seeds, few steps (CI)")
    p.add_argument("--preset", default=None, help="demo preset (default realistic; quick: default, so that 40 steps of "
                                                  "a tiny model learn enough for the beats-chance check)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds (default 0 1 2; quick: 0 1)")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps per fit (default 60 = recipe; quick: 40)")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--smooth-window", type=int, default=5, help="frames at 1 fps (<= the demo's shortest phase)")
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--preset-set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="change properties of the preset, e.g. lookalike={} narration_rate=1.0 (an ablation)")
    p.add_argument("--no-centre-b", dest="centre_b", action="store_false",
                   help="skip the second-centre test set (preset realistic_centre_b, same procedure)")
    p.add_argument("--no-hysterectomy", dest="hysterectomy", action="store_false",
                   help="skip the second-procedure test set (hysterectomy, AutoLaparo's phases, same preset)")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK / "hierarchy")
    p.add_argument("--table", type=Path, nargs="+", default=None,
                   help="print the markdown table of a saved JSON result and exit; several results (ablations): "
                        "one row per result and scheme, its primary space")
    a = p.parse_args()
    if a.table is not None:
        results = [json.loads(t.read_text()) for t in a.table]
        print(markdown(results[0]) if len(results) == 1 else ablation_markdown(results))
        return
    seeds = a.seeds or ([0, 1] if a.quick else [0, 1, 2])
    steps = a.steps or (40 if a.quick else 60)
    a.preset = a.preset or ("default" if a.quick else "realistic")
    image_size = 32 if a.quick else 64
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import hvl.core.cli
    import hvl.core.models.module  # noqa: F401
    import pytorch_lightning  # noqa: F401
    from hvl.core.data.records import manifest_videos
    from hvl.core.data.schema import load_prompt_file
    from hvl.core.errors import HVLInputError
    from hvl.core.registry import resolve_prompt_file
    from hvl.domains.surgical.presets import get_preset

    t_all = time.perf_counter()
    try:
        preset = get_preset(a.preset)
        if a.preset_set:
            preset = type(preset).model_validate({**preset.model_dump(), **parse_preset_set(a.preset_set)})
    except (HVLInputError, ValueError) as e:
        raise SystemExit(f"hierarchy.py: --preset / --preset-set: {e}") from None
    data, data_info = make_data(a.work, preset, a.quick, a.data_seed)
    prompts = load_prompt_file(resolve_prompt_file("surgical:demo"))
    test_sets = {"test": (manifest_videos(data / "test.jsonl"), prompts)}
    if a.centre_b:  # other test videos (data seed + 1), filmed as in another hospital
        centre, _ = make_data(a.work, "realistic_centre_b", a.quick, a.data_seed + 1, test_only=True)
        test_sets["centre_b"] = (manifest_videos(centre / "test.jsonl"), prompts)
    if a.hysterectomy:  # another operation (data seed + 2), the pretraining preset's look and narration
        other, _ = make_data(a.work, preset, a.quick, a.data_seed + 2, test_only=True, procedure="hysterectomy")
        test_sets["hysterectomy"] = (manifest_videos(other / "test.jsonl"),
                                     load_prompt_file(resolve_prompt_file("surgical:demo_hysterectomy")))

    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in SCHEMES}
    walls: dict[str, list[float]] = {s: [] for s in SCHEMES}
    reused = 0
    for seed in seeds:
        for scheme, levels in SCHEMES.items():
            log(f"fit {scheme} seed {seed} ({steps} steps) ...")
            run_dir = a.work / "runs" / data.name / f"{scheme}_s{seed}"  # one folder per data set (ablations)
            ckpt, wall, was_reused = fit(run_dir, data, levels, seed, steps, a.quick, image_size)
            walls[scheme].append(wall)
            reused += was_reused
            runs[scheme].append(evaluate_run(ckpt, test_sets, image_size, a.smooth_window))
            log(f"  {wall:.1f}s; accuracy per space: "
                f"{ {k: round(v['accuracy'], 3) for k, v in runs[scheme][-1].items()} }")

    bases = {name: per_video_over_seeds([r[f"{name}:clip"] for r in runs["clip"]]) for name in test_sets}
    base = bases["test"]
    rows = [(s, s, lv, "") for s, lvs in SCHEMES.items() for lv in lvs]
    rows += [(SMOOTHED, "clip+phase+video", lv, "/smooth") for lv in SCHEMES["clip+phase+video"]]
    schemes: dict[str, Any] = {}
    for name, trained, lv, suffix in rows:
        res = [r[f"test:{lv}{suffix}"] for r in runs[trained]]
        entry = schemes.setdefault(name, {"levels": SCHEMES[trained], "smoothed": bool(suffix),
                                          "primary_space": "phase" if "phase" in SCHEMES[trained] else "clip",
                                          "fit_wall_s": mean_std(walls[trained]), "spaces": {}})
        entry["spaces"][lv] = {**{m: mean_std([r[m] for r in res]) for m in METRICS},
                               "pooled_accuracy": mean_std([r["pooled"]["accuracy"] for r in res]),
                               "vs_clip_only": paired_vs(per_video_over_seeds(res), base, a.n_boot)}
        for other in TRANSFER:
            if other in test_sets:
                res_o = [r[f"{other}:{lv}{suffix}"] for r in runs[trained]]
                entry["spaces"][lv][other] = {m: mean_std([r[m] for r in res_o]) for m in METRICS}
                if other == "hysterectomy":  # paired against clip-only on the same other-procedure videos
                    entry["spaces"][lv][other]["vs_clip_only"] = paired_vs(per_video_over_seeds(res_o),
                                                                           bases[other], a.n_boot)
    emit({"benchmark": "hierarchy", "quick": a.quick, "machine": machine(),
          "config": {"preset": preset.model_dump(), "preset_set": parse_preset_set(a.preset_set), "seeds": seeds,
                     "steps_per_fit": steps,
                     "image_size": image_size, "schedule": QUICK_SCHEDULE if a.quick else RECIPE_SCHEDULE,
                     "recipe": DEMO_RECIPE.relative_to(DEMO_RECIPE.parents[2]).as_posix(),
                     "smooth_window_frames": a.smooth_window, "eval_fps": 1.0, "n_boot": a.n_boot,
                     "checkpoint": "last", "prompts": "surgical:demo", "data_seed": a.data_seed},
          "data": {k: data_info[k] for k in ("videos", "frames", "video_seconds", "seconds", "counts")},
          "chance": round(1 / len(prompts.names), 4), "majority": majority_share(test_sets["test"][0], prompts),
          "majority_per_test_set": {k: majority_share(*v) for k, v in test_sets.items()},
          "prompts_per_test_set": {k: "surgical:demo_hysterectomy" if k == "hysterectomy" else "surgical:demo"
                                   for k in test_sets},
          "n_test_videos": {k: len(v[0]) for k, v in test_sets.items()}, "schemes": schemes,
          "total_wall_s": round(time.perf_counter() - t_all, 1),
          "reused_fits": reused})  # fits finished by an earlier (killed) run in --work: wall time from its fit.json


if __name__ == "__main__":
    main()
