"""Heads on frozen embeddings: a linear classifier that starts as the zero-shot classifier, a multi-stage dilated
temporal convolution over a whole video (TeCNO / MS-TCN style), and the head file ``hvl adapt`` writes and
``hvl zeroshot --head`` reads (``torch.load(weights_only=True)``: tensors, numbers and strings only).

Both heads score embeddings of one level's space (frames or windows, :mod:`hvl.core.evaluation.zeroshot.windows`).
:class:`LinearHead` computes ``100 * x @ W.T + b`` with ``W`` the prompt embeddings and ``b = 0`` before any
training step: the very arithmetic of zero-shot scoring, so an untrained head reproduces zero-shot exactly.
:class:`TemporalHead` adds to those logits a residual per stage whose output layer starts at zero, so it too
starts as zero-shot and learns what the order and context of frames add.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import HVLInputError

__all__ = ["HEAD_FORMAT", "HEAD_VERSION", "METHODS", "LinearHead", "TemporalHead", "build_head", "load_head",
           "save_head", "space_fingerprint"]

HEAD_FORMAT = "hvl-adapt-head"
HEAD_VERSION = 1
METHODS = ("linear", "temporal")
SCALE = 100.0  # zero-shot's logit scale (hvl.core.evaluation.zeroshot.classify.predict)


class _Head(nn.Module):
    """What both heads share: the classes, level, window and fps they were trained for, and the checks."""

    method = ""
    reads_sequences = False

    def __init__(self, classes: list[str], level: str, window: float | None, fps: float):
        super().__init__()
        self.classes, self.level, self.window, self.fps = list(classes), level, window, float(fps)
        self.info: dict[str, Any] = {}  # how it was trained (protocol, seed, videos, ...), written to the file
        self.source = "<in memory>"     # the file it was read from, for messages
        self.model_fingerprint: str | None = None

    def options(self) -> dict[str, Any]:
        return {}

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "level": self.level, "window": self.window, "fps": self.fps,
                "classes": self.classes, **self.options(), **self.info}

    def check_compatible(self, names: list[str], level: str, embed_dim: int) -> None:
        if list(names) != self.classes:
            raise HVLInputError(
                f"{self.source}: this head was trained for the classes {self.classes}, but the prompt file of this "
                f"run lists {list(names)}; a head only scores the classes, in the order, it was trained on. Use the "
                f"prompt file it was trained with (--prompts), or train a head for these classes with `hvl adapt`")
        if level != self.level:
            raise HVLInputError(f"{self.source}: this head scores the '{self.level}' space, not '{level}'; drop "
                                f"--level (the head's level is used) or train a head in '{level}' with `hvl adapt`")
        if embed_dim != self.embed_dim:
            raise HVLInputError(f"{self.source}: this head takes {self.embed_dim}-d embeddings but the model gives "
                                f"{embed_dim}-d; use the model it was trained on")

    def settings_for(self, names: list[str], level: str | None, window: float | None,
                     fps: float) -> tuple[str, float | None]:
        """The level and window a run with this head uses; a run asking for others is refused."""
        self.check_compatible(names, level or self.level, self.embed_dim)
        if window is not None and window != self.window:
            raise HVLInputError(f"{self.source}: this head was trained on "
                                f"{'single frames' if self.window is None else f'{self.window:g} s windows'}, "
                                f"not {window:g} s windows; drop --window (the head's is used) or train a head "
                                "with that window")
        if self.reads_sequences and abs(fps - self.fps) > 1e-9:
            raise HVLInputError(f"{self.source}: this temporal head was trained at {self.fps:g} fps (its convolutions "
                                f"count frames at that rate), not {fps:g}; set fps: {self.fps:g} in the config")
        return self.level, self.window

    def check_model(self, model: nn.Module, what: str | Path | None = None) -> None:
        """Refuse a model whose embeddings in the head's space are not those the head was trained on."""
        if self.level not in model.video_heads:
            raise HVLInputError(f"{what or self.source}: this head scores the '{self.level}' space, which the model "
                                f"does not have ({list(model.video_heads)})")
        if self.model_fingerprint and space_fingerprint(model, self.level) != self.model_fingerprint:
            raise HVLInputError(f"{what or self.source}: this head was trained on the embeddings of another model "
                                f"({self.info.get('model', '?')}); its '{self.level}' space differs from this model's. "
                                "Pass the --ckpt / --model it was trained on, or train a head on this one with "
                                "`hvl adapt`")
        self.to(model.device)


class LinearHead(_Head):
    """``logits = 100 * x @ W.T + b``; ``W`` starts as the class prompt embeddings, ``b`` at zero."""

    method = "linear"

    def __init__(self, weight: Tensor, classes: list[str], level: str, window: float | None, fps: float):
        super().__init__(classes, level, window, fps)
        self.weight = nn.Parameter(weight.detach().clone().float())
        self.bias = nn.Parameter(torch.zeros(weight.shape[0]))
        self.register_buffer("prompt_weight", weight.detach().clone().float())  # the zero-shot classifier
        self.embed_dim = int(weight.shape[1])

    def scores(self, x: Tensor) -> Tensor:
        """``[N, C]`` logits; at initialisation bit for bit zero-shot's ``100 * x @ text.T``."""
        return SCALE * x @ self.weight.T + self.bias

    forward = scores


class _Stage(nn.Module):
    """One MS-TCN stage: 1x1 in, ``layers`` dilated residual convolutions (dilation 1, 2, 4, ...), 1x1 out
    (zero-initialised)."""

    def __init__(self, dim_in: int, channels: int, classes: int, layers: int, causal: bool, dropout: float):
        super().__init__()
        self.causal = causal
        self.inp = nn.Conv1d(dim_in, channels, 1)
        self.dilated = nn.ModuleList(nn.Conv1d(channels, channels, 3, dilation=2 ** i) for i in range(layers))
        self.mix = nn.ModuleList(nn.Conv1d(channels, channels, 1) for _ in range(layers))
        self.drop = nn.Dropout(dropout)
        self.out = nn.Conv1d(channels, classes, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """``x`` ``[B, D, T]``, ``mask`` ``[B, 1, T]`` (1 on real frames) → ``[B, C, T]``."""
        h = self.inp(x) * mask
        for conv, mix in zip(self.dilated, self.mix):
            d = conv.dilation[0]
            pad = (2 * d, 0) if self.causal else (d, d)  # causal: a frame sees only itself and the past
            h = (h + self.drop(mix(F.relu(conv(F.pad(h, pad)))))) * mask
        return self.out(h) * mask


class TemporalHead(_Head):
    """Multi-stage dilated temporal convolutions over a whole video's embeddings (TeCNO / MS-TCN).

    Stage 1 adds a correction computed from the embeddings to the frame-wise linear logits; each further stage
    adds one computed from the previous stage's class probabilities (the order of phases). Every stage's output
    layer starts at zero, so before training the head is the zero-shot classifier. ``causal``: each frame sees
    only the past (online use, e.g. during an operation)."""

    method = "temporal"
    reads_sequences = True

    def __init__(self, weight: Tensor, classes: list[str], level: str, window: float | None, fps: float,
                 stages: int = 2, layers: int = 8, channels: int = 64, causal: bool = False, dropout: float = 0.3):
        super().__init__(classes, level, window, fps)
        if stages < 1 or layers < 1 or channels < 1:
            raise HVLInputError(f"temporal head: stages, layers and channels must be >= 1 (got {stages}, {layers}, "
                                f"{channels})")
        self.linear = LinearHead(weight, classes, level, window, fps)
        c = len(classes)
        self.embed_dim = self.linear.embed_dim
        self.stages = nn.ModuleList([_Stage(self.embed_dim, channels, c, layers, causal, dropout)] +
                                    [_Stage(c, channels, c, layers, causal, dropout) for _ in range(stages - 1)])
        self._options = {"stages": stages, "layers": layers, "channels": channels, "causal": causal,
                         "dropout": dropout}

    def options(self) -> dict[str, Any]:
        return dict(self._options)

    def stage_logits(self, x: Tensor, mask: Tensor | None = None) -> list[Tensor]:
        """``x`` ``[B, T, E]`` (or ``[T, E]``) → each stage's logits ``[B, T, C]``."""
        if x.ndim == 2:
            x = x[None]
        if mask is None:
            mask = torch.ones(x.shape[:2], device=x.device)
        m = mask[:, None, :].to(x.dtype)
        z = self.linear.scores(x).transpose(1, 2) + self.stages[0](x.transpose(1, 2), m)
        outs = [z]
        for stage in self.stages[1:]:
            z = z + stage(z.softmax(1) * m, m)
            outs.append(z)
        return [o.transpose(1, 2) for o in outs]

    def sequence_scores(self, x: Tensor) -> Tensor:
        """``[T, E]`` embeddings of a whole video → ``[T, C]`` logits of the last stage."""
        return self.stage_logits(x)[-1][0]

    def scores(self, x: Tensor) -> Tensor:
        raise HVLInputError("a temporal head scores whole videos (sequence_scores), not single frames")


def build_head(method: str, weight: Tensor, classes: list[str], level: str, window: float | None, fps: float,
               **options: Any) -> LinearHead | TemporalHead:
    if method == "linear":
        if options:
            raise HVLInputError(f"the linear head takes no options (got {sorted(options)})")
        return LinearHead(weight, classes, level, window, fps)
    if method == "temporal":
        return TemporalHead(weight, classes, level, window, fps, **options)
    raise HVLInputError(f"--method must be one of {list(METHODS)} (got {method!r})")


def space_fingerprint(model: nn.Module, level: str) -> str:
    """sha256 of what a level's frame / window embeddings depend on: the frame encoder (or pretrained backbone),
    the temporal aggregation and the level's video head."""
    if hasattr(model, "space_fingerprint"):  # an ONNX export (hvl.core.inference.onnx): recorded from its torch model
        return model.space_fingerprint(level)
    h = hashlib.sha256()
    parts = [model.backbone if getattr(model, "backbone", None) is not None else model.video.frames,
             model.video.temporal, model.video_heads[level]]
    for part in parts:
        if part is None:
            continue
        for name, t in sorted(part.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_head(head: LinearHead | TemporalHead, path: str | Path, model_fingerprint: str) -> Path:
    import io

    from ...io import atomic_write_bytes

    blob = {"format": HEAD_FORMAT, "version": HEAD_VERSION, "method": head.method, "classes": head.classes,
            "level": head.level, "window": head.window, "fps": head.fps, "embed_dim": head.embed_dim,
            "options": head.options(), "model_fingerprint": model_fingerprint, "info": _plain(head.info),
            "state_dict": {k: v.detach().cpu() for k, v in head.state_dict().items()}}
    buf = io.BytesIO()
    torch.save(blob, buf)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _plain(obj: Any) -> Any:
    """Numbers, strings, lists and dicts only (what weights_only loading accepts)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def load_head(path: str | Path) -> LinearHead | TemporalHead:
    """A head written by ``hvl adapt`` (read with ``weights_only=True``); errors name the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise HVLInputError(f"{path}: head file not found; train one with `hvl adapt ... --head-out {path}`")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 (whatever torch.load raises on a bad file is one error naming it)
        raise HVLInputError(f"{path}: not a loadable head file ({str(e).splitlines()[0][:200]})") from None
    if not isinstance(blob, dict) or blob.get("format") != HEAD_FORMAT:
        raise HVLInputError(f"{path}: not an hvl head (field 'format' should be '{HEAD_FORMAT}'); heads are written "
                            "by `hvl adapt`")
    if blob.get("version") != HEAD_VERSION:
        raise HVLInputError(f"{path}: head format version {blob.get('version')!r}, this hvl reads {HEAD_VERSION}; "
                            "re-train it with this hvl's `hvl adapt`")
    try:
        state = blob["state_dict"]
        weight = state["prompt_weight"] if blob["method"] == "linear" else state["linear.prompt_weight"]
        head = build_head(blob["method"], weight, list(blob["classes"]), str(blob["level"]), blob["window"],
                          float(blob["fps"]), **dict(blob.get("options") or {}))
        head.load_state_dict(state)
    except HVLInputError as e:
        raise HVLInputError(f"{path}: {e}") from None
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        raise HVLInputError(f"{path}: a damaged or foreign head file ({type(e).__name__}: {str(e)[:200]}); "
                            "re-train it with `hvl adapt`") from None
    head.info = dict(blob.get("info") or {})
    head.model_fingerprint = blob.get("model_fingerprint")
    head.source = str(path)
    return head.eval()
