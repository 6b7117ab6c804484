"""Image-text pairs from one local transformers directory: ``CLIPModel``, ``SiglipModel``, or separate
``CLIPVisionModelWithProjection`` / ``CLIPTextModelWithProjection`` towers (vision directory + ``text_path``).

Each is used with its own pooling and projection, as its ``get_image_features`` / ``get_text_features``:
CLIP: vision CLS → ``post_layernorm`` → ``visual_projection``; text EOS → ``text_projection``.
SigLIP: the vision attention-pooling head; the text's last token → ``head`` (texts padded to the
model's ``max_position_embeddings``, as SigLIP was trained); ``logit_bias`` and a sigmoid loss.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data.transforms import Preprocess
from ..errors import HVLInputError
from ..io import read_json
from .backbones import Backbone, enable_checkpointing, tokenizer_files, tokenizer_from_files

__all__ = ["HFBackbone", "load"]

# model_type -> (vision tower attribute, vision projection, text tower, text projection)
FAMILIES = {
    "clip": ("vision_model", "visual_projection", "text_model", "text_projection"),
    "siglip": ("vision_model", None, "text_model", None),
}
TOWERS = {"clip_vision_model": "clip_text_model", "siglip_vision_model": "siglip_text_model"}


def _pooled(out: Any) -> Tensor:
    """transformers 5.x returns ``BaseModelOutputWithPooling``, 4.x a tensor."""
    return out if isinstance(out, Tensor) else out.pooler_output


def _read_config(path: Path) -> dict[str, Any]:
    cfg = path / "config.json"
    if not cfg.is_file():
        raise HVLInputError(f"--model {path}: no config.json; point --model at a transformers model directory "
                            "(save_pretrained / a downloaded hub snapshot)")
    return read_json(cfg, what="a transformers model config", fix="copy config.json from the model's hub snapshot")


def _refuse_remote_code(path: Path, cfg: dict[str, Any], trust_remote_code: bool) -> None:
    if cfg.get("auto_map") and not trust_remote_code:
        raise HVLInputError(f"{path}/config.json: field 'auto_map' asks to run code shipped with the model; hvl "
                            "never does that because a file says so. Read the code, then pass --trust-remote-code")


def _preprocess(path: Path) -> Preprocess:
    f = path / "preprocessor_config.json"
    if not f.is_file():
        raise HVLInputError(f"--model {path}: no preprocessor_config.json; hvl takes the model's resize, crop and "
                            "mean/std from it (copy it from the model's hub snapshot)")
    return Preprocess.from_image_processor(read_json(f, what="a transformers image processor config",
                                                     fix="copy it from the model's hub snapshot"))


def _layers(tower: nn.Module) -> list[nn.Module]:
    enc = getattr(tower, "encoder", None)
    layers = getattr(enc, "layers", None) or getattr(enc, "layer", None)
    if layers is None:
        raise HVLInputError(f"{type(tower).__name__}: no encoder layers found to lock/unlock")
    return list(layers)


def _lock_tower(modules: list[nn.Module], layers: list[nn.Module], unlocked: int | None) -> None:
    """All of ``modules`` frozen except the last ``unlocked`` layers and what comes after them."""
    if unlocked is None:
        return
    for m in modules:
        m.requires_grad_(unlocked > 0)
    if unlocked <= 0:
        return
    for m in modules:
        m.requires_grad_(False)
    keep = {id(p) for layer in layers[len(layers) - unlocked:] for p in layer.parameters()}
    after: set[int] = set()
    for m in modules:  # post-layernorm, pooling heads, projections: everything not in embeddings / early layers
        for name, p in m.named_parameters():
            if "embeddings" not in name and "encoder.layer" not in name and "pre_layrnorm" not in name:
                after.add(id(p))
    for m in modules:
        for p in m.parameters():
            if id(p) in keep or id(p) in after:
                p.requires_grad_(True)


class HFBackbone(Backbone):
    def __init__(self, kind: str, vision: nn.Module, vision_proj: nn.Module | None, text: nn.Module,
                 text_proj: nn.Module | None, tokenizer: Any, preprocess: Preprocess, logit_scale: float,
                 logit_bias: float | None, embed_dim: int, spec: dict[str, Any], pad_to: int | None = None,
                 hf_models: list[Any] | None = None):
        super().__init__()
        self._hf = hf_models or []  # the PreTrainedModels the towers belong to (a plain list: not registered twice)
        self.kind, self.preprocess, self.embed_dim = kind, preprocess, embed_dim
        self.vision, self.vision_proj = vision, vision_proj if vision_proj is not None else nn.Identity()
        self.text, self.text_proj = text, text_proj if text_proj is not None else nn.Identity()
        self.tokenizer, self.pad_to = tokenizer, pad_to
        self.init_logit_scale, self.init_logit_bias = logit_scale, logit_bias
        self._spec = spec

    def image_features(self, pixels: Tensor) -> Tensor:
        return self.vision_proj(_pooled(self.vision(pixel_values=pixels)))

    def tokenize(self, texts: list[str]) -> dict[str, Tensor]:
        # texts longer than the model's position table are truncated, as its processor does (CLIP: 77 tokens)
        limit = getattr(getattr(self.text, "config", None), "max_position_embeddings", None) or 77
        kw = (dict(padding="max_length", max_length=self.pad_to) if self.pad_to
              else dict(padding=True, max_length=min(limit, self.tokenizer.model_max_length)))
        batch = self.tokenizer(texts, truncation=True, return_tensors="pt", **kw)
        return {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}

    def text_features(self, texts: list[str]) -> Tensor:
        batch = self.tokenize(texts)
        if self.kind == "siglip":
            batch.pop("attention_mask", None)  # SigLIP was trained without one (its processor passes none)
        return self.text_proj(_pooled(self.text(**batch)))

    def text_token_features(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        batch = self.tokenize(texts)
        mask = batch["attention_mask"].bool()
        if self.kind == "siglip":
            batch.pop("attention_mask")
        h = self.text(**batch).last_hidden_state
        if self.kind == "clip":
            h = self.text.final_layer_norm(h) if hasattr(self.text, "final_layer_norm") else h
        return self.text_proj(h), mask

    def lock(self, image_unlocked: int | None = None, text_unlocked: int | None = None) -> None:
        _lock_tower([self.vision, self.vision_proj], _layers(self.vision), image_unlocked)
        _lock_tower([self.text, self.text_proj], _layers(self.text), text_unlocked)

    def gradient_checkpointing(self) -> None:
        for m in self._hf:
            enable_checkpointing(m)

    def spec(self) -> dict[str, Any]:
        return self._spec


def _build(configs: dict[str, dict[str, Any]], tokenizer: Any, preprocess: Preprocess,
           weights: dict[str, str] | None, trust_remote_code: bool = False) -> HFBackbone:
    """``configs``: {"model": cfg} for a joint model, or {"vision": cfg, "text": cfg} for two towers; ``weights``:
    the directories to load pretrained weights from (None: random init, weights come from a checkpoint)."""
    from transformers import AutoConfig, AutoModel, CLIPTextModelWithProjection, CLIPVisionModelWithProjection

    def make(cfg: dict[str, Any], cls: Any, key: str) -> Any:
        if weights is not None:
            return cls.from_pretrained(weights[key], local_files_only=True, trust_remote_code=trust_remote_code)
        c = dict(cfg)
        return cls.from_config(AutoConfig.for_model(c.pop("model_type"), **c))

    if "model" in configs:
        mt = configs["model"]["model_type"]
        if mt not in FAMILIES:
            raise HVLInputError(f"--model: model_type '{mt}' is not an image-text model hvl knows; use a CLIP or "
                                f"SigLIP directory (one of {sorted(FAMILIES)}) or separate vision/text towers")
        model = make(configs["model"], AutoModel, "model")
        va, vp, ta, tp = FAMILIES[mt]
        scale = float(model.logit_scale.detach().exp()) if hasattr(model, "logit_scale") else 100.0
        bias = float(model.logit_bias.detach()) if getattr(model, "logit_bias", None) is not None else None
        pad = model.config.text_config.max_position_embeddings if mt == "siglip" else None
        dim = int(getattr(model.config, "projection_dim", 0) or model.config.vision_config.hidden_size)
        return HFBackbone(mt, getattr(model, va), getattr(model, vp) if vp else None, getattr(model, ta),
                          getattr(model, tp) if tp else None, tokenizer, preprocess, scale, bias, dim,
                          _spec(configs, tokenizer, preprocess), pad, [model])
    vt = configs["vision"]["model_type"]
    if vt != "clip_vision_model" or configs["text"]["model_type"] != "clip_text_model":
        raise HVLInputError(f"--model: separate towers must be CLIPVisionModelWithProjection + "
                            f"CLIPTextModelWithProjection (got {vt} + {configs['text']['model_type']})")
    vision = make(configs["vision"], CLIPVisionModelWithProjection, "vision")
    text = make(configs["text"], CLIPTextModelWithProjection, "text")
    dim = int(vision.config.projection_dim)
    if int(text.config.projection_dim) != dim:
        raise HVLInputError(f"--model / --text-model: projection_dim {dim} and {text.config.projection_dim} differ: "
                            "the towers are not one joint space")
    return HFBackbone("clip", vision.vision_model, vision.visual_projection, text.text_model, text.text_projection,
                      tokenizer, preprocess, 100.0, None, dim, _spec(configs, tokenizer, preprocess),
                      hf_models=[vision, text])


def _spec(configs: dict[str, dict[str, Any]], tokenizer: Any, preprocess: Preprocess) -> dict[str, Any]:
    return {"kind": "hf", "configs": configs, "tokenizer_files": tokenizer_files(tokenizer),
            "preprocess": preprocess.model_dump(mode="json")}


def from_spec(spec: dict[str, Any]) -> HFBackbone:
    """Rebuild a backbone from what a checkpoint stored (random weights: the checkpoint's state dict fills them)."""
    return _build(spec["configs"], tokenizer_from_files(spec["tokenizer_files"]),
                  Preprocess.model_validate(spec["preprocess"]), weights=None)


def load(path: str, text_path: str | None = None, trust_remote_code: bool = False, **_: Any) -> HFBackbone:
    from transformers import AutoTokenizer

    root = Path(path)
    cfg = _read_config(root)
    _refuse_remote_code(root, cfg, trust_remote_code)
    if cfg.get("model_type") in TOWERS:
        if not text_path:
            raise HVLInputError(f"--model {path} is a vision tower ({cfg['model_type']}); give its text tower with "
                                "--text-model <dir> (backbone.text_path in a recipe)")
        tcfg = _read_config(Path(text_path))
        _refuse_remote_code(Path(text_path), tcfg, trust_remote_code)
        configs, weights, tok_dir = {"vision": cfg, "text": tcfg}, {"vision": path, "text": text_path}, text_path
    else:
        configs, weights, tok_dir = {"model": cfg}, {"model": path}, text_path or path
    tokenizer = AutoTokenizer.from_pretrained(tok_dir, local_files_only=True, trust_remote_code=trust_remote_code)
    with torch.no_grad():
        return _build(configs, tokenizer, _preprocess(root), weights, trust_remote_code)
