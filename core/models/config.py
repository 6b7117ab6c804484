"""Typed settings of :class:`~hvl.core.models.module.HierarchicalVLM`'s nested arguments (``model.text_encoder``,
``model.video_encoder``, ``model.loss_weights``; ``model.finegrained`` and ``model.backbone`` are typed by
:class:`~hvl.core.models.finegrained.FineGrainedConfig` and :class:`~hvl.core.models.backbones.BackboneOptions`).

Typed, LightningCLI validates a recipe's values before anything is built and ``hvl fit --print_config`` lists every
field. A checkpoint's hyperparameters and Python callers give plain dicts: :func:`as_config` turns those into these
classes (an unknown key is a ``TypeError``, as it was when the dict went straight to the encoder), and
:func:`as_plain` turns them back into the dicts, lists and numbers a checkpoint stores (loadable with
``torch.load(weights_only=True)``). The defaults are the encoders' own (:mod:`hvl.core.models.encoders`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from ..errors import HVLInputError
from .encoders import FRAME_ENCODERS

__all__ = ["FrameEncoderConfig", "HFVisionConfig", "LossWeights", "PoseStreamConfig", "SmallCNNConfig", "TemporalLossConfig",
           "TextEncoderConfig", "VideoEncoderConfig", "as_config", "as_plain", "frame_encoder_config"]

T = TypeVar("T")


@dataclass
class TextEncoderConfig:
    """``model.text_encoder``: a local HF text model, mean-pooled (:class:`~hvl.core.models.encoders.TextEncoder`).

    Args:
        path: model directory; null = the packaged all-MiniLM-L6-v2
        freeze: frozen text embeddings are computed once per text and cached
        max_length: tokens kept per text
        trust_remote_code: run code shipped with the model (never switched on by a checkpoint)
    """

    path: str | None = None
    freeze: bool = True
    max_length: int = 64
    trust_remote_code: bool = False


@dataclass
class SmallCNNConfig:
    """``frame_encoder`` ``name: small_cnn``: a small CNN trained from scratch
    (:class:`~hvl.core.models.encoders.SmallCNN`).

    Args:
        name: small_cnn
        widths: channels of each stage
        convs_per_stage: 3x3 convolutions per stage
        in_channels: channels of the input frames
        grid: > 0: pool to grid x grid cells and concatenate them (keeps where things are)
    """

    name: Literal["small_cnn"] = "small_cnn"
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    convs_per_stage: int = 1
    in_channels: int = 3
    grid: int = 0


@dataclass
class HFVisionConfig:
    """``frame_encoder`` ``name: hf``: a transformers vision model (:class:`~hvl.core.models.encoders.HFVisionEncoder`).

    Args:
        name: hf
        path: a local model directory (its preprocessor_config.json sets resize / crop / mean / std)
        config: a model config to build with random weights instead of path
        trust_remote_code: run code shipped with the model (never switched on by a checkpoint)
    """

    name: Literal["hf"] = "hf"
    path: str | None = None
    config: dict[str, Any] | None = None
    trust_remote_code: bool = False


FrameEncoderConfig = SmallCNNConfig | HFVisionConfig
_FRAME_CONFIGS: dict[str, type] = {"small_cnn": SmallCNNConfig, "hf": HFVisionConfig}


def frame_encoder_config(value: FrameEncoderConfig | dict[str, Any] | None) -> FrameEncoderConfig | None:
    """A frame encoder's settings, chosen by ``name`` (default ``small_cnn``); None or ``{}``: not set."""
    if not isinstance(value, dict):
        return value
    if not value:
        return None
    name = value.get("name", "small_cnn")
    if name not in _FRAME_CONFIGS:
        raise ValueError(f"frame_encoder.name '{name}' is unknown; choose one of {sorted(FRAME_ENCODERS)}")
    return _FRAME_CONFIGS[name](**value)


@dataclass
class VideoEncoderConfig:
    """``model.video_encoder``: a frame encoder applied per frame, then temporal pooling
    (:class:`~hvl.core.models.encoders.VideoEncoder`).

    Args:
        frame_encoder: small_cnn (from scratch) or hf (a pretrained vision model); null = small_cnn's defaults, or
            the backbone's image tower when model.backbone is set
        temporal: mean (HecVL, CLIP4Clip's meanP), transformer (seqTransf, full attention over at most 128 frames)
            or windowed (LF-VILA's windows growing with depth, rotary positions: any length, memory linear in it);
            the two with attention start at zero: step 0 = mean
        temporal_layers: transformer layers (temporal: transformer), layers per window (temporal: windowed)
        temporal_heads: attention heads (temporal: transformer or windowed)
        temporal_windows: frames a frame attends to on either side, one stage per entry (temporal: windowed)
    """

    frame_encoder: FrameEncoderConfig | None = None
    temporal: Literal["mean", "transformer", "windowed"] = "mean"
    temporal_layers: int = 1
    temporal_heads: int = 4
    temporal_windows: list[int] = field(default_factory=lambda: [2, 4, 8, 16, 32])

    def __post_init__(self) -> None:
        self.frame_encoder = frame_encoder_config(self.frame_encoder)

    def encoder_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~hvl.core.models.encoders.VideoEncoder` (without ``frames``)."""
        return {"frame_encoder": as_plain(self.frame_encoder), "temporal": self.temporal,
                "temporal_layers": self.temporal_layers, "temporal_heads": self.temporal_heads,
                "temporal_windows": list(self.temporal_windows)}


@dataclass
class PoseStreamConfig:
    """``model.pose``: a keypoint stream (:mod:`hvl.core.models.pose`) beside or instead of the RGB frames; unset =
    RGB only. Its per-frame embeddings feed the same levels, heads and losses as the RGB encoder's.

    Args:
        streams: fused (RGB and pose, fused per frame) or pose (keypoints only; no frame encoder is built)
        reader: the domain whose keypoint reader loads each manifest row's poses (e.g. sign: its ``pose`` field)
        points: keypoints per frame, as the reader gives them (sign: 8 body + 42 hand)
        channels: numbers per keypoint (sign: x, y)
        dim: width of the pose encoder and of the fused per-frame features
        layers: transformer layers over the frames (0 = per-frame features only)
        heads: attention heads
        fusion: gated (a learned per-frame, per-channel mix of the two streams) or concat (concatenation, then a
            linear layer)
        stream_loss: > 0 adds the losses of the pose-only and RGB-only embeddings beside the fused one, each with
            this weight (SEDS: 1); fused models only
    """

    streams: Literal["fused", "pose"] = "fused"
    reader: str = "sign"
    points: int = 50
    channels: int = 2
    dim: int = 128
    layers: int = 2
    heads: int = 4
    fusion: Literal["gated", "concat"] = "gated"
    stream_loss: float = 0.0

    def __post_init__(self) -> None:
        if min(self.points, self.channels, self.dim, self.heads) < 1 or self.layers < 0 or self.dim % self.heads:
            raise HVLInputError(f"model.pose: points ({self.points}), channels ({self.channels}), dim ({self.dim}) "
                                f"and heads ({self.heads}) must be ≥ 1, layers ({self.layers}) ≥ 0 and dim a "
                                "multiple of heads, e.g. {points: 50, channels: 2, dim: 128, layers: 2, heads: 4}")
        if self.stream_loss < 0 or (self.stream_loss and self.streams != "fused"):
            raise HVLInputError(f"model.pose.stream_loss ({self.stream_loss}) weighs the per-stream losses of a fused "
                                "model: ≥ 0, and 0 unless streams is 'fused'")


@dataclass
class LossWeights:
    """``model.loss_weights``: how each level's loss counts in the step's loss (a weighted mean over the levels
    the step trains).

    Args:
        clip: weight of the clip level
        phase: weight of the phase level
        video: weight of the video level
        temporal: weight of the temporal contrastive term on video-level batches (0 = off; LF-VILA: 0.25), with
            model.temporal_loss's settings
    """

    clip: float = 1.0
    phase: float = 1.0
    video: float = 1.0
    temporal: float = 0.0


@dataclass
class TemporalLossConfig:
    """``model.temporal_loss``: the temporal contrastive term (:func:`~hvl.core.models.losses.temporal_nce`), on
    when ``model.loss_weights.temporal`` > 0: chunks of a video-level sample's frames against the sentences of
    the video's clips, each sentence's positive the chunk nearest to it in time, in the clip level's space.

    Args:
        temperature: fixed softmax temperature (LF-VILA: 0.05)
        chunk_frames: consecutive frames of the video-level sample pooled into one chunk (LF-VILA: 8)
    """

    temperature: float = 0.05
    chunk_frames: int = 8

    def __post_init__(self) -> None:
        if self.temperature <= 0 or self.chunk_frames < 1:
            raise HVLInputError(f"model.temporal_loss: temperature ({self.temperature}) must be > 0 and chunk_frames "
                                f"({self.chunk_frames}) ≥ 1, e.g. {{temperature: 0.05, chunk_frames: 8}}")


def as_config(cls: type[T], value: T | dict[str, Any] | None) -> T | None:
    """``value`` as ``cls`` (a dict's keys become its fields); None and ``{}`` stay "not set" (None)."""
    if value is None or isinstance(value, cls):
        return value
    if isinstance(value, dict) and not value:
        return None
    if issubclass(cls, BaseModel):
        return cls.model_validate(value)
    return cls(**value)


def as_plain(value: Any) -> Any:
    """Settings as a checkpoint stores them: dataclasses and pydantic models become dicts, all the way down."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: as_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_plain(v) for v in value]
    return value
