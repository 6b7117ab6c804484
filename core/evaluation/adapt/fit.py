"""Which labelled frames a head learns from (the protocols) and how it learns (seeded, full-batch AdamW).

Protocols, each drawn from the training videos by ``seed``:

* **all**: every labelled frame of every training video;
* **fraction** ``P`` (the linear-probe protocol of SurgVLP / HecVL / PeskaVLP): all labelled frames of
  ``max(1, round(P * n))`` of the ``n`` training videos;
* **shots** ``K`` (the few-shot protocol): ``K`` labelled frames per class, drawn from all training videos'
  labelled frames of that class (a class with fewer frames gives all it has; the head file says which).

The linear head minimises cross-entropy plus ``prior / n * ||W - W_prompts||^2`` (``n`` labelled frames: the prior
weighs as much as ``prior`` frames), which pulls it towards the zero-shot classifier where labels are few. The
temporal head trains on whole videos (every frame is context, the labelled ones are scored): cross-entropy of every
stage plus MS-TCN's smoothing term (truncated mean squared difference of neighbouring frames' log-probabilities).
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import HVLInputError
from .embeddings import LabelledSequence
from .heads import LinearHead, TemporalHead, build_head

__all__ = ["LinearOptions", "TemporalOptions", "check_protocol", "fit_linear", "fit_temporal", "select_training",
           "train_head"]

# the defaults (hvl adapt's come from AdaptOptions, whose values these are)
LinearOptions = {"steps": 300, "lr": 1e-3, "prior": 10.0}
TemporalOptions = {"steps": 100, "lr": 1e-3, "smooth": 0.15, "weight_decay": 1e-4}


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Heads are tiny: on CPU, intra-op threads only cost (on 2 busy cores a linear head's 300 steps took 18 s with
    torch's 2 threads against 0.3 s with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_protocol(shots: int | None, fraction: float | None) -> None:
    """Refuse a protocol that cannot be drawn (before any video is read)."""
    if shots is not None and fraction is not None:
        raise HVLInputError("--shots and --fraction are two protocols: give one of them (or neither: all labels)")
    if fraction is not None and not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        raise HVLInputError(f"--fraction must be in (0, 1], the share of training videos (got {fraction!r})")
    if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int) or shots < 1):
        raise HVLInputError(f"--shots must be a whole number >= 1 of labelled frames per class (got {shots!r})")


def select_training(seqs: list[LabelledSequence], num_classes: int, shots: int | None = None,
                    fraction: float | None = None, seed: int = 0) -> tuple[list[LabelledSequence], dict[str, Any]]:
    """The labelled frames a head trains on: the videos kept, each with only its drawn labelled positions."""
    check_protocol(shots, fraction)
    if not seqs:
        raise HVLInputError("no training videos: --train names a manifest with labelled videos")
    rng = np.random.default_rng(seed)
    if fraction is not None:
        n = max(1, round(fraction * len(seqs)))
        keep = sorted(rng.permutation(len(seqs))[:n].tolist())
        chosen = [seqs[i] for i in keep]
        info = {"protocol": "fraction", "fraction": fraction, "videos": [s.video_id for s in chosen]}
    elif shots is not None:
        pool = [(v, j, int(y)) for v, s in enumerate(seqs) for j, y in enumerate(s.labels.tolist())]
        picked: dict[int, list[int]] = {}
        short = {}
        for c in range(num_classes):
            of_c = [k for k, (_, _, y) in enumerate(pool) if y == c]
            if len(of_c) < shots:
                short[c] = len(of_c)
            for k in rng.permutation(len(of_c))[:shots].tolist():
                v, j, _ = pool[of_c[k]]
                picked.setdefault(v, []).append(j)
        chosen = []
        for v in sorted(picked):
            j = torch.tensor(sorted(picked[v]), dtype=torch.long)
            s = seqs[v]
            chosen.append(LabelledSequence(s.video_id, s.emb, s.positions[j], s.labels[j]))
        info = {"protocol": "shots", "shots": shots, "videos": [s.video_id for s in chosen],
                "classes_short_of_shots": {str(c): n for c, n in short.items()}}
    else:
        chosen = list(seqs)
        info = {"protocol": "all", "videos": [s.video_id for s in chosen]}
    info.update(seed=seed, n_frames=int(sum(len(s.labels) for s in chosen)), n_videos=len(chosen))
    if not info["n_frames"]:
        raise HVLInputError("the training videos have no labelled frames of the prompt file's classes")
    return chosen, info


def fit_linear(head: LinearHead, train: list[LabelledSequence], steps: int = LinearOptions["steps"],
               lr: float = LinearOptions["lr"], prior: float = LinearOptions["prior"], seed: int = 0) -> dict[str, Any]:
    """Full-batch AdamW on the chosen labelled frames; ``steps=0`` leaves the zero-shot classifier as it is."""
    if steps < 0:
        raise HVLInputError(f"--steps must be >= 0 (got {steps})")
    dev = head.weight.device
    x = torch.cat([s.x for s in train]).to(dev)
    y = torch.cat([s.labels for s in train]).to(dev)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    with torch.random.fork_rng(devices=[]), one_thread():
        torch.manual_seed(seed)
        head.train()
        for _ in range(steps):
            pull = (head.weight - head.prompt_weight).pow(2).sum()
            loss = F.cross_entropy(head.scores(x), y) + prior / len(y) * pull
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    head.eval()
    return {"steps": steps, "lr": lr, "prior": prior, "loss_first": losses[0] if losses else None,
            "loss_last": losses[-1] if losses else None}


def _pad(train: list[LabelledSequence], dev) -> tuple[Tensor, Tensor, Tensor]:
    """Padded ``[B, T, E]`` embeddings, ``[B, T]`` frame mask and ``[B, T]`` targets (-100 where unlabelled)."""
    t = max(s.emb.shape[0] for s in train)
    x = torch.zeros(len(train), t, train[0].emb.shape[1], device=dev)
    mask = torch.zeros(len(train), t, device=dev)
    y = torch.full((len(train), t), -100, dtype=torch.long, device=dev)
    for b, s in enumerate(train):
        n = s.emb.shape[0]
        x[b, :n], mask[b, :n] = s.emb.to(dev), 1.0
        y[b, s.positions.to(dev)] = s.labels.to(dev)
    return x, mask, y


def fit_temporal(head: TemporalHead, train: list[LabelledSequence], steps: int = TemporalOptions["steps"],
                 lr: float = TemporalOptions["lr"], smooth: float = TemporalOptions["smooth"],
                 weight_decay: float = TemporalOptions["weight_decay"], seed: int = 0) -> dict[str, Any]:
    """Full-batch AdamW over whole videos (padded, masked); every stage is scored (MS-TCN)."""
    if steps < 0:
        raise HVLInputError(f"--steps must be >= 0 (got {steps})")
    dev = head.linear.weight.device
    x, mask, y = _pad(train, dev)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    with torch.random.fork_rng(devices=[]), one_thread():  # dropout draws from the seed, not the caller's generator
        torch.manual_seed(seed)
        head.train()
        for _ in range(steps):
            loss = x.new_zeros(())
            for z in head.stage_logits(x, mask):
                loss = loss + F.cross_entropy(z.flatten(0, 1), y.flatten(), ignore_index=-100)
                if smooth and z.shape[1] > 1:
                    lp = z.log_softmax(-1)
                    d = (lp[:, 1:] - lp[:, :-1].detach()).pow(2).clamp(max=16.0).mean(-1)  # MS-TCN: tau = 4
                    both = mask[:, 1:] * mask[:, :-1]
                    loss = loss + smooth * (d * both).sum() / both.sum().clamp(min=1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    head.eval()
    return {"steps": steps, "lr": lr, "smooth": smooth, "weight_decay": weight_decay,
            "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
            "finite": all(math.isfinite(v) for v in losses)}


def train_head(method: str, weight: Tensor, train: list[LabelledSequence], classes: list[str], level: str,
               window: float | None, fps: float, *, shots: int | None = None, fraction: float | None = None,
               seed: int = 0, steps: int | None = None, lr: float = 1e-3, prior: float = LinearOptions["prior"],
               smooth: float = TemporalOptions["smooth"], weight_decay: float = TemporalOptions["weight_decay"],
               **architecture: Any) -> LinearHead | TemporalHead:
    """Draw the training frames (protocol, ``seed``), build the head from the prompt embeddings ``weight``
    (``[C, E]``) and train it; ``head.info`` records the protocol and the fit."""
    if method == "temporal" and shots is not None:
        raise HVLInputError("--shots draws single labelled frames, but the temporal head learns from whole labelled "
                            "videos: use --fraction P (a share of the training videos) with --method temporal")
    chosen, info = select_training(train, len(classes), shots, fraction, seed)
    with torch.random.fork_rng(devices=[]):  # the head's initial weights come from the seed
        torch.manual_seed(seed)
        head = build_head(method, weight, classes, level, window, fps, **architecture).to(weight.device)
    if method == "linear":
        fit = fit_linear(head, chosen, LinearOptions["steps"] if steps is None else steps, lr, prior, seed)
    else:
        fit = fit_temporal(head, chosen, TemporalOptions["steps"] if steps is None else steps, lr, smooth,
                           weight_decay, seed)
    head.info = {**info, "fit": fit}
    return head
