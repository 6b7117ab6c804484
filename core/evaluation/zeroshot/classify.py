"""Prompt file → class embeddings → per-frame prediction → metrics per video and over videos."""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ...data.records import Resolved
from ...data.schema import PromptFile
from ...data.transforms import Preprocess
from ...errors import HVLInputError
from ..metrics import mean_over_videos, phase_metrics
from .frames import FrameChunks, sample_eval_frames
from .threads import CpuThreads

__all__ = ["class_embeddings", "evaluate", "format_table", "predict", "summarize"]


@torch.no_grad()
def class_embeddings(model, prompts: PromptFile, level: str) -> Tensor:
    """``[C, E]``: each class's prompts embedded, normalised, averaged, normalised again."""
    out = []
    for c in prompts.classes:
        e = model.embed_text(prompts.texts_for(c), level)
        out.append(F.normalize(e.mean(0), dim=-1))
    return torch.stack(out)


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
    loader = DataLoader(FrameChunks(videos, index, image_size, preprocess, video_backend), batch_size=None,
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
