"""The whole review: predict with prompt file A (and B), score, draw, write the report and log it to MLflow."""
from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hvl.core.data import records as datasets
from hvl.core.data.records import Resolved
from hvl.core.errors import HVLInputError
from hvl.core.evaluation.metrics import PHASE_METRICS, check_protocol
from hvl.core.evaluation.stats import bootstrap_ci
from hvl.core.evaluation.temporal import check_method, check_window, smooth
from hvl.core.evaluation.zeroshot import summarize as zeroshot_summary
from hvl.core.io import write_json

from .failures import confident_errors, decode_frames, eval_frame_indices
from .page import write_report
from .plots import plot_confusion, plot_gallery, plot_progress, plot_prompt_comparison, plot_ribbon
from .report import jsonable, mlflow_metrics, report_blocks, report_tables
from .scores import PER_PHASE, accuracy_by_progress, compare_prompts, confusion, per_video_table

__all__ = ["evaluate_clinical", "load_videos"]


def load_videos(dataset: str | Path, fmt: str = "manifest", domain: str = "surgical",
                **options: Any) -> list[Resolved]:
    """The videos to review, read as `hvl zeroshot` reads them: a manifest, or a domain reader (e.g. cholec80)."""
    return datasets.load_videos(datasets.DatasetSpec(reader=fmt, path=str(dataset), options=options), domain)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", name)


def _score_prompts(model: Any, videos: Sequence[Resolved], spec: str, level: str | None, fps: float,
                   image_size: int, batch_size: int, num_workers: int, progress: bool, smoothing: str, window: int,
                   n_boot: int, ci_level: float, seed: int, preprocess: Any = None,
                   embed_window: float | None = None) -> dict[str, Any]:
    """Predict with one prompt file and compute everything the report shows for it."""
    from hvl.core.data.schema import load_prompt_file
    from hvl.core.evaluation.zeroshot import predict
    from hvl.core.registry import resolve_prompt_file

    path = resolve_prompt_file(spec)
    prompts = load_prompt_file(path)
    lvl = level or prompts.level or "phase"
    names = prompts.names
    preds, labels, probs = predict(model, list(videos), prompts, lvl, fps=fps, image_size=image_size,
                                   batch_size=batch_size, num_workers=num_workers, progress=progress,
                                   preprocess=preprocess, window=embed_window)
    ids = [rec.video_id for rec, _ in videos]
    smoothed = [smooth(p, window, smoothing, len(names)) for p in preds]
    rows = per_video_table(ids, preds, labels, names)
    srows = per_video_table(ids, smoothed, labels, names)
    keys = list(PHASE_METRICS) + [f"{m}/{n}" for m in PER_PHASE for n in names]
    return {"spec": spec, "prompt_file": str(path), "tag": _safe(Path(path).stem), "names": names, "level": lvl,
            "zeroshot": zeroshot_summary(ids, preds, labels, names, lvl, fps),
            "per_video": rows, "ci": bootstrap_ci(rows, keys, n_boot, ci_level, seed),
            "smoothed_per_video": srows, "smoothed_ci": bootstrap_ci(srows, list(PHASE_METRICS), n_boot, ci_level, seed),
            "confusion": confusion(preds, labels, len(names)).tolist(),
            "progress": accuracy_by_progress(preds, labels),
            "_preds": preds, "_labels": labels, "_probs": probs, "_smoothed": smoothed}


def evaluate_clinical(ckpt: str | Path, dataset: str | Path, prompts_a: str, prompts_b: str | None = None, *,
                      dataset_format: str = "manifest", domain: str = "surgical", split: str | None = None,
                      video_ids: Sequence[int] | None = None, level: str | None = None, fps: float = 1.0,
                      image_size: int | None = None, batch_size: int = 64, num_workers: int = 2,
                      smoothing: str = "mode", smoothing_window: int = 9, n_boot: int = 2000,
                      ci_level: float = 0.95, seed: int = 0, gallery_size: int = 8,
                      out_dir: str | Path = "clinical_report", mlflow: bool = True, experiment: str = "hvl-clinical",
                      tracking_uri: str | None = None, progress: bool = False,
                      text_model: str | None = None, window: float | None = None,
                      protocol: str = "strict") -> dict[str, Any]:
    """Review a checkpoint on a dataset with prompt file A (and optionally B); write the report; return its content.

    ``ckpt`` is an hvl checkpoint file, or a pretrained model used directly as ``hvl zeroshot --model`` does: a
    local HF image-text directory or ``<kind>:<file>`` (e.g. ``surgvlp:/models/HecVL.pth``, with ``text_model``).

    The metrics of prompt file A (``result["a"]["zeroshot"]``) are those `hvl zeroshot` prints for
    the same checkpoint, videos, prompt file, level, fps and image size: same prediction and
    metric functions, same defaults (image size from the checkpoint, batch 64). ``split`` and
    ``video_ids`` go to a domain reader such as ``cholec80`` and are ignored for a manifest. ``window`` (seconds):
    each frame is embedded with the centred window of frames around it, as ``hvl zeroshot --window`` does.

    Both metric protocols are computed for prompt file A (``result["a"]["zeroshot"]``: strict, video-wise;
    ``result["a"]["relaxed"]``: the relaxed M2CAI / Cholec80 one, ``relaxed`` as released unless ``protocol`` is
    ``relaxed-fixed``); ``protocol`` (``hvl zeroshot --protocol``) names the one the report puts first. The
    intervals, per-phase tables and comparisons are strict, per video.
    """
    from hvl.core.models.backbones import BACKBONES
    from hvl.core.models.checkpoint import load_for_eval, preprocess_of

    check_method(smoothing)
    check_window(smoothing_window)
    check_protocol(protocol)
    t0 = time.perf_counter()
    options: dict[str, Any] = {}
    if dataset_format != "manifest":
        if split:
            options["split"] = split
        if video_ids:
            options["video_ids"] = list(video_ids)
    videos = load_videos(dataset, dataset_format, domain, **options)
    pretrained = Path(ckpt).is_dir() or str(ckpt).split(":", 1)[0] in BACKBONES
    model, meta = load_for_eval(None if pretrained else ckpt, str(ckpt) if pretrained else None, text_model)
    pre = preprocess_of(meta, image_size)
    image_size = pre.output_size[0]
    common = dict(level=level, fps=fps, image_size=image_size, preprocess=pre, batch_size=batch_size,
                  num_workers=num_workers,
                  progress=progress, smoothing=smoothing, window=smoothing_window, n_boot=n_boot,
                  ci_level=ci_level, seed=seed, embed_window=window)
    runs = {"a": _score_prompts(model, videos, prompts_a, **common)}
    if prompts_b:
        runs["b"] = _score_prompts(model, videos, prompts_b, **common)
        if runs["b"]["tag"] == runs["a"]["tag"]:
            runs["b"]["tag"] += "_b"
    a = runs["a"]
    names = a["names"]
    ids = [rec.video_id for rec, _ in videos]
    relaxed = zeroshot_summary(ids, a["_preds"], a["_labels"], names, a["level"], fps,
                               "relaxed" if protocol == "strict" else protocol)
    a["relaxed"] = {k: v for k, v in relaxed.items() if k != "strict"}  # the strict numbers are a["zeroshot"]
    label = {k: f"{k.upper()}: {r['tag']}" for k, r in runs.items()}

    # figures
    figures: dict[str, Any] = {}
    for k, r in runs.items():
        figures[f"confusion_{k}"] = plot_confusion(r["confusion"], r["names"],
                                                   f"{label[k]} — confusion, rows: true phase (frames pooled)")
    figures["progress"] = plot_progress({label[k]: r["progress"] for k, r in runs.items()})
    ribbons = []
    for v, vid in enumerate(ids):
        name = f"ribbon_{_safe(vid)}"
        acc = a["per_video"][v]["accuracy"]
        figures[name] = plot_ribbon(a["_labels"][v], a["_preds"][v], a["_smoothed"][v], names, fps,
                                    f"{vid} — {label['a']} (accuracy {acc:.3f})",
                                    f"smoothed ({smoothing}, {smoothing_window} frames)")
        ribbons.append(name)
    comparison = None
    if "b" in runs:
        if runs["b"]["names"] != names:
            raise HVLInputError(f"prompt files A and B must list the same classes in the same order to be compared "
                                f"(A: {names}, B: {runs['b']['names']})")
        comparison = compare_prompts(a["per_video"], runs["b"]["per_video"], names, n_boot, ci_level, seed)
        figures["prompt_comparison"] = plot_prompt_comparison(comparison["per_phase"], label["a"], label["b"])

    # failure gallery: most confidently wrong frames of prompt file A
    errors = confident_errors(a["_preds"], a["_labels"], a["_probs"], gallery_size)
    frame_idx = eval_frame_indices(videos, names, fps, image_size)
    decoded = decode_frames(videos, [(e["video"], frame_idx[e["video"]][e["position"]]) for e in errors])
    failures = []
    for e, (_, t) in zip(errors, decoded):
        failures.append({"video_id": ids[e["video"]], "frame": frame_idx[e["video"]][e["position"]],
                         "time_s": round(t, 2), "true": names[e["true"]], "predicted": names[e["pred"]],
                         "probability": e["prob"]})
    figures["failures"] = plot_gallery(
        [img for img, _ in decoded],
        [f"{f['video_id']} @ {f['time_s']:.0f}s\ntrue: {f['true']}\npred: {f['predicted']} (p={f['probability']:.2f})"
         for f in failures])

    # result, report, MLflow
    out = Path(out_dir)
    run_id = None
    if mlflow:
        from hvl.core.tracking import start_eval_run

        run_id = start_eval_run(experiment, meta.get("mlflow_run_id"), uri=tracking_uri)
    result: dict[str, Any] = {
        "checkpoint": str(ckpt), "dataset": str(dataset), "dataset_format": dataset_format, "fps": fps,
        "window": window, "protocol": protocol,
        "image_size": image_size, "smoothing": {"method": smoothing, "window": smoothing_window},
        "bootstrap": {"n_boot": n_boot, "level": ci_level, "seed": seed, "unit": "video"},
        "n_videos": len(videos), "mlflow_run_id": run_id,
        **{k: {kk: vv for kk, vv in r.items() if not kk.startswith("_")} for k, r in runs.items()},
        "comparison": comparison, "failures": failures, "ribbons": ribbons,
    }
    tables = report_tables(result)
    result["tables"] = tables
    blocks = report_blocks(result, tables)
    written = write_report(out, "Zero-shot surgical phase recognition — clinical review", blocks, figures)
    json_path = write_json(out / "clinical.json", jsonable(result))
    result.update(report=str(written["html"]), json=str(json_path),
                  figures={k: str(p) for k, p in written["figures"].items()}, out_dir=str(out),
                  seconds=round(time.perf_counter() - t0, 2))
    if run_id:
        from hvl.core.tracking import log_files, log_metrics

        metrics: dict[str, float] = {}
        for r in runs.values():
            metrics.update(mlflow_metrics(r["tag"], r["ci"], r["smoothed_ci"], r["names"]))
        rel = a["relaxed"]
        metrics.update({f"clinical/{a['tag']}/{rel['protocol']}/{k}": rel[k]
                        for k in ("accuracy", "precision", "recall", "jaccard", "f1") if rel[k] is not None})
        log_metrics(run_id, metrics, {"clinical_fps": fps, "clinical_protocol": protocol,
                                      "clinical_smoothing": f"{smoothing}:{smoothing_window}",
                                      "clinical_bootstrap": f"{n_boot}@{ci_level}:seed{seed}"}, uri=tracking_uri)
        for f in [written["html"], json_path, *written["figures"].values()]:
            log_files(run_id, {f"clinical/{a['tag']}": f}, uri=tracking_uri)
    return result
