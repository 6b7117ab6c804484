"""Windowed zero-shot: each scored time gets the embedding of a centred window of frames, pooled by the model's
own video encoder in the chosen level's space (``hvl zeroshot --window SECONDS``).

A level's space was trained on clips and segments of several frames (the phase level on 8-16), and a single frame
is a one-frame "segment" it never saw. Here every frame of a video at the run's ``fps`` is decoded and put through
the frame encoder **once**; each scored time ``t`` then pools the features of the frames at ``t + j / fps``,
``|j / fps| <= SECONDS / 2`` (truncated at the ends of the video: no frames are invented), through the model's
temporal aggregation and the level's head, exactly as a training segment of those frames would be. Frames without
a phase label still serve as context; only labelled times are scored.
"""
from __future__ import annotations

import math
import time

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ...data.records import Resolved
from ...data.transforms import Preprocess
from ...errors import HVLInputError
from .frames import FrameChunks, FrameSequence
from .threads import CpuThreads

__all__ = ["frame_features", "window_embeddings", "window_half"]


def window_half(seconds: float | None, fps: float, what: str = "--window") -> int | None:
    """Frames each side of the centre for a window of ``seconds`` at ``fps`` (None: single frames, today's
    protocol). A window shorter than two frame intervals holds the centre frame only."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or seconds < 0:
        raise HVLInputError(f"{what} must be a number of seconds >= 0, the span of the centred window each scored "
                            f"frame is embedded with (got {seconds!r}); omit it to classify single frames")
    return math.floor(seconds * fps / 2 + 1e-9)


@torch.no_grad()
def frame_features(model, videos: list[Resolved], seqs: list[FrameSequence], image_size: int, batch_size: int = 64,
                   num_workers: int = 2, preprocess: Preprocess | None = None, video_backend: str = "auto",
                   progress: bool = True, desc: str = "frames") -> list[Tensor]:
    """Per video, the frame encoder's features ``[T, D]`` of every frame in ``seqs`` (decoded once, in order)."""
    index = [(vi, s.indices[i:i + batch_size]) for vi, s in enumerate(seqs) for i in range(0, len(s.indices),
                                                                                            batch_size)]
    loader = DataLoader(FrameChunks(videos, index, image_size, preprocess, video_backend), batch_size=None,
                        num_workers=num_workers)
    parts: list[list[Tensor]] = [[] for _ in videos]
    with CpuThreads(model.device, num_workers) as threads:
        done = time.perf_counter()
        for vi, frames in tqdm(loader, desc=desc, unit="chunk", disable=not progress):
            got = time.perf_counter()
            parts[vi].append(model.video.frames(frames.to(model.device)).float())
            waited, done = got - done, time.perf_counter()
            threads.step(waited, done - got)
    return [torch.cat(p) for p in parts]


@torch.no_grad()
def window_embeddings(model, feats: Tensor, half: int, level: str, positions: Tensor | None = None,
                      chunk: int = 256) -> Tensor:
    """``[n, E]``: the ``level`` embedding of the window of ``2 * half + 1`` frames centred on each position
    (default: every frame of ``feats`` ``[T, D]``), truncated at the ends, pooled by ``model.embed_video`` on the
    frame features (its temporal aggregation and the level's head, as for a training segment)."""
    t = feats.shape[0]
    pos = torch.arange(t) if positions is None else positions.long().cpu()
    lo, hi = (pos - half).clamp(min=0), (pos + half + 1).clamp(max=t)
    out = torch.empty(len(pos), model.embed_dim)
    lengths = hi - lo
    for n in lengths.unique().tolist():  # windows of one length batch together (only the ends are shorter)
        rows = (lengths == n).nonzero().flatten()
        for i in range(0, len(rows), chunk):
            r = rows[i:i + chunk]
            idx = lo[r, None] + torch.arange(n)  # [b, n] frame positions
            out[r] = model.embed_video(feats[idx.to(feats.device)], level).float().cpu()
    return out

