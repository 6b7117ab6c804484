"""``hvl export onnx``: a model's frame tower, text tower and each level's heads as ONNX graphs, with the tokenizer
and a manifest, so that :class:`~hvl.core.inference.onnx.OnnxModel` embeds frames and texts with onnxruntime and
nothing of the original checkpoint or model directory.

Four graphs, each with a dynamic batch axis (the first):

- ``frame_tower.onnx``: ``pixels [batch, 3, H, W]`` (preprocessed as the manifest's ``preprocess`` says) →
  ``features [batch, D]``;
- ``video_heads.onnx``: ``features [batch, frames, D]`` → one output per level, ``[batch, E]``, unit norm: the
  model's temporal aggregation and that level's video head (a single frame is a one-frame video, as
  ``embed_frames`` does it);
- ``text_tower.onnx``: ``input_ids``, ``attention_mask [batch, tokens]`` → ``features [batch, Dt]``;
- ``text_heads.onnx``: ``features [batch, Dt]`` → one output per level, ``[batch, E]``, unit norm.

The towers are split from the heads so that a frame is encoded once for every level and every window
(``hvl zeroshot --window`` pools already encoded frames).

The folder is written whole or not at all (:func:`hvl.core.io.atomic_dir`); a folder that holds anything but an
earlier export is refused, never replaced.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HVLInputError
from ..extras import require, require_extras

__all__ = ["FILES", "MANIFEST", "MANIFEST_FORMAT", "MANIFEST_VERSION", "TOKENIZER_DIR", "ExportOptions", "export_onnx",
           "format_export", "is_export_folder", "tokenize"]

MANIFEST = "hvl_onnx.json"
MANIFEST_FORMAT = "hvl-onnx"
MANIFEST_VERSION = 1
TOKENIZER_DIR = "tokenizer"
# the graphs an export holds; a manifest naming any other file is not hvl's
FILES = ("frame_tower.onnx", "video_heads.onnx", "text_tower.onnx", "text_heads.onnx")
# graphs whose weights are larger than this keep them in a ``<graph>.data`` file beside it (protobuf's limit is 2 GB)
EXTERNAL_DATA_BYTES = 1_500_000_000
PARITY_TEXTS = ["a frame of the video", "the instrument grasps the tissue and pulls it to the side", "x"]


@dataclass(frozen=True)
class ExportOptions:
    """``hvl export onnx``: the model (``source``: --ckpt / --model), the folder and the ONNX opset."""

    source: Any  # hvl.core.models.spec.ModelSource
    out: str | Path
    opset: int = 18
    progress: bool = True


def is_export_folder(folder: Path) -> bool:
    """Whether ``folder`` holds an hvl ONNX export and nothing else (what a new export may replace)."""
    manifest = folder / MANIFEST
    if not manifest.is_file() or manifest.is_symlink():
        return False
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError):
        return False
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return False
    ours = {MANIFEST, TOKENIZER_DIR, *FILES, *(f"{f}.data" for f in FILES)}
    return all(p.name in ours for p in folder.iterdir())


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise HVLInputError(f"--out {out}: is a file; give a new or empty folder for the ONNX export")
    if out.is_dir() and any(out.iterdir()) and not is_export_folder(out):
        raise HVLInputError(f"--out {out}: the folder holds files that are not an hvl ONNX export (no {MANIFEST}, or "
                            "files it does not list); refusing to replace them. Give a new or empty folder")
    if not out.parent.is_dir():
        raise HVLInputError(f"--out {out}: its parent folder {out.parent} does not exist; create it first")


def _modules(model) -> dict[str, Any]:
    """The four exported parts of ``model`` as modules with tensor inputs and outputs."""
    import torch
    from torch import nn

    levels = list(model.levels)

    class FrameTower(nn.Module):
        def __init__(self):
            super().__init__()
            self.frames = model.video.frames

        def forward(self, pixels):
            return self.frames(pixels).float()

    class VideoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.video, self.heads = model.video, model.video_heads

        def forward(self, features):
            pooled = self.video(features)
            return tuple(self.heads[lv](pooled).float() for lv in levels)

    class TextHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = model.text_heads

        def forward(self, features):
            return tuple(self.heads[lv](features).float() for lv in levels)

    if model.backbone is not None:
        bb = model.backbone
        siglip = bb.kind == "siglip"

        class TextTower(nn.Module):
            def __init__(self):
                super().__init__()
                self.text, self.proj = bb.text, bb.text_proj

            def forward(self, input_ids, attention_mask):
                # SigLIP was trained without a mask (its processor passes none): the input is kept, unused
                out = self.text(input_ids=input_ids) if siglip else self.text(input_ids=input_ids,
                                                                              attention_mask=attention_mask)
                pooled = out if isinstance(out, torch.Tensor) else out.pooler_output
                return self.proj(pooled).float()
    else:
        enc = model.text

        class TextTower(nn.Module):
            def __init__(self):
                super().__init__()
                self.model = enc.model

            def forward(self, input_ids, attention_mask):
                h = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                m = attention_mask.unsqueeze(-1).to(h.dtype)
                return ((h * m).sum(1) / m.sum(1).clamp_min(1)).float()  # TextEncoder's mean over real tokens

    return {"frame_tower.onnx": FrameTower(), "video_heads.onnx": VideoHeads(), "text_tower.onnx": TextTower(),
            "text_heads.onnx": TextHeads()}


def _text_settings(model) -> tuple[Any, dict[str, Any]]:
    """The tokenizer and how texts are tokenised for the text tower (as the torch model does it)."""
    if model.backbone is not None:
        bb = model.backbone
        if bb.kind not in ("clip", "siglip") or not hasattr(bb, "tokenize"):
            raise HVLInputError(f"backbone '{bb.kind}': hvl exports its own encoders and transformers CLIP / SigLIP "
                                "backbones to ONNX; this one has no exportable text tower")
        limit = getattr(getattr(bb.text, "config", None), "max_position_embeddings", None) or 77
        if bb.pad_to:
            return bb.tokenizer, {"padding": "max_length", "max_length": int(bb.pad_to)}
        return bb.tokenizer, {"padding": "longest", "max_length": int(min(limit, bb.tokenizer.model_max_length))}
    enc = model.text
    return enc.tokenizer, {"padding": "longest", "max_length": int(enc.max_length)}


def tokenize(tokenizer, texts: list[str], settings: dict[str, Any]) -> dict[str, Any]:
    """``input_ids`` and ``attention_mask`` (int64 numpy arrays) as the export's ``settings`` say."""
    import numpy as np

    kw = (dict(padding="max_length", max_length=settings["max_length"]) if settings["padding"] == "max_length"
          else dict(padding=True, max_length=settings["max_length"]))
    batch = tokenizer(list(texts), truncation=True, return_tensors="np", **kw)
    return {k: np.asarray(batch[k], dtype=np.int64) for k in ("input_ids", "attention_mask")}


def _check_exportable(model) -> None:
    temporal = getattr(model.video, "temporal", None)
    if temporal is not None and type(temporal).__name__ == "WindowedTemporal":
        raise HVLInputError("video_encoder.temporal: windowed picks its attention plan from the number of frames "
                            "in Python, which one ONNX graph cannot hold for every length; export a model with "
                            "temporal: mean or transformer")


def _example_inputs(model, tokenizer, text_settings: dict[str, Any], pixels_hw: tuple[int, int], batch: int,
                    frames: int) -> dict[str, tuple]:
    import torch

    g = torch.Generator().manual_seed(batch)
    d, dt = model.video.dim, model.text.dim
    toks = tokenize(tokenizer, (PARITY_TEXTS * batch)[:batch], text_settings)
    return {"frame_tower.onnx": (torch.randn(batch, 3, *pixels_hw, generator=g),),
            "video_heads.onnx": (torch.randn(batch, frames, d, generator=g),),
            "text_tower.onnx": (torch.from_numpy(toks["input_ids"]), torch.from_numpy(toks["attention_mask"])),
            "text_heads.onnx": (torch.randn(batch, dt, generator=g),)}


def _io_names(levels: list[str]) -> dict[str, tuple[list[str], list[str]]]:
    return {"frame_tower.onnx": (["pixels"], ["features"]),
            "video_heads.onnx": (["features"], list(levels)),
            "text_tower.onnx": (["input_ids", "attention_mask"], ["features"]),
            "text_heads.onnx": (["features"], list(levels))}


def _dynamic_shapes(name: str, text_settings: dict[str, Any], max_frames: int | None, dynamic_hw: bool):
    from torch.export import Dim

    batch = Dim("batch", min=1, max=65536)
    if name == "frame_tower.onnx":
        return {"pixels": {0: batch, 2: Dim("height", min=8), 3: Dim("width", min=8)} if dynamic_hw else {0: batch}}
    if name == "video_heads.onnx":
        return {"features": {0: batch, 1: Dim("frames", min=1, max=max_frames or 65536)}}
    if name == "text_tower.onnx":
        shape = {0: batch} if text_settings["padding"] == "max_length" else {
            0: batch, 1: Dim("tokens", min=1, max=text_settings["max_length"])}
        return {"input_ids": shape, "attention_mask": shape}
    return {"features": {0: batch}}


def _shapes(graph) -> list[dict[str, Any]]:
    """``[{name, shape, dtype}]`` of an onnx graph's inputs or outputs (a named axis is dynamic)."""
    from onnx import TensorProto

    out = []
    for v in graph:
        dims = [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        out.append({"name": v.name, "shape": dims,
                    "dtype": TensorProto.DataType.Name(v.type.tensor_type.elem_type).lower()})
    return out


def _export_one(module, args: tuple, path: Path, names: tuple[list[str], list[str]], dynamic, opset: int) -> None:
    import logging
    import warnings

    import torch

    weights = sum(p.numel() * p.element_size() for p in module.parameters())
    # the exporter logs every torchvision operator it cannot register when torchvision is absent (hvl never uses them)
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, str(path), input_names=names[0], output_names=names[1],
                              dynamic_shapes=dynamic, opset_version=opset, dynamo=True, verbose=False,
                              external_data=weights > EXTERNAL_DATA_BYTES)
    finally:
        registration.setLevel(level)


def _parity(module, path: Path, args: tuple, input_names: list[str]) -> float:
    """max |onnxruntime - torch| over every output, on inputs of another batch size than the export's."""
    import numpy as np
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in sess.get_inputs()}
    feeds = {n: a.numpy() for n, a in zip(input_names, args) if n in wanted}
    with torch.no_grad():
        ref = module(*args)
    ref = ref if isinstance(ref, tuple) else (ref,)
    got = sess.run(None, feeds)
    return float(max(np.abs(g - r.numpy()).max() for g, r in zip(got, ref)))


def _identity(source, meta: dict[str, Any], model) -> dict[str, Any]:
    from ..models.checkpoint import fingerprint

    name = source.ckpt or source.model
    ident = {"source": str(name), "kind": "checkpoint" if source.ckpt else "pretrained",
             "sha256": fingerprint(name), "levels": list(model.levels), "embed_dim": int(model.embed_dim)}
    if source.text_model:
        ident["text_model"], ident["text_model_sha256"] = str(source.text_model), fingerprint(source.text_model)
    if model.backbone is not None:
        ident["backbone"] = model.backbone.kind
    return ident


def export_onnx(opts: ExportOptions) -> dict[str, Any]:
    """Export the model ``opts.source`` names into ``opts.out``; returns the manifest written there."""
    out = Path(opts.out)
    _check_target(out)
    require_extras(("onnx",), needed_by="hvl export onnx")  # looked up, not imported: onnxscript takes seconds
    onnx = require("onnx", "onnx", needed_by="hvl export onnx")
    import torch

    from ..evaluation.adapt.heads import space_fingerprint
    from ..io import atomic_dir, atomic_write_bytes, confined_dir, file_sha256, write_json
    from ..models.backbones import tokenizer_files
    from ..models.checkpoint import load_for_eval, preprocess_of

    src = opts.source
    model, meta = load_for_eval(src.ckpt, src.model, src.text_model, src.trust_remote_code, map_location="cpu")
    model = model.float().eval()
    _check_exportable(model)
    tokenizer, text_settings = _text_settings(model)
    pre = preprocess_of(meta)
    try:
        hw, dynamic_hw = tuple(pre.output_size), False
    except ValueError:  # shortest_edge without a crop: frames keep their aspect, so height and width vary
        hw, dynamic_hw = (int(pre.size), int(pre.size)), True
    temporal = getattr(model.video, "temporal", None)
    max_frames = int(temporal.pos.shape[1]) if temporal is not None and hasattr(temporal, "pos") else None
    modules = _modules(model)
    names = _io_names(model.levels)
    examples = _example_inputs(model, tokenizer, text_settings, hw, batch=2, frames=3)
    checks = _example_inputs(model, tokenizer, text_settings, hw, batch=3, frames=2)
    files: dict[str, Any] = {}
    started = time.perf_counter()
    with atomic_dir(out) as tmp:
        for name, module in modules.items():
            if opts.progress:
                print(f"hvl export onnx: {name} ...", flush=True)
            _export_one(module.eval(), examples[name], tmp / name,
                        names[name], _dynamic_shapes(name, text_settings, max_frames, dynamic_hw), opts.opset)
            graph = onnx.load(str(tmp / name), load_external_data=False).graph
            files[name] = {"inputs": _shapes(graph.input), "outputs": _shapes(graph.output),
                           "max_abs_diff": _parity(module, tmp / name, checks[name], names[name][0]),
                           "external_data": (tmp / f"{name}.data").is_file()}
        tok_dir = confined_dir(tmp, TOKENIZER_DIR, create=True)
        tok_files = tokenizer_files(tokenizer)
        for fname, text in tok_files.items():
            atomic_write_bytes(tok_dir / fname, text.encode("utf-8"))
        for name in list(files):
            files[name]["sha256"] = file_sha256(tmp / name)
            if files[name]["external_data"]:
                files[name]["data_sha256"] = file_sha256(tmp / f"{name}.data")
        manifest = {
            "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "opset": opts.opset,
            "torch": torch.__version__, "onnx": onnx.__version__,
            "model": _identity(src, meta, model),
            "levels": list(model.levels), "embed_dim": int(model.embed_dim),
            # what a head trained by `hvl adapt` on the torch model checks (hvl predict --onnx --head)
            "space_fingerprints": {lv: space_fingerprint(model, lv) for lv in model.levels},
            "frame_dim": int(model.video.dim), "text_dim": int(model.text.dim), "max_frames": max_frames,
            "preprocess": pre.model_dump(mode="json"),
            "image_size": meta.get("image_size"), "schedule": meta.get("schedule"),
            "tokenizer": {"folder": TOKENIZER_DIR, "files": sorted(tok_files),
                          "sha256": {f: file_sha256(tok_dir / f) for f in sorted(tok_files)}, **text_settings},
            "files": files,
            "export_seconds": round(time.perf_counter() - started, 1),
        }
        write_json(tmp / MANIFEST, manifest)
    return manifest


def format_export(manifest: dict[str, Any], out: str | Path) -> str:
    """One line per graph (its inputs and the parity measured at export), then where the export is."""
    lines = []
    for name, f in manifest["files"].items():
        ins = ", ".join(f"{i['name']} {i['shape']}" for i in f["inputs"])
        lines.append(f"{name:<18} {ins:<48} max |onnxruntime - torch| {f['max_abs_diff']:.2e}")
    lines.append(f"levels {manifest['levels']}, opset {manifest['opset']}; `hvl predict --onnx {out}` runs on it")
    return "\n".join(lines)
