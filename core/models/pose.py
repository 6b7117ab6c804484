"""The keypoint stream: a pose encoder, its per-frame fusion with the RGB stream, and the video encoder that holds
both (pose-only, RGB-only and fused models are configs: ``model.pose``, :class:`~.config.PoseStreamConfig`).

The pose encoder follows SignCLIP's shape (a transformer over flattened frames) rather than SEDS' hand-aware graph
or Uni-Sign's ST-GCN per body part: the keypoints arrive already normalised per body part (body in shoulder widths
around the neck, hands around their wrists), so a per-frame MLP over the flattened points sees each part in its own
frame, and it needs no skeleton graph, which keeps core free of any one pose layout. A point's mask is an input
beside its coordinates: a masked point reads as "not seen", never as a point at the origin.

:class:`MultiStreamVideo` has :class:`~.encoders.VideoEncoder`'s interface (``frame_features``, ``forward``,
``dim``), taking a :class:`Streams` instead of a frame tensor, so the module's levels, heads, fine-grained
similarity and losses run unchanged on either.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .config import PoseStreamConfig, VideoEncoderConfig
from .encoders import VideoEncoder

__all__ = ["MultiStreamVideo", "PoseEncoder", "StreamFusion", "Streams", "build_video_encoder"]


@dataclass
class Streams:
    """A batch's model input when a keypoint stream is on: ``rgb [B, T, C, H, W]`` (None: pose only),
    ``keypoints [B, T, P*C]`` and ``keypoint_mask [B, T, P]`` at the same frames."""

    rgb: Tensor | None
    keypoints: Tensor
    keypoint_mask: Tensor

    def to(self, device: torch.device | str) -> Streams:
        return Streams(None if self.rgb is None else self.rgb.to(device), self.keypoints.to(device),
                       self.keypoint_mask.to(device))

    @property
    def shape(self) -> torch.Size:
        """``[B, T]``: what callers of a frame tensor read its first two sizes for."""
        return self.keypoints.shape[:2]


def sinusoid_positions(length: int, dim: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """``[length, dim]`` fixed sine/cosine positions (any number of frames; nothing to outgrow)."""
    pos = torch.arange(length, dtype=torch.float32, device=device)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2], table[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq[: dim // 2])
    return table.to(dtype)


class PoseEncoder(nn.Module):
    """Keypoints ``[B, T, P*C]`` with their mask ``[B, T, P]`` → per-frame features ``[B, T, dim]``: a per-frame
    MLP over the masked points and the mask, then ``layers`` transformer layers over the frames."""

    def __init__(self, points: int, channels: int, dim: int = 128, layers: int = 2, heads: int = 4):
        super().__init__()
        self.points, self.channels, self.dim = points, channels, dim
        self.frame = nn.Sequential(nn.Linear(points * channels + points, dim), nn.GELU(), nn.Linear(dim, dim))
        self.temporal = None
        if layers:
            layer = nn.TransformerEncoderLayer(dim, heads, dim * 2, dropout=0.0, batch_first=True, norm_first=True)
            self.temporal = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, keypoints: Tensor, mask: Tensor) -> Tensor:
        b, t = keypoints.shape[:2]
        if keypoints.shape[2] != self.points * self.channels or mask.shape[2] != self.points:
            raise ValueError(f"keypoints {tuple(keypoints.shape)} / mask {tuple(mask.shape)} do not match the pose "
                             f"encoder's {self.points} points × {self.channels} channels (model.pose.points/channels)")
        m = mask.to(keypoints.dtype)
        x = keypoints.view(b, t, self.points, self.channels) * m[..., None]
        h = self.frame(torch.cat([x.flatten(2), m], dim=-1))
        if self.temporal is not None:
            h = self.temporal(h + sinusoid_positions(t, self.dim, h.device, h.dtype))
        return self.norm(h)


class StreamFusion(nn.Module):
    """Per-frame fusion of RGB ``[B, T, Dr]`` and pose ``[B, T, D]`` features into ``[B, T, D]``.

    ``gated``: both projected to ``D``, mixed per channel by a sigmoid gate read from both (a frame whose hands
    were missed can lean on its pixels, a blurred frame on its keypoints); ``concat``: a linear layer over both.
    Also returns each stream projected to ``D``, for the per-stream losses."""

    def __init__(self, rgb_dim: int, dim: int, kind: str = "gated"):
        super().__init__()
        if kind not in ("gated", "concat"):
            raise ValueError(f"fusion '{kind}' is unknown; use 'gated' or 'concat'")
        self.kind = kind
        self.rgb = nn.Linear(rgb_dim, dim)
        self.pose = nn.Linear(dim, dim)
        self.mix = nn.Linear(2 * dim, dim)

    def forward(self, rgb: Tensor, pose: Tensor) -> dict[str, Tensor]:
        r, p = self.rgb(rgb), self.pose(pose)
        both = torch.cat([r, p], dim=-1)
        if self.kind == "gated":
            g = torch.sigmoid(self.mix(both))
            fused = g * r + (1 - g) * p
        else:
            fused = self.mix(both)
        return {"fused": fused, "rgb": r, "pose": p}


class MultiStreamVideo(nn.Module):
    """A pose stream, alone or fused per frame with an RGB :class:`VideoEncoder`, behind ``VideoEncoder``'s
    interface (input: :class:`Streams`)."""

    def __init__(self, cfg: PoseStreamConfig, rgb: VideoEncoder | None):
        super().__init__()
        self.pose = PoseEncoder(cfg.points, cfg.channels, cfg.dim, cfg.layers, cfg.heads)
        self.rgb = rgb
        self.fusion = StreamFusion(rgb.dim, cfg.dim, cfg.fusion) if rgb is not None else None
        self.dim: int = cfg.dim

    @property
    def frames(self) -> nn.Module | None:
        """The RGB frame encoder (None: pose only), where callers look for its preprocessing."""
        return None if self.rgb is None else self.rgb.frames

    def stream_features(self, x: Streams, mask: Tensor | None = None) -> dict[str, Tensor]:
        """Per-frame ``[B, T, dim]`` features: ``fused`` (the model's), and ``pose`` / ``rgb`` of a fused model."""
        if not isinstance(x, Streams):
            raise TypeError("a pose-aware model reads Streams (frames and keypoints), not a frame tensor alone")
        pose = self.pose(x.keypoints, x.keypoint_mask)
        if self.rgb is None:
            return {"fused": pose}
        if x.rgb is None:
            raise ValueError("a fused model needs the frames as well as the keypoints (Streams.rgb is None)")
        return self.fusion(self.rgb.frame_features(x.rgb, mask), pose)

    def frame_features(self, x: Streams, mask: Tensor | None = None) -> Tensor:
        return self.stream_features(x, mask)["fused"]

    def forward(self, x: Streams, mask: Tensor | None = None) -> Tensor:
        f = self.frame_features(x, mask)
        if mask is None:
            return f.mean(1)
        m = mask.unsqueeze(-1).to(f.dtype)
        return (f * m).sum(1) / m.sum(1).clamp_min(1)


def build_video_encoder(video: VideoEncoderConfig, pose: PoseStreamConfig | None) -> nn.Module:
    """RGB only (``pose`` unset), pose only, or both fused."""
    if pose is None:
        return VideoEncoder(**video.encoder_kwargs())
    rgb = VideoEncoder(**video.encoder_kwargs()) if pose.streams == "fused" else None
    return MultiStreamVideo(pose, rgb)
