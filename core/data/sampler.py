"""The level-schedule batch sampler: which items of which levels each training step reads, on this rank.

One DataLoader serves all levels: the sampler follows the level schedule (e.g. clip every step, phase every 3rd,
video every 5th) and yields, per step, the keys of exactly the levels trained at that step, so nothing is decoded
that the step does not use. It also shards across DDP ranks itself (same batch shape on every rank, as gathered
negatives require), so recipes set ``trainer.use_distributed_sampler: false``.
"""
from __future__ import annotations

import heapq

from typing import Iterator

import numpy as np
from torch.utils.data import Sampler

from ..errors import HVLInputError
from .levels import Item, LevelConfig

__all__ = ["LevelScheduleSampler", "deal_by_duration"]


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


def deal_by_duration(durations: list[float], world: int) -> list[list[int]]:
    """Video indices (``hvl index``, ``hvl predict``) for each of ``world`` ranks: longest first, each to the rank with the least total so far
    (LPT scheduling: the busiest rank ends within the longest video of the mean). Deterministic, so every
    rank computes the same deal on its own."""
    ranks: list[list[int]] = [[] for _ in range(world)]
    heap = [(0.0, r) for r in range(world)]
    for i in sorted(range(len(durations)), key=lambda i: (-durations[i], i)):
        load, r = heapq.heappop(heap)
        ranks[r].append(i)
        heapq.heappush(heap, (load + durations[i], r))
    return [sorted(r) for r in ranks]
