"""Training on a frozen frame encoder's features: every frame the level schedule reads is encoded once into a
:class:`~.cache.FeatureCache` (``data.feature_cache``), and the dataset then serves those features instead of
decoding video."""
from __future__ import annotations

from typing import Any

import torch

from ..errors import HVLInputError
from .cache import FeatureCache
from .dataset import Augment, HierarchicalDataset
from .levels import Item
from .transforms import Preprocess

__all__ = ["attach_frozen_features"]


def attach_frozen_features(ds: HierarchicalDataset, items: dict[str, list[Item]], root: str, preprocess: Preprocess,
                           augment: Augment | None, trainer: Any = None, rank: int = 0, world: int = 1) -> None:
    """Encode (once) every frame the schedule reads with the model's frozen frame encoder; the dataset then
    serves those features. Each rank builds every ``world``-th video, then all wait for the whole cache."""
    model = getattr(trainer, "lightning_module", None) if trainer else None
    frozen = getattr(model, "frozen_frame_encoder", None)
    enc = frozen() if callable(frozen) else None
    if enc is None:
        raise HVLInputError("data.feature_cache is set but the model's frame encoder trains (features would go "
                            "stale): freeze it (model.backbone.image_unlocked: 0) or drop data.feature_cache")
    if augment is not None:
        raise HVLInputError("data.feature_cache caches features of unaugmented frames: set data.augment: false, "
                            "or drop data.feature_cache to decode (and augment) every step")
    fingerprint, module = enc
    cache = FeatureCache(root, fingerprint, preprocess.model_dump(mode="json"))
    needed = ds.frames_read([it for lv in items.values() for it in lv])
    recs = {r.video_id: r for r in ds.manifest.videos}
    mine = {v: (recs[v], idx) for k, (v, idx) in enumerate(sorted(needed.items())) if k % world == rank}
    device = torch.device("cpu")
    if trainer is not None:  # encode where training will run (Lightning moves the model there anyway)
        device = trainer.strategy.root_device
        model.to(device)
    cache.build(mine, ds.read_preprocessed, lambda x: module(x.to(device)), progress=rank == 0)
    if trainer is not None and world > 1:
        trainer.strategy.barrier("feature_cache")
    ds.features = cache
    ds._readers = None  # decoders opened here must not be inherited by the loader workers
