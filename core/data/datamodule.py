"""Hierarchical samples (clip / phase / video) and the DataModule that feeds them.

One DataLoader serves all levels (``level_dataloader`` gives one level alone): a batch sampler follows the level schedule
(e.g. clip every step, phase every 3rd, video every 5th) and yields, per step, the
keys of exactly the levels trained at that step, so nothing is decoded that the
step does not use. It also shards across DDP ranks itself (same batch shape on
every rank, as gathered negatives require), so recipes set
``trainer.use_distributed_sampler: false``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np
import pytorch_lightning as pl
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from ..errors import HVLInputError, format_validation_error
from .datasets import format_probe_table, probe_videos
from .schema import Manifest, VideoRecord, load_manifest
from .cache import FeatureCache
from .transforms import FrameTransform, Preprocess
from .video import ReaderCache

LEVELS = ("clip", "phase", "video")


class LevelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    frames: int = Field(4, ge=1, description="frames sampled uniformly from the segment")
    batch_size: int = Field(16, ge=2, description="per device; contrastive learning needs ≥ 2")
    every: int = Field(1, ge=1, description="train this level every N steps (1 = every step)")
    per_video: int = Field(1, ge=1, description="samples of one video kept together in a batch: hard negatives "
                           "that share the video's look, so texts must be told apart by what happens")


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


DEFAULT_SCHEDULE = {"clip": {"frames": 4, "batch_size": 32, "every": 1},
                  "phase": {"frames": 8, "batch_size": 16, "every": 3},
                  "video": {"frames": 16, "batch_size": 8, "every": 5}}


@dataclass(frozen=True)
class Item:
    level: str
    video: int
    segment: int


def _spread(items: list[Any], k: int) -> list[Any]:
    """At most ``k`` items, evenly spaced (children should cover the whole parent)."""
    if len(items) <= k:
        return items
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)] if k > 1 else items[:1]


def build_items(manifest: Manifest, levels: dict[str, LevelConfig]) -> dict[str, list[Item]]:
    """Every trainable sample per level; segments without text have nothing to pair with and are left out."""
    out: dict[str, list[Item]] = {lv: [] for lv in levels}
    for vi, rec in enumerate(manifest.videos):
        if "clip" in out:
            out["clip"] += [Item("clip", vi, si) for si in range(len(rec.clips))]
        if "phase" in out:
            out["phase"] += [Item("phase", vi, si) for si, p in enumerate(rec.phases) if p.text.strip()]
        if "video" in out and rec.texts:
            out["video"].append(Item("video", vi, 0))
    for lv, items in out.items():
        if len(items) < 2:
            raise HVLInputError(f"{manifest.file}: level '{lv}' has {len(items)} samples with text; "
                                f"contrastive training needs ≥ 2 — add texts or drop '{lv}' from data.schedule")
    return out


class HierarchicalDataset(Dataset):
    """``dataset[(Item, seed)]`` → one sample of its level: frames plus the texts it pairs with."""

    def __init__(self, manifest: Manifest, levels: dict[str, LevelConfig], image_size: int = 64,
                 augment: Augment | None = None, max_texts: int = 2, max_children: int = 4, reader_cache: int = 1,
                 preprocess: Preprocess | None = None, video_backend: str = "auto"):
        """``augment``: training-time augmentation settings; ``None`` (validation) = none. ``preprocess``: a
        pretrained model's frame preprocessing (default: squash to ``image_size``², ImageNet mean/std)."""
        self.video_backend = video_backend
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
        if self.features is not None:  # a frozen frame encoder's features instead of pixels: [T, D]
            return {"frames": self.features.get(rec.video_id, idx)}
        raw = self._video(rec).source.get(idx)
        self.transform.set_random_state(seed)
        return self._transform(raw)

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
                "parent": rng.choice(rec.texts), "children": _spread(kids, self.max_children) or [rec.texts[0]]}


def _pad(lists: list[list[str]]) -> tuple[list[list[str]], torch.Tensor]:
    k = max(len(x) for x in lists)
    mask = torch.tensor([[i < len(x) for i in range(k)] for x in lists])
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
    or float), texts/children (padded) + masks, parent}}``."""
    out: dict[str, dict[str, Any]] = {}
    for lv in LEVELS:
        group = [s for s in samples if s["level"] == lv]
        if not group:
            continue
        b: dict[str, Any] = {"frames": _stack([s["frames"] for s in group])}
        if "affine" in group[0]:
            b["affine"] = torch.stack([s["affine"] for s in group])
        if lv == "clip":
            b["texts"], b["text_mask"] = _pad([s["texts"] for s in group])
        else:
            b["parent"] = [s["parent"] for s in group]
            b["children"], b["child_mask"] = _pad([s["children"] for s in group])
        out[lv] = b
    return out


class LevelScheduleSampler(Sampler[list[tuple[Item, int]]]):
    """Yields one step's keys: for each level due at this step, ``batch_size`` items of this rank's shard.

    Each level walks its own seeded permutation (reshuffled when exhausted), shared by all
    ranks; rank ``r`` takes slice ``r`` of each global batch (one sample per rank is allowed: the
    losses gather across ranks). The epoch length is set by the
    most frequent level's data (or ``steps_per_epoch``).
    """

    def __init__(self, items: dict[str, list[Item]], levels: dict[str, LevelConfig], shuffle: bool = True,
                 seed: int = 0, rank: int = 0, world_size: int = 1, steps_per_epoch: int | None = None):
        self.items, self.shuffle, self.seed = items, shuffle, seed
        self.rank, self.world = rank, world_size
        # The losses gather every rank's embeddings, so the contrastive batch is the global one: it needs
        # >= 2 samples in all, and on several devices one per device is enough (the demos' 2-video
        # validation sets on 2 devices). Every rank takes the same share, as the gather requires.
        self.batch = {lv: min(cfg.batch_size, len(items[lv]) // world_size) for lv, cfg in levels.items()}
        for lv, b in self.batch.items():
            if b < 1 or b * world_size < 2:
                raise HVLInputError(f"level '{lv}' has {len(items[lv])} sample(s) for {world_size} device(s): a "
                                    f"contrastive batch needs >= 2 in all and >= 1 per device; add data or "
                                    "train on fewer devices")
        self.every = {lv: cfg.every for lv, cfg in levels.items()}
        self.per_video = {lv: cfg.per_video for lv, cfg in levels.items()}
        lead = min(self.every, key=lambda lv: (self.every[lv], -len(items[lv])))
        self.steps = steps_per_epoch or max(1, len(items[lead]) // (self.batch[lead] * world_size))
        self.epoch, self._skip = 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def sampler(self) -> LevelScheduleSampler:
        # Lightning calls ``set_epoch`` on ``batch_sampler.sampler``, never on the batch sampler itself.
        return self

    def resume(self, epoch: int, steps_done: int) -> None:
        """The next pass continues ``epoch`` after its first ``steps_done`` steps (same batches, same
        augmentation seeds as the interrupted run); a finished epoch continues with the next one."""
        if steps_done >= self.steps:
            self.epoch, self._skip = epoch + 1, 0
        else:
            self.epoch, self._skip = epoch, max(0, steps_done)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[tuple[Item, int]]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = {lv: self._perm(rng, lv) for lv in self.items}
        pos = {lv: 0 for lv in self.items}
        global_step0 = self.epoch * self.steps
        skip, self._skip = self._skip, 0
        for s in range(self.steps):
            keys: list[tuple[Item, int]] = []
            for lv in self.items:
                if (global_step0 + s) % self.every[lv]:
                    continue
                need = self.batch[lv] * self.world
                if pos[lv] + need > len(order[lv]):
                    order[lv], pos[lv] = self._perm(rng, lv), 0
                chunk = order[lv][pos[lv]: pos[lv] + need]
                pos[lv] += need
                seeds = rng.integers(0, 2**31 - 1, size=need)  # drawn for all ranks: identical streams
                mine = slice(self.rank * self.batch[lv], (self.rank + 1) * self.batch[lv])
                # Sorted by video so a worker reads each video's samples back to back (reader reuse).
                keys += sorted(((self.items[lv][i], int(sd)) for i, sd in zip(chunk[mine], seeds[mine])),
                               key=lambda k: (k[0].video, k[0].segment))
            if keys and s >= skip:  # skipped steps still draw their random numbers: the stream stays the same
                yield keys

    def _perm(self, rng: np.random.Generator, lv: str) -> np.ndarray:
        n, g = len(self.items[lv]), self.per_video[lv]
        if not self.shuffle:
            return np.arange(n)
        if g == 1:
            return rng.permutation(n)
        by_video: dict[int, list[int]] = {}
        for i in rng.permutation(n):
            by_video.setdefault(self.items[lv][i].video, []).append(int(i))
        groups = [ix[j:j + g] for ix in by_video.values() for j in range(0, len(ix), g)]
        return np.array([i for k in rng.permutation(len(groups)) for i in groups[k]], dtype=np.int64)


class _ResumableLoader(DataLoader):
    """Tells Lightning the train loader can resume mid-epoch (so it does not warn that it cannot).

    The position itself travels with the DataModule (:meth:`HVLDataModule.state_dict`): Lightning
    restores a DataModule before it first iterates the loader, but a loader's own state only
    afterwards, once ``configure_optimizers`` has asked for ``estimated_stepping_batches``.
    """

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class HVLDataModule(pl.LightningDataModule):
    """Manifests → one loader per stage, each step carrying the levels its schedule asks for."""

    def __init__(self, train: str, val: str | None = None, schedule: dict[str, dict[str, int]] | None = None,
                 image_size: int = 64, num_workers: int = 2, max_texts: int = 2, max_children: int = 4,
                 steps_per_epoch: int | None = None, seed: int = 0, augment: bool | dict[str, Any] = True,
                 on_bad_video: Literal["error", "skip", "ignore"] = "error",
                 video_backend: Literal["auto", "decord", "pyav"] = "auto", feature_cache: str | None = None):
        """``on_bad_video``: every video is opened once at setup; an unusable one stops the run
        (``error``) or is left out and listed in ``data/skipped_videos.json`` in the MLflow run
        (``skip``). ``ignore`` skips the check (huge datasets already vetted). What the check saw
        (codec, size, rotation, frame rate, decoder per video) is printed as a table and stored as
        ``data/video_probe.json`` in the MLflow run.
        ``video_backend``: which decoder reads the videos; ``auto`` takes decord where it is
        frame-exact and PyAV for the rest (see :mod:`hvl.core.data.decoders`).
        ``augment``: ``true`` (mirror + brightness), ``false``, or the settings of :class:`Augment`.
        ``feature_cache``: a folder; when the model's frame encoder is frozen (``model.backbone.image_unlocked: 0``),
        the frames the schedule reads are encoded once into it (:mod:`hvl.core.data.cache`) and training reads
        those features instead of decoding video. Needs ``augment: false`` (features of unaugmented frames)."""
        super().__init__()
        self.save_hyperparameters()
        raw = DEFAULT_SCHEDULE if schedule is None else schedule
        unknown = set(raw) - set(LEVELS)
        if unknown:
            raise HVLInputError(f"data.schedule: unknown level(s) {sorted(unknown)}; use {list(LEVELS)}")
        self.levels = {lv: LevelConfig(**raw[lv]) for lv in LEVELS if lv in raw}
        self.augment = augment_config(augment)

    @property
    def preprocess(self) -> Preprocess:
        """The model's own preprocessing when it starts from a pretrained backbone, else ``image_size``² squares."""
        model = getattr(self.trainer, "lightning_module", None) if self.trainer else None
        pre = getattr(model, "preprocess", None)
        return pre if pre is not None else Preprocess.square(self.hparams.image_size)

    def setup(self, stage: str | None = None) -> None:
        rank = self.trainer.global_rank if self.trainer else 0
        world = self.trainer.world_size if self.trainer else 1
        h = self.hparams
        self._dist = (rank, world)
        self._tell_ddp_about_skipped_levels()
        if stage in (None, "fit"):
            self.train_set = self._dataset(h.train, augment=self.augment)
        if h.val and stage in (None, "fit", "validate"):
            self.val_set = self._dataset(h.val, augment=None)

    def _tell_ddp_about_skipped_levels(self) -> None:
        """A level trained every N > 1 steps is missing from the other steps, and so are its heads' gradients.
        DDP then stops at the next step (it waits for gradients that never come) unless it is told to look for
        unused parameters. Set here, before the strategy wraps the model, so ``--trainer.strategy ddp`` is
        enough; gradients of skipped heads stay None, exactly as on one device."""
        strategy = getattr(self.trainer, "strategy", None)
        kwargs = getattr(strategy, "_ddp_kwargs", None)  # Lightning's DDPStrategy keeps DDP's arguments here
        if isinstance(kwargs, dict) and any(cfg.every > 1 for cfg in self.levels.values()):
            kwargs.setdefault("find_unused_parameters", True)

    def _dataset(self, path: str, augment: Augment | None) -> tuple[HierarchicalDataset, dict[str, list[Item]]]:
        m = load_manifest(path)
        h = self.hparams
        if h.on_bad_video != "ignore":
            report: list[dict[str, Any]] = []
            good, bad = probe_videos(m, h.video_backend, self.preprocess.decode_size, report)
            self._report_probe(m.file, report)
            if bad and self.hparams.on_bad_video == "error":
                b = bad[0]
                raise HVLInputError(f"{m.file}: video '{b['video_id']}' ({b['path']}): {b['reason']}\n"
                                    f"{len(bad)} of {len(m.videos)} videos are unusable; fix or remove them, "
                                    "or set data.on_bad_video: skip to train without them (they are listed in the run)")
            if bad:
                self._report_skipped(m.file, bad)
                m = Manifest(file=m.file, videos=good)
        ds = HierarchicalDataset(m, self.levels, h.image_size, augment=augment, max_texts=h.max_texts,
                                 max_children=h.max_children, video_backend=h.video_backend, preprocess=self.preprocess)
        items = build_items(m, self.levels)
        if h.feature_cache:
            self._attach_features(ds, items, augment)
        return ds, items

    def _attach_features(self, ds: HierarchicalDataset, items: dict[str, list[Item]], augment: Augment | None) -> None:
        """Encode (once) every frame the schedule reads with the model's frozen frame encoder; the dataset then
        serves those features. Each rank builds every ``world``-th video, then all wait for the whole cache."""
        model = getattr(self.trainer, "lightning_module", None) if self.trainer else None
        frozen = getattr(model, "frozen_frame_encoder", None)
        enc = frozen() if callable(frozen) else None
        if enc is None:
            raise HVLInputError("data.feature_cache is set but the model's frame encoder trains (features would go "
                                "stale): freeze it (model.backbone.image_unlocked: 0) or drop data.feature_cache")
        if augment is not None:
            raise HVLInputError("data.feature_cache caches features of unaugmented frames: set data.augment: false, "
                                "or drop data.feature_cache to decode (and augment) every step")
        fingerprint, module = enc
        cache = FeatureCache(self.hparams.feature_cache, fingerprint, self.preprocess.model_dump(mode="json"))
        rank, world = self._dist
        needed = ds.frames_read([it for lv in items.values() for it in lv])
        recs = {r.video_id: r for r in ds.manifest.videos}
        mine = {v: (recs[v], idx) for k, (v, idx) in enumerate(sorted(needed.items())) if k % world == rank}
        device = torch.device("cpu")
        if self.trainer is not None:  # encode where training will run (Lightning moves the model there anyway)
            device = self.trainer.strategy.root_device
            model.to(device)
        cache.build(mine, ds.read_preprocessed, lambda x: module(x.to(device)), progress=rank == 0)
        if self.trainer is not None and world > 1:
            self.trainer.strategy.barrier("feature_cache")
        ds.features = cache
        ds._readers = None  # decoders opened here must not be inherited by the loader workers

    def _report_probe(self, manifest: Path, rows: list[dict[str, Any]]) -> None:
        """The probe's table in the log (rank 0; 40 lines at most) and every row in the MLflow run."""
        from pytorch_lightning.utilities import rank_zero_info

        self.probe = getattr(self, "probe", {})
        self.probe[str(manifest)] = rows
        rank_zero_info(f"videos of {manifest}:\n{format_probe_table(rows, limit=40)}")
        self._log_json({"manifests": self.probe}, "data/video_probe.json")

    def _log_json(self, obj: dict[str, Any], name: str) -> None:
        if self.trainer is None or self.trainer.global_rank != 0:
            return
        for logger in self.trainer.loggers:
            run_id = getattr(logger, "run_id", None)
            if run_id and hasattr(logger.experiment, "log_dict"):
                logger.experiment.log_dict(run_id, obj, name)

    def _report_skipped(self, manifest: Path, bad: list[dict[str, str]]) -> None:
        import warnings

        self.skipped = getattr(self, "skipped", []) + [{"manifest": str(manifest), **b} for b in bad]
        warnings.warn(f"{manifest}: skipping {len(bad)} unusable video(s): "
                      + ", ".join(b["video_id"] for b in bad[:10]), stacklevel=2)
        self._log_json({"skipped": self.skipped}, "data/skipped_videos.json")

    def _loader(self, data: tuple[HierarchicalDataset, dict[str, list[Item]]], train: bool,
                only: str | None = None) -> DataLoader:
        ds, items = data
        rank, world = self._dist
        levels = self.levels if train else {lv: c.model_copy(update={"every": 1}) for lv, c in self.levels.items()}
        if only is not None:
            if only not in levels:
                raise HVLInputError(f"level '{only}' is not in data.schedule {list(levels)}")
            levels = {only: levels[only].model_copy(update={"every": 1})}
            items = {only: items[only]}
        sampler = LevelScheduleSampler(items, levels, shuffle=train, seed=self.hparams.seed, rank=rank,
                                       world_size=world, steps_per_epoch=self.hparams.steps_per_epoch if train else None)
        nw = self.hparams.num_workers
        kw: dict[str, Any] = dict(batch_sampler=sampler, collate_fn=collate, num_workers=nw,
                                  persistent_workers=nw > 0, pin_memory=torch.cuda.is_available(),
                                  prefetch_factor=4 if nw > 0 else None)
        if train and only is None:
            self._train_sampler = sampler
            resume, self._resume = getattr(self, "_resume", None), None
            if resume:
                sampler.resume(int(resume["epoch"]), int(resume["steps_done"]))
            return _ResumableLoader(ds, **kw)
        return DataLoader(ds, **kw)

    def state_dict(self) -> dict[str, int]:
        """Where training stands in its epoch, saved in every checkpoint: a run resumed from a
        mid-epoch checkpoint trains exactly the batches the interrupted run had not."""
        sampler = getattr(self, "_train_sampler", None)
        if sampler is None or self.trainer is None:
            return {}
        # ``processed`` includes the step whose ``on_train_batch_end`` is saving this checkpoint.
        return {"epoch": sampler.epoch, "steps_done": self.trainer.fit_loop.epoch_loop.batch_progress.current.processed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = state or None

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.val_set, train=False) if self.hparams.val else []

    def level_dataloader(self, level: str, split: str = "train") -> DataLoader:
        """One level's samples alone, every step (e.g. to inspect a level or train it by itself)."""
        data = self.train_set if split == "train" else self.val_set
        return self._loader(data, train=split == "train", only=level)
