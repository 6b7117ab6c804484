"""One sample of a level (frames + the texts it pairs with) and the batch a step trains on.

:class:`HierarchicalDataset` reads ``dataset[(Item, seed)]``: the frames of a clip, phase or whole video, decoded
by presentation time and transformed (training-time augmentation: :class:`Augment`), plus its texts;
:func:`collate` groups one step's samples by level. Which items a step reads is the sampler's business
(:mod:`.sampler`).
"""
from __future__ import annotations

import random
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch.utils.data import Dataset, get_worker_info

from ..errors import HVLInputError, format_validation_error
from .cache import FeatureCache
from .keypoints import KeypointReader, TrackCache
from .levels import LEVELS, Item, LevelConfig
from .schema import Manifest, VideoRecord
from .transforms import FrameTransform, Preprocess
from .video import ReaderCache

__all__ = ["Augment", "HierarchicalDataset", "augment_config", "collate"]

MAX_SENTENCES = 16  # clip sentences a whole-video sample carries, spread over the video (each is a text to embed)


class Augment(BaseModel):
    """Training-time augmentation (``data.augment``: ``true`` = these defaults, ``false`` = none)."""

    model_config = ConfigDict(extra="forbid")
    flip_prob: float = Field(0.5, ge=0, le=1, description="horizontal mirror; 0 where left/right carries meaning")
    intensity_prob: float = Field(0.3, ge=0, le=1, description="brightness scale and shift")
    shift: int = Field(0, ge=0, description="random translation by up to this many pixels, one draw per clip")


def augment_config(value: bool | dict[str, Any] | None) -> Augment | None:
    if value is None or value is False:
        return None
    if value is True:
        return Augment()
    try:
        return Augment.model_validate(value)
    except ValidationError as e:
        raise HVLInputError(format_validation_error(e, "data.augment") + "\ne.g. data.augment: "
                            "{flip_prob: 0.0, intensity_prob: 0.3, shift: 3}, or true / false") from None


def _spread(items: list[Any], k: int) -> list[Any]:
    """At most ``k`` items, evenly spaced (children should cover the whole parent)."""
    if len(items) <= k:
        return items
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)] if k > 1 else items[:1]


class HierarchicalDataset(Dataset):
    """``dataset[(Item, seed)]`` → one sample of its level: frames plus the texts it pairs with."""

    def __init__(self, manifest: Manifest, levels: dict[str, LevelConfig], image_size: int = 64,
                 augment: Augment | None = None, max_texts: int = 2, max_children: int = 4, reader_cache: int = 1,
                 preprocess: Preprocess | None = None, video_backend: str = "auto",
                 keypoints: KeypointReader | None = None):
        """``augment``: training-time augmentation settings; ``None`` (validation) = none. ``preprocess``: a
        pretrained model's frame preprocessing (default: squash to ``image_size``², ImageNet mean/std).
        ``keypoints``: a pose-aware model's reader; each sample then also carries the keypoints shown at its
        frames' times (``keypoints [T, P*C]``, ``keypoint_mask [T, P]``)."""
        self.video_backend = video_backend
        self.keypoints = keypoints
        self._tracks: TrackCache | None = None
        self.manifest, self.levels, self.augment = manifest, levels, augment
        self.max_texts, self.max_children = max_texts, max_children
        pre = preprocess or Preprocess.square(image_size)
        self.transform = FrameTransform(image_size, train=augment is not None, preprocess=pre,
                                        **(augment.model_dump() if augment else {}))
        self.decode_size = pre.decode_size
        self._eval_transform = FrameTransform(image_size, train=False, preprocess=pre)
        self._readers: ReaderCache | None = None
        self._cache_size = reader_cache
        self.features: FeatureCache | None = None  # set by the DataModule when the frame encoder is frozen
        self._record: dict[str, set[int]] | None = None

    def _video(self, rec: VideoRecord):
        if self._readers is None:  # opened lazily so each DataLoader worker gets its own decoders
            self._readers = ReaderCache(self._cache_size, size=self.decode_size, backend=self.video_backend)
        return self._readers(self.manifest.resolve(rec))

    def _frames(self, rec: VideoRecord, start: float, end: float, num: int, seed: int) -> dict[str, torch.Tensor]:
        """``{"frames": ...}`` of a sample, plus ``"affine"`` when the frames are 8-bit pixels."""
        idx = self._video(rec).indices(start, end, num=num)
        if self._record is not None:  # collecting what the schedule reads (to build the feature cache)
            self._record.setdefault(rec.video_id, set()).update(idx)
            return {"frames": torch.zeros(0)}
        poses = self._keypoints(rec, idx)
        if self.features is not None:  # a frozen frame encoder's features instead of pixels: [T, D]
            return {"frames": self.features.get(rec.video_id, idx), **poses}
        raw = self._video(rec).source.get(idx)
        self.transform.set_random_state(seed)
        return {**self._transform(raw), **poses}

    def _keypoints(self, rec: VideoRecord, idx: list[int]) -> dict[str, torch.Tensor]:
        """The keypoints shown at the sampled frames' times (none when the model reads no keypoints)."""
        if self.keypoints is None:
            return {}
        if self._tracks is None:  # per DataLoader worker
            self._tracks = TrackCache(self.keypoints, self.manifest.root)
        video = self._video(rec)
        values, mask = self._tracks.frames(rec, [video.time_of(i) for i in idx], video.fps)
        return {"keypoints": torch.from_numpy(values), "keypoint_mask": torch.from_numpy(mask)}

    def _transform(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """Decoded frames → what a sample carries: for the square pipeline 8-bit pixels and their per-channel
        affine map (applied per batch on the device, :func:`normalize_batch`), else normalised float frames."""
        if self.transform.preprocess is None:
            return dict(zip(("frames", "affine"), self.transform.split(raw)))
        return {"frames": self.transform(raw)}

    def frames_read(self, items: list[Item]) -> dict[str, list[int]]:
        """Per video id, every frame index these items read (sampling is deterministic: bin centres)."""
        self._record = {}
        try:
            for it in items:
                self[(it, 0)]
            return {k: sorted(v) for k, v in self._record.items()}
        finally:
            self._record = None

    def read_preprocessed(self, rec: VideoRecord, indices: list[int]) -> torch.Tensor:
        """Frames ``indices`` of ``rec``, decoded and preprocessed without augmentation: ``[n, 3, H, W]``."""
        return self._eval_transform(self._video(rec).source.get(indices))

    def __getitem__(self, key: tuple[Item, int]) -> dict[str, Any]:
        item, seed = key
        rec = self.manifest.videos[item.video]
        cfg = self.levels[item.level]
        rng = random.Random(seed)
        if item.level == "clip":
            seg = rec.clips[item.segment]
            texts = list(seg.texts[: self.max_texts])
            return {"level": "clip", **self._frames(rec, seg.start, seg.end, cfg.frames, seed), "texts": texts}
        if item.level == "phase":
            seg = rec.phases[item.segment]
            kids = [c.texts[0] for c in rec.clips if seg.start <= (c.start + c.end) / 2 < seg.end]
            return {"level": "phase", **self._frames(rec, seg.start, seg.end, cfg.frames, seed),
                    "parent": seg.text, "children": _spread(kids, self.max_children) or [seg.text]}
        start, end = rec.span or (0.0, rec.duration or self._video(rec).duration)
        kids = [p.text for p in rec.phases if p.text.strip()]
        return {"level": "video", **self._frames(rec, start, end, cfg.frames, seed),
                "parent": rng.choice(rec.texts), "children": _spread(kids, self.max_children) or [rec.texts[0]],
                **self._sentences(rec, start, end, cfg.frames)}

    def _sentences(self, rec: VideoRecord, start: float, end: float, num: int) -> dict[str, Any]:
        """A whole-video sample's clip sentences, their spans and the sampled frames' times: what the temporal
        contrastive loss needs to pair each sentence with the frames nearest it in time."""
        clips = _spread([c for c in rec.clips if start <= (c.start + c.end) / 2 < end], MAX_SENTENCES)
        video = self._video(rec)
        times = [video.time_of(i) for i in video.indices(start, end, num=num)]
        return {"sentences": [c.texts[0] for c in clips],
                "sentence_spans": torch.tensor([[c.start, c.end] for c in clips], dtype=torch.float32).view(-1, 2),
                "frame_times": torch.tensor(times, dtype=torch.float32)}


def _pad(lists: list[list[str]]) -> tuple[list[list[str]], torch.Tensor]:
    k = max(len(x) for x in lists)
    mask = torch.tensor([[i < len(x) for i in range(k)] for x in lists], dtype=torch.bool)
    return [x + [""] * (k - len(x)) for x in lists], mask


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """``torch.stack``; in a loader worker straight into shared memory, as torch's default_collate
    does: the batch then reaches the main process without another copy (a 224² clip batch is 77 MB)."""
    if get_worker_info() is None:
        return torch.stack(tensors)
    first = tensors[0]
    storage = first.untyped_storage()._new_shared(len(tensors) * first.nbytes, device=first.device)
    out = first.new_empty(0).set_(storage).view(len(tensors), *first.shape)
    return torch.stack(tensors, out=out)


def collate(samples: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Group by level: ``{level: {frames [B,T,C,H,W] (8-bit with ``affine`` [B,3,2], see :func:`normalize_batch`,
    or float), texts/children (padded) + masks, parent}}``; the video level also ``sentences`` (padded) +
    ``sentence_mask``, ``sentence_spans [B,K,2]`` and ``frame_times [B,T]`` (seconds)."""
    out: dict[str, dict[str, Any]] = {}
    for lv in LEVELS:
        group = [s for s in samples if s["level"] == lv]
        if not group:
            continue
        b: dict[str, Any] = {"frames": _stack([s["frames"] for s in group])}
        if "affine" in group[0]:
            b["affine"] = torch.stack([s["affine"] for s in group])
        if "keypoints" in group[0]:
            b["keypoints"] = torch.stack([s["keypoints"] for s in group])
            b["keypoint_mask"] = torch.stack([s["keypoint_mask"] for s in group])
        if lv == "clip":
            b["texts"], b["text_mask"] = _pad([s["texts"] for s in group])
        else:
            b["parent"] = [s["parent"] for s in group]
            b["children"], b["child_mask"] = _pad([s["children"] for s in group])
        if "sentences" in group[0]:  # whole videos: clip sentences with their spans, frames with their times
            b["sentences"], b["sentence_mask"] = _pad([s["sentences"] for s in group])
            spans = torch.zeros(len(group), b["sentence_mask"].shape[1], 2)
            for i, s in enumerate(group):
                spans[i, :len(s["sentence_spans"])] = s["sentence_spans"]
            b["sentence_spans"], b["frame_times"] = spans, torch.stack([s["frame_times"] for s in group])
        out[lv] = b
    return out
