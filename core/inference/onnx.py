"""An ``hvl export onnx`` folder as a model: :class:`OnnxModel` embeds frames and texts with onnxruntime and has
the methods zero-shot scoring calls on a torch model (``embed_frames``, ``embed_video``, ``embed_text``,
``video.frames``, ``video_heads``, ``embed_dim``, ``device``), so ``hvl predict --onnx DIR`` and
:func:`hvl.core.evaluation.zeroshot.classify.predict` run on it unchanged.

Everything in the folder is data: the manifest names only the graphs an export writes and the tokenizer's own file
names, each graph and each tokenizer file is checked against the sha256 the export recorded (a file added to the
tokenizer folder is refused too), and the tokenizer is read without running code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import HVLInputError
from ..extras import require
from .onnx_export import FILES, MANIFEST, MANIFEST_FORMAT, MANIFEST_VERSION, TOKENIZER_DIR, tokenize

__all__ = ["OnnxModel", "load_onnx", "read_manifest"]

FIX = "re-run `hvl export onnx` into a new folder"


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The export's manifest, refused (one :class:`HVLInputError` naming the field) unless it is hvl's."""
    from ..io import read_json
    from ..models.backbones import check_tokenizer_files

    folder = Path(folder)
    if not folder.is_dir():
        raise HVLInputError(f"--onnx {folder}: not a folder; give the folder `hvl export onnx --out` wrote")
    path = folder / MANIFEST
    if not path.is_file():
        raise HVLInputError(f"--onnx {folder}: no {MANIFEST}, so not an hvl ONNX export; {FIX}")
    m = read_json(path, what="an hvl ONNX export's manifest", fix=FIX)
    if m.get("format") != MANIFEST_FORMAT:
        raise HVLInputError(f"{path}: field 'format' is {str(m.get('format'))[:40]!r}, not {MANIFEST_FORMAT!r}; {FIX}")
    if m.get("version") != MANIFEST_VERSION:
        raise HVLInputError(f"{path}: field 'version' is {str(m.get('version'))[:20]}; this hvl reads version "
                            f"{MANIFEST_VERSION} ({FIX}, or install the hvl that wrote it)")
    files = m.get("files")
    if not isinstance(files, dict) or set(files) != set(FILES) or not all(isinstance(v, dict) for v in files.values()):
        raise HVLInputError(f"{path}: field 'files' must describe exactly {list(FILES)}; {FIX}")
    levels = m.get("levels")
    if not isinstance(levels, list) or not levels or not all(isinstance(lv, str) for lv in levels):
        raise HVLInputError(f"{path}: field 'levels' must be a list of level names; {FIX}")
    tok = m.get("tokenizer")
    if not isinstance(tok, dict) or tok.get("padding") not in ("longest", "max_length") \
            or type(tok.get("max_length")) is not int or tok["max_length"] < 1 or not isinstance(tok.get("files"), list):
        raise HVLInputError(f"{path}: field 'tokenizer' must give padding (longest / max_length), max_length and files; "
                            f"{FIX}")
    check_tokenizer_files({str(n): "" for n in tok["files"]}, path)
    sums = tok.get("sha256")
    if not isinstance(sums, dict) or set(sums) != set(tok["files"]) or not all(isinstance(v, str) for v in sums.values()):
        raise HVLInputError(f"{path}: field 'tokenizer.sha256' must give the sha256 of each of tokenizer.files; {FIX}")
    if type(m.get("embed_dim")) is not int:
        raise HVLInputError(f"{path}: field 'embed_dim' must be a whole number; {FIX}")
    return m


def _verified(folder: Path, manifest: dict[str, Any], name: str) -> Path:
    """``folder/name``, a regular file whose sha256 is the one the export recorded."""
    from ..io import file_sha256

    entry = manifest["files"][name]
    for fname, key in ((name, "sha256"), (f"{name}.data", "data_sha256")):
        if fname != name and not entry.get("external_data"):
            continue
        p = folder / fname
        if p.is_symlink() or not p.is_file():
            raise HVLInputError(f"{p}: missing or not a regular file; the export is incomplete ({FIX})")
        if file_sha256(p) != entry.get(key):
            raise HVLInputError(f"{folder / MANIFEST}: field 'files.{name}.{key}' does not match {p}: the file changed "
                                f"after the export; {FIX}")
    return folder / name


def _verified_tokenizer(folder: Path, manifest: dict[str, Any]) -> Path:
    """The export's tokenizer folder, holding exactly the files the export wrote, each unchanged: a file added
    there (a ``tokenizer.json`` or a config) would change how texts are tokenised as surely as an edit."""
    from ..io import confined_dir, file_sha256

    tok = manifest["tokenizer"]
    tok_dir = confined_dir(folder, TOKENIZER_DIR)
    if not tok_dir.is_dir():
        raise HVLInputError(f"{tok_dir}: missing; the export is incomplete ({FIX})")
    extra = sorted(p.name for p in tok_dir.iterdir() if p.name not in tok["files"])
    if extra:
        raise HVLInputError(f"{tok_dir}: holds {', '.join(repr(n[:80]) for n in extra[:3])}, which the export did not "
                            f"write (field 'tokenizer.files' of {folder / MANIFEST}); remove it, or {FIX}")
    for name in tok["files"]:
        p = tok_dir / name
        if p.is_symlink() or not p.is_file():
            raise HVLInputError(f"{p}: missing or not a regular file; the export is incomplete ({FIX})")
        if file_sha256(p) != tok["sha256"][name]:
            raise HVLInputError(f"{folder / MANIFEST}: field 'tokenizer.sha256.{name}' does not match {p}: the file "
                                f"changed after the export; {FIX}")
    return tok_dir


class _Frames:
    """``model.video.frames(pixels)``: the frame tower, as windowed zero-shot calls it."""

    def __init__(self, owner: OnnxModel):
        self._owner = owner

    def frames(self, pixels):
        return self._owner.frame_features(pixels)


class OnnxModel:
    """An exported model on onnxruntime. Frames ``[N, 3, H, W]`` come preprocessed as :attr:`preprocess` says (the
    torch model's own preprocessing, stored in the manifest); every embedding is unit norm, in a level's space."""

    def __init__(self, folder: str | Path, providers: list[str] | None = None, threads: int | None = None):
        ort = require("onnxruntime", "onnx", needed_by="running an ONNX export (--onnx)")
        import torch
        from transformers import AutoTokenizer

        from ..data.transforms import Preprocess

        self.folder = Path(folder)
        self.manifest = m = read_manifest(self.folder)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.sessions = {name: ort.InferenceSession(str(_verified(self.folder, m, name)), sess_options=opts,
                                                    providers=providers or ["CPUExecutionProvider"])
                         for name in FILES}
        self.tokenizer = AutoTokenizer.from_pretrained(str(_verified_tokenizer(self.folder, m)), local_files_only=True)
        self.text_settings = {k: m["tokenizer"][k] for k in ("padding", "max_length")}
        self.levels: list[str] = list(m["levels"])
        self.video_heads = tuple(self.levels)  # `level in model.video_heads`, `list(model.video_heads)`
        self.embed_dim: int = m["embed_dim"]
        self.preprocess = Preprocess.model_validate(m["preprocess"])
        self.device = torch.device("cpu")
        self.video = _Frames(self)
        self._text_inputs = {i.name for i in self.sessions["text_tower.onnx"].get_inputs()}

    # what a torch model has and the scorer calls: no parameters to move, no modes to switch
    def eval(self) -> OnnxModel:
        return self

    def to(self, *_: Any, **__: Any) -> OnnxModel:
        return self

    @property
    def meta(self) -> dict[str, Any]:
        """What :func:`hvl.core.models.checkpoint.load_model` returns beside the model, for this export."""
        m = self.manifest
        return {"source": str(self.folder), "onnx": str(self.folder), "model": m.get("model", {}),
                "preprocess": m["preprocess"], "image_size": m.get("image_size"), "schedule": m.get("schedule")}

    def space_fingerprint(self, level: str) -> str | None:
        """The torch model's :func:`~hvl.core.evaluation.adapt.heads.space_fingerprint` of ``level``, recorded at
        export: a head trained by `hvl adapt` on that model scores this export too."""
        self._level(level)
        return (self.manifest.get("space_fingerprints") or {}).get(level)

    def _level(self, level: str) -> int:
        if level not in self.levels:
            raise HVLInputError(f"level '{level}' is not one the exported model has ({self.levels})")
        return self.levels.index(level)

    def _run(self, name: str, feeds: dict[str, Any]) -> list[Any]:
        return self.sessions[name].run(None, feeds)

    def frame_features(self, pixels):
        """``[N, 3, H, W]`` → the frame tower's features ``[N, D]``."""
        import torch

        x = _numpy(pixels)
        return torch.from_numpy(self._run("frame_tower.onnx", {"pixels": x})[0])

    def _heads(self, name: str, features) -> list[Any]:
        return self._run(name, {"features": _numpy(features)})

    def embed_video(self, x, level: str):
        """``[B, T, 3, H, W]`` frames or ``[B, T, D]`` frame features → ``[B, E]`` in ``level``'s space."""
        import torch

        i = self._level(level)
        if x.ndim == 5:
            b, t = x.shape[:2]
            x = self.frame_features(x.reshape(b * t, *x.shape[2:])).reshape(b, t, -1)
        return torch.from_numpy(self._heads("video_heads.onnx", x)[i])

    def embed_frames(self, frames, level: str):
        """``[N, 3, H, W]`` single frames → ``[N, E]``: each frame as a one-frame video."""
        return self.embed_video(self.frame_features(frames)[:, None], level)

    def frame_embeddings(self, frames) -> dict[str, Any]:
        """Every level's ``[N, E]`` embedding of single frames, the frame tower run once."""
        import torch

        out = self._heads("video_heads.onnx", self.frame_features(frames)[:, None])
        return {lv: torch.from_numpy(o) for lv, o in zip(self.levels, out)}

    def text_features(self, texts: list[str]):
        import torch

        feeds = {k: v for k, v in tokenize(self.tokenizer, texts, self.text_settings).items() if k in self._text_inputs}
        return torch.from_numpy(self._run("text_tower.onnx", feeds)[0])

    def text_embeddings(self, texts: list[str]) -> dict[str, Any]:
        """Every level's ``[N, E]`` embedding of ``texts``, the text tower run once."""
        import torch

        out = self._heads("text_heads.onnx", self.text_features(list(texts)))
        return {lv: torch.from_numpy(o) for lv, o in zip(self.levels, out)}

    def embed_text(self, texts: list[str], level: str):
        i = self._level(level)
        return self.text_embeddings(texts)[self.levels[i]]


def _numpy(x):
    import numpy as np

    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


def load_onnx(folder: str | Path, providers: list[str] | None = None) -> tuple[OnnxModel, dict[str, Any]]:
    """``(model, meta)`` as :func:`hvl.core.models.checkpoint.load_for_eval` returns them, for an ONNX export."""
    model = OnnxModel(folder, providers)
    return model, model.meta
