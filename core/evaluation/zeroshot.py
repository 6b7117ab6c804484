"""Zero-shot recognition: prompt file → class embeddings → per-frame prediction → metrics.

Protocol (SurgVLP/HecVL): frames sampled at ``fps`` (1 by default), each classified
alone by cosine similarity with the class embeddings in one level's space; metrics
per video, then averaged over videos. Prompt ensembles are averaged in embedding space.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..data.datasets import DatasetSpec, Resolved, check_videos, load_videos
from ..data.schema import PromptFile, load_prompt_file
from ..data.transforms import FrameTransform, Preprocess
from ..data.video import ReaderCache
from ..errors import HVLInputError
from ..io import load_config, write_json
from .metrics import PHASE_METRICS, mean_over_videos, phase_metrics
from .temporal import check_window, smooth_mode

__all__ = ["PREDICTIONS_FORMAT", "ZeroShotConfig", "check_inputs", "class_embeddings", "eval_frame_times", "evaluate",
           "format_table", "predict", "sample_eval_frames", "summarize", "write_predictions"]


class ZeroShotConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    domain: str | None = None
    dataset: DatasetSpec
    prompts: str
    level: str | None = Field(None, description="embedding space; default: the prompt file's, else 'phase'")
    fps: float = Field(1.0, gt=0)
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(2, ge=0)
    image_size: int | None = Field(None, description="default: the training data module's image_size")
    video_backend: Literal["auto", "decord", "pyav"] = Field("auto", description="decoder (see hvl.core.data.decoders)")
    experiment: str = "hvl-zeroshot"


def check_inputs(videos: list[Resolved], prompts: PromptFile) -> None:
    """Fail before any model is loaded: every video decodes, every label is a prompt class."""
    check_videos(videos)
    names = set(prompts.names)
    for rec, path in videos:
        unknown = {p.label for p in rec.phases if p.label is not None} - names
        if unknown:
            raise HVLInputError(f"{path}: video '{rec.video_id}' has phase label(s) {sorted(unknown)} that are not "
                                f"classes of the prompt file {prompts.names}; add them to the prompt file "
                                "or fix the annotations")


@torch.no_grad()
def class_embeddings(model, prompts: PromptFile, level: str) -> Tensor:
    """``[C, E]``: each class's prompts embedded, normalised, averaged, normalised again."""
    out = []
    for c in prompts.classes:
        e = model.embed_text(prompts.texts_for(c), level)
        out.append(F.normalize(e.mean(0), dim=-1))
    return torch.stack(out)


class _FrameChunks(Dataset):
    """(video, chunk of frame indices) → normalised frames, decoded in DataLoader workers."""

    def __init__(self, videos: list[Resolved], index: list[tuple[int, list[int]]], image_size: int,
                 preprocess: Preprocess | None = None, backend: str = "auto"):
        self.videos, self.index, self.backend = videos, index, backend
        self.pre = preprocess or Preprocess.square(image_size)
        self.transform = FrameTransform(image_size, train=False, preprocess=self.pre)
        self._readers: ReaderCache | None = None

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[int, Tensor]:
        if self._readers is None:
            self._readers = ReaderCache(size=self.pre.decode_size, backend=self.backend)
        vi, idx = self.index[i]
        raw = self._readers(self.videos[vi][1]).source.get(idx)
        return vi, self.transform(raw)


def sample_eval_frames(videos: list[Resolved], names: list[str], fps: float, chunk: int, size: int,
                       backend: str = "auto") -> tuple[list[tuple[int, list[int]]], list[Tensor], list[float]]:
    """Frame indices to classify and their labels; frames whose time has no known label are left out.
    Time ``t = k / fps`` takes the frame presented at ``t`` (by timestamp: exact for variable frame rates)."""
    readers = ReaderCache(1, size=(size, size), backend=backend)
    index, labels, durations = [], [], []
    for vi, (rec, path) in enumerate(videos):
        keep, dur = _labelled_frames(rec, path, readers(path), names, fps)
        frames = [f for _, f, _ in keep]
        index += [(vi, frames[i:i + chunk]) for i in range(0, len(frames), chunk)]
        labels.append(torch.tensor([y for _, _, y in keep]))
        durations.append(dur)
    return index, labels, durations


def _labelled_frames(rec, path, v, names: list[str], fps: float) -> tuple[list[tuple[float, int, int]], float]:
    """(time, decoded frame index, label) of each sampled frame with a known label, and the duration used."""
    lookup = {n: i for i, n in enumerate(names)}
    dur = min(rec.duration or v.duration, v.duration)
    times = [k / fps for k in range(math.ceil(dur * fps - 1e-9))]
    unknown = {rec.label_at(t) for t in times} - set(lookup) - {None}
    if unknown:
        raise HVLInputError(f"{path}: phase label(s) {sorted(unknown)} are not classes of the prompt file "
                            f"{names}; add them to the prompt file or fix the annotations")
    keep = [(t, v.index_at(t), lookup[rec.label_at(t)]) for t in times if rec.label_at(t) is not None]
    if not keep:
        raise HVLInputError(f"{path}: no labelled frames at {fps} fps; video '{rec.video_id}' needs phases with labels")
    return keep, dur


def eval_frame_times(videos: list[Resolved], names: list[str], fps: float, size: int,
                     backend: str = "auto") -> list[list[float]]:
    """Per video, the time (s) of each frame :func:`predict` scores, in its order (the same selection)."""
    readers = ReaderCache(1, size=(size, size), backend=backend)
    return [[t for t, _, _ in _labelled_frames(rec, path, readers(path), names, fps)[0]] for rec, path in videos]


class CpuThreads:
    """The model's intra-op threads on CPU, chosen by timing the pipeline with each count.

    The model shares the cores with the decoding workers, and its own speed there says little: on 2 busy cores
    torch's 2 threads made the demo CNN's forward ~5x slower than alone, which a rule comparing the loader wait
    with the model's time read as "the model holds the pipeline back" and so kept both threads (2.2 s of model
    time against 1.1 s with one, benchmarks/zeroshot.py). So after the first chunk (worker start-up) it runs
    ``probe`` chunks with the full count and ``probe`` with ``cores - workers`` (at least 1), keeps the count whose
    median time per chunk (blocked on the loader + in the model) was shorter, and measures again every ``every``
    chunks, in case the pace changes (videos of another size). A model the workers wait on keeps its full count
    that way, a small one leaves the workers their cores."""

    def __init__(self, device: torch.device | str, num_workers: int, probe: int = 3, every: int = 100):
        self.full = torch.get_num_threads()
        self.shared = max(1, min(self.full, (os.cpu_count() or 1) - num_workers))
        self.active = torch.device(device).type == "cpu" and num_workers > 0 and self.shared < self.full
        self.probe, self.every = probe, max(every, 2 * probe + 1)
        self.steps, self.chosen = 0, self.full
        self.pace: dict[int, list[float]] = {}

    def __enter__(self) -> CpuThreads:
        return self

    def step(self, waited_s: float, model_s: float) -> int:
        """Record one chunk (time blocked on the loader, time in the model); returns the thread count now set."""
        self.steps += 1
        if not self.active:
            return torch.get_num_threads()
        if self.steps > 1 and (self.steps - 2) % self.every < 2 * self.probe:  # that chunk ran as a probe
            self.pace.setdefault(torch.get_num_threads(), []).append(waited_s + model_s)
        p = (self.steps - 1) % self.every
        if p < self.probe:
            want = self.full
        elif p < 2 * self.probe:
            want = self.shared
        else:
            if p == 2 * self.probe:
                self.chosen = min(self.pace, key=lambda n: (statistics.median(self.pace[n]), -n))
                self.pace = {}
            want = self.chosen
        if want != torch.get_num_threads():
            torch.set_num_threads(want)
        return want

    def __exit__(self, *exc: Any) -> None:
        if self.active:
            torch.set_num_threads(self.full)


@torch.no_grad()
def predict(model, videos: list[Resolved], prompts: PromptFile, level: str, fps: float = 1.0,
            image_size: int = 64, batch_size: int = 64, num_workers: int = 2,
            progress: bool = True, preprocess: Preprocess | None = None,
            video_backend: str = "auto") -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
    """Per video: predicted class, true class and class probabilities of each sampled frame."""
    if level not in model.video_heads:
        raise HVLInputError(f"level '{level}' is not one the checkpoint was trained with ({list(model.video_heads)})")
    model.eval()
    text = class_embeddings(model, prompts, level)
    index, labels, _ = sample_eval_frames(videos, prompts.names, fps, batch_size, image_size, video_backend)
    loader = DataLoader(_FrameChunks(videos, index, image_size, preprocess, video_backend), batch_size=None,
                        num_workers=num_workers)
    probs: list[list[Tensor]] = [[] for _ in videos]
    with CpuThreads(model.device, num_workers) as threads:
        done = time.perf_counter()
        for vi, frames in tqdm(loader, desc="zero-shot", unit="chunk", disable=not progress):
            got = time.perf_counter()
            img = model.embed_frames(frames.to(model.device), level)
            probs[vi].append((100.0 * img @ text.T).softmax(-1).cpu())
            waited, done = got - done, time.perf_counter()
            threads.step(waited, done - got)   # blocked on the loader vs busy in the model
    p = [torch.cat(x) for x in probs]
    return [x.argmax(-1) for x in p], labels, p


def summarize(video_ids: Sequence[str], preds: Sequence[Tensor], labels: Sequence[Tensor], names: Sequence[str],
              level: str, fps: float) -> dict[str, Any]:
    """Metrics per video, their mean over videos (the reported numbers) and pooled over frames."""
    c = len(names)
    rows = [{"video_id": v, "n_frames": int(y.numel()), **phase_metrics(p, y, c)}
            for v, p, y in zip(video_ids, preds, labels)]
    pooled = phase_metrics(torch.cat(list(preds)), torch.cat(list(labels)), c)
    return {**mean_over_videos(rows), "pooled": pooled, "per_video": rows, "n_videos": len(rows),
            "n_frames": sum(r["n_frames"] for r in rows), "classes": list(names), "level": level, "fps": fps}


def evaluate(model, videos: list[Resolved], prompts: PromptFile, level: str, **kw: Any) -> dict[str, Any]:
    preds, labels, _ = predict(model, videos, prompts, level, **kw)
    return summarize([rec.video_id for rec, _ in videos], preds, labels, prompts.names, level, kw.get("fps", 1.0))


PREDICTIONS_FORMAT = "hvl-zeroshot-predictions"


def _file_name(video_id: str, taken: set[str]) -> str:
    """A file name from the id (ids may hold any character); numbered if two ids map to the same name."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", video_id).lstrip(".") or "video"
    name, n = f"{stem}.json", 1
    while name in taken:
        name, n = f"{stem}-{n}.json", n + 1
    taken.add(name)
    return name


def write_predictions(out: str | Path, videos: list[Resolved], result: dict[str, Any], times: list[list[float]],
                      preds: Sequence[Tensor], labels: Sequence[Tensor], probs: Sequence[Tensor],
                      window: int) -> Path:
    """``<out>/predictions.json`` (classes, settings, one entry per video with its metrics) and
    ``<out>/videos/<id>.json`` per video: frame times, true / predicted / smoothed class and probabilities.

    What ``hvl serve --zeroshot <out>`` reviews; the files name the videos they describe, and nothing else is served.
    Each file is written atomically."""
    out = Path(out)
    names, c = result["classes"], len(result["classes"])
    entries, taken = [], set()
    for (rec, path), row, t, p, y, pr in zip(videos, result["per_video"], times, preds, labels, probs):
        if len(t) != len(p):
            raise RuntimeError(f"{rec.video_id}: {len(t)} frame times for {len(p)} predictions")
        smoothed = smooth_mode(p, window, c)
        file = _file_name(rec.video_id, taken)
        smoothed_metrics = phase_metrics(smoothed, y, c)
        write_json(out / "videos" / file, {
            "video_id": rec.video_id, "path": str(Path(path).resolve()), "fps": result["fps"], "classes": names,
            "t": [round(float(x), 6) for x in t], "truth": y.tolist(), "pred": p.tolist(),
            "smoothed": smoothed.tolist(), "probs": [[round(float(v), 5) for v in r] for r in pr],
            "metrics": {k: row[k] for k in PHASE_METRICS}, "smoothed_metrics": smoothed_metrics})
        entries.append({"video_id": rec.video_id, "file": f"videos/{file}", "n_frames": row["n_frames"],
                        "metrics": {k: row[k] for k in PHASE_METRICS}, "smoothed_metrics": smoothed_metrics})
    return write_json(out / "predictions.json", {
        "format": PREDICTIONS_FORMAT, "version": 1, "classes": names, "level": result["level"], "fps": result["fps"],
        "smoothing": {"method": "mode", "window": window}, "checkpoint": result.get("checkpoint"),
        "prompt_file": result.get("prompt_file"), "metrics": {k: result[k] for k in PHASE_METRICS},
        "videos": entries})


def format_table(result: dict[str, Any]) -> str:
    lines = [f"{'video':<24}{'frames':>8}{'accuracy':>10}{'f1_macro':>10}{'jaccard':>10}"]
    for r in result["per_video"]:
        lines.append(f"{r['video_id']:<24}{r['n_frames']:>8}{r['accuracy']:>10.3f}{r['f1_macro']:>10.3f}{r['jaccard']:>10.3f}")
    lines.append("-" * len(lines[0]))
    lines.append(f"{'mean over videos':<24}{result['n_frames']:>8}{result['accuracy']:>10.3f}"
                 f"{result['f1_macro']:>10.3f}{result['jaccard']:>10.3f}")
    p = result["pooled"]
    lines.append(f"{'pooled over frames':<24}{'':>8}{p['accuracy']:>10.3f}{p['f1_macro']:>10.3f}{p['jaccard']:>10.3f}")
    return "\n".join(lines)


# ------------------------------------------------------------------ CLI: hvl zeroshot
def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..models.checkpoint import add_model_arguments

    p.add_argument("--config", required=True)
    add_model_arguments(p)
    p.add_argument("--json", help="write the metrics here")
    p.add_argument("--prompts", help="override the config's prompt file (path or <domain>:<name>)")
    p.add_argument("--level", help="override the embedding level")
    p.add_argument("--predictions", help="also write per-frame predictions here (a folder; for `hvl serve --zeroshot`)")
    p.add_argument("--smooth-window", type=int, default=5,
                   help="frames of the majority vote for the smoothed prediction in --predictions (odd; default 5)")
    p.add_argument("--no-mlflow", action="store_true")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ..models.checkpoint import load_for_eval, preprocess_of
    from ..registry import resolve_prompt_file

    cfg = load_config(args.config, ZeroShotConfig)
    if args.prompts:
        cfg.prompts = args.prompts
    prompt_path = resolve_prompt_file(cfg.prompts)
    prompts = load_prompt_file(prompt_path)
    level = args.level or cfg.level or prompts.level or "phase"
    videos = load_videos(cfg.dataset, cfg.domain)
    check_inputs(videos, prompts)  # data errors first: they are cheaper to find than a model is to load
    if args.predictions:
        check_window(args.smooth_window, "--smooth-window")  # before the model is loaded
    model, meta = load_for_eval(args.ckpt, args.model, args.text_model, args.trust_remote_code)
    pre = preprocess_of(meta, cfg.image_size)
    t0 = time.perf_counter()
    preds, labels, probs = predict(model, videos, prompts, level, fps=cfg.fps, image_size=pre.output_size[0],
                                   batch_size=cfg.batch_size, num_workers=cfg.num_workers,
                                   progress=not args.no_progress, preprocess=pre, video_backend=cfg.video_backend)
    result = summarize([rec.video_id for rec, _ in videos], preds, labels, prompts.names, level, cfg.fps)
    result.update(prompt_file=str(prompt_path), checkpoint=str(args.ckpt or args.model),
                  pretrained=args.model is not None, preprocess=pre.model_dump(mode="json"),
                  seconds=round(time.perf_counter() - t0, 2))
    print(format_table(result))
    if args.json:
        print(f"wrote {write_json(args.json, result)}")
    if args.predictions:
        times = eval_frame_times(videos, prompts.names, cfg.fps, pre.output_size[0], cfg.video_backend)
        print(f"wrote {write_predictions(args.predictions, videos, result, times, preds, labels, probs, args.smooth_window)}")
    if not args.no_mlflow:
        from ..tracking import log_files, log_json, log_metrics, start_eval_run

        run_id = start_eval_run(cfg.experiment, meta.get("mlflow_run_id"))
        tag = Path(prompt_path).stem
        log_metrics(run_id, {f"zeroshot/{tag}/{k}": result[k] for k in ("accuracy", "f1_macro", "jaccard")},
                    {"zeroshot_level": level, "zeroshot_fps": cfg.fps})
        log_files(run_id, {"prompts": prompt_path})
        log_json(run_id, result, f"zeroshot/{tag}.json")
        print(f"logged to MLflow run {run_id}")
    return result
