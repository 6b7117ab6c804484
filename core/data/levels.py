"""The three levels of the hierarchy (clip / phase / video): how each is sampled (:class:`LevelConfig`, a recipe's
``data.schedule``) and which samples of a manifest each can train on (:class:`Item`, :func:`build_items`)."""
from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from ..errors import HVLInputError
from .schema import Manifest

__all__ = ["DEFAULT_SCHEDULE", "LEVELS", "Item", "LevelConfig", "build_items"]

LEVELS = ("clip", "phase", "video")


class LevelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    frames: int = Field(4, ge=1, description="frames sampled uniformly from the segment")
    batch_size: int = Field(16, ge=2, description="per device; contrastive learning needs ≥ 2")
    every: int = Field(1, ge=1, description="train this level every N steps (1 = every step)")
    per_video: int = Field(1, ge=1, description="samples of one video kept together in a batch: hard negatives "
                           "that share the video's look, so texts must be told apart by what happens")


DEFAULT_SCHEDULE = {"clip": {"frames": 4, "batch_size": 32, "every": 1},
                  "phase": {"frames": 8, "batch_size": 16, "every": 3},
                  "video": {"frames": 16, "batch_size": 8, "every": 5}}


@dataclass(frozen=True)
class Item:
    """One trainable sample: a level, a video (its index in the manifest) and a segment of it."""

    level: str
    video: int
    segment: int


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
