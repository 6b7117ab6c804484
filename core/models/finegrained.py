"""Fine-grained (frame × word) video-text similarity and its contrastive loss (CiCo-style).

For a video with frame embeddings ``v[t]`` and a text with token embeddings ``w[l]``
(all L2-normalised), ``s[t, l] = cos(v[t], w[l])`` and

* video→text: each frame attends over the words, ``V2T = mean_t Σ_l softmax_l(s[t]/τ) s[t, l]``;
* text→video: each word attends over the frames, ``T2V = mean_l Σ_t softmax_t(s[:, l]/τ) s[t, l]``;
* ``score = a·V2T + b·T2V (+ g·cos(global video, global text))``.

Padding is masked *inside* the softmaxes as well as in the means (CiCo's released code
masks only the mean, so a padding token still takes attention mass and padded batches
score differently from unpadded ones). Scores for many pairs are built in chunks so
that a test gallery never materialises the full ``[videos, texts, frames, words]`` tensor.
"""
from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from .losses import gather, gather_keys, keyed_nce


class FineGrainedConfig(BaseModel):
    """How one level scores video-text pairs when it uses fine-grained similarity."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tau: float = Field(0.07, gt=0, description="softmax temperature of the word/frame attention (CiCo: 0.07)")
    v2t_weight: float = Field(0.5, ge=0, description="weight of the frame→words direction")
    t2v_weight: float = Field(0.5, ge=0, description="weight of the word→frames direction")
    global_weight: float = Field(0.0, ge=0, description="weight of the global (pooled) cosine added to the score")
    max_words: int = Field(32, ge=1, description="tokens kept per text (fixed so every DDP rank gathers one shape)")
    max_elements: int = Field(2**24, ge=1, description="chunk budget: pair×frame×word entries built at once")


def _check(video: Tensor, video_mask: Tensor, text: Tensor, text_mask: Tensor) -> None:
    if video.ndim != 3 or text.ndim != 3 or video.shape[-1] != text.shape[-1]:
        raise ValueError(f"expected video [A, T, E] and text [B, L, E], got {tuple(video.shape)} and {tuple(text.shape)}")
    if not bool(video_mask.any(1).all()) or not bool(text_mask.any(1).all()):
        # a row with nothing to attend to would softmax over -inf only (NaN)
        raise ValueError("every video needs ≥ 1 valid frame and every text ≥ 1 valid word")


def _pair_block(video: Tensor, vmask: Tensor, text: Tensor, tmask: Tensor, cfg: FineGrainedConfig) -> Tensor:
    """``[a, b]`` scores of every video in the block against every text in the block."""
    vm = vmask[:, None, :, None]                       # [a, 1, T, 1]
    tm = tmask[None, :, None, :]                       # [1, b, 1, L]
    s = torch.einsum("ate,ble->abtl", video, text)
    s = s.masked_fill(~(vm & tm), 0.0)                 # padding contributes exactly nothing, whatever its values
    logits = s / cfg.tau
    out = torch.zeros(s.shape[:2], dtype=s.dtype, device=s.device)
    if cfg.v2t_weight:
        attn = logits.masked_fill(~tm, float("-inf")).softmax(-1)
        per_frame = (attn * s).sum(-1)                 # [a, b, T]
        vmf = vmask[:, None, :].to(s.dtype)
        out = out + cfg.v2t_weight * (per_frame * vmf).sum(-1) / vmf.sum(-1)
    if cfg.t2v_weight:
        attn = logits.masked_fill(~vm, float("-inf")).softmax(-2)
        per_word = (attn * s).sum(-2)                  # [a, b, L]
        tmf = tmask[None, :, :].to(s.dtype)
        out = out + cfg.t2v_weight * (per_word * tmf).sum(-1) / tmf.sum(-1)
    return out


def finegrained_similarity(video: Tensor, video_mask: Tensor, text: Tensor, text_mask: Tensor,
                           cfg: FineGrainedConfig | None = None, video_global: Tensor | None = None,
                           text_global: Tensor | None = None) -> Tensor:
    """``[A, B]``: score of video ``a`` (frames ``[A, T, E]``) with text ``b`` (tokens ``[B, L, E]``).

    Inputs are L2-normalised per frame / token; masks are ``True`` for real frames / words.
    Differentiable; computed in blocks of at most ``cfg.max_elements`` frame×word entries.
    """
    cfg = cfg or FineGrainedConfig()
    video_mask, text_mask = video_mask.bool(), text_mask.bool()
    _check(video, video_mask, text, text_mask)
    a, t = video.shape[:2]
    b, l_ = text.shape[:2]
    per_pair = t * l_
    cols = max(1, min(b, cfg.max_elements // per_pair))
    rows = max(1, min(a, cfg.max_elements // (per_pair * cols)))
    blocks = []
    for i in range(0, a, rows):
        blocks.append(torch.cat([_pair_block(video[i:i + rows], video_mask[i:i + rows], text[j:j + cols],
                                             text_mask[j:j + cols], cfg) for j in range(0, b, cols)], dim=1))
    scores = torch.cat(blocks, dim=0)
    if cfg.global_weight:
        if video_global is None or text_global is None:
            raise ValueError("global_weight > 0 needs video_global and text_global embeddings")
        scores = scores + cfg.global_weight * video_global @ text_global.T
    return scores


def pad_tokens(tokens: Tensor, mask: Tensor, length: int) -> tuple[Tensor, Tensor]:
    """Truncate or zero-pad ``[N, L, E]`` tokens (and mask) to exactly ``length`` words."""
    n, cur, e = tokens.shape
    if cur >= length:
        return tokens[:, :length], mask[:, :length]
    pad = length - cur
    return (torch.cat([tokens, tokens.new_zeros(n, pad, e)], 1), torch.cat([mask, mask.new_zeros(n, pad)], 1))


def finegrained_infonce(video: Tensor, video_mask: Tensor, text: Tensor, text_mask: Tensor,
                        scale: Tensor | float, cfg: FineGrainedConfig | None = None,
                        video_global: Tensor | None = None, text_global: Tensor | None = None,
                        keys: Tensor | None = None) -> Tensor:
    """Symmetric InfoNCE over fine-grained scores of row-paired ``video[i] <-> text[i]``
    (rows with equal ``keys``, i.e. the same text, are positives of each other).

    Local rows are scored against every rank's columns, gathered with gradient, labels offset
    by this rank's position (as :func:`hvl.core.models.losses.infonce`): under DDP gradient averaging
    this equals one process's loss on the whole batch. Shapes must match across ranks.
    """
    cfg = cfg or FineGrainedConfig()
    v_all, off = gather(video)
    t_all, _ = gather(text)
    vm_all = gather(video_mask.to(video.dtype))[0] > 0.5
    tm_all = gather(text_mask.to(text.dtype))[0] > 0.5
    vg_all = gather(video_global)[0] if video_global is not None else None
    tg_all = gather(text_global)[0] if text_global is not None else None
    y = torch.arange(video.shape[0], device=video.device) + off
    v2t = finegrained_similarity(video, video_mask, t_all, tm_all, cfg, video_global, tg_all)       # [B, N]
    t2v = finegrained_similarity(v_all, vm_all, text, text_mask, cfg, vg_all, text_global).T        # [B, N]
    k_all = gather_keys(keys) if keys is not None else None
    return 0.5 * (keyed_nce(scale * v2t, y, keys, k_all) + keyed_nce(scale * t2v, y, keys, k_all))
