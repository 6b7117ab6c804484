"""`hvl retrieval --moments`: sentence-to-moment localisation inside a long video (ActivityNet Captions' protocol).

Each clip of a video is a query: its sentence, with its ``[start, end]`` as the ground truth. The video's
``frames`` frames are sampled uniformly over its whole length (the centres of equal bins, as retrieval and
training sample) and go through the video encoder once. Every run of consecutive bins ``i..j`` (up to
``max_window`` bins; all of them by default) is a candidate moment covering ``[i·step, (j+1)·step)``; its
embedding is the level's head on the mean of its frames' features, which is how hvl embeds a clip. The sentence
goes through the same level's text head, and the best-scoring window is the prediction (on a tie, the first in
order of start, then of length).

Metrics: R@1 at IoU 0.3 / 0.5 / 0.7 (percent of sentences whose prediction overlaps the truth by at least that
temporal IoU) and mIoU (the mean IoU, in percent).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import HVLInputError

if TYPE_CHECKING:
    from torch import Tensor

    from ..data.schema import VideoRecord

__all__ = ["IOU_THRESHOLDS", "candidate_windows", "chance_moment_metrics", "evaluate_moments", "format_moments_table", "moment_metrics",
           "pick_windows", "temporal_iou"]

IOU_THRESHOLDS = (0.3, 0.5, 0.7)


def temporal_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``[start, end]`` intervals (0 when they do not overlap)."""
    (s1, e1), (s2, e2) = a, b
    if e1 < s1 or e2 < s2:
        raise ValueError(f"an interval must be [start, end] with start <= end, got {list(a)} and {list(b)}")
    inter = max(0.0, min(e1, e2) - max(s1, s2))
    union = max(e1, e2) - min(s1, s2)
    return inter / union if union > 0 else 0.0


def moment_metrics(predicted: Sequence[Sequence[float]], truth: Sequence[Sequence[float]],
                   thresholds: Sequence[float] = IOU_THRESHOLDS) -> dict[str, float]:
    """``r1_iou<m>`` (percent of queries whose top prediction has IoU >= m) and ``miou`` (mean IoU, percent)."""
    if len(predicted) != len(truth) or not truth:
        raise ValueError(f"need one prediction per ground-truth moment and at least one; got {len(predicted)} "
                         f"predictions for {len(truth)} moments")
    ious = [temporal_iou(p, t) for p, t in zip(predicted, truth)]
    out = {f"r1_iou{m:g}": 100.0 * sum(i >= m for i in ious) / len(ious) for m in thresholds}
    out["miou"] = 100.0 * sum(ious) / len(ious)
    return out


def chance_moment_metrics(candidates: Sequence[Sequence[float]], truth: Sequence[Sequence[float]],
                          thresholds: Sequence[float] = IOU_THRESHOLDS) -> dict[str, float]:
    """What a prediction drawn uniformly from ``candidates`` ([start, end] each) scores on average against each of
    ``truth``: the ``chance_`` counterpart of :func:`moment_metrics`, summed over the queries (divide by their
    number; videos of different lengths have different candidates)."""
    import numpy as np

    c, t = np.asarray(candidates, float), np.asarray(truth, float)
    inter = np.clip(np.minimum(c[None, :, 1], t[:, None, 1]) - np.maximum(c[None, :, 0], t[:, None, 0]), 0, None)
    union = np.maximum(c[None, :, 1], t[:, None, 1]) - np.minimum(c[None, :, 0], t[:, None, 0])
    iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)               # [queries, candidates]
    out = {f"chance_r1_iou{m:g}": 100.0 * float((iou >= m).mean(1).sum()) for m in thresholds}
    out["chance_miou"] = 100.0 * float(iou.mean(1).sum())
    return out


def candidate_windows(bins: int, max_window: int | None = None) -> Tensor:
    """``[W, 2]`` first and last bin (inclusive) of every run of 1..``max_window`` consecutive bins, by start then
    length."""
    import torch

    longest = bins if max_window is None else min(max_window, bins)
    return torch.tensor([(i, j) for i in range(bins) for j in range(i, min(bins, i + longest))], dtype=torch.long)


def pick_windows(frame_features: Tensor, sentences: Tensor, head, windows: Tensor) -> Tensor:
    """Index into ``windows`` of the best window for each sentence: ``frame_features [T, D]`` of one video,
    ``sentences [S, E]`` in the level's space, ``head`` the level's video head (``[N, D] → [N, E]``)."""
    import torch

    csum = torch.cat([frame_features.new_zeros(1, frame_features.shape[1]), frame_features.cumsum(0)])
    first, last = windows[:, 0], windows[:, 1]
    means = (csum[last + 1] - csum[first]) / (last - first + 1).unsqueeze(1).to(frame_features.dtype)
    scores = sentences @ head(means).T                                              # [S, W]
    return scores.argmax(1)   # torch: the first maximum


def _video_moments(model, x: Tensor, rec: VideoRecord, level: str, windows: Tensor,
                   span: tuple[float, float]) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    import torch

    with torch.no_grad():
        feats = model.video.frame_features(x.to(model.device))[0]
        clips = sorted(rec.clips, key=lambda c: (c.start, c.end))
        text = model.embed_text([c.texts[0] for c in clips], level)
        best = pick_windows(feats, text, model.video_heads[level], windows.to(feats.device)).cpu()
    step = (span[1] - span[0]) / x.shape[1]
    candidates = [(span[0] + step * int(i), span[0] + step * (int(j) + 1)) for i, j in windows.tolist()]
    return [candidates[b] for b in best.tolist()], [(c.start, c.end) for c in clips], candidates


def evaluate_moments(model, videos: list[tuple[VideoRecord, Path]], level: str = "clip", frames: int = 64,
                     image_size: int = 64, max_window: int | None = None, num_workers: int = 2,
                     progress: bool = True, preprocess=None) -> dict[str, Any]:
    """Localise every clip's sentence inside its own video; metrics plus what was measured. Videos without clips
    are left out (counted); a dataset with none is an error."""
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from ..data.video import ReaderCache
    from .retrieval import _span, _VideoFrames

    if level not in model.video_heads:
        raise HVLInputError(f"level '{level}' is not one the checkpoint was trained with ({list(model.video_heads)})")
    if getattr(model, "keypoint_reader", None) is not None:
        raise HVLInputError("moment localisation scores windows of a video's frame features; this model reads "
                            "keypoints beside the frames, which it does not support yet: use an RGB model")
    with_clips = [(rec, path) for rec, path in videos if rec.clips]
    if not with_clips:
        raise HVLInputError(f"{videos[0][1] if videos else 'dataset'}: no video has clips with times; moment "
                            "localisation needs each sentence's [start, end] ('clips' in the manifest, or "
                            "ActivityNet Captions' timestamps)")
    model.eval()
    windows = candidate_windows(frames, max_window)
    loader = DataLoader(_VideoFrames(with_clips, frames, image_size, preprocess), batch_size=1,
                        num_workers=num_workers)
    predicted, truth, chance = [], [], {}
    readers = ReaderCache(size=loader.dataset.pre.decode_size)  # each video's span, as the loader's worker sees it
    for (rec, path), x in tqdm(zip(with_clips, loader), total=len(with_clips), desc="videos", unit="video",
                               disable=not progress):
        p, t, candidates = _video_moments(model, x, rec, level, windows, _span(rec, readers(path)))
        predicted += p
        truth += t
        for k, v in chance_moment_metrics(candidates, t).items():
            chance[k] = chance.get(k, 0.0) + v
    result: dict[str, Any] = moment_metrics(predicted, truth)
    result.update({k: v / len(truth) for k, v in chance.items()})   # a window drawn at random, for scale
    result.update(n_videos=len(with_clips), n_videos_without_clips=len(videos) - len(with_clips),
                  n_sentences=len(truth), level=level, frames=frames, windows=len(windows),
                  max_window=min(max_window or frames, frames))
    return result


def format_moments_table(r: dict[str, Any]) -> str:
    head = (f"moments: {r['n_sentences']} sentences in {r['n_videos']} videos, level={r['level']}, "
            f"{r['frames']} frames per video, windows of 1-{r['max_window']} frames")
    keys = [k for k in r if k.startswith("r1_iou")]
    lines = [head, "".join(f"{'R@1 IoU' + k.removeprefix('r1_iou'):>13}" for k in keys) + f"{'mIoU':>8}",
             "".join(f"{r[k]:>13.1f}" for k in keys) + f"{r['miou']:>8.1f}"]
    if "chance_miou" in r:
        lines.append("".join(f"{r['chance_' + k]:>13.1f}" for k in keys) + f"{r['chance_miou']:>8.1f}"
                     "  (a random window)")
    return "\n".join(lines)
