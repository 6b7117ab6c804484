"""The LightningDataModule: manifests → one loader per stage, each step carrying the levels its schedule asks for.

Its parts live beside it: the levels and their sampling settings (:mod:`.levels`), the Dataset, its augmentation
and :func:`collate` (:mod:`.dataset`), the level-schedule batch sampler that also shards across DDP ranks
(:mod:`.sampler`; recipes set ``trainer.use_distributed_sampler: false``), the setup-time video check and what it
logs to the run (:mod:`.video_check`), and training on a frozen encoder's cached features
(:mod:`.frozen_features`). ``level_dataloader`` gives one level alone.
"""
from __future__ import annotations

from typing import Any, Literal, NamedTuple

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from ..errors import HVLInputError
from .dataset import Augment, HierarchicalDataset, augment_config, collate
from .frozen_features import attach_frozen_features
from .keypoints import KeypointReader
from .levels import DEFAULT_SCHEDULE, LEVELS, Item, LevelConfig, build_items
from .sampler import LevelScheduleSampler
from .schema import load_manifest
from .transforms import Preprocess
from .video_check import VideoCheck

# The names this module held before its parts moved out: recipes, scripts and notebooks import them from here.
__all__ = ["DEFAULT_SCHEDULE", "LEVELS", "Augment", "HVLDataModule", "HierarchicalDataset", "Item", "LevelConfig",
           "LevelScheduleSampler", "Split", "augment_config", "build_items", "collate"]


class Split(NamedTuple):
    """A manifest made trainable: its dataset, and per level the items the sampler draws from."""

    dataset: HierarchicalDataset
    items: dict[str, list[Item]]


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
                 video_backend: Literal["auto", "decord", "pyav"] = "auto", feature_cache: str | None = None,
                 test: str | None = None):
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
        those features instead of decoding video. Needs ``augment: false`` (features of unaugmented frames).
        ``test``: the manifest ``hvl test`` scores, loaded as ``val`` is (every level each step, no augmentation)."""
        super().__init__()
        self.save_hyperparameters()
        raw = DEFAULT_SCHEDULE if schedule is None else schedule
        unknown = set(raw) - set(LEVELS)
        if unknown:
            raise HVLInputError(f"data.schedule: unknown level(s) {sorted(unknown)}; use {list(LEVELS)}")
        self.levels = {lv: LevelConfig(**raw[lv]) for lv in LEVELS if lv in raw}
        self.augment = augment_config(augment)
        self._check = VideoCheck(on_bad_video, video_backend)

    @property
    def preprocess(self) -> Preprocess:
        """The model's own preprocessing when it starts from a pretrained backbone, else ``image_size``² squares."""
        model = getattr(self.trainer, "lightning_module", None) if self.trainer else None
        pre = getattr(model, "preprocess", None)
        return pre if pre is not None else Preprocess.square(self.hparams.image_size)

    @property
    def keypoints(self) -> KeypointReader | None:
        """The keypoint reader of a pose-aware model (its ``pose.reader``), else None: samples carry frames only."""
        model = getattr(self.trainer, "lightning_module", None) if self.trainer else None
        return getattr(model, "keypoint_reader", None)

    def setup(self, stage: str | None = None) -> None:
        rank = self.trainer.global_rank if self.trainer else 0
        world = self.trainer.world_size if self.trainer else 1
        h = self.hparams
        self._dist = (rank, world)
        self._tell_ddp_about_skipped_levels()
        if stage in (None, "fit"):
            self.train_split = self._split(h.train, augment=self.augment)
        if h.val and stage in (None, "fit", "validate"):
            self.val_split = self._split(h.val, augment=None)
        if stage == "test":
            if not h.test:
                raise HVLInputError("hvl test scores the config's test manifest, and this config has none: set "
                                    "data.init_args.test in the recipe, or pass --data.init_args.test <test.jsonl>")
            self.test_split = self._split(h.test, augment=None)

    def _tell_ddp_about_skipped_levels(self) -> None:
        """A level trained every N > 1 steps is missing from the other steps, and so are its heads' gradients.
        DDP then stops at the next step (it waits for gradients that never come) unless it is told to look for
        unused parameters. Set here, before the strategy wraps the model, so ``--trainer.strategy ddp`` is
        enough; gradients of skipped heads stay None, exactly as on one device."""
        strategy = getattr(self.trainer, "strategy", None)
        kwargs = getattr(strategy, "_ddp_kwargs", None)  # Lightning's DDPStrategy keeps DDP's arguments here
        if isinstance(kwargs, dict) and any(cfg.every > 1 for cfg in self.levels.values()):
            kwargs.setdefault("find_unused_parameters", True)

    @property
    def probe(self) -> dict[str, list[dict[str, Any]]]:
        """Per manifest, what the setup-time check saw in each video (``data/video_probe.json`` in the run)."""
        return self._check.probe

    @property
    def skipped(self) -> list[dict[str, str]]:
        """The videos ``on_bad_video: skip`` left out, and why (``data/skipped_videos.json`` in the run)."""
        return self._check.skipped

    def _split(self, path: str, augment: Augment | None) -> Split:
        """A manifest's dataset (its unusable videos checked for first) and its items per level."""
        h = self.hparams
        m = self._check(load_manifest(path), self.preprocess.decode_size, self.trainer)
        ds = HierarchicalDataset(m, self.levels, h.image_size, augment=augment, max_texts=h.max_texts,
                                 max_children=h.max_children, video_backend=h.video_backend, preprocess=self.preprocess,
                                 keypoints=self.keypoints)
        items = build_items(m, self.levels)
        if h.feature_cache:
            rank, world = self._dist
            attach_frozen_features(ds, items, h.feature_cache, self.preprocess, augment, self.trainer, rank, world)
        return Split(ds, items)

    def _loader(self, data: Split, train: bool, only: str | None = None) -> DataLoader:
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
        return self._loader(self.train_split, train=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.val_split, train=False) if self.hparams.val else []

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_split, train=False)

    def level_dataloader(self, level: str, split: str = "train") -> DataLoader:
        """One level's samples alone, every step (e.g. to inspect a level or train it by itself)."""
        data = self.train_split if split == "train" else self.val_split
        return self._loader(data, train=split == "train", only=level)
