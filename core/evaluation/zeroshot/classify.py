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
from ..metrics import (
    PROTOCOL_DESCRIPTIONS,
    check_protocol,
    mean_over_videos,
    phase_metrics,
    relaxed_phase_scores,
    relaxed_summary,
    relaxed_video_row,
)
from .frames import FrameChunks, sample_eval_frames, sample_sequences
from .threads import CpuThreads
from .windows import frame_features, window_embeddings, window_half

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
            video_backend: str = "auto", window: float | None = None,
            head: Any = None, labelled: bool = True) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
    """Per video: predicted class, true class and class probabilities of each sampled frame.

    ``window`` (seconds): embed each frame with the centred window of frames around it (:mod:`.windows`) instead
    of alone. ``head``: an adapted head (:mod:`hvl.core.evaluation.adapt`) scores the embeddings instead of the
    prompt embeddings; a head that reads whole sequences (temporal) sees every frame of the video at ``fps``.
    ``labelled=False`` (``hvl predict``): every frame at ``fps`` is scored, no labels needed (true class -1)."""
    if level not in model.video_heads:
        raise HVLInputError(f"level '{level}' is not one the checkpoint was trained with ({list(model.video_heads)})")
    half = window_half(window, fps)
    model.eval()
    if head is not None:
        head.check_compatible(prompts.names, level, model.embed_dim)
        score = head.scores
    else:
        text = class_embeddings(model, prompts, level)

        def score(img: Tensor) -> Tensor:
            return 100.0 * img @ text.T
    if half is not None or getattr(head, "reads_sequences", False):
        return _predict_sequences(model, videos, prompts, level, fps, image_size, batch_size, num_workers, progress,
                                  preprocess, video_backend, half or 0, score, head, labelled)
    index, labels, _ = sample_eval_frames(videos, prompts.names, fps, batch_size, image_size, video_backend, labelled)
    loader = DataLoader(FrameChunks(videos, index, image_size, preprocess, video_backend), batch_size=None,
                        num_workers=num_workers)
    probs: list[list[Tensor]] = [[] for _ in videos]
    with CpuThreads(model.device, num_workers) as threads:
        done = time.perf_counter()
        for vi, frames in tqdm(loader, desc="zero-shot", unit="chunk", disable=not progress):
            got = time.perf_counter()
            img = model.embed_frames(frames.to(model.device), level)
            probs[vi].append(score(img).softmax(-1).cpu())
            waited, done = got - done, time.perf_counter()
            threads.step(waited, done - got)   # blocked on the loader vs busy in the model
    p = [torch.cat(x) for x in probs]
    return [x.argmax(-1) for x in p], labels, p


def _predict_sequences(model, videos, prompts, level, fps, image_size, batch_size, num_workers, progress, preprocess,
                       video_backend, half, score, head,
                       labelled=True) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
    """Every frame of each video at ``fps`` decoded and encoded once; windows pooled from those features."""
    seqs = sample_sequences(videos, prompts.names, fps, image_size, video_backend, labelled)
    feats = frame_features(model, videos, seqs, image_size, batch_size, num_workers, preprocess, video_backend,
                           progress, desc="zero-shot (windows)" if half else "zero-shot")
    probs = []
    for s, f in zip(seqs, feats):
        if getattr(head, "reads_sequences", False):  # a temporal head: the whole video, then the scored times
            emb = window_embeddings(model, f, half, level).to(model.device)
            probs.append(head.sequence_scores(emb)[s.positions.to(model.device)].softmax(-1).cpu())
        else:
            emb = window_embeddings(model, f, half, level, s.positions).to(model.device)
            probs.append(score(emb).softmax(-1).cpu())
    return [x.argmax(-1) for x in probs], [s.labels for s in seqs], probs


def summarize(video_ids: Sequence[str], preds: Sequence[Tensor], labels: Sequence[Tensor], names: Sequence[str],
              level: str, fps: float, protocol: str = "strict") -> dict[str, Any]:
    """Metrics per video, their mean over videos (the reported numbers) and pooled over frames, under ``protocol``
    (:data:`~hvl.core.evaluation.metrics.PROTOCOLS`), which the result names. A relaxed result's top-level numbers are
    the relaxed ones; the strict ones stay beside them under ``strict`` (what ``--predictions`` files carry)."""
    c = len(names)
    rows = [{"video_id": v, "n_frames": int(y.numel()), **phase_metrics(p, y, c)}
            for v, p, y in zip(video_ids, preds, labels)]
    pooled = phase_metrics(torch.cat(list(preds)), torch.cat(list(labels)), c)
    common = {"n_videos": len(rows), "n_frames": sum(r["n_frames"] for r in rows), "classes": list(names),
              "level": level, "fps": fps}
    strict = {"protocol": "strict", "protocol_description": PROTOCOL_DESCRIPTIONS["strict"], **mean_over_videos(rows),
              "pooled": pooled, "per_video": rows}
    if check_protocol(protocol) == "strict":
        return {**strict, **common}
    videos = [relaxed_phase_scores(p, y, c, fps, as_released=protocol == "relaxed") for p, y in zip(preds, labels)]
    relaxed_rows = [{"video_id": r["video_id"], "n_frames": r["n_frames"], **relaxed_video_row(v)}
                    for r, v in zip(rows, videos)]
    return {"protocol": protocol, "protocol_description": PROTOCOL_DESCRIPTIONS[protocol],
            **relaxed_summary(videos, names), "per_video": relaxed_rows, **common, "strict": strict}


def evaluate(model, videos: list[Resolved], prompts: PromptFile, level: str, **kw: Any) -> dict[str, Any]:
    preds, labels, _ = predict(model, videos, prompts, level, **kw)
    return summarize([rec.video_id for rec, _ in videos], preds, labels, prompts.names, level, kw.get("fps", 1.0))


def format_table(result: dict[str, Any]) -> str:
    """The printed table, headed by the protocol its numbers follow; a relaxed result's strict numbers follow it."""
    if result.get("protocol", "strict") != "strict":
        return _format_relaxed(result) + "\n\n" + format_table(result["strict"] | {
            k: result[k] for k in ("n_frames", "n_videos") if k in result})
    lines = [f"protocol: {PROTOCOL_DESCRIPTIONS['strict']}",
             f"{'video':<24}{'frames':>8}{'accuracy':>10}{'f1_macro':>10}{'jaccard':>10}"]
    for r in result["per_video"]:
        lines.append(f"{r['video_id']:<24}{r['n_frames']:>8}{r['accuracy']:>10.3f}{r['f1_macro']:>10.3f}{r['jaccard']:>10.3f}")
    lines.append("-" * len(lines[1]))
    lines.append(f"{'mean over videos':<24}{result['n_frames']:>8}{result['accuracy']:>10.3f}"
                 f"{result['f1_macro']:>10.3f}{result['jaccard']:>10.3f}")
    p = result["pooled"]
    lines.append(f"{'pooled over frames':<24}{'':>8}{p['accuracy']:>10.3f}{p['f1_macro']:>10.3f}{p['jaccard']:>10.3f}")
    return "\n".join(lines)


def _cell(x: float | None) -> str:
    return f"{'-':>10}" if x is None else f"{x:>10.3f}"


def _format_relaxed(result: dict[str, Any]) -> str:
    keys = ("accuracy", "precision", "recall", "jaccard")
    head = f"{'video':<24}{'frames':>8}" + "".join(f"{k:>10}" for k in keys)
    lines = [f"protocol: {result['protocol']}: {result['protocol_description']}", head]
    for r in result["per_video"]:
        lines.append(f"{r['video_id']:<24}{r['n_frames']:>8}" + "".join(_cell(r[k]) for k in keys))
    lines.append("-" * len(head))
    lines.append(f"{'mean (Main.m)':<24}{result['n_frames']:>8}" + "".join(_cell(result[k]) for k in keys))
    lines.append(f"{'std':<24}{'':>8}" + "".join(_cell(result["std"][k]) for k in keys))
    lines.append(f"f1 (2PR/(P+R) of the means) {_cell(result['f1']).strip()}; mean of per-phase F1 "
                 f"{_cell(result['f1_mean_over_phases']).strip()}")
    lines.append("")
    lines.append(f"{'phase':<24}{'videos':>8}" + "".join(f"{k:>10}" for k in ("precision", "recall", "jaccard", "f1")))
    for r in result["per_phase"]:
        lines.append(f"{r['phase']:<24}{r['n_videos']:>8}" + "".join(_cell(r[k]) for k in ("precision", "recall",
                                                                                           "jaccard", "f1")))
    return "\n".join(lines)
