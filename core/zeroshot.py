"""Zero-shot recognition: prompt file → class embeddings → per-frame prediction → metrics.

Protocol (SurgVLP/HecVL): frames sampled at ``fps`` (1 by default), each classified
alone by cosine similarity with the class embeddings in one level's space; metrics
per video, then averaged over videos. Prompt ensembles are averaged in embedding space.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .metrics import mean_over_videos, phase_metrics
from .schema import HVLInputError, PromptFile, VideoRecord, load_manifest
from .transforms import FrameTransform
from .video import ReaderCache

Resolved = tuple[VideoRecord, Path]  # a record and its frame source on disk


def manifest_videos(path: str | Path) -> list[Resolved]:
    m = load_manifest(path)
    return [(r, m.resolve(r)) for r in m.videos]


def check_inputs(videos: list[Resolved], prompts: PromptFile) -> None:
    """Fail before any model is loaded: every video decodes, every label is a prompt class."""
    from .data import probe_video

    names = set(prompts.names)
    for rec, path in videos:
        reason = probe_video(rec, path)
        if reason:
            raise HVLInputError(f"{path}: {reason}")
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

    def __init__(self, videos: list[Resolved], index: list[tuple[int, list[int]]], image_size: int):
        self.videos, self.index = videos, index
        self.size = image_size
        self.transform = FrameTransform(image_size, train=False)
        self._readers: ReaderCache | None = None

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[int, Tensor]:
        if self._readers is None:
            self._readers = ReaderCache(size=(self.size, self.size))
        vi, idx = self.index[i]
        raw = self._readers(self.videos[vi][1]).source.get(idx)
        return vi, self.transform(raw)


def sample_eval_frames(videos: list[Resolved], names: list[str], fps: float, chunk: int,
                       size: int) -> tuple[list[tuple[int, list[int]]], list[Tensor], list[float]]:
    """Frame indices to classify and their labels; frames whose time has no known label are left out."""
    readers = ReaderCache(1, size=(size, size))
    lookup = {n: i for i, n in enumerate(names)}
    index, labels, durations = [], [], []
    for vi, (rec, path) in enumerate(videos):
        v = readers(path)
        dur = min(rec.duration or v.duration, v.duration)
        times = [k / fps for k in range(math.ceil(dur * fps - 1e-9))]
        keep = [(v.index_at(t), lookup.get(rec.label_at(t))) for t in times]
        unknown = {rec.label_at(t) for t in times} - set(lookup) - {None}
        if unknown:
            raise HVLInputError(f"{path}: phase label(s) {sorted(unknown)} are not classes of the prompt file "
                                f"{names}; add them to the prompt file or fix the annotations")
        keep = [(f, y) for f, y in keep if y is not None]
        if not keep:
            raise HVLInputError(f"{path}: no labelled frames at {fps} fps; video '{rec.video_id}' needs phases with labels")
        frames = [f for f, _ in keep]
        index += [(vi, frames[i:i + chunk]) for i in range(0, len(frames), chunk)]
        labels.append(torch.tensor([y for _, y in keep]))
        durations.append(dur)
    return index, labels, durations


@torch.no_grad()
def predict(model, videos: list[Resolved], prompts: PromptFile, level: str, fps: float = 1.0,
            image_size: int = 64, batch_size: int = 64, num_workers: int = 2,
            progress: bool = True) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
    """Per video: predicted class, true class and class probabilities of each sampled frame."""
    if level not in model.video_heads:
        raise HVLInputError(f"level '{level}' is not one the checkpoint was trained with ({list(model.video_heads)})")
    model.eval()
    text = class_embeddings(model, prompts, level)
    index, labels, _ = sample_eval_frames(videos, prompts.names, fps, batch_size, image_size)
    loader = DataLoader(_FrameChunks(videos, index, image_size), batch_size=None, num_workers=num_workers)
    probs: list[list[Tensor]] = [[] for _ in videos]
    for vi, frames in tqdm(loader, desc="zero-shot", unit="chunk", disable=not progress):
        img = model.embed_frames(frames.to(model.device), level)
        probs[vi].append((100.0 * img @ text.T).softmax(-1).cpu())
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
