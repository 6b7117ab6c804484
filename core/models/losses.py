"""Contrastive losses for hierarchical video-text pretraining, with DDP-wide negatives.

Every loss takes *local* embeddings (this rank's batch) and gathers the other
ranks' embeddings *with gradient*, then scores local rows against the global
batch with labels offset by ``B * rank`` (open_clip's "local loss"). Under DDP's
gradient averaging this equals the loss of one process on the concatenated
batch; a gather without gradient would scale the gradient by ``1 / world_size``.
All ranks must pass the same batch size (use ``drop_last``).

Small vocabularies (15 glosses, 4 object kinds, 7 surgical phases) put the same text in
several rows of one batch; plain InfoNCE would then push a video away from its own text's
twin. Every loss takes optional ``keys`` (:func:`text_keys`, one int per text): columns whose
key equals the row's are positives too (UniCL, Yang et al. 2022), scored MIL-NCE style
(log of the summed probability of all positives). With no duplicates this is plain InfoNCE.

SigLIP's sigmoid loss (:func:`sigmoid_pairs`, :func:`sigmoid_milnce`) is the alternative for models trained
with it: every (row, column) pair is its own binary match / no-match, so there is no softmax over the batch and
same-text duplicates are simply more positives.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(out, x.contiguous())
        return torch.cat(out, dim=0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        # Every rank's loss depends on every rank's rows: sum their gradients, keep our slice.
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        n = grad.shape[0] // dist.get_world_size()
        return grad[dist.get_rank() * n:(dist.get_rank() + 1) * n]


def gather(x: Tensor) -> tuple[Tensor, int]:
    """All ranks' rows (differentiable) and the offset of this rank's rows in them."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x, 0
    return _GatherWithGrad.apply(x), dist.get_rank() * x.shape[0]


class LogitScale(nn.Module):
    """Learnable inverse temperature, clamped so training cannot collapse it (CLIP caps it at 100)."""

    def __init__(self, init_temperature: float = 0.07, min_temperature: float = 0.01,
                 max_temperature: float = 1.0, learnable: bool = True):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / init_temperature)), requires_grad=learnable)
        self.min_scale, self.max_scale = 1 / max_temperature, 1 / min_temperature

    def forward(self) -> Tensor:
        return self.log_scale.exp().clamp(self.min_scale, self.max_scale)


class LogitBias(nn.Module):
    """SigLIP's learnable bias ``b`` in ``σ(s · cos + b)``; -10 (the paper's init) says most pairs do not match."""

    def __init__(self, init: float = -10.0, learnable: bool = True):
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(float(init)), requires_grad=learnable)

    def forward(self) -> Tensor:
        return self.bias


def gather_keys(x: Tensor) -> Tensor:
    """All ranks' integer keys (no gradient to carry)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out, dim=0)


def text_keys(texts: list[str], device: torch.device | str = "cpu") -> Tensor:
    """One int64 per text, equal iff the texts are equal, on every rank (Python's ``hash`` is salted per process)."""
    return torch.tensor([int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little") >> 1
                         for t in texts], dtype=torch.long, device=device)


def _targets(n: int, offset: int, device: torch.device) -> Tensor:
    return torch.arange(n, device=device) + offset


def multi_positive_nce(logits: Tensor, positives: Tensor) -> Tensor:
    """Mean over rows of ``-log Σ_pos softmax(logits)``; one positive per row is cross-entropy."""
    pos = logits.masked_fill(~positives, float("-inf"))
    return (logits.logsumexp(1) - pos.logsumexp(1)).mean()


def keyed_nce(logits: Tensor, y: Tensor, keys: Tensor | None, keys_all: Tensor | None) -> Tensor:
    if keys is None:
        return F.cross_entropy(logits, y)
    positives = keys[:, None] == keys_all[None, :]
    positives[torch.arange(len(y), device=y.device), y] = True
    return multi_positive_nce(logits, positives)


def infonce(a: Tensor, b: Tensor, scale: Tensor | float, keys: Tensor | None = None) -> Tensor:
    """Symmetric InfoNCE between row-paired, L2-normalised ``a[i] <-> b[i]``; rows with equal ``keys`` are positives."""
    a_all, off = gather(a)
    b_all, _ = gather(b)
    y = _targets(a.shape[0], off, a.device)
    k_all = gather_keys(keys) if keys is not None else None
    return 0.5 * (keyed_nce(scale * a @ b_all.T, y, keys, k_all) + keyed_nce(scale * b @ a_all.T, y, keys, k_all))


def _pair_nll(logits: Tensor, positives: Tensor, valid: Tensor | None = None) -> Tensor:
    """``-Σ log σ(±logit)`` over the valid pairs of each row, mean over rows (SigLIP normalises by batch size)."""
    nll = -F.logsigmoid(torch.where(positives, logits, -logits))
    if valid is not None:
        nll = nll * valid
    return nll.sum() / logits.shape[0]


def sigmoid_pairs(a: Tensor, b: Tensor, scale: Tensor | float, keys: Tensor | None = None, *,
                  bias: Tensor | float) -> Tensor:
    """SigLIP (Zhai et al. 2023): ``-1/B Σ_i Σ_j log σ(z_ij (s a_i·b_j + bias))``, ``z = +1`` on ``a[i] <-> b[i]``
    (and on rows with equal ``keys``), ``-1`` elsewhere.

    This rank's rows against every rank's columns: over all ranks each pair is scored once, so no second
    direction is needed, and DDP's gradient averaging gives the loss of one process on the whole batch.
    """
    b_all, off = gather(b)
    logits = scale * a @ b_all.T + bias
    y = _targets(a.shape[0], off, a.device)
    positives = torch.zeros_like(logits, dtype=torch.bool)
    positives[torch.arange(a.shape[0], device=a.device), y] = True
    if keys is not None:
        positives |= keys[:, None] == gather_keys(keys)[None, :]
    return _pair_nll(logits, positives)


def sigmoid_milnce(video: Tensor, texts: Tensor, mask: Tensor, scale: Tensor | float, keys: Tensor | None = None,
                   *, bias: Tensor | float) -> Tensor:
    """The sigmoid loss with several texts per video (``texts [B, K, D]``, ``mask`` marks real ones): each video
    against every real text of every rank, positive on its own texts and on texts with one of its ``keys``."""
    b, k, d = texts.shape
    t_all, off = gather(texts.reshape(b * k, d))
    m_all = gather_keys(mask.reshape(b * k).long()).bool()
    logits = scale * video @ t_all.T + bias                                     # [B, N*K]
    own = torch.arange(b * k, device=video.device) + off                        # gather offsets by B*K rows
    positives = torch.zeros_like(logits, dtype=torch.bool)
    positives[torch.arange(b, device=video.device).repeat_interleave(k), own] = True
    if keys is not None:
        k_all = gather_keys(keys.reshape(b * k))
        mine = keys.masked_fill(~mask, -1)                                      # padding carries no key
        positives |= (mine[:, :, None] == k_all[None, None, :]).any(1)
    return _pair_nll(logits, positives & m_all[None], m_all[None].to(logits.dtype))


def milnce(video: Tensor, texts: Tensor, mask: Tensor, scale: Tensor | float, keys: Tensor | None = None) -> Tensor:
    """MIL-NCE (Miech et al.): each video has several positive texts ``texts[i, :K]`` (``mask`` marks real ones).

    video→text: log-sum-exp over the positives against all texts of all videos;
    text→video: each real text picks its video among all videos.
    ``keys [B, K]``: another video's text with one of this video's keys is a positive too, and
    a video carrying a text's key is a positive of that text.
    """
    b, k, d = texts.shape
    v_all, off = gather(video)
    t_all, _ = gather(texts.reshape(b * k, d))
    m_all, _ = gather(mask.reshape(b * k).to(video.dtype))
    logits = scale * video @ t_all.T                                           # [B, N*K]
    logits = logits.masked_fill(m_all[None] == 0, float("-inf"))
    pos = torch.full_like(logits, float("-inf"))
    cols = (_targets(b, off, video.device)[:, None] * k + torch.arange(k, device=video.device)).reshape(-1)
    rows = torch.arange(b, device=video.device).repeat_interleave(k)
    pos[rows, cols] = logits[rows, cols]
    t_logits = scale * texts.reshape(b * k, d) @ v_all.T                        # [B*K, N]
    if keys is not None:
        k_flat = keys.reshape(b * k)
        k_all = gather_keys(k_flat)
        real = mask.reshape(b * k)
        same = (k_flat[:, None] == k_all[None, :]) & real[:, None] & (m_all[None, :] > 0)   # [B*K, N*K]
        dup = same.view(b, k, -1).any(1)                                         # video i's keys among all texts
        pos = torch.where(dup, logits, pos)
        carries = same.view(b * k, -1, k).any(-1)                                # text r's key in video j's texts
        carries[torch.arange(b * k, device=video.device), _targets(b, off, video.device).repeat_interleave(k)] = True
        t2v = t_logits.logsumexp(1) - t_logits.masked_fill(~carries, float("-inf")).logsumexp(1)
    else:
        t2v = F.cross_entropy(t_logits, _targets(b, off, video.device).repeat_interleave(k), reduction="none")
    v2t = (logits.logsumexp(1) - pos.logsumexp(1)).mean()

    m = mask.reshape(-1).to(t2v.dtype)
    # Mean over all ranks' real texts, not this rank's: ranks may hold different numbers of them.
    per_rank = m_all.sum().detach() * m.numel() / m_all.numel()
    return 0.5 * (v2t + (t2v * m).sum() / per_rank.clamp_min(1))


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over dim 1 of ``x [B, K, D]`` counting only ``mask [B, K]`` rows, re-normalised."""
    m = mask.to(x.dtype).unsqueeze(-1)
    return F.normalize((x * m).sum(1) / m.sum(1).clamp_min(1), dim=-1)


def hierarchical_loss(segment: Tensor, parent: Tensor, children: Tensor, child_mask: Tensor,
                      scale: Tensor | float, weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
                      parent_keys: Tensor | None = None, child_keys: Tensor | None = None,
                      pair: Callable[..., Tensor] = infonce) -> Tensor:
    """HecVL's phase/video-level loss: segment↔parent text, segment↔mean(children), parent↔mean(children).

    ``children [B, K, D]`` are the texts one level down (narrations under a phase summary,
    phase summaries under an abstract); the mean ties the levels' spaces together.
    ``parent_keys`` / ``child_keys`` (one per row; children keyed as a whole list) mark duplicates.
    ``pair`` scores each of the three pairings (InfoNCE; ``partial(sigmoid_pairs, bias=b)`` for SigLIP's).
    """
    child = masked_mean(children, child_mask)
    terms = (pair(segment, parent, scale, parent_keys), pair(segment, child, scale, child_keys),
             pair(parent, child, scale, parent_keys))
    return sum(w * t for w, t in zip(weights, terms)) / sum(weights)


def temporal_nce(chunks: Tensor, chunk_times: Tensor, sentences: Tensor, sentence_times: Tensor,
                 sentence_mask: Tensor, temperature: float, tie_tolerance: float = 1e-3) -> Tensor:
    """LF-VILA's multimodal temporal contrastive loss: within a long video, each sentence against the chunks of the
    video's own encoder output, its positive the chunk nearest to it in time.

    A video-level loss (video ↔ abstract) only asks that the whole recording match its text; nothing in it makes
    the part of the encoder's output where something happens match the sentence that says so, and a model that
    ignores order scores every part of a video alike. Here the candidates of a sentence are every chunk of the
    batch: the other chunks of its own video, which share its look, so telling them apart needs *when*, and the
    chunks of the other videos. Positives come from timestamps, not from list order, so sentences that skip or
    overlap parts of the video still find their place.

    ``chunks [B, C, D]`` (L2-normalised) with their times ``chunk_times [B, C]`` (seconds, e.g. the mean time of
    their frames); ``sentences [B, K, D]`` (L2-normalised) with ``sentence_times [B, K]`` (e.g. the centre of the
    clip a sentence narrates) and ``sentence_mask [B, K]`` (True for real ones). Row ``b`` of both is one video.

    Sentence → chunk: cross-entropy over all ``B·C`` chunks. Chunk → sentence: each chunk that is the positive of
    some sentence against all kept sentences, those that chose it positives (log of their summed probability). A
    sentence equally near two chunks of its video (within ``tie_tolerance`` seconds: times travel as float32) is
    left out (LF-VILA ignores ties). The mean of the two
    directions, logits divided by a fixed ``temperature`` (LF-VILA: 0.05). This rank's batch only: its
    candidates are local, so no gather (DDP averages the ranks' gradients)."""
    b, c, _ = chunks.shape
    k = sentences.shape[1]
    dist = (sentence_times[:, :, None] - chunk_times[:, None, :]).abs()                    # [B, K, C]
    nearest = dist.argmin(-1)
    ties = (dist <= dist.min(-1, keepdim=True).values + tie_tolerance).sum(-1) > 1
    keep = (sentence_mask & ~ties).reshape(-1)
    if not keep.any():
        return chunks.sum() * 0.0  # nothing to align in this batch; keeps the graph
    target = (torch.arange(b, device=chunks.device)[:, None] * c + nearest).reshape(-1)[keep]   # [S]
    chunk_all = chunks.reshape(b * c, -1)
    kept = sentences.reshape(b * k, -1)[keep]                                             # [S, D]
    logits = kept @ chunk_all.T / temperature                                             # [S, B*C]
    sentence_to_chunk = F.cross_entropy(logits, target)
    chosen = target.unique()
    positives = chosen[:, None] == target[None, :]                                       # [chosen, S]
    chunk_to_sentence = multi_positive_nce(logits.T[chosen], positives)
    return 0.5 * (sentence_to_chunk + chunk_to_sentence)
