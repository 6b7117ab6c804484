"""`hvl retrieval`: text ↔ video retrieval with a trained model (T2V / V2T R@1/5/10/50, MedR, MeanR).

A video's text is its paragraph (:func:`hvl.core.data.longform.paragraph_of`): its abstract (``texts[0]``), else
its clips' sentences joined in time order. With ``level: video`` this is paragraph-to-video retrieval over whole
videos, LF-VILA's protocol; sentence corpora (one sentence per video, e.g. How2Sign) are the same thing with
one-sentence paragraphs.

Protocol (CiCo): test videos are grouped by their sentence (several videos may sign the same
sentence). T2V has one query per unique sentence and a hit is *any* of its videos; V2T has one
query per video and a hit is its sentence. Ranks are 0-based; R@K = % of queries with rank < K;
MedR = median rank + 1 and MeanR = mean rank + 1 (``numpy.median``: the mean of the two middle
ranks for an even number of queries).

Ties are ranked pessimistically: a wrong candidate with exactly the score of the right one is
ranked ahead of it, so a query's rank is the number of wrong candidates scoring ≥ its best right
one. Every query counts once (CLIP4Clip's ``compute_metrics`` counts a query once per tied
position), and a constant model gets the worst rank, not a lucky R@1.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..data.records import DatasetSpec
from ..errors import HVLInputError

if TYPE_CHECKING:
    from torch import Tensor

    from ..data.schema import VideoRecord

KS = (1, 5, 10, 50)


class RetrievalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    domain: str | None = None
    dataset: DatasetSpec
    level: str = Field("video", description="embedding space to score in: 'video' (sentence level) or a finer one "
                       "whose words align to segments, e.g. 'clip' (gloss level) with finegrained similarity")
    similarity: Literal["model", "global", "finegrained"] = Field(
        "model", description="'model' = what the checkpoint trained this level with")
    frames: int | None = Field(None, ge=1, description="frames per video; default: the training schedule's")
    image_size: int | None = Field(None, description="default: the training data module's image_size")
    batch_size: int = Field(16, ge=1, description="videos embedded at once")
    num_workers: int = Field(2, ge=0)
    experiment: str = "hvl-retrieval"
    moment_level: str = Field("clip", description="`--moments`: the space sentences are localised in (`--level` "
                              "overrides it)")
    moment_frames: int = Field(64, ge=1, description="`--moments`: frames sampled over each whole video; a "
                               "predicted moment is a run of them")
    moment_max_window: int | None = Field(None, ge=1, description="`--moments`: the longest candidate moment, in "
                                          "frames (default: the whole video)")


# ----------------------------------------------------------------- metrics
def group_by_sentence(texts: list[str]) -> tuple[list[str], list[int]]:
    """Unique sentences (first-seen order) and, per video, the index of its sentence."""
    index: dict[str, int] = {}
    of_video = [index.setdefault(" ".join(t.split()), len(index)) for t in texts]
    return list(index), of_video


def retrieval_ranks(sim: Tensor, video_sentence: Tensor) -> tuple[Tensor, Tensor]:
    """0-based ranks of the T2V queries (rows of ``sim [S, V]``) and the V2T queries (its columns).

    ``video_sentence[v]`` is the sentence of video ``v``; pessimistic ties (see module docstring).
    """
    import torch

    if sim.ndim != 2 or video_sentence.shape != (sim.shape[1],):
        raise ValueError(f"sim must be [sentences, videos] and video_sentence [videos]; got {tuple(sim.shape)}, "
                         f"{tuple(video_sentence.shape)}")
    if not torch.isfinite(sim).all():
        raise ValueError("similarity matrix has NaN/inf entries; the model or its inputs are broken")
    s, v = sim.shape
    pos = video_sentence[None, :] == torch.arange(s, device=sim.device)[:, None]      # [S, V]
    if not bool(pos.any(1).all()):
        raise ValueError("every sentence needs at least one video")
    best = sim.masked_fill(~pos, float("-inf")).amax(1)                                 # best right video
    t2v = ((sim >= best[:, None]) & ~pos).sum(1)
    right = sim[video_sentence, torch.arange(v, device=sim.device)]                     # [V]
    v2t = ((sim >= right[None, :]) & ~pos).sum(0)
    return t2v, v2t


def summarize_ranks(ranks: Tensor, prefix: str) -> dict[str, float]:
    import numpy as np

    r = ranks.cpu().numpy()
    out = {f"{prefix}_r{k}": float(100.0 * (r < k).mean()) for k in KS}
    out[f"{prefix}_medr"] = float(np.median(r) + 1)
    out[f"{prefix}_meanr"] = float(r.mean() + 1)
    return out


def retrieval_metrics(sim: Tensor, video_sentence: Tensor) -> dict[str, float]:
    """``t2v_r1 … v2t_meanr`` (recalls in percent) from sentence × video scores."""
    t2v, v2t = retrieval_ranks(sim, video_sentence)
    return summarize_ranks(t2v, "t2v") | summarize_ranks(v2t, "v2t")


def fuse_scores(sims: list[Tensor], weights: list[float] | None = None) -> Tensor:
    """Score-level late fusion of several models' ``[S, V]`` scores (e.g. an RGB-only and a pose-only model): each
    standardised over all its entries (models score on different scales and temperatures), then their weighted
    mean (default: equal weights)."""
    if not sims or any(s.shape != sims[0].shape for s in sims):
        raise ValueError(f"late fusion needs score matrices of one shape, got {[tuple(s.shape) for s in sims]}")
    weights = weights or [1.0] * len(sims)
    if len(weights) != len(sims) or sum(weights) <= 0 or min(weights) < 0:
        raise ValueError(f"late fusion weights {weights} must be ≥ 0, one per score matrix, and not all 0")
    z = [(s.float() - s.float().mean()) / s.float().std().clamp_min(1e-12) for s in sims]
    return sum(w * x for w, x in zip(weights, z)) / sum(weights)


# ----------------------------------------------------------------- embedding
def _span(rec: VideoRecord, video) -> tuple[float, float]:
    if rec.span is not None:
        return rec.span
    return 0.0, min(rec.duration or video.duration, video.duration)


class _VideoFrames:
    """Video ``i`` → ``num`` frames sampled uniformly over its span, as the training loader does; with a keypoint
    reader (a pose-aware model's) also the keypoints shown at those frames' times."""

    def __init__(self, videos: list[tuple[VideoRecord, Path]], num: int, image_size: int, preprocess=None,
                 keypoints=None, pose_root: Path | None = None):
        from ..data.transforms import FrameTransform, Preprocess

        self.videos, self.num = videos, num
        self.pre = preprocess or Preprocess.square(image_size)
        self.transform = FrameTransform(image_size, train=False, preprocess=self.pre)
        self._readers = None
        self.keypoints, self.pose_root, self._tracks = keypoints, pose_root, None

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i: int):
        from ..data.video import ReaderCache

        if self._readers is None:  # per DataLoader worker
            self._readers = ReaderCache(size=self.pre.decode_size)
        rec, path = self.videos[i]
        v = self._readers(path)
        start, end = _span(rec, v)
        idx = v.indices(start, end, num=self.num)
        frames = self.transform(v.source.get(idx))
        if self.keypoints is None:
            return frames
        import torch

        from ..data.keypoints import TrackCache

        if self._tracks is None:
            self._tracks = TrackCache(self.keypoints, self.pose_root)
        values, mask = self._tracks.frames(rec, [v.time_of(j) for j in idx], v.fps)
        return frames, torch.from_numpy(values), torch.from_numpy(mask)


def model_input(model, batch):
    """A loader batch of :class:`_VideoFrames` as the model reads it: frames, or frames with keypoints."""
    if not isinstance(batch, (list, tuple)):
        return batch.to(model.device)
    from ..models.pose import Streams

    frames, keypoints, mask = batch
    rgb = frames if model.pose_cfg.streams == "fused" else None
    return Streams(rgb, keypoints, mask).to(model.device)


def embed_videos(model, videos: list[tuple[VideoRecord, Path]], level: str, frames: int, image_size: int,
                 batch_size: int = 16, num_workers: int = 2, progress: bool = True,
                 preprocess=None, pose_root: Path | None = None) -> tuple[Tensor, Tensor]:
    """Per-frame ``[V, T, E]`` and pooled ``[V, E]`` embeddings of every video. ``pose_root``: the folder relative
    pose paths of the records are in (a pose-aware model's keypoints; the manifest's folder)."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    keypoints = getattr(model, "keypoint_reader", None)
    loader = DataLoader(_VideoFrames(videos, frames, image_size, preprocess, keypoints, pose_root),
                        batch_size=batch_size, num_workers=num_workers)
    per_frame, pooled = [], []
    with torch.no_grad():
        for x in tqdm(loader, desc="videos", unit="batch", disable=not progress):
            f, g = model.embed_frame_sequence(model_input(model, x), level)
            per_frame.append(f)
            pooled.append(g)
    return torch.cat(per_frame), torch.cat(pooled)


def embed_sentences(model, sentences: list[str], level: str, chunk: int = 256) -> tuple[Tensor, Tensor, Tensor]:
    """Token embeddings ``[S, L, E]``, their mask and pooled ``[S, E]`` embeddings."""
    import torch

    toks, masks, pooled = [], [], []
    with torch.no_grad():
        for i in range(0, len(sentences), chunk):
            part = sentences[i:i + chunk]
            t, m = model.embed_tokens(part, level)
            toks.append(t)
            masks.append(m)
            pooled.append(model.embed_text(part, level))
    return torch.cat(toks), torch.cat(masks), torch.cat(pooled)


def count_cut_texts(model, texts: list[str]) -> tuple[int, int | None]:
    """How many ``texts`` are longer than the text encoder keeps (its ``max_length`` tokens), and that limit; a
    paragraph cut short is ranked by its beginning only. ``(0, None)`` for a text tower without that limit."""
    tokenizer = getattr(getattr(model, "text", None), "tokenizer", None)
    limit = getattr(getattr(model, "text", None), "max_length", None)
    if tokenizer is None or not isinstance(limit, int):
        return 0, None
    return sum(len(ids) > limit for ids in tokenizer(texts, truncation=False)["input_ids"]), limit


def evaluate_retrieval(model, videos: list[tuple[VideoRecord, Path]], level: str = "video",
                       similarity: str = "model", frames: int = 16, image_size: int = 64, batch_size: int = 16,
                       num_workers: int = 2, progress: bool = True, preprocess=None,
                       pose_root: Path | None = None) -> dict[str, Any]:
    """Embed, score every sentence against every video, rank; metrics plus what was measured."""
    import torch

    if level not in model.video_heads:
        raise HVLInputError(f"level '{level}' is not one the checkpoint was trained with ({list(model.video_heads)})")
    from ..data.longform import paragraph_of

    paragraphs = [paragraph_of(rec) for rec, _ in videos]
    for (rec, path), paragraph in zip(videos, paragraphs):
        if paragraph is None:
            raise HVLInputError(f"{path}: video '{rec.video_id}' has no text: 'texts' (an abstract) and 'clips' "
                                "(sentences) are both empty; retrieval needs one of them per video")
    model.eval()
    sentences, of_video = group_by_sentence(paragraphs)
    kind = similarity if similarity != "model" else ("finegrained" if level in model.finegrained else "global")
    vf, vg = embed_videos(model, videos, level, frames, image_size, batch_size, num_workers, progress, preprocess,
                          pose_root)
    tt, tm, tg = embed_sentences(model, sentences, level)
    with torch.no_grad():
        sim = model.pair_scores(level, vf, vg, tt, tm, tg, kind).T.float().cpu()   # [S, V]
    result: dict[str, Any] = retrieval_metrics(sim, torch.tensor(of_video))
    cut, limit = count_cut_texts(model, sentences)
    result.update(n_videos=len(videos), n_sentences=len(sentences), similarity=kind, level=level, frames=frames,
                  texts_cut=cut, text_max_tokens=limit,
                  # random ranking: T2V hits with p = (videos of s) / V, averaged over s; V2T 1/S: both 1/S
                  chance_r1=round(100.0 / len(sentences), 3))
    return result


def format_table(r: dict[str, Any]) -> str:
    head = (f"retrieval: {r['n_videos']} videos, {r['n_sentences']} sentences, similarity={r['similarity']}, "
            f"level={r['level']}" + (f", streams={r['streams']}" if "streams" in r else ""))
    lines = [head, f"{'':<6}{'R@1':>8}{'R@5':>8}{'R@10':>8}{'R@50':>8}{'MedR':>8}{'MeanR':>8}"]
    for d in ("t2v", "v2t"):
        lines.append(f"{d.upper():<6}" + "".join(f"{r[f'{d}_{k}']:>8.1f}"
                                                for k in ("r1", "r5", "r10", "r50", "medr", "meanr")))
    if r.get("texts_cut"):
        lines.append(f"note: {r['texts_cut']} of {r['n_sentences']} texts are longer than the text encoder's "
                     f"{r['text_max_tokens']} tokens and were cut (model.text_encoder.max_length)")
    return "\n".join(lines)
