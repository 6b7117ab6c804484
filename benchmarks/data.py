"""Clips/s of hvl's training data pipeline against two baselines on the same batches.

* ``hvl``: ``HVLDataModule(...).train_dataloader()`` as training uses it: level-schedule
  sampler, decord decode, MONAI transforms, collate; ``num_workers`` worker processes.
* ``raw_decord``: the decode floor. The same frame indices of the same batches, read with
  ``decord.VideoReader.get_batch`` (one reader kept per worker, like hvl's ReaderCache),
  nothing else: no transforms, no collate. Target: hvl ≥ 0.9× of it.
* ``ffmpeg``: a naive loader in the style of PeskaVLP: per sample one ``ffprobe`` process
  (duration, frame rate) and one ``ffmpeg`` process that seeks, resamples the frame rate,
  scales and pipes raw RGB frames; then hvl's transforms and collate. Target: hvl ≥ 5× it.

All three run in a ``DataLoader`` with the same workers and prefetching, on the same
sampler output; the first batch of each worker (start-up) is not timed. hvl and raw decord
run ``--repeats`` times, interleaved, and the best run counts (the machine may be shared).
Besides samples/s, each run reports the CPU time its processes spent per sample
(``cpu_ms_per_sample``, ``cpu_ratio_*``): on a busy machine that moves far less than wall time.
The slow ffmpeg baseline runs once, on its first ``--ffmpeg-steps`` steps. ``--ab`` adds
``hvl_before_fixes``: hvl with the fixes these figures led to switched off (see benchmarks/README.md).

    python benchmarks/data.py [--quick] [--ab] [--work DIR] > data.json
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch
from common import DEFAULT_WORK, demo_data, emit, ffmpeg_version, log, long_data, machine, recipe_init_args, seed_all
from hvl.core.data.datamodule import HierarchicalDataset, HVLDataModule, Item, collate
from hvl.core.data.schema import VideoRecord
from hvl.core.data.video import Video, open_source
from torch.utils.data import DataLoader, Dataset

Read = tuple[str, list[int]]  # (video path, frame indices)


# ------------------------------------------------------------------ the same reads for every loader
def segment(ds: HierarchicalDataset, item: Item) -> tuple[VideoRecord, float, float | None, int]:
    """The time range and frame count ``HierarchicalDataset`` samples for ``item`` (end None = whole video)."""
    rec = ds.manifest.videos[item.video]
    num = ds.levels[item.level].frames
    if item.level == "clip":
        seg = rec.clips[item.segment]
        return rec, seg.start, seg.end, num
    if item.level == "phase":
        seg = rec.phases[item.segment]
        return rec, seg.start, seg.end, num
    return rec, 0.0, rec.duration, num


def plan(ds: HierarchicalDataset, batches: Iterable[list[tuple[Item, int]]]) -> list[list[Read]]:
    """Each batch's decord reads, with hvl's own index arithmetic (``Video.read``)."""
    videos: dict[str, Video] = {}
    out = []
    for batch in batches:
        reads = []
        for item, _ in batch:
            rec, start, end, num = segment(ds, item)
            path = str(ds.manifest.resolve(rec))
            v = videos.setdefault(path, Video(open_source(path, size=ds.decode_size)))
            end = v.duration if end is None else min(end, v.duration)
            reads.append((path, v.indices_uniform(start, end, num)))
        out.append(reads)
    return out


class RawDecord(Dataset):
    """``get_batch`` on planned indices, nothing more; one open reader per worker, reopened on a new video."""

    def __init__(self, size: tuple[int, int]):
        self.size, self._path, self._vr = size, None, None

    def __getitem__(self, read: Read) -> torch.Tensor:
        import decord

        path, idx = read
        if path != self._path:
            self._vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1, width=self.size[1], height=self.size[0])
            self._path = path
        return torch.from_numpy(self._vr.get_batch(idx).asnumpy())


class FFmpegPerSample(HierarchicalDataset):
    """hvl's dataset with frames from one ffprobe + one ffmpeg process per sample (PeskaVLP-style)."""

    def _frames(self, rec: VideoRecord, start: float, end: float, num: int, seed: int) -> dict[str, torch.Tensor]:
        path = str(self.manifest.resolve(rec))
        probe = json.loads(subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=r_frame_rate:format=duration",
             "-of", "json", path], capture_output=True, check=True).stdout)
        end = min(end, float(probe["format"]["duration"]))
        h, w = self.decode_size
        cmd = ["ffmpeg", "-v", "error", "-ss", f"{start:.3f}", "-t", f"{end - start:.3f}", "-i", path,
               "-vf", f"fps={num / (end - start):.6f},scale={w}:{h}", "-frames:v", str(num),
               "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        raw = subprocess.run(cmd, capture_output=True, check=True).stdout
        frames = np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)
        if len(frames) < num:  # the fps filter can come up a frame short at the end
            frames = np.concatenate([frames, np.repeat(frames[-1:], num - len(frames), 0)])
        self.transform.set_random_state(seed)
        return self._transform(torch.from_numpy(frames.copy()))


# ------------------------------------------------------------------ timing
def count(batch: Any) -> tuple[int, int]:
    """(samples, frames) in a batch of either hvl's collate or a raw list of frame tensors."""
    if isinstance(batch, list):
        return len(batch), sum(x.shape[0] for x in batch)
    return (sum(b["frames"].shape[0] for b in batch.values()),
            sum(b["frames"].shape[0] * b["frames"].shape[1] for b in batch.values()))


class CpuMeter:
    """CPU time (user + system, all threads, reaped children such as ffmpeg) used by ``pids``.

    Each process's last reading is kept: loader workers exit when the iterator is exhausted, and a process gone
    by the final reading must count with what it had used, not drop out (that made raw decord's CPU negative)."""

    def __init__(self, pids: list[int]):
        self.pids, self.last = pids, {}

    def read(self) -> float:
        for pid in self.pids:
            try:
                t = psutil.Process(pid).cpu_times()
                self.last[pid] = t.user + t.system + (t.children_user + t.children_system if pid != os.getpid() else 0.0)
            except psutil.NoSuchProcess:
                pass
        return sum(self.last.values())


def timed(make_loader: Callable[[], DataLoader], skip: int) -> dict[str, float]:
    """Samples/s after the first ``skip`` batches (worker start-up: one batch per worker), and the CPU
    time the loader's processes spent per sample meanwhile: wall throughput moves with whatever
    else runs on the machine, CPU per sample much less."""
    t0 = time.perf_counter()
    samples = frames = 0
    start, cpu0 = None, 0.0
    it = iter(make_loader())
    meter = CpuMeter([os.getpid(), *(w.pid for w in getattr(it, "_workers", []))])
    for i, batch in enumerate(it):
        if i == skip - 1:
            start, cpu0 = time.perf_counter(), meter.read()
        elif i >= skip:
            s, f = count(batch)
            samples, frames = samples + s, frames + f
            meter.read()
    end, cpu = time.perf_counter(), meter.read() - cpu0
    del it
    gc.collect()  # shut down this loader's persistent workers before the next pipeline runs
    dt = end - (start if start is not None else t0)
    return {"samples": samples, "frames": frames, "seconds": round(dt, 3), "startup_s": round((start or t0) - t0, 3),
            "samples_per_s": round(samples / dt, 2), "frames_per_s": round(frames / dt, 1),
            "cpu_ms_per_sample": round(1000 * cpu / max(samples, 1), 2)}


@contextmanager
def before_fixes(on: bool) -> Iterator[None]:
    """hvl as it was before the fixes this benchmark led to (decoder parking, shared-memory collate, 8-bit
    pixels out of the workers with the transforms fused, instead of float frames through MONAI step by step)."""
    import hvl.core.data.dataset as D
    import hvl.core.data.video as V

    def step_by_step(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:  # float frames out of the workers
        return {"frames": self.transform.compose(frames.permute(3, 0, 1, 2).float()).permute(1, 0, 2, 3).contiguous()}

    saved = V.DecordVideo._park, D._stack, D.HierarchicalDataset._transform
    if on:
        V.DecordVideo._park, D._stack, D.HierarchicalDataset._transform = (lambda self: None), torch.stack, step_by_step
    try:
        yield
    finally:
        V.DecordVideo._park, D._stack, D.HierarchicalDataset._transform = saved


def bench_set(name: str, manifest: Path, image_size: int, schedule: dict, steps: int, ffmpeg_steps: int,
              workers: int, repeats: int, use_ffmpeg: bool, ab: bool) -> dict[str, Any]:
    dm = HVLDataModule(train=str(manifest), schedule=schedule, image_size=image_size, num_workers=workers,
                       steps_per_epoch=steps, seed=0)
    dm.setup("fit")
    ds, _items = dm.train_split
    keys = list(dm.train_dataloader().batch_sampler)
    reads = plan(ds, keys)
    loader_kw = dict(num_workers=workers, prefetch_factor=4 if workers else None)
    skip = max(1, workers)

    def hvl() -> DataLoader:
        return dm.train_dataloader()

    def raw() -> DataLoader:
        return DataLoader(RawDecord(ds.decode_size), batch_sampler=reads, collate_fn=list, **loader_kw)

    def naive() -> DataLoader:
        nds = FFmpegPerSample(ds.manifest, ds.levels, image_size, augment=ds.augment, max_texts=ds.max_texts,
                              max_children=ds.max_children)
        return DataLoader(nds, batch_sampler=keys[:ffmpeg_steps], collate_fn=collate, **loader_kw)

    pipelines = {"hvl": hvl, "raw_decord": raw} | ({"hvl_before_fixes": hvl} if ab else {})
    runs: dict[str, list[dict]] = {k: [] for k in (*pipelines, *(["ffmpeg"] if use_ffmpeg else []))}
    for r in range(repeats):
        for k, make in pipelines.items():
            log(f"[{name}] repeat {r + 1}/{repeats}: {k} ...")
            with before_fixes(k == "hvl_before_fixes"):
                runs[k].append(timed(make, skip))
            log(f"    {runs[k][-1]}")
    if use_ffmpeg:  # the slow baseline runs once: its margin is wide
        log(f"[{name}] ffmpeg ...")
        runs["ffmpeg"].append(timed(naive, skip))
        log(f"    {runs['ffmpeg'][-1]}")
    best = {k: max(v, key=lambda x: x["samples_per_s"]) for k, v in runs.items()}
    out: dict[str, Any] = {"manifest": str(manifest), "videos": len(ds.manifest.videos), "image_size": image_size,
                           "decode_size": list(ds.decode_size), "steps": steps, "schedule": schedule,
                           "pipelines": best, "all_runs": runs}
    out["ratio_hvl_vs_raw_decord"] = round(best["hvl"]["samples_per_s"] / best["raw_decord"]["samples_per_s"], 3)
    lean = {k: min(x["cpu_ms_per_sample"] for x in v) for k, v in runs.items()}
    out["cpu_ms_per_sample"] = lean
    out["cpu_ratio_hvl_vs_raw_decord"] = round(lean["raw_decord"] / lean["hvl"], 3)
    out["ratio_hvl_vs_ffmpeg"] = (round(best["hvl"]["samples_per_s"] / best["ffmpeg"]["samples_per_s"], 2)
                                  if use_ffmpeg else None)
    if ab:
        out["ratio_hvl_before_fixes_vs_raw_decord"] = round(
            best["hvl_before_fixes"]["samples_per_s"] / best["raw_decord"]["samples_per_s"], 3)
        out["speedup_of_fixes"] = round(best["hvl"]["samples_per_s"] / best["hvl_before_fixes"]["samples_per_s"], 3)
        out["cpu_ratio_hvl_before_fixes_vs_raw_decord"] = round(lean["raw_decord"] / lean["hvl_before_fixes"], 3)
        out["cpu_saving_of_fixes"] = round(1 - lean["hvl"] / lean["hvl_before_fixes"], 3)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few small videos and steps (seconds, for tests)")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help="where generated videos are cached")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--steps", type=int, default=30, help="steps per run, demo set (a multiple of 15 keeps the level mix)")
    p.add_argument("--long-steps", type=int, default=15, help="steps per run, long set")
    p.add_argument("--ffmpeg-steps", type=int, default=15)
    p.add_argument("--repeats", type=int, default=2, help="interleaved runs of hvl and raw decord; the best counts")
    p.add_argument("--ab", action="store_true", help="also run hvl without the fixes made from these figures")
    p.add_argument("--sets", default="demo,long", help="comma-separated: demo, long")
    p.add_argument("--no-ffmpeg", action="store_true", help="skip the ffmpeg-per-sample baseline")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    seed_all(a.seed)
    _, data_args = recipe_init_args()
    schedule = data_args["schedule"]
    have_ffmpeg = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None
    use_ffmpeg = have_ffmpeg and not a.no_ffmpeg
    if a.quick:  # small batches, 15 steps, tiny data: a smoke run that still yields every key
        schedule = {lv: {**c, "batch_size": min(c["batch_size"], 4)} for lv, c in schedule.items()}
        a.steps = a.long_steps = a.ffmpeg_steps = 15
        a.repeats = 1
    sets = {}
    for name in a.sets.split(","):
        if name == "demo":
            root = demo_data(a.work, *((3, 0) if a.quick else (16, 6)))
            sets["demo"] = bench_set("demo", root / "train.jsonl", data_args["image_size"], schedule, a.steps,
                                     a.ffmpeg_steps, a.workers, a.repeats, use_ffmpeg, a.ab)
        elif name == "long":
            root = long_data(a.work, *((2, 12.0) if a.quick else (8, 60.0)))
            sets["long"] = bench_set("long", root / "train.jsonl", 224, schedule, a.long_steps, a.ffmpeg_steps,
                                     a.workers, a.repeats, use_ffmpeg, a.ab)
        else:
            p.error(f"unknown set {name!r}")
    emit({"benchmark": "data", "machine": machine() | {"ffmpeg": ffmpeg_version()}, "quick": a.quick,
          "workers": a.workers, "repeats": a.repeats, "seed": a.seed,
          "ffmpeg_baseline": "measured" if use_ffmpeg else ("disabled" if have_ffmpeg else "skipped: ffmpeg not installed"),
          "targets": {"hvl_vs_raw_decord": 0.9, "hvl_vs_ffmpeg": 5.0}, "sets": sets})


if __name__ == "__main__":
    main()
