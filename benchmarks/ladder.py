"""The ladder, measured: zero-shot → windowed zero-shot → K shots → linear probe → temporal head, in each level's space.

The models are the hierarchy harness's full ones (``benchmarks/hierarchy.py``: the shipped demo recipe through
``hvl fit``, clip + phase + video, ``--steps`` optimiser steps, one per seed; a fit already in ``--work`` is reused,
so after ``hierarchy.py`` this trains nothing). For each seed's model, :func:`hvl.core.evaluation.adapt.run_ladder`
scores on the realistic preset's test videos (``surgical:demo`` prompts, 1 fps):

* zero-shot on single frames (``hvl zeroshot``), and on centred windows of ``--windows`` seconds (``--window``);
* K labelled frames per class (``--shots``), a linear probe on ``--fractions`` of the training videos, the probe on
  ``--probe-windows`` second windows, and the temporal head (``hvl adapt``), each drawn / initialised with the
  model's seed;

and the same on the hysterectomy transfer set (another procedure, AutoLaparo's phases, its own prompt file; its 16
training videos labelled for the heads, its 6 test videos those of ``hierarchy.py``'s hysterectomy column). Per rung
and space: mean ± std over seeds, and paired per-video bootstrap 95 % CIs (per-video scores averaged over seeds,
videos resampled) against zero-shot in the same space and of the phase space against the clip space.

    python benchmarks/ladder.py [--quick] [--seeds 0 1 2] [--work DIR] > ladder.json
    python benchmarks/ladder.py --table ladder.json
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from common import DEFAULT_WORK, emit, log, machine

QUICK_HEADS = {"temporal": {"steps": 30, "layers": 4, "channels": 32}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny data and model, one seed, few steps (CI)")
    p.add_argument("--preset", default=None, help="demo preset (default realistic; quick: realistic too)")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="model (and draw) seeds (default 0 1 2; quick: 0)")
    p.add_argument("--steps", type=int, default=None, help="pretraining steps per fit (default 60 = recipe; quick 40)")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--levels", nargs="+", default=["clip", "phase"])
    p.add_argument("--windows", type=float, nargs="+", default=[2, 4, 8], help="zero-shot window lengths (s)")
    p.add_argument("--shots", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--fractions", type=float, nargs="+", default=[0.1, 1.0])
    p.add_argument("--probe-windows", type=float, nargs="*", default=[4], help="linear probe on windows (s)")
    p.add_argument("--no-temporal", dest="temporal", action="store_false")
    p.add_argument("--no-hysterectomy", dest="hysterectomy", action="store_false")
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--work", type=Path, default=DEFAULT_WORK / "hierarchy", help="shared with hierarchy.py: its fits "
                                                                                "are reused")
    p.add_argument("--table", type=Path, default=None, help="print the markdown tables of a saved result and exit")
    a = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch: as hierarchy.py, whose fits this reuses
    from hvl.core.evaluation.adapt.ladder import default_rungs, ladder_markdown, ladder_table, run_ladder

    if a.table is not None:
        result = json.loads(a.table.read_text())
        for name, s in result["sets"].items():
            print(f"### {name}\n\n{ladder_markdown(s['rows'])}\n")
        return
    seeds = a.seeds or ([0] if a.quick else [0, 1, 2])
    steps = a.steps or (40 if a.quick else 60)
    preset_name = a.preset or "realistic"
    image_size = 32 if a.quick else 64
    a.work = a.work.resolve()  # hierarchy.fit runs hvl fit inside the run folder

    import hierarchy
    from hvl.core.data.records import manifest_videos
    from hvl.core.data.schema import load_prompt_file
    from hvl.core.models.checkpoint import load_model, preprocess_of
    from hvl.core.registry import resolve_prompt_file

    t_all = time.perf_counter()
    data, info = hierarchy.make_data(a.work, preset_name, a.quick, a.data_seed)
    sets = {"test": (manifest_videos(data / "train.jsonl"), manifest_videos(data / "test.jsonl"),
                     load_prompt_file(resolve_prompt_file("surgical:demo")))}
    if a.hysterectomy:  # its own folder: hierarchy.py keeps only the test videos of this seed (the same ones)
        hy, _ = hierarchy.make_data(a.work / "ladder", preset_name, a.quick, a.data_seed + 2, procedure="hysterectomy")
        sets["hysterectomy"] = (manifest_videos(hy / "train.jsonl"), manifest_videos(hy / "test.jsonl"),
                                load_prompt_file(resolve_prompt_file("surgical:demo_hysterectomy")))
    rungs = default_rungs(a.windows, a.shots, a.fractions, a.probe_windows, a.temporal)
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in sets}
    fits = []
    for seed in seeds:
        log(f"model seed {seed}: fit clip+phase+video ({steps} steps) or reuse ...")
        run_dir = a.work / "runs" / data.name / f"clip+phase+video_s{seed}"  # hierarchy.py's folder for this fit
        ckpt, wall, reused = hierarchy.fit(run_dir, data, list(hierarchy.LEVELS), seed, steps, a.quick, image_size)
        fits.append({"seed": seed, "wall_s": round(wall, 1), "reused": reused})
        model, meta = load_model(ckpt, map_location="cpu")
        pre = preprocess_of(meta)
        for name, (train, test, prompts) in sets.items():
            t0 = time.perf_counter()
            runs[name].append(run_ladder(model, pre, train, test, prompts, a.levels, rungs, seeds=[seed],
                                         cache_dir=str(a.work / "feature_cache"), num_workers=0,
                                         head_options=QUICK_HEADS if a.quick else None))
            acc = {lv: {k: round(v[0]["accuracy"], 3) for k, v in r.items()}
                   for lv, r in runs[name][-1]["levels"].items()}
            log(f"  {name}: {time.perf_counter() - t0:.0f}s {acc}")
    out_sets = {}
    for name, (train, test, prompts) in sets.items():
        out_sets[name] = {"prompts": "surgical:demo_hysterectomy" if name == "hysterectomy" else "surgical:demo",
                          "n_train_videos": len(train), "n_test_videos": len(test),
                          "chance": round(1 / len(prompts.names), 4),
                          "majority": hierarchy.majority_share(test, prompts),
                          "ladder_seconds": [r["seconds"] for r in runs[name]],
                          "rows": ladder_table(runs[name], a.n_boot)}
    emit({"benchmark": "ladder", "quick": a.quick, "machine": machine(),
          "config": {"preset": preset_name, "seeds": seeds, "pretrain_steps": steps, "image_size": image_size,
                     "data_seed": a.data_seed, "levels": a.levels, "rungs": [r.name for r in rungs],
                     "head_options": QUICK_HEADS if a.quick else "defaults (hvl adapt)", "eval_fps": 1.0,
                     "n_boot": a.n_boot, "checkpoint": "last", "draw_seed": "the model's seed"},
          "data": {k: info[k] for k in ("videos", "frames", "video_seconds", "counts")},
          "fits": fits, "sets": out_sets, "total_wall_s": round(time.perf_counter() - t_all, 1)})


if __name__ == "__main__":
    main()
