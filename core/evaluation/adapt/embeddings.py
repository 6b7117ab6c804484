"""Frozen embeddings of labelled videos, computed once: every frame at the run's fps through the frame encoder into
the :class:`~hvl.core.data.cache.FeatureCache` (float16, memory-mapped, keyed by the encoder's weights and the
preprocessing), then pooled into one level's space per frame or per centred window.

A second ``hvl adapt`` run on the same videos and model (another seed, number of shots, method or window) reads the
cache instead of decoding video. The cache keys a video by its id *and* its file (path, size, modification
time), so two data sets that reuse ids never share features.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ...data.cache import FeatureCache
from ...data.records import Resolved
from ...data.schema import PromptFile
from ...data.transforms import Preprocess
from ..zeroshot.frames import FrameSequence, sample_sequences
from ..zeroshot.windows import frame_features, window_embeddings, window_half

__all__ = ["LabelledSequence", "cache_id", "embed_sequences", "encoder_fingerprint", "sequence_features"]


@dataclass
class LabelledSequence:
    """One video in a level's space: an embedding per frame (or window) at fps, and which of them are labelled."""

    video_id: str
    emb: Tensor        # [T, E]
    positions: Tensor  # [n] long: labelled frames among the T
    labels: Tensor     # [n] long

    @property
    def x(self) -> Tensor:
        """``[n, E]``: the labelled frames' embeddings."""
        return self.emb[self.positions]


def encoder_fingerprint(model) -> str:
    """sha256 of the frame encoder's weights (a pretrained backbone's, else the video encoder's frame encoder)."""
    part = model.backbone if getattr(model, "backbone", None) is not None else model.video.frames
    h = hashlib.sha256(type(part).__name__.encode())
    for name, t in sorted(part.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cache_id(rec, path: str | Path) -> str:
    """A video's key in the cache: its id and which file it is (another file under the same id is another key)."""
    p = Path(path)
    st = p.stat()
    return f"{rec.video_id}|{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def sequence_features(model, videos: list[Resolved], seqs: list[FrameSequence], preprocess: Preprocess,
                      cache_dir: str | Path | None, batch_size: int = 64, num_workers: int = 2,
                      video_backend: str = "auto", progress: bool = True) -> tuple[list[Tensor], dict]:
    """Per video, the frame encoder's features ``[T, D]`` of every frame of its sequence; through the feature cache
    in ``cache_dir`` (computed for the videos it lacks, read for the others), or computed afresh when None."""
    size = preprocess.output_size[0]
    if cache_dir is None:
        feats = frame_features(model, videos, seqs, size, batch_size, num_workers, preprocess, video_backend, progress,
                               desc="train frames")
        return feats, {"cache": None}
    cache = FeatureCache(cache_dir, encoder_fingerprint(model), preprocess.model_dump(mode="json"))
    keys = [cache_id(rec, path) for rec, path in videos]
    missing = [i for i, (k, s) in enumerate(zip(keys, seqs)) if not cache.has(k, s.indices)]
    if missing:
        feats = frame_features(model, [videos[i] for i in missing], [seqs[i] for i in missing], size, batch_size,
                               num_workers, preprocess, video_backend, progress, desc="train frames")
        rows = {keys[i]: dict(zip(seqs[i].indices, f.cpu())) for i, f in zip(missing, feats)}
        # the features are computed already (decoded in loader workers): the cache's "read" looks them up
        cache.build({k: (r, list(r)) for k, r in rows.items()}, lambda r, idx: torch.stack([r[j] for j in idx]),
                    lambda x: x, progress=False)
    out = [cache.get(k, s.indices).to(model.device) for k, s in zip(keys, seqs)]
    return out, {"cache": str(cache.dir), "computed": len(missing), "reused": len(videos) - len(missing)}


@torch.no_grad()
def embed_sequences(model, videos: list[Resolved], prompts: PromptFile, level: str, fps: float,
                    window: float | None, preprocess: Preprocess, cache_dir: str | Path | None = None,
                    batch_size: int = 64, num_workers: int = 2, video_backend: str = "auto",
                    progress: bool = True, features: list[Tensor] | None = None) -> list[LabelledSequence]:
    """Every video in ``level``'s space at ``fps`` (frames alone, or centred windows of ``window`` seconds).
    ``features``: the frame features of these videos already at hand (:func:`sequence_features`)."""
    seqs = sample_sequences(videos, prompts.names, fps, preprocess.output_size[0], video_backend)
    if features is None:
        features, _ = sequence_features(model, videos, seqs, preprocess, cache_dir, batch_size, num_workers,
                                        video_backend, progress)
    half = window_half(window, fps) or 0
    model.eval()
    return [LabelledSequence(rec.video_id, window_embeddings(model, f, half, level), s.positions, s.labels)
            for (rec, _), s, f in zip(videos, seqs, features)]
