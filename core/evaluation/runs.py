"""The evaluation runs behind ``hvl zeroshot``, ``hvl adapt`` and ``hvl retrieval``: each takes one typed set of
options (what the command line gave) and does the whole run: config, data checks, model, scores, outputs.

Data errors are found before a model is loaded (cheaper). The pieces ``zeroshot`` and ``adapt`` share are in
:mod:`.scoring`; this module sits above :mod:`.zeroshot` and :mod:`.adapt`, which never import each other's runs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HVLInputError
from ..models.spec import ModelSource
from ..outputs import MlflowRecord, Outputs, info_stream, report
from .scoring import PredictionsOut

__all__ = ["AdaptOptions", "RetrievalOptions", "ZeroshotOptions", "run_adapt", "run_retrieval", "run_zeroshot"]


@dataclass(frozen=True)
class ZeroshotOptions:
    """``hvl zeroshot``: the config, the model, overrides of the config, and the outputs."""

    config: str
    source: ModelSource
    prompts: str | None = None
    level: str | None = None
    window: float | None = None
    head: str | None = None  # a head saved by `hvl adapt`, scored instead of the prompt embeddings
    predictions: PredictionsOut = field(default_factory=PredictionsOut)
    protocol: str | None = None  # metric protocol (hvl.core.evaluation.metrics.PROTOCOLS); None: the config's
    outputs: Outputs = field(default_factory=Outputs)


def _load_model(source: ModelSource):
    from ..models.checkpoint import load_for_eval

    return load_for_eval(source.ckpt, source.model, source.text_model, source.trust_remote_code)


def run_zeroshot(opts: ZeroshotOptions) -> dict[str, Any]:
    """Score a dataset's frames with a prompt file (or a head), print and log the metrics, optionally write the
    per-frame predictions for ``hvl serve --zeroshot``."""
    from ..data.records import load_videos
    from ..io import load_config
    from ..models.checkpoint import preprocess_of
    from .scoring import prompts_level_window, score_videos, write_outputs
    from .temporal import check_window
    from .zeroshot.config import ZeroShotConfig, check_inputs

    cfg = load_config(opts.config, ZeroShotConfig)
    prompt_path, prompts, level, window = prompts_level_window(cfg, opts.prompts, opts.level, opts.window)
    head = None
    if opts.head:
        from .adapt.heads import load_head

        head = load_head(opts.head)
        level, window = head.settings_for(prompts.names, opts.level or cfg.level, window, cfg.fps)
    videos = load_videos(cfg.dataset, cfg.domain)
    check_inputs(videos, prompts)  # data errors first: they are cheaper to find than a model is to load
    if opts.predictions.folder:
        check_window(opts.predictions.smooth_window, "--smooth-window")  # before the model is loaded
    model, meta = _load_model(opts.source)
    if head is not None:
        head.check_model(model, opts.head)
    pre = preprocess_of(meta, cfg.image_size)
    result, preds, labels, probs = score_videos(cfg, model, videos, prompts, level, pre, prompt_path, window,
                                                opts.source, opts.outputs.progress, head,
                                                protocol=opts.protocol or cfg.protocol)
    if head is not None:
        result["head"] = {"file": str(opts.head), **head.describe()}
    tag = Path(prompt_path).stem + (f"_window{window:g}s" if window is not None else "") + \
        (f"_{head.method}" if head is not None else "")
    return write_outputs(opts.outputs, opts.predictions, cfg, meta, result, videos, prompts, pre, preds, labels,
                         probs, prompt_path, tag)


# ----------------------------------------------------------------- hvl adapt
@dataclass(frozen=True)
class AdaptOptions:
    """``hvl adapt``: a zero-shot config (its dataset is the test set), the model, the labelled training videos,
    the head and its protocol, and the outputs (those of ``hvl zeroshot``, plus the head file)."""

    config: str
    source: ModelSource
    train: str | None = None
    train_split: str | None = None
    method: str | None = None
    shots: int | None = None
    fraction: float | None = None
    seed: int = 0
    steps: int | None = None
    lr: float | None = None
    causal: bool = False
    window: float | None = None
    level: str | None = None
    prompts: str | None = None
    head_out: str | None = None
    cache: str | None = None
    use_cache: bool = True
    predictions: PredictionsOut = field(default_factory=PredictionsOut)
    protocol: str | None = None  # metric protocol (hvl.core.evaluation.metrics.PROTOCOLS); None: the config's
    outputs: Outputs = field(default_factory=Outputs)


def _train_spec(opts: AdaptOptions, cfg: Any):
    from ..data.records import DatasetSpec

    if opts.train and opts.train_split:
        raise HVLInputError("give --train <manifest> or --train-split <split>, not both")
    if opts.train:
        return DatasetSpec(reader="manifest", path=opts.train)
    if opts.train_split:
        if cfg.dataset.reader == "manifest":
            raise HVLInputError(f"--train-split needs a dataset reader with splits; the config's dataset is a manifest "
                                f"({cfg.dataset.path}): pass the training manifest with --train")
        return cfg.dataset.model_copy(update={"options": {**cfg.dataset.options, "split": opts.train_split}})
    if cfg.adapt.train is not None:
        return cfg.adapt.train
    raise HVLInputError("hvl adapt needs labelled training videos: --train <manifest.jsonl> (or adapt.train in the "
                        "config, or --train-split with a dataset reader)")


def _protocol_name(shots: int | None, fraction: float | None) -> str:
    return f"shots{shots}" if shots is not None else f"fraction{fraction:g}" if fraction is not None else "all"


def _check_adapt_options(opts: AdaptOptions, method: str) -> None:
    from .adapt.fit import check_protocol
    from .temporal import check_window

    if method == "temporal" and opts.shots is not None:
        raise HVLInputError("--shots draws single labelled frames, but the temporal head learns from whole labelled "
                            "videos: use --fraction P with --method temporal")
    if method == "linear" and opts.causal:
        raise HVLInputError("--causal is an option of the temporal head: drop it, or use --method temporal")
    if opts.steps is not None and opts.steps < 0:
        raise HVLInputError(f"--steps must be >= 0 (got {opts.steps})")
    check_protocol(opts.shots, opts.fraction)
    if opts.predictions.folder:
        check_window(opts.predictions.smooth_window, "--smooth-window")


def run_adapt(opts: AdaptOptions) -> dict[str, Any]:
    """Fit a small head on frozen embeddings of labelled training videos, save it, and evaluate it on the config's
    test set exactly as ``hvl zeroshot`` does (same metrics, ``--json`` keys and ``--predictions`` files)."""
    from ..data.records import load_videos
    from ..io import load_config
    from ..models.checkpoint import preprocess_of
    from .adapt.config import AdaptConfig
    from .adapt.embeddings import embed_sequences
    from .adapt.fit import train_head
    from .adapt.heads import save_head, space_fingerprint
    from .scoring import prompts_level_window, score_videos, write_outputs
    from .zeroshot.classify import class_embeddings
    from .zeroshot.config import check_inputs

    cfg = load_config(opts.config, AdaptConfig)
    adapt = cfg.adapt
    prompt_path, prompts, level, window = prompts_level_window(cfg, opts.prompts, opts.level, opts.window)
    method = opts.method or adapt.method
    _check_adapt_options(opts, method)
    train_spec = _train_spec(opts, cfg)
    train_videos = load_videos(train_spec, cfg.domain)
    check_inputs(train_videos, prompts)
    videos = load_videos(cfg.dataset, cfg.domain)
    check_inputs(videos, prompts)
    shared = {Path(p).resolve() for _, p in train_videos} & {Path(p).resolve() for _, p in videos}
    if shared:
        raise HVLInputError(f"{train_spec.path}: {len(shared)} training video(s) are also test videos (e.g. "
                            f"{min(shared)}); a head must be scored on videos it did not learn from: fix the "
                            "splits")
    model, meta = _load_model(opts.source)
    if level not in model.video_heads:
        raise HVLInputError(f"level '{level}' is not one the model has ({list(model.video_heads)}); set --level")
    pre = preprocess_of(meta, cfg.image_size)
    cache = (opts.cache or adapt.feature_cache) if opts.use_cache else None
    t0 = time.perf_counter()
    train = embed_sequences(model, train_videos, prompts, level, cfg.fps, window, pre, cache, cfg.batch_size,
                            cfg.num_workers, cfg.video_backend, progress=opts.outputs.progress)
    architecture = {} if method == "linear" else {
        "stages": adapt.stages, "layers": adapt.layers, "channels": adapt.channels, "dropout": adapt.dropout,
        "causal": opts.causal or adapt.causal}
    head = train_head(method, class_embeddings(model, prompts, level), train, prompts.names, level, window, cfg.fps,
                      shots=opts.shots, fraction=opts.fraction, seed=opts.seed,
                      steps=opts.steps if opts.steps is not None else adapt.steps, lr=opts.lr or adapt.lr,
                      prior=adapt.prior, smooth=adapt.smooth, weight_decay=adapt.weight_decay, **architecture)
    head.info.update(train=str(train_spec.path), model=str(opts.source.name), prompt_file=str(prompt_path))
    train_s = round(time.perf_counter() - t0, 2)
    protocol = _protocol_name(opts.shots, opts.fraction)
    out = opts.head_out or (f"heads/{Path(prompt_path).stem}_{level}_{method}"
                            f"{'' if window is None else f'_window{window:g}s'}_{protocol}_seed{opts.seed}.pt")
    saved = save_head(head, out, space_fingerprint(model, level))
    print(f"saved the head to {saved} (reuse: hvl zeroshot --config {opts.config} --head {saved})",
          file=info_stream(opts.outputs.json))

    result, preds, labels, probs = score_videos(cfg, model, videos, prompts, level, pre, prompt_path, window,
                                                opts.source, opts.outputs.progress, head,
                                                protocol=opts.protocol or cfg.protocol)
    result["head"] = {"file": str(saved), "train_seconds": train_s, **head.describe()}
    tag = Path(prompt_path).stem + (f"_window{window:g}s" if window is not None else "") + \
        f"_{method}_{protocol}_seed{opts.seed}"
    return write_outputs(opts.outputs, opts.predictions, cfg, meta, result, videos, prompts, pre, preds, labels,
                         probs, prompt_path, tag)


# ----------------------------------------------------------------- hvl retrieval
@dataclass(frozen=True)
class RetrievalOptions:
    """``hvl retrieval``: the config, the model, overrides of the config, and the outputs."""

    config: str
    source: ModelSource
    similarity: str | None = None
    level: str | None = None
    moments: bool = False  # sentence-to-moment localisation inside each video instead of text <-> video ranking
    outputs: Outputs = field(default_factory=Outputs)


def run_retrieval(opts: RetrievalOptions) -> dict[str, Any]:
    """Text <-> video retrieval metrics (or, with ``moments``, moment localisation), printed, written as JSON and
    logged to MLflow."""
    from ..data.records import check_videos, load_videos
    from ..io import load_config
    from ..models.checkpoint import preprocess_of
    from .retrieval import RetrievalConfig, evaluate_retrieval, format_table

    cfg = load_config(opts.config, RetrievalConfig)
    if opts.moments:
        return _run_moments(opts, cfg)
    if opts.level:
        cfg = cfg.model_copy(update={"level": opts.level})
    similarity = opts.similarity or cfg.similarity
    videos = load_videos(cfg.dataset, cfg.domain)
    check_videos(videos)  # data errors first: cheaper to find than a model is to load
    if len(videos) < 2:
        raise HVLInputError(f"{cfg.dataset.path}: retrieval needs at least 2 videos, got {len(videos)}")
    model, meta = _load_model(opts.source)
    if cfg.level not in model.video_heads:
        raise HVLInputError(f"{opts.source.name}: level '{cfg.level}' (from "
                            f"{'--level' if opts.level else opts.config}) is not one this checkpoint was trained with; "
                            f"use one of {list(model.video_heads)}")
    schedule = meta.get("schedule") or {}
    frames = cfg.frames or (schedule.get(cfg.level) or {}).get("frames") or 16
    pre = preprocess_of(meta, cfg.image_size)
    t0 = time.perf_counter()
    result = evaluate_retrieval(model, videos, cfg.level, similarity, frames=frames, image_size=pre.output_size[0],
                                batch_size=cfg.batch_size, num_workers=cfg.num_workers,
                                progress=opts.outputs.progress, preprocess=pre,
                                pose_root=Path(cfg.dataset.path).parent if cfg.dataset.reader == "manifest" else None)
    pose = getattr(model, "pose_cfg", None)
    result.update(checkpoint=str(opts.source.name), pretrained=opts.source.model is not None,
                  streams="rgb" if pose is None else pose.streams,
                  preprocess=pre.model_dump(mode="json"), dataset=cfg.dataset.path,
                  seconds=round(time.perf_counter() - t0, 2))
    tag = f"{cfg.level}/{result['similarity']}"

    def record() -> MlflowRecord:
        return MlflowRecord(cfg.experiment, meta.get("mlflow_run_id"),
                            {f"retrieval/{tag}/{k}": v for k, v in result.items() if k.startswith(("t2v_", "v2t_"))},
                            {"retrieval_level": cfg.level, "retrieval_frames": frames}, f"retrieval/{tag}.json")

    return report(result, format_table(result), opts.outputs, record)


def _run_moments(opts: RetrievalOptions, cfg: Any) -> dict[str, Any]:
    """``hvl retrieval --moments``: each clip's sentence localised inside its own video (R@1 at IoU, mIoU)."""
    from ..data.records import check_videos, load_videos
    from ..models.checkpoint import preprocess_of
    from .moments import evaluate_moments, format_moments_table

    level = opts.level or cfg.moment_level
    videos = load_videos(cfg.dataset, cfg.domain)
    if not any(rec.clips for rec, _ in videos):
        raise HVLInputError(f"{cfg.dataset.path}: no video has clips with times; --moments needs each sentence's "
                            "[start, end] ('clips' in the manifest, or ActivityNet Captions' timestamps)")
    check_videos(videos)  # data errors first: cheaper to find than a model is to load
    model, meta = _load_model(opts.source)
    if level not in model.video_heads:
        raise HVLInputError(f"{opts.source.name}: level '{level}' (from "
                            f"{'--level' if opts.level else opts.config + ' moment_level'}) is not one this checkpoint "
                            f"was trained with; use one of {list(model.video_heads)}")
    pre = preprocess_of(meta, cfg.image_size)
    t0 = time.perf_counter()
    result = evaluate_moments(model, videos, level, cfg.moment_frames, pre.output_size[0], cfg.moment_max_window,
                              cfg.num_workers, opts.outputs.progress, pre)
    result.update(checkpoint=str(opts.source.name), pretrained=opts.source.model is not None,
                  dataset=cfg.dataset.path, seconds=round(time.perf_counter() - t0, 2))

    def record() -> MlflowRecord:
        return MlflowRecord(cfg.experiment, meta.get("mlflow_run_id"),
                            {f"moments/{level}/{k}": v for k, v in result.items()
                             if k.startswith("r1_iou") or k == "miou"},
                            {"moments_level": level, "moments_frames": cfg.moment_frames},
                            f"moments/{level}.json")

    return report(result, format_moments_table(result), opts.outputs, record)
