"""What ``hvl adapt --config`` reads: a zero-shot config (the test set, prompt file, level, fps, window) with an
optional ``adapt:`` block (training videos, head, optimiser). Any ``hvl zeroshot`` recipe works as it is."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ...data.records import DatasetSpec
from ..zeroshot.config import ZeroShotConfig

__all__ = ["AdaptConfig", "AdaptOptions"]


class AdaptOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    train: DatasetSpec | None = Field(None, description="labelled training videos (--train overrides)")
    method: Literal["linear", "temporal"] = "linear"
    steps: int | None = Field(None, ge=0, description="optimiser steps (default: linear 300, temporal 100)")
    lr: float = Field(1e-3, gt=0)
    prior: float = Field(10.0, ge=0, description="linear: pull towards the prompt embeddings, in labelled frames' "
                                                 "worth (loss + prior / n * ||W - W_prompts||^2)")
    smooth: float = Field(0.15, ge=0, description="temporal: MS-TCN smoothing loss weight")
    weight_decay: float = Field(1e-4, ge=0, description="temporal: AdamW weight decay")
    stages: int = Field(2, ge=1)
    layers: int = Field(8, ge=1, description="temporal: dilated layers per stage (dilations 1, 2, 4, ...)")
    channels: int = Field(64, ge=1)
    dropout: float = Field(0.3, ge=0, lt=1)
    causal: bool = Field(False, description="temporal: each frame sees only the past (online use)")
    feature_cache: str | None = Field("data/feature_cache", description="frame features of the training videos "
                                                                        "(None: not cached)")


class AdaptConfig(ZeroShotConfig):
    adapt: AdaptOptions = Field(default_factory=AdaptOptions)
