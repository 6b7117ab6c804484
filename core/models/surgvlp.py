"""CAMMA's published surgical video-language weights (SurgVLP, HecVL, PeskaVLP) as an hvl backbone.

All three share one architecture; only the weights differ (``SurgVLP.pth``, ``HecVL.pth``, ``PeskaVLP.pth``):

* vision: a torchvision-layout ResNet-50 without ``fc`` (``backbone_img.model.{conv1,bn1,layer1..layer4}.*``)
  → global average pool → ``backbone_img.global_embedder`` ``Linear(2048 → 768)``. Built from transformers'
  ``ResNetModel`` (v1.5: the stride sits in each bottleneck's 3×3 conv, as in torchvision) with a key mapping
  from the torchvision names, so hvl carries no ResNet of its own and needs no torchvision.
* text: Bio_ClinicalBERT (``backbone_text.model.*``); the sum of the last 4 hidden states, sub-word vectors
  summed into words up to and including the first ``[SEP]``, then the mean over all ``max_length`` (77)
  positions, the ones after ``[SEP]`` counting as zeros. No text projection.
* scores: ``100 · cos`` (no learnable scale); frames ``Resize((360, 640))`` (no aspect kept) →
  ``CenterCrop(224)`` → ImageNet mean/std.

The BERT weights: the checkpoint holds them and **the checkpoint wins** — they are the weights the model was
trained with. The local ``text_model`` directory (``--text-model``, e.g. a download of
``emilyalsentzer/Bio_ClinicalBERT``) gives only the config and the tokenizer; its weight files are never read.

Loading is strict: every checkpoint key is used and every model key filled, or one :class:`HVLInputError`
lists what is missing, unexpected or mis-shaped. The one exception is ``embeddings.position_ids``, a buffer
that transformers 4.30 (which saved these files) stored and newer versions no longer do.
"""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from ..errors import HVLInputError
from .backbones import Backbone, enable_checkpointing, tokenizer_files, tokenizer_from_files

__all__ = ["PREPROCESS", "SurgVLPBackbone", "checkpoint_keys", "from_spec", "load", "read_state_dict"]

PREPROCESS = Preprocess(resize="fixed", size=(360, 640), crop=224, resample="bilinear",  # torchvision's default
                        mean=IMAGENET_MEAN, std=IMAGENET_STD)
MAX_LENGTH = 77            # the published tokenizer call: padding and truncation to 77 tokens
LAST_N_LAYERS = 4
IMG, EMB, TXT = "backbone_img.model.", "backbone_img.global_embedder.", "backbone_text.model."
IGNORED = {TXT + "embeddings.position_ids"}  # stored by transformers 4.30, a non-persistent buffer since
TEXT_MODEL_HELP = ("--text-model <dir> (backbone.text_path in a recipe): a local Bio_ClinicalBERT directory with "
                   "config.json and vocab.txt, e.g. a download of emilyalsentzer/Bio_ClinicalBERT; only its config "
                   "and tokenizer are used, the BERT weights come from the checkpoint")


def resnet50_config() -> Any:
    """transformers' ResNet-50, pinned to torchvision's layout: 7×7/2 stem + max-pool, first stage at stride 1,
    the downsampling stride in each bottleneck's 3×3 conv (v1.5), not in its first 1×1."""
    from transformers import ResNetConfig

    return ResNetConfig(num_channels=3, embedding_size=64, hidden_sizes=[256, 512, 1024, 2048], depths=[3, 4, 6, 3],
                        layer_type="bottleneck", hidden_act="relu", downsample_in_first_stage=False,
                        downsample_in_bottleneck=False)


_CONV = re.compile(r"encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.(convolution|normalization)\.(\w+)$")
_SHORT = re.compile(r"encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.(convolution|normalization)\.(\w+)$")
_STEM = re.compile(r"embedder\.embedder\.(convolution|normalization)\.(\w+)$")


def torchvision_name(hf_key: str) -> str:
    """A transformers ``ResNetModel`` state-dict key → the torchvision ``resnet50`` key holding the same tensor."""
    if m := _STEM.match(hf_key):
        return ("conv1." if m[1] == "convolution" else "bn1.") + m[2]
    if m := _CONV.match(hf_key):
        kind = "conv" if m[4] == "convolution" else "bn"
        return f"layer{int(m[1]) + 1}.{m[2]}.{kind}{int(m[3]) + 1}.{m[5]}"
    if m := _SHORT.match(hf_key):
        return f"layer{int(m[1]) + 1}.{m[2]}.downsample.{0 if m[3] == 'convolution' else 1}.{m[4]}"
    raise KeyError(f"no torchvision name for ResNetModel key {hf_key!r}")


class SurgVLPBackbone(Backbone):
    """ResNet-50 + ``global_embedder`` and Bio_ClinicalBERT with SurgVLP's text pooling, in one 768-d space."""

    kind = "surgvlp"
    init_logit_scale = 100.0
    init_logit_bias = None

    def __init__(self, bert_config: Any, tokenizer: Any, embed_dim: int = 768, max_length: int = MAX_LENGTH,
                 source: str = ""):
        from transformers import BertModel, ResNetModel

        super().__init__()
        self.preprocess, self.embed_dim, self.max_length, self.source = PREPROCESS, embed_dim, max_length, source
        self.resnet = ResNetModel(resnet50_config())
        self.global_embedder = nn.Linear(2048, embed_dim)
        self.bert = BertModel(bert_config, add_pooling_layer=True)  # the pooler is stored in the checkpoint...
        self.bert.pooler.requires_grad_(False)  # ...but not used by the pooling: never a parameter without grad
        self.tokenizer = tokenizer
        vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        # sub-word continuation pieces ("##ing") join the word before them
        self.register_buffer("_continues", torch.tensor([t.startswith("##") for t in vocab]), persistent=False)

    # ------------------------------------------------------------------ vision
    def image_features(self, pixels: Tensor) -> Tensor:
        pooled = self.resnet(pixel_values=pixels).pooler_output.flatten(1)  # AdaptiveAvgPool2d(1): [N, 2048]
        return self.global_embedder(pooled)

    # ------------------------------------------------------------------ text
    def tokenize(self, texts: list[str]) -> dict[str, Tensor]:
        batch = self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=self.max_length,
                               return_tensors="pt")
        return {k: batch[k].to(self.device) for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}

    def word_features(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Per-word vectors ``[N, L, D]`` (sum of the last 4 hidden states, sub-words summed into their word,
        ``[CLS]`` and the first ``[SEP]`` words of their own) and the mask of word positions ``[N, L]``."""
        ids = batch["input_ids"]
        out = self.bert(**batch, output_hidden_states=True)
        hidden = torch.stack(out.hidden_states[-LAST_N_LAYERS:]).sum(0)  # [N, L, D]
        n, length = ids.shape
        pos = torch.arange(length, device=ids.device).expand(n, length)
        is_sep = ids == self.tokenizer.sep_token_id
        # up to and including the first [SEP]; a row without one (cannot come from the tokenizer) keeps its tokens
        last = torch.where(is_sep.any(1), is_sep.int().argmax(1), batch["attention_mask"].sum(1) - 1)
        keep = pos <= last[:, None]
        starts = ~self._continues[ids.clamp(max=len(self._continues) - 1)]
        starts[:, 0] = True
        word = starts.long().cumsum(1) - 1  # word index of every token
        words = hidden.new_zeros(hidden.shape).scatter_add_(
            1, word.unsqueeze(-1).expand_as(hidden), hidden * keep.unsqueeze(-1))
        n_words = word.gather(1, last[:, None]) + 1
        return words, pos < n_words

    def text_features(self, texts: list[str]) -> Tensor:
        words, _ = self.word_features(self.tokenize(texts))
        return words.sum(1) / words.shape[1]  # mean over all max_length positions, the padding ones being zero

    def text_token_features(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        return self.word_features(self.tokenize(texts))

    # ------------------------------------------------------------------ fine-tuning
    def lock(self, image_unlocked: int | None = None, text_unlocked: int | None = None) -> None:
        """Vision groups are the stem and the four stages (``layer1..layer4``): the last ``image_unlocked`` stay
        trainable with ``global_embedder``; frozen stages keep their BatchNorm statistics (eval mode).
        Text: the last ``text_unlocked`` BERT layers (embeddings frozen unless all layers are unlocked)."""
        if image_unlocked is not None:
            groups = [self.resnet.embedder, *self.resnet.encoder.stages]
            n = max(0, min(image_unlocked, len(groups)))
            frozen = groups[: len(groups) - n]
            for g in groups:
                g.requires_grad_(g not in frozen)
            self.global_embedder.requires_grad_(image_unlocked > 0)
            self.train(self.training)  # Backbone.train: frozen stages (their BatchNorm too) back to eval
        if text_unlocked is not None:
            layers = list(self.bert.encoder.layer)
            n = max(0, min(text_unlocked, len(layers)))
            self.bert.embeddings.requires_grad_(n == len(layers))
            for i, layer in enumerate(layers):
                layer.requires_grad_(i >= len(layers) - n)

    def gradient_checkpointing(self) -> None:
        enable_checkpointing(self.bert)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "bert_config": self.bert.config.to_dict(), "embed_dim": self.embed_dim,
                "max_length": self.max_length, "tokenizer_files": tokenizer_files(self.tokenizer),
                "preprocess": self.preprocess.model_dump(mode="json"), "source": self.source}

    # ------------------------------------------------------------------ published names
    def published_state_dict(self) -> dict[str, Tensor]:
        """This backbone's weights under the published checkpoint's key names (what :func:`load` reads)."""
        out = {IMG + torchvision_name(k): v for k, v in self.resnet.state_dict().items()}
        out.update({EMB + k: v for k, v in self.global_embedder.state_dict().items()})
        out.update({TXT + k: v for k, v in self.bert.state_dict().items()})
        return out

    def load_published(self, state: dict[str, Tensor], where: str = "checkpoint") -> None:
        """Fill every weight from a published state dict, strictly (see the module docstring)."""
        targets = self._targets()
        missing = sorted(set(targets) - set(state))
        unexpected = sorted(k for k in state if k not in targets and k not in IGNORED)
        shapes = [f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(t.shape)}"
                  for k, t in targets.items() if k in state and tuple(state[k].shape) != tuple(t.shape)]
        if missing or unexpected or shapes:
            raise HVLInputError(_mismatch_message(where, missing, unexpected, shapes))
        with torch.no_grad():
            for k, t in targets.items():
                t.copy_(state[k])

    def _targets(self) -> dict[str, Tensor]:
        """Published key → the tensor of this module it fills (parameters and persistent buffers alike)."""
        out = {IMG + torchvision_name(k): v for k, v in self.resnet.state_dict(keep_vars=True).items()}
        out.update({EMB + k: v for k, v in self.global_embedder.state_dict(keep_vars=True).items()})
        out.update({TXT + k: v for k, v in self.bert.state_dict(keep_vars=True).items()})
        return out


def _listing(keys: list[str], limit: int = 12) -> str:
    shown = "\n".join(f"    {k}" for k in keys[:limit])
    return shown + (f"\n    ... and {len(keys) - limit} more" if len(keys) > limit else "")


def _mismatch_message(where: str, missing: list[str], unexpected: list[str], shapes: list[str]) -> str:
    parts = [f"{where}: not a SurgVLP / HecVL / PeskaVLP state dict hvl can load strictly"]
    if missing:
        parts.append(f"  missing keys ({len(missing)}; the model needs them and the checkpoint lacks them — a "
                     f"truncated or different model):\n{_listing(missing)}")
    if unexpected:
        parts.append(f"  unexpected keys ({len(unexpected)}; in the checkpoint but not part of the published "
                     f"architecture — another model, or weights hvl would silently drop):\n{_listing(unexpected)}")
    if shapes:
        parts.append(f"  wrong shapes ({len(shapes)}; a text tower other than Bio_ClinicalBERT-base, or another "
                     f"vision width: check --text-model's config.json):\n{_listing(shapes)}")
    parts.append(f"  expected keys under {IMG}* (torchvision ResNet-50 without fc), {EMB}{{weight,bias}} and "
                 f"{TXT}* (BERT); '{next(iter(IGNORED))}' is ignored")
    return "\n".join(parts)


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """A raw state dict, or a training checkpoint ``{epoch, state_dict, optimizer, scheduler}``; a DDP
    ``module.`` prefix on every key is dropped. Loaded with ``weights_only=True`` (no arbitrary pickles)."""
    path = Path(path)
    if not path.is_file():
        raise HVLInputError(f"{path}: checkpoint not found (SurgVLP.pth / HecVL.pth / PeskaVLP.pth from CAMMA)")
    with path.open("rb") as f:
        head = f.read(4)
    if not (zipfile.is_zipfile(path) or head[:1] == b"\x80"):  # torch.save writes a zip (or, before 1.6, a pickle)
        raise HVLInputError(f"{path}: not a PyTorch checkpoint (torch.save output); expected SurgVLP.pth, HecVL.pth "
                            "or PeskaVLP.pth as CAMMA released them")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as e:
        why = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        raise HVLInputError(f"{path}: torch.load(weights_only=True) refused it ("
                            f"{'it pickles a ' + why[1] + ' object' if why else str(e).splitlines()[0][:160]}). "
                            "hvl loads only tensors: if you trust the file, extract its weights once with "
                            "torch.save(torch.load(p, weights_only=False)['state_dict'], 'weights.pth')") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        kind = type(obj).__name__ if not isinstance(obj, dict) else f"dict with keys {sorted(obj)[:6]}"
        raise HVLInputError(f"{path}: expected a state dict of tensors or {{'state_dict': ...}}, got a {kind}")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def checkpoint_keys(bert_config: Any, embed_dim: int = 768) -> dict[str, tuple[int, ...]]:
    """The published key names and shapes for a BERT config (what a converted file must contain)."""
    with torch.device("meta"):
        from transformers import BertModel, ResNetModel

        resnet = ResNetModel(resnet50_config()).state_dict()
        shapes = {IMG + torchvision_name(k): tuple(v.shape) for k, v in resnet.items()}
        shapes.update({EMB + "weight": (embed_dim, 2048), EMB + "bias": (embed_dim,)})
        shapes.update({TXT + k: tuple(v.shape) for k, v in BertModel(bert_config).state_dict().items()})
    return shapes


def _text_model(text_model: str | None, checkpoint: Path) -> tuple[Any, Any]:
    from transformers import AutoConfig, AutoTokenizer

    if not text_model:
        raise HVLInputError(f"surgvlp:{checkpoint} needs its text tower's config and tokenizer: pass "
                            f"{TEXT_MODEL_HELP}")
    root = Path(text_model)
    if not (root / "config.json").is_file():
        raise HVLInputError(f"--text-model {root}: no config.json; give {TEXT_MODEL_HELP}")
    cfg = AutoConfig.from_pretrained(root, local_files_only=True)
    if cfg.model_type != "bert":
        raise HVLInputError(f"{root / 'config.json'}: field 'model_type' is '{cfg.model_type}'; the published text "
                            "tower is a BERT (Bio_ClinicalBERT)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(root, local_files_only=True)
    except (OSError, ValueError) as e:
        raise HVLInputError(f"--text-model {root}: no tokenizer could be read ({str(e)[:160]}); the directory needs "
                            "vocab.txt (or tokenizer.json)") from None
    return cfg, tokenizer


def from_spec(spec: dict[str, Any]) -> SurgVLPBackbone:
    """Rebuild from what an hvl checkpoint stored (random weights: the checkpoint's state dict fills them)."""
    from transformers import BertConfig

    return SurgVLPBackbone(BertConfig(**spec["bert_config"]), tokenizer_from_files(spec["tokenizer_files"]),
                           spec["embed_dim"], spec["max_length"], spec.get("source", ""))


def load(path: str, text_model: str | None = None, text_path: str | None = None, **_: Any) -> SurgVLPBackbone:
    """``SurgVLP.pth`` / ``HecVL.pth`` / ``PeskaVLP.pth`` (+ the Bio_ClinicalBERT directory for config and
    tokenizer: ``text_model``, alias ``text_path``) → a :class:`SurgVLPBackbone` in eval mode."""
    ckpt = Path(path)
    state = read_state_dict(ckpt)  # before the text model: a wrong file is named first
    cfg, tokenizer = _text_model(text_model or text_path, ckpt)
    if cfg.num_hidden_layers < LAST_N_LAYERS:
        raise HVLInputError(f"--text-model {text_model or text_path}: config has {cfg.num_hidden_layers} layers; "
                            f"the published pooling sums the last {LAST_N_LAYERS}")
    emb = state.get(EMB + "weight")
    embed_dim = int(emb.shape[0]) if emb is not None and emb.ndim == 2 else 768
    if embed_dim != cfg.hidden_size:
        raise HVLInputError(f"{ckpt}: global_embedder maps to {embed_dim}-d but --text-model's BERT is "
                            f"{cfg.hidden_size}-d (config.json hidden_size); image and text must share one space")
    rows = state.get(TXT + "embeddings.word_embeddings.weight")
    if rows is not None and len(tokenizer) > rows.shape[0]:
        raise HVLInputError(f"--text-model {text_model or text_path}: its tokenizer has {len(tokenizer)} tokens but "
                            f"the checkpoint's BERT only {rows.shape[0]} word embeddings: not the tokenizer it was "
                            "trained with")
    model = SurgVLPBackbone(cfg, tokenizer, embed_dim, MAX_LENGTH, source=str(ckpt))
    model.load_published(state, where=str(ckpt))
    return model.eval()
