"""The long-form ablation (issue 38, item 5): temporal encoder (mean / full attention / windowed) x temporal
contrastive loss (off / on), seeds paired, on the long surgical demo (``hvl demo surgical --preset long``).

Each setting trains ``recipes/surgical/demo_long_pretrain.yaml`` (``hvl fit``) for ``--steps`` steps with
``--frames`` video-level frames: ``mean`` = ``temporal: mean``; ``windowed`` = the recipe's windows 2..32;
``full`` = the same five stages with every window at least ``--frames`` (every frame attends to every frame).
``loss on`` = ``loss_weights.temporal: 0.25``. Each checkpoint is scored on the test videos, per video:

* ``p2v_r1``: paragraph-to-video R@1 (the video's abstract ranks it first among the test videos; ties pessimistic);
* ``moment_r1_iou0.5``: R@1 at IoU 0.5 of its narrations localised inside it (clip space, ``--frames`` bins);
* ``phase_acc``: zero-shot phase accuracy (phase space, ``surgical:demo`` prompts, frames at ``--phase-fps``).

Per video, each metric is averaged over seeds; ``vs_baseline`` is the paired bootstrap interval
(:func:`hvl.core.evaluation.stats.bootstrap_ci`, whole videos resampled) of each setting minus mean / loss off.

    python benchmarks/long_form.py [--quick] [--seeds 0 1 2] > long_form.json
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_WORK, emit, log, machine

ENCODERS = ("mean", "full", "windowed")
LOSSES = {"off": 0.0, "on": 0.25}
KEYS = ("p2v_r1", "moment_r1_iou0.5", "phase_acc")


@contextlib.contextmanager
def chdir(path: Path):
    old = Path.cwd()
    path.mkdir(parents=True, exist_ok=True)
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@contextlib.contextmanager
def shared_text_cache():
    """Every model of this run embeds texts with the same frozen packaged text encoder, so one string cache serves
    them all: in quick mode (CI) each text is encoded once instead of once per fit and per scoring."""
    from hvl.core.models.encoders import TextEncoder

    pooled, tokens, init = {}, {}, TextEncoder.__init__

    def shared_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if self.frozen:
            self._cache, self._token_cache = pooled, tokens

    TextEncoder.__init__ = shared_init
    try:
        yield
    finally:
        TextEncoder.__init__ = init


def make_data(work: Path, n_train: int, n_test: int) -> Path:
    from hvl.domains.surgical.demo import generate

    data = work / f"data_long_{n_train}_{n_test}"
    if not (data / "test.jsonl").is_file():
        generate(data, n_train=n_train, n_val=2, n_test=n_test, preset="long", progress=False)
    return data


def fit(run: Path, data: Path, encoder: str, loss: float, seed: int, steps: int, frames: int, quick: bool) -> Path:
    from hvl.core.cli import main
    from hvl.core.recipes import resolve_config

    windows = [frames] * 5 if encoder == "full" else [2, 4, 8, 16, 32]
    batch = "{clip: {frames: 4, batch_size: 16, every: 1}, phase: {frames: 8, batch_size: 8, every: 2}, " \
            f"video: {{frames: {frames}, batch_size: {2 if quick else 4}, every: 2}}}}"
    args = ["fit", "--config", resolve_config("surgical/demo_long_pretrain"), "--seed_everything", str(seed),
            "--trainer.max_steps", str(steps), "--trainer.max_epochs", "1000", "--trainer.limit_val_batches", "0",
            "--trainer.enable_progress_bar", "false", "--trainer.accelerator", "cpu",
            "--model.init_args.video_encoder.temporal", "mean" if encoder == "mean" else "windowed",
            "--model.init_args.video_encoder.temporal_windows", str(windows),
            "--model.init_args.loss_weights", f"{{clip: 1.0, phase: 1.0, video: 1.0, temporal: {loss}}}",
            "--data.init_args.train", str(data / "train.jsonl"), "--data.init_args.val", str(data / "val.jsonl"),
            "--data.init_args.test", str(data / "test.jsonl"), "--data.init_args.num_workers", "0",
            "--data.init_args.schedule", batch]
    if quick:  # a fresh MLflow database per fit costs its schema migrations, several CPU seconds each
        args += ["--trainer.logger", json.dumps({"class_path": "pytorch_lightning.loggers.CSVLogger",
                                                 "init_args": {"save_dir": "."}})]
    with chdir(run):
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{run / 'mlflow.db'}"
        if main(args) != 0:
            raise SystemExit(f"hvl fit failed for {run.name}")
    return run / "checkpoints" / "surgical_long" / "last.ckpt"


def score(ckpt: Path, data: Path, frames: int, phase_fps: float) -> dict[str, dict[str, float]]:
    """Per test video: paragraph-to-video R@1, moment R@1 at IoU 0.5 and zero-shot phase accuracy (percent)."""
    import torch
    from hvl.core.data.longform import paragraph_of
    from hvl.core.data.schema import load_manifest, load_prompt_file
    from hvl.core.evaluation.moments import evaluate_moments
    from hvl.core.evaluation.retrieval import embed_sentences, embed_videos, group_by_sentence, retrieval_ranks
    from hvl.core.evaluation.zeroshot.classify import evaluate as zeroshot
    from hvl.core.models.checkpoint import load_model
    from hvl.core.registry import resolve_prompt_file

    model = load_model(ckpt)[0].eval()
    m = load_manifest(data / "test.jsonl")
    videos = [(r, m.resolve(r)) for r in m.videos]
    sentences, of_video = group_by_sentence([paragraph_of(r) for r, _ in videos])
    with torch.no_grad():
        vf, vg = embed_videos(model, videos, "video", frames, 32, batch_size=1, num_workers=0, progress=False)
        tt, tm, tg = embed_sentences(model, sentences, "video")
        sim = model.pair_scores("video", vf, vg, tt, tm, tg, "global").T.float().cpu()
    t2v, _ = retrieval_ranks(sim, torch.tensor(of_video))
    prompts = load_prompt_file(resolve_prompt_file("surgical:demo"))
    phase = zeroshot(model, videos, prompts, "phase", fps=phase_fps, image_size=32, num_workers=0, progress=False)
    rows = {}
    for i, (rec, path) in enumerate(videos):
        moments = evaluate_moments(model, [(rec, path)], level="clip", frames=frames, image_size=32, max_window=16,
                                   num_workers=0, progress=False)
        rows[rec.video_id] = {"p2v_r1": 100.0 * float(t2v[of_video[i]] == 0),
                              "moment_r1_iou0.5": moments["r1_iou0.5"],
                              "phase_acc": 100.0 * phase["per_video"][i]["accuracy"]}
    return rows


def summarize(per_seed: dict[str, list[dict[str, dict[str, float]]]], n_boot: int) -> dict[str, Any]:
    """Per setting: per-video means over seeds, their bootstrap CI, and the paired CI against the baseline."""
    from hvl.core.evaluation.stats import bootstrap_ci

    def per_video(runs):
        ids = sorted(runs[0])
        return {v: {k: sum(r[v][k] for r in runs) / len(runs) for k in KEYS} for v in ids}

    means = {name: per_video(runs) for name, runs in per_seed.items()}
    base = means["mean/off"]
    out = {}
    for name, rows in means.items():
        diff = [{k: rows[v][k] - base[v][k] for k in KEYS} for v in sorted(rows)]
        out[name] = {"score": bootstrap_ci(list(rows.values()), KEYS, n_boot=n_boot),
                     "vs_baseline": bootstrap_ci(diff, KEYS, n_boot=n_boot)}
    return out


def markdown(summary: dict[str, Any]) -> str:
    head = "| encoder / temporal loss | " + " | ".join(KEYS) + " |\n|---|" + "---|" * len(KEYS)
    lines = [head]
    for name, r in summary.items():
        cells = []
        for k in KEYS:
            s, d = r["score"][k], r["vs_baseline"][k]
            delta = "" if name == "mean/off" else f" (Δ {d['mean']:+.1f} [{d['lo']:+.1f}, {d['hi']:+.1f}])"
            cells.append(f"{s['mean']:.1f}{delta}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="4 train / 3 test videos, 32 frames, 3 steps, 1 seed (CI)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 (quick: 0)")
    ap.add_argument("--steps", type=int, default=None, help="default 150 (quick: 3)")
    ap.add_argument("--frames", type=int, default=None, help="video-level frames (default 256, quick 32)")
    ap.add_argument("--phase-fps", type=float, default=0.2, help="frames per second scored for phase accuracy")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK)
    a = ap.parse_args()
    seeds = a.seeds or ([0] if a.quick else [0, 1, 2])
    steps, frames = a.steps or (3 if a.quick else 150), a.frames or (32 if a.quick else 256)
    work = (a.work / ("long_form_quick" if a.quick else "long_form")).resolve()
    data = make_data(work, *((4, 3) if a.quick else (16, 8)))
    load_start = [round(x, 2) for x in os.getloadavg()]
    per_seed: dict[str, list[dict[str, dict[str, float]]]] = {}
    with shared_text_cache() if a.quick else contextlib.nullcontext():
        for encoder in ENCODERS:
            for loss_name, loss in LOSSES.items():
                name = f"{encoder}/{loss_name}"
                for seed in seeds:
                    log(f"{name}, seed {seed}: fit ...")
                    with contextlib.redirect_stdout(sys.stderr):  # stdout is the one JSON object; training talks
                        ckpt = fit(work / "runs" / f"{encoder}_{loss_name}_{seed}", data, encoder, loss, seed, steps,
                                   frames, a.quick)
                        rows = score(ckpt, data, frames, a.phase_fps)
                    per_seed.setdefault(name, []).append(rows)
                    log(f"{name}, seed {seed}: " + ", ".join(
                        f"{k} {sum(r[k] for r in rows.values()) / len(rows):.1f}" for k in KEYS))
    summary = summarize(per_seed, n_boot=200 if a.quick else 2000)
    emit({"benchmark": "long_form", "quick": a.quick,
          "config": {"seeds": seeds, "steps": steps, "frames": frames, "phase_fps": a.phase_fps,
                     "data": "hvl demo surgical --preset long", "baseline": "mean/off", "keys": list(KEYS)},
          "machine": machine() | {"load_average": load_start,
                                  "load_average_end": [round(x, 2) for x in os.getloadavg()]},
          "settings": summary, "per_seed": per_seed, "markdown": markdown(summary)})


if __name__ == "__main__":
    main()
