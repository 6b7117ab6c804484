"""``hvl predict``: unlabelled videos → per-frame class probabilities and a smoothed timeline per video.

Each video is scored exactly as ``hvl zeroshot`` scores a labelled one (:func:`hvl.core.evaluation.zeroshot.predict`
with ``labelled=False``: the same frames at ``fps``, prompt embeddings or an ``hvl adapt`` head, the same windows),
so on a labelled video its probabilities are those of ``hvl zeroshot --predictions``. Frames are decoded in chunks
of ``batch_size`` and dropped once embedded: memory grows with the per-frame probabilities (and, with a window or a
temporal head, the per-frame features), never with the frames.

:func:`load_predictor` loads what a run needs once; :func:`video_timeline` turns one video into a
:class:`~hvl.core.inference.timeline.Timeline`; :func:`hvl.core.inference.run.predict_videos` is the whole run
(resume, several processes, failures reported per video).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import HVLInputError
from ..models.spec import ModelSource
from .formats import FORMATS
from .timeline import Timeline, merge_runs

__all__ = ["PredictConfig", "Predictor", "load_predictor", "video_key", "video_timeline"]


class PredictConfig(BaseModel):
    """What ``hvl predict`` was asked: the videos, the model, the prompts and how frames are scored, the outputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    inputs: list[str] = Field(min_length=1, description="video files, folders of videos, manifests (.jsonl)")
    source: ModelSource
    prompts: str = Field(description="prompt file (path or <domain>:<name>)")
    out: str
    level: str | None = Field(None, description="embedding space; default: the head's, the prompt file's, 'phase'")
    window: float | None = Field(None, ge=0, description="seconds of the centred window each frame is embedded with")
    head: str | None = Field(None, description="a head saved by `hvl adapt`, scored instead of the prompts")
    fps: float = Field(1.0, gt=0)
    smooth_window: int = Field(5, ge=1, description="frames of the majority vote of the smoothed timeline (odd)")
    formats: tuple[str, ...] = ()
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(2, ge=0)
    image_size: int | None = None
    video_backend: Literal["auto", "decord", "pyav"] = "auto"
    devices: int = Field(1, ge=1)
    accelerator: str = "auto"
    progress: bool = True
    online: bool = Field(False, description="label one recording while it grows, causally (hvl.core.inference.online)")
    quiet_seconds: float = Field(10.0, gt=0, description="--online: the recording has ended once quiet this long")

    @classmethod
    def checked(cls, **fields: Any) -> PredictConfig:
        """The config, or one :class:`HVLInputError` naming the option and what it takes."""
        try:
            return cls(**fields)
        except ValidationError as e:
            msgs = "; ".join(f"--{'-'.join(str(x) for x in err['loc'][:1]).replace('_', '-')}: {err['msg']}"
                             for err in e.errors())
            raise HVLInputError(f"hvl predict: {msgs}") from None

    @field_validator("formats")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [f for f in v if f not in FORMATS]
        if unknown:
            raise ValueError(f"unknown format(s) {unknown}; choose from {sorted(FORMATS)}")
        return tuple(dict.fromkeys(v))


@dataclass
class Predictor:
    """A loaded model with the prompts (or head) and the settings every video of a run is scored with."""

    model: Any
    preprocess: Any
    prompts: Any            # the PromptFile
    prompt_path: Path
    level: str
    window: float | None
    head: Any               # an `hvl adapt` head, or None
    fps: float = 1.0
    smooth_window: int = 5
    batch_size: int = 64
    num_workers: int = 2
    video_backend: str = "auto"
    settings: dict[str, Any] | None = None  # what produced the timelines (recorded in each, keyed for resume)

    @property
    def classes(self) -> list[str]:
        return list(self.prompts.names)


def load_predictor(cfg: PredictConfig, loaded: tuple[Any, dict] | None = None) -> Predictor:
    """The prompt file, the head and the model of ``cfg``, checked against each other; ``loaded``: an already loaded
    ``(model, meta)``. Input errors come before the model is loaded."""
    from ..data.schema import load_prompt_file
    from ..evaluation.temporal import check_window
    from ..evaluation.zeroshot.windows import window_half
    from ..io import file_sha256
    from ..models.checkpoint import fingerprint, load_for_eval, preprocess_of
    from ..registry import resolve_prompt_file

    prompt_path = Path(resolve_prompt_file(cfg.prompts))
    prompts = load_prompt_file(prompt_path)
    window = cfg.window
    window_half(window, cfg.fps)
    check_window(cfg.smooth_window, "--smooth-window")
    level = cfg.level or prompts.level or "phase"
    head = None
    if cfg.head:
        from ..evaluation.adapt.heads import load_head

        head = load_head(cfg.head)
        level, window = head.settings_for(prompts.names, cfg.level, window, cfg.fps)
    src = cfg.source
    model, meta = loaded or load_for_eval(src.ckpt, src.model, src.text_model, src.trust_remote_code)
    if level not in model.video_heads:
        raise HVLInputError(f"level '{level}' is not one the model was trained with ({list(model.video_heads)}); "
                            "pass --level with one of them")
    if head is not None:
        head.check_model(model, cfg.head)
    settings = {"model": str(src.name), "model_sha256": fingerprint(src.name), "prompt_file": str(prompt_path),
                "prompts_sha256": file_sha256(prompt_path), "level": level, "window": window,
                "head": str(cfg.head) if cfg.head else None,
                "head_sha256": file_sha256(cfg.head) if cfg.head else None, "fps": cfg.fps,
                "smoothing": {"method": "mode", "window": cfg.smooth_window}}
    return Predictor(model, preprocess_of(meta, cfg.image_size), prompts, prompt_path, level, window, head, cfg.fps,
                     cfg.smooth_window, cfg.batch_size, cfg.num_workers, cfg.video_backend, settings)


def video_key(video_sha256: str, settings: dict[str, Any]) -> str:
    """What a finished video's outputs are keyed by: its content and the settings (never its name)."""
    blob = json.dumps({"video_sha256": video_sha256, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def video_timeline(predictor: Predictor, path: str | Path, video_id: str | None = None,
                   progress: bool = False) -> Timeline:
    """One video's :class:`Timeline`: per frame at the predictor's fps the class probabilities, the predicted and
    the smoothed class, and the smoothed classes merged into segments (confidence: the mean probability of the
    segment's class). An unreadable video raises :class:`HVLInputError` naming the file."""
    from ..data.schema import VideoRecord
    from ..data.video import Video, open_source
    from ..evaluation.temporal import smooth_mode
    from ..evaluation.zeroshot.classify import predict
    from ..evaluation.zeroshot.frames import eval_frame_times

    p = predictor
    path = Path(path)
    rec = VideoRecord(video_id=video_id or path.stem or "video", path=str(path))
    size = p.preprocess.output_size[0]
    preds, _, probs = predict(p.model, [(rec, path)], p.prompts, p.level, fps=p.fps, image_size=size,
                              batch_size=p.batch_size, num_workers=p.num_workers, progress=progress,
                              preprocess=p.preprocess, video_backend=p.video_backend, window=p.window, head=p.head,
                              labelled=False)
    times = eval_frame_times([(rec, path)], p.classes, p.fps, size, p.video_backend, labelled=False)[0]
    v = Video(open_source(path, size=(size, size), backend=p.video_backend))
    pred, prob = preds[0], probs[0].float()
    if len(times) != len(pred):
        raise RuntimeError(f"{path}: {len(times)} frame times for {len(pred)} predictions")
    smoothed = smooth_mode(pred, p.smooth_window, len(p.classes))
    duration = v.duration
    return Timeline(video_id=rec.video_id, path=str(path.resolve()), duration=duration, fps=p.fps,
                    video_fps=v.fps, num_frames=max(1, min(v.num_frames, round(duration * v.fps))),
                    classes=p.classes, t=[float(x) for x in times], probs=prob.tolist(), pred=pred.tolist(),
                    smoothed=smoothed.tolist(),
                    segments=merge_runs(times, smoothed.tolist(), p.classes, duration, prob.numpy()),
                    settings=dict(p.settings or {}))

