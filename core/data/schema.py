"""Pydantic schemas for hierarchical video-text data and prompt files.

A manifest is a JSON Lines file: one :class:`VideoRecord` per line, so that an
error can point at the line a person has to fix. Paths are relative to the
manifest's folder unless absolute.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import HVLInputError, format_validation_error
from ..io import atomic_write_bytes, read_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Span(_Strict):
    start: float = Field(ge=0, description="seconds from the start of the video")
    end: float = Field(gt=0, description="seconds from the start of the video")

    @model_validator(mode="after")
    def _ordered(self):
        if self.start >= self.end:
            raise ValueError(f"start ({self.start}) must be before end ({self.end})")
        return self


def _nonempty_texts(texts: list[str]) -> list[str]:
    if not texts or any(not t.strip() for t in texts):
        raise ValueError("needs at least one text and no empty strings")
    return texts


class PhaseSegment(_Span):
    """A phase (HecVL's 'keystep'): its summary text and, for evaluation only, a label."""

    text: str = ""
    label: str | None = None


class ClipSegment(_Span):
    """A short window with one or more narrations (e.g. two ASR sources; all are positives)."""

    texts: list[str]

    _check = field_validator("texts")(_nonempty_texts)


class PoseSource(_Strict):
    """The signer's keypoints beside a video: a ``.pose`` file or a folder of OpenPose ``*_keypoints.json``."""

    path: str = Field(min_length=1, description="a .pose file or an OpenPose JSON folder, relative to the manifest")
    fps: float | None = Field(default=None, gt=0, description="frame rate of an OpenPose JSON folder (its files "
                                                              "record none); default: the video's")
    start: float = Field(default=0.0, ge=0, description="seconds into the video at which pose frame 0 is shown")


class VideoRecord(_Strict):
    video_id: str = Field(min_length=1)
    path: str = Field(min_length=1, description="video file or frame folder, relative to the manifest")
    texts: list[str] = Field(default_factory=list, description="video-level texts (abstracts)")
    duration: float | None = Field(default=None, gt=0)
    phases: list[PhaseSegment] = Field(default_factory=list)
    clips: list[ClipSegment] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)
    span: tuple[float, float] | None = Field(
        default=None, description="[start, end] seconds of the file this record is (e.g. one sentence cut from a "
                                  "long video); phase and clip times stay in the file's timeline")
    pose: PoseSource | None = Field(default=None, description="the signer's keypoints (sign corpora), if any")

    @model_validator(mode="after")
    def _within_duration(self):
        if self.span is not None:
            if not 0 <= self.span[0] < self.span[1]:
                raise ValueError(f"span {list(self.span)} must be [start, end] with 0 <= start < end")
            if self.duration is not None and self.span[1] > self.duration + 1e-3:
                raise ValueError(f"span end {self.span[1]} is beyond the video's duration {self.duration}")
        if self.duration is not None:
            for kind, segs in (("phases", self.phases), ("clips", self.clips)):
                for i, s in enumerate(segs):
                    if s.end > self.duration + 1e-3:
                        raise ValueError(
                            f"{kind}[{i}].end={s.end} is beyond the video's duration {self.duration}"
                        )
        return self

    def label_at(self, t: float) -> str | None:
        for p in self.phases:
            if p.start <= t < p.end:
                return p.label
        return None


class Manifest(BaseModel):
    """Validated records plus where they came from (to resolve relative paths)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    file: Path
    videos: list[VideoRecord]

    @property
    def root(self) -> Path:
        return self.file.parent

    def resolve(self, rec: VideoRecord, allow_outside: bool = False) -> Path:
        p = Path(rec.path)
        if p.is_absolute():
            return p
        full = (self.root / p).resolve()
        if not allow_outside and not full.is_relative_to(self.root.resolve()):
            raise HVLInputError(
                f"{self.file}: video '{rec.video_id}' path '{rec.path}' points outside the dataset root "
                f"{self.root}; use an absolute path or move the file under the root"
            )
        return full


def load_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    if not path.is_file():
        raise HVLInputError(f"{path}: manifest not found; create it with `hvl demo` or point the config at a .jsonl file")
    videos: list[VideoRecord] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8", errors="replace") as f:  # bad bytes surface as a field error, not a crash
        for n, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as e:
                raise HVLInputError(f"{path}, line {n}: not valid JSON ({e.msg} at column {e.colno}); "
                                    "each line must be one JSON object") from None
            try:
                rec = VideoRecord.model_validate(obj)
            except ValidationError as e:
                raise HVLInputError(format_validation_error(e, path, n)) from None
            if rec.video_id in seen:
                raise HVLInputError(f"{path}, line {n}: field 'video_id': '{rec.video_id}' repeats line "
                                    f"{seen[rec.video_id]}; ids must be unique")
            seen[rec.video_id] = n
            videos.append(rec)
    if not videos:
        raise HVLInputError(f"{path}: manifest has no videos")
    return Manifest(file=path, videos=videos)


def write_manifest(path: str | Path, videos: list[VideoRecord]) -> Path:
    """Atomic write: a reader never sees half a manifest."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, "".join(v.model_dump_json(exclude_defaults=True) + "\n" for v in videos).encode("utf-8"))
    return path


# ---------------------------------------------------------------- prompt files
class PromptClass(_Strict):
    name: str = Field(min_length=1, description="class label, as in the dataset's annotations")
    prompts: list[str] = Field(default_factory=list, description="full sentences for this class")
    text: str | None = Field(default=None, description="what fills the templates' {} (default: name)")
    templates: list[str] | None = Field(default=None, description="overrides the file's templates")


def _check_template(t: str) -> str:
    if t.count("{}") != 1:
        raise ValueError(f"template {t!r} must contain exactly one '{{}}' slot for the class text")
    return t


class PromptFile(_Strict):
    """Zero-shot classes: each gets prompts and/or templates; the ensemble is averaged in embedding space."""

    templates: list[str] = Field(default_factory=list)
    classes: list[PromptClass] = Field(min_length=1)
    level: str | None = Field(default=None, description="embedding space to classify in (clip/phase/video)")

    @field_validator("templates")
    @classmethod
    def _templates(cls, v: list[str]) -> list[str]:
        return [_check_template(t) for t in v]

    @model_validator(mode="after")
    def _classes_ok(self):
        names = [c.name for c in self.classes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate classes {dup}; each class must appear once")
        for c in self.classes:
            for t in c.templates or []:
                _check_template(t)
            if not self.texts_for(c):
                raise ValueError(f"class '{c.name}' has no prompts and no templates")
            if any(not s.strip() for s in self.texts_for(c)):
                raise ValueError(f"class '{c.name}' has an empty prompt")
        return self

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def texts_for(self, c: PromptClass) -> list[str]:
        templates = self.templates if c.templates is None else c.templates
        return list(c.prompts) + [t.replace("{}", c.text or c.name) for t in templates]


def load_prompt_file(path: str | Path) -> PromptFile:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise HVLInputError(f"{path}: a prompt file is a mapping with 'classes' (and optional 'templates')")
    try:
        return PromptFile.model_validate(data)
    except ValidationError as e:
        raise HVLInputError(format_validation_error(e, path)) from None
