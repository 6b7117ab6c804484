"""Peak memory of ``hvl index --model`` (a pretrained model used directly, no training) on the gameplay demo.

The model is a randomly initialised CLIP of ViT-B/32's shape (12 + 12 layers, 224 px, patch 32; 142 M parameters
with the packaged MiniLM vocabulary, 151 M with CLIP's own 49k) built from a config, no download, so the figure is
what a user with ``openai/clip-vit-base-patch32`` sees. Memory is sampled every 100 ms: the command's own RSS, and
the whole process tree (the command and its decoding workers) as PSS, which splits pages the forked workers share
with their parent instead of counting them once per process as summed RSS would. The baseline, measured in the
same run: a process that only imports hvl and loads the same model, so the ratios say what indexing adds on top of
holding the weights. ``--quick``: a tiny CLIP (CI).

    python benchmarks/index_memory.py [--quick] [--workers N] [--work DIR] > index_memory.json
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
from common import DEFAULT_WORK, emit, log, machine
from feature_cache import make_clip

HVL = [sys.executable, "-m", "hvl.core.cli"]


def _tree_memory(proc: psutil.Process) -> tuple[int, int, int]:
    """(RSS of the process itself, PSS summed over it and its descendants, RSS summed likewise), bytes."""
    try:
        own = proc.memory_full_info()
        kids = proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0, 0, 0
    pss, rss = own.pss, own.rss
    for k in kids:
        try:
            m = k.memory_full_info()
        except psutil.NoSuchProcess:
            continue
        pss, rss = pss + m.pss, rss + m.rss
    return own.rss, pss, rss


def peak_memory(cmd: list[str], interval: float = 0.1) -> dict:
    """Run ``cmd``; its peak memory (own RSS, tree PSS, tree summed RSS; MiB) and wall time."""
    t0 = time.perf_counter()
    popen = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    proc = psutil.Process(popen.pid)
    peak = [0, 0, 0]
    while popen.poll() is None:
        peak = [max(a, b) for a, b in zip(peak, _tree_memory(proc))]
        time.sleep(interval)
    err = popen.stderr.read()
    if popen.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({popen.returncode}):\n{err[-2000:]}")
    mib = 1 << 20
    return {"peak_rss_main_mib": round(peak[0] / mib, 1), "peak_pss_tree_mib": round(peak[1] / mib, 1),
            "peak_rss_summed_tree_mib": round(peak[2] / mib, 1), "wall_s": round(time.perf_counter() - t0, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK / "index_memory")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    clip = make_clip(a.work / ("clip_tiny" if a.quick else "clip_b32_random"), a.quick)
    demo = a.work / "demo_gameplay"
    if not (demo / "videos").is_dir():
        log(f"generating the gameplay demo into {demo} ...")
        if a.quick:  # a few short clips: the script's path, not the figure
            from hvl.domains.gameplay.demo import generate

            generate(demo, n_train=2, n_val=0, n_test=6, seconds=5.0, size=32, progress=False)
        else:
            subprocess.run([*HVL, "demo", "gameplay", "--out", str(demo)], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    load = ("import sys; from hvl.core.models.checkpoint import load_pretrained; "
            "load_pretrained(sys.argv[1])")
    log("baseline: load the model only ...")
    baseline = peak_memory([sys.executable, "-c", load, str(clip)])
    out = a.work / "index"
    shutil.rmtree(out, ignore_errors=True)
    log("hvl index --model ...")
    index = peak_memory([*HVL, "index", str(demo / "videos"), "--model", str(clip), "--out", str(out),
                         "--num-workers", str(a.workers), "--batch-size", str(a.batch_size), "--no-progress"])
    import numpy as np
    import torch
    from transformers import CLIPModel

    frames = sum(np.load(f, mmap_mode="r").shape[0] for f in (out / "shards").glob("*.npy"))
    dim = json.loads((out / "index.json").read_text())["dim"]
    params = sum(p.numel() for p in CLIPModel.from_pretrained(clip).parameters())
    emit({"benchmark": "index_memory", "quick": a.quick, "machine": machine(),
          "model": {"kind": "CLIP ViT-B/32 size, random" if not a.quick else "tiny CLIP", "parameters": params,
                    "weights_mib": round(params * 4 / (1 << 20), 1), "torch_threads": torch.get_num_threads()},
          "workers": a.workers, "batch_size": a.batch_size, "frames_indexed": frames, "embedding_dim": dim,
          "baseline_load_model_only": baseline, "hvl_index": index,
          "ratio_tree_pss_vs_baseline": round(index["peak_pss_tree_mib"] / baseline["peak_pss_tree_mib"], 2),
          "ratio_main_vs_baseline": round(index["peak_rss_main_mib"] / baseline["peak_rss_main_mib"], 2),
          "frames_per_s": round(frames / index["wall_s"], 1) if frames else None})


if __name__ == "__main__":
    main()
