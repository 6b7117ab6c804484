"""Loading trained models without executing pickled code (``torch.load(weights_only=True)``)."""
from __future__ import annotations

import hashlib
import importlib
import inspect
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins import TorchCheckpointIO

from ..errors import HVLInputError
from ..io import atomic_writer, hash_file
from .spec import parse_model_spec


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise HVLInputError(f"{path}: checkpoint not found; train one with `hvl fit` or pass --ckpt <file>")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 (whatever torch.load raises on a bad file is one error naming it)
        raise HVLInputError(f"{path}: not a loadable checkpoint ({str(e).splitlines()[0][:200]})") from None


def _asks_remote_code(hparams: dict[str, Any]) -> list[str]:
    """The hyperparameters that would switch on ``trust_remote_code``."""
    found = []
    for name, sub in (("text_encoder", hparams.get("text_encoder")), ("backbone", hparams.get("backbone")),
                      ("video_encoder.frame_encoder", (hparams.get("video_encoder") or {}).get("frame_encoder"))):
        if isinstance(sub, dict) and sub.get("trust_remote_code"):
            found.append(f"{name}.trust_remote_code")
    return found


# The sizes a checkpoint's hyperparameters give the model it builds, and the largest any hvl model has: a shared
# checkpoint must not make loading allocate what no hvl model needs (embed_dim 1e9: 64 GB for one layer). "[]": each
# entry of a list.
MAX_WIDTH = 16384
SIZE_FIELDS: dict[str, tuple[int, int]] = {
    "embed_dim": (1, MAX_WIDTH), "head_hidden": (1, MAX_WIDTH), "text_encoder.max_length": (1, 65536),
    "video_encoder.temporal_layers": (0, 64), "video_encoder.temporal_heads": (1, 256),
    "video_encoder.temporal_windows[]": (1, 65536), "video_encoder.frame_encoder.widths[]": (1, MAX_WIDTH),
    "video_encoder.frame_encoder.convs_per_stage": (1, 64), "video_encoder.frame_encoder.in_channels": (1, 64),
    "video_encoder.frame_encoder.grid": (0, 64),
    "pose.points": (1, 65536), "pose.channels": (1, 64), "pose.dim": (1, MAX_WIDTH), "pose.layers": (0, 64),
    "pose.heads": (1, 256),
}
MAX_CONFIG_INT = 2**20  # any integer of a transformers config a checkpoint builds with random weights


def _values(tree: Any, field: str) -> list[tuple[str, Any]]:
    """``(name, value)`` of ``field`` (dotted, ``[]`` for each list entry) in the nested dicts ``tree``."""
    found = [("", tree)]
    for part in field.split("."):
        key, each = part.removesuffix("[]"), part.endswith("[]")
        found = [(f"{name}.{key}".lstrip("."), node[key]) for name, node in found
                 if isinstance(node, dict) and node.get(key) is not None]
        if each:
            found = [(f"{name}[{i}]", v) for name, seq in found for i, v in enumerate(seq if isinstance(seq, list) else
                                                                                     [seq])]
    return found


def _config_ints(tree: Any, name: str) -> list[tuple[str, Any]]:
    if isinstance(tree, dict):
        return [x for k, v in tree.items() for x in _config_ints(v, f"{name}.{k}")]
    if isinstance(tree, list):
        return [x for i, v in enumerate(tree) for x in _config_ints(v, f"{name}[{i}]")]
    return [(name, tree)] if isinstance(tree, int) and not isinstance(tree, bool) else []


def check_sizes(path: str | Path, hparams: dict[str, Any], meta: dict[str, Any]) -> None:
    """Refuse, before anything is built, a size no hvl model has (:data:`SIZE_FIELDS`, and the integers of the
    transformers configs it builds with random weights), naming the field."""
    fix = "The checkpoint is damaged or not hvl's: use the file `hvl fit` wrote, or re-train"
    for field, (lo, hi) in SIZE_FIELDS.items():
        for name, value in _values(hparams, field):
            if type(value) is not int or not lo <= value <= hi:
                raise HVLInputError(f"{path}: field 'hyper_parameters.{name}' is {str(value)[:40]}; a size must be a "
                                    f"whole number from {lo} to {hi}. {fix}")
    configs = [(f"hyper_parameters.{n}", c) for n, c in _values(hparams, "video_encoder.frame_encoder.config")]
    configs += [(f"hvl.{n}", c) for n, c in _values(meta, "backbone_spec.configs")]
    for where, config in configs:
        for name, value in _config_ints(config, where):
            if abs(value) > MAX_CONFIG_INT:
                raise HVLInputError(f"{path}: field '{name}' is {str(value)[:40]}, more than any size of a model "
                                    f"config ({MAX_CONFIG_INT}). {fix}")


def load_model(path: str | Path, map_location: str | torch.device = "cpu", trust_remote_code: bool = False):
    """The LightningModule stored in ``path`` (its class must live in ``hvl``) and hvl's metadata.

    A checkpoint never switches on ``trust_remote_code`` by itself: one whose hyperparameters ask for it is
    refused unless the caller passes ``trust_remote_code=True`` (the command line's ``--trust-remote-code``)."""
    from .module import HierarchicalVLM

    ckpt = read_checkpoint(path, map_location)
    meta = ckpt.get("hvl", {}) if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict) or not isinstance(ckpt.get("hyper_parameters", {}), dict):
        raise HVLInputError(f"{path}: fields 'hvl' / 'hyper_parameters' are not mappings; not an hvl checkpoint")
    meta = dict(meta)
    class_path = meta.get("class_path", "hvl.core.models.module.HierarchicalVLM")
    mod, _, name = str(class_path).rpartition(".")
    if not mod.startswith("hvl."):
        raise HVLInputError(f"{path}: model class '{mod}.{name}' is outside hvl; refusing to import it")
    try:
        cls = getattr(importlib.import_module(mod), name)
    except (ImportError, AttributeError):
        raise HVLInputError(f"{path}: field 'hvl.class_path' names {str(class_path)[:120]!r}, which this hvl does not "
                            "have; the checkpoint was written by another hvl version (install that one, or re-train)"
                            ) from None
    if not (isinstance(cls, type) and issubclass(cls, HierarchicalVLM)):
        raise HVLInputError(f"{path}: '{mod}.{name}' is not an hvl model")
    hparams = {k: v for k, v in ckpt.get("hyper_parameters", {}).items() if not k.startswith("_")}  # CLI bookkeeping
    known = set(inspect.signature(cls.__init__).parameters) - {"self", "prebuilt_backbone"}
    unknown = sorted(str(k)[:60] for k in hparams if k not in known)
    if unknown:
        raise HVLInputError(f"{path}: field 'hyper_parameters' has {unknown[:5]}, which {name} does not take; the "
                            "checkpoint was written by another hvl version (install that one, or re-train)")
    asks = _asks_remote_code(hparams)
    if asks and not trust_remote_code:
        raise HVLInputError(f"{path}: its hyperparameters set {', '.join(asks)}: loading it would run code shipped "
                            "with a model, and a checkpoint cannot decide that. Read that code, then pass "
                            "--trust-remote-code")
    check_sizes(path, hparams, meta)
    if "backbone_spec" in meta:
        from .backbones import backbone_from_spec

        hparams["prebuilt_backbone"] = backbone_from_spec(meta["backbone_spec"], source=path)
    try:
        model = cls(**hparams)
    except TypeError as e:  # a nested field (text_encoder, video_encoder, ...) with a key its class does not take
        raise HVLInputError(f"{path}: its hyperparameters do not build {name} ({str(e).splitlines()[0][:200]}); the "
                            "checkpoint was written by another hvl version (install that one, or re-train)") from None
    except (RuntimeError, MemoryError) as e:  # sizes within the limits that together exceed this machine
        raise HVLInputError(f"{path}: its hyperparameters build a {name} larger than this machine's memory "
                            f"({str(e).splitlines()[0][:200]}); the checkpoint is damaged or not hvl's: use the file "
                            "`hvl fit` wrote, or re-train") from None
    model.on_load_checkpoint(ckpt)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, KeyError, TypeError) as e:  # sizes that do not match the weights stored beside them
        raise HVLInputError(f"{path}: its weights do not fit the model its hyperparameters build "
                            f"({' '.join(str(e).split())[:300]}); the checkpoint is damaged or not hvl's: use the "
                            "file `hvl fit` wrote, or re-train") from None
    meta.setdefault("image_size", ckpt.get("datamodule_hyper_parameters", {}).get("image_size"))
    meta.setdefault("schedule", ckpt.get("datamodule_hyper_parameters", {}).get("schedule"))  # frames per level
    meta.setdefault("source", str(path))
    return model.to(map_location).eval(), meta


def load_pretrained(spec: str, text_model: str | None = None, map_location: str | torch.device = "cpu",
                    trust_remote_code: bool = False, levels: list[str] | None = None):
    """A pretrained image-text model used as it is (no hvl training): every level's space is the model's own.

    This is the no-training baseline (CLIP meets GamePhysics) that a fine-tuned hvl model must beat."""
    from .module import HierarchicalVLM

    model = HierarchicalVLM(backbone={"path": spec, "text_path": text_model, "image_unlocked": 0, "text_unlocked": 0,
                                      "trust_remote_code": trust_remote_code}, levels=levels)
    pre = model.preprocess
    meta = {"source": spec, "pretrained": spec, "text_model": text_model, "preprocess": pre.model_dump(mode="json"),
            "image_size": pre.output_size[0], "schedule": None}
    return model.to(map_location).eval(), meta


def load_for_eval(ckpt: str | Path | None = None, model: str | None = None, text_model: str | None = None,
                  trust_remote_code: bool = False, map_location: str | torch.device | None = None):
    """``--ckpt`` (an hvl checkpoint) or ``--model`` (a pretrained model, used directly): exactly one."""
    if (ckpt is None) == (model is None):
        raise HVLInputError("give exactly one of --ckpt <hvl checkpoint> or --model <pretrained model directory>")
    if map_location is None:
        map_location = "cuda" if torch.cuda.is_available() else "cpu"
    if model is not None:
        return load_pretrained(model, text_model, map_location, trust_remote_code)
    return load_model(ckpt, map_location, trust_remote_code)


def preprocess_of(meta: dict[str, Any], image_size: int | None = None):
    """The frame preprocessing a loaded model needs: its backbone's, else the training data's square size."""
    from ..data.transforms import Preprocess

    if meta.get("preprocess"):
        return Preprocess.model_validate(meta["preprocess"])
    return Preprocess.square(int(image_size or meta.get("image_size") or 64))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written through :func:`~hvl.core.io.atomic_writer` (a temporary file, synced, renamed).

    A process killed mid-write leaves the previous ``last.ckpt`` intact instead of a
    truncated one that ``--ckpt_path last`` would then fail to resume from.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(path) as f:
            torch.save(checkpoint, f)


def fingerprint(source: str | Path) -> str:
    """sha256 of what a model's outputs depend on: a checkpoint file, or a model directory's config, weights and
    tokenizer / preprocessor files (``<kind>:<file>`` specs: the file)."""
    path = Path(parse_model_spec(source).path)
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and p.suffix in (".json", ".safetensors", ".bin", ".txt", ".model"))
    if not files:
        raise HVLInputError(f"{source}: no model files to fingerprint")
    h = hashlib.sha256()
    for f in files:
        if f != path:  # a directory: names count too; a file: its bytes alone (= sha256sum)
            h.update(str(f.relative_to(path)).encode())
        hash_file(h, f)
    return h.hexdigest()
