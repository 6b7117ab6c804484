"""Clinical review of zero-shot surgical phase recognition.

Before a surgical team trusts a zero-shot phase model, a clinician asks: how good is it per
video, and how sure are we of that (bootstrap intervals over *videos*, the unit a hospital
samples — frames of one video are not independent); which phases are confused; where in the
procedure it fails (phase ribbons, accuracy along the procedure); whether the prompt wording
changes it; and which frames it gets confidently wrong. Everything here starts from
:func:`hvl.core.evaluation.zeroshot.predict` and the metric functions `hvl zeroshot` uses, so the numbers
for prompt file A are `hvl zeroshot`'s. :func:`evaluate_clinical` runs it all, writes a
self-contained HTML report with PNG figures and logs both to MLflow; the notebook
``notebooks/clinical_evaluation.ipynb`` only calls it and displays what it returns.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hvl.core.data import datasets
from hvl.core.data.datasets import Resolved
from hvl.core.errors import HVLInputError
from hvl.core.evaluation.metrics import PHASE_METRICS, phase_metrics
from hvl.core.evaluation.stats import bootstrap_ci
from hvl.core.evaluation.temporal import check_method, check_window, smooth
from hvl.core.evaluation.zeroshot import sample_eval_frames
from hvl.core.evaluation.zeroshot import summarize as zeroshot_summary
from torch import Tensor
from torchmetrics.functional.classification import (
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

PER_PHASE = ("precision", "recall", "f1")


# ------------------------------------------------------------------ data
def load_videos(dataset: str | Path, fmt: str = "manifest", domain: str = "surgical",
                **options: Any) -> list[Resolved]:
    """The videos to review, read as `hvl zeroshot` reads them: a manifest, or a domain reader (e.g. cholec80)."""
    return datasets.load_videos(datasets.DatasetSpec(reader=fmt, path=str(dataset), options=options), domain)


# ------------------------------------------------------------------ metrics
def per_phase_scores(pred: Tensor, target: Tensor, names: Sequence[str]) -> dict[str, float]:
    """Precision, recall and F1 of each phase in one video; NaN where undefined, so averages skip them.

    A phase absent from the truth has no recall, one never predicted has no precision, and one
    neither present nor predicted has no F1: scoring those 0 (torchmetrics' default) would punish
    a video for a phase it does not contain.
    """
    c = len(names)
    kw = {"num_classes": c, "average": None}
    scores = {"precision": multiclass_precision(pred, target, **kw), "recall": multiclass_recall(pred, target, **kw),
              "f1": multiclass_f1_score(pred, target, **kw)}
    in_truth = torch.bincount(target, minlength=c) > 0
    predicted = torch.bincount(pred, minlength=c) > 0
    defined = {"precision": predicted, "recall": in_truth, "f1": in_truth | predicted}
    return {f"{m}/{n}": float(scores[m][i]) if defined[m][i] else math.nan
            for m in PER_PHASE for i, n in enumerate(names)}


def per_video_table(video_ids: Sequence[str], preds: Sequence[Tensor], labels: Sequence[Tensor],
                    names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per video: `hvl zeroshot`'s accuracy / macro-F1 / Jaccard plus per-phase precision, recall, F1."""
    rows = []
    for vid, p, y in zip(video_ids, preds, labels):
        rows.append({"video_id": vid, "n_frames": int(y.numel()), **phase_metrics(p, y, len(names)),
                     **per_phase_scores(p, y, names)})
    return rows


def confusion(preds: Sequence[Tensor], labels: Sequence[Tensor], num_classes: int) -> Tensor:
    """Frames pooled over videos, each row normalised by its true phase: row i = where phase i's frames went."""
    with warnings.catch_warnings():  # a phase absent from the truth has an all-zero row, as intended
        warnings.filterwarnings("ignore", message=".*NaN values found in confusion matrix")
        return multiclass_confusion_matrix(torch.cat(list(preds)), torch.cat(list(labels)), num_classes,
                                           normalize="true")


def accuracy_by_progress(preds: Sequence[Tensor], labels: Sequence[Tensor], bins: int = 10) -> list[float]:
    """Mean over videos of the accuracy in each tenth (``bins``) of the procedure: where along the case it fails."""
    per_video = np.full((len(preds), bins), math.nan)
    for v, (p, y) in enumerate(zip(preds, labels)):
        n = y.numel()
        b = (torch.arange(n) * bins // max(n, 1)).numpy()
        ok = (p == y).numpy()
        for k in range(bins):
            if (b == k).any():
                per_video[v, k] = ok[b == k].mean()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return [float(x) for x in np.nanmean(per_video, axis=0)]


# ------------------------------------------------------------------ prompt comparison
def _paired_deltas(rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]],
                   keys: Sequence[str]) -> list[dict[str, float]]:
    b_by_id = {r["video_id"]: r for r in rows_b}
    missing = [r["video_id"] for r in rows_a if r["video_id"] not in b_by_id]
    if missing:
        raise ValueError(f"videos {missing[:5]} were scored with prompt file A but not B; compare the same videos")
    return [{k: float(b_by_id[r["video_id"]].get(k, math.nan)) - float(r.get(k, math.nan)) for k in keys}
            for r in rows_a]


def compare_prompts(rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]], names: Sequence[str],
                    n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Prompt file B against A on the same videos: means side by side and the paired per-video difference B − A.

    The delta's interval resamples videos with their A and B scores together, so a delta
    whose interval excludes 0 is a wording effect, not which videos happened to be drawn.
    For per-phase scores the delta averages the videos where both are defined.
    """
    overall_keys = list(PHASE_METRICS)
    phase_keys = [f"{m}/{n}" for m in ("f1", "recall") for n in names]
    keys = overall_keys + phase_keys
    ci_a, ci_b = bootstrap_ci(rows_a, keys, n_boot, level, seed), bootstrap_ci(rows_b, keys, n_boot, level, seed)
    ci_d = bootstrap_ci(_paired_deltas(rows_a, rows_b, keys), keys, n_boot, level, seed)

    def entry(k: str) -> dict[str, float]:
        return {"a": ci_a[k]["mean"], "b": ci_b[k]["mean"], "delta": ci_d[k]["mean"],
                "delta_lo": ci_d[k]["lo"], "delta_hi": ci_d[k]["hi"]}

    overall = [{"metric": k, **entry(k)} for k in overall_keys]
    per_phase = []
    for n in names:
        row: dict[str, Any] = {"phase": n}
        for m in ("f1", "recall"):
            row.update({f"{m}_{s}": v for s, v in entry(f"{m}/{n}").items()})
        per_phase.append(row)
    return {"overall": overall, "per_phase": per_phase}


# ------------------------------------------------------------------ failures
def eval_frame_indices(videos: Sequence[Resolved], names: Sequence[str], fps: float, size: int = 64) -> list[list[int]]:
    """Per video, the decoded frame index of each frame :func:`~hvl.core.evaluation.zeroshot.predict` scored, in order.

    Recomputed with the same :func:`~hvl.core.evaluation.zeroshot.sample_eval_frames`, so position k of a
    video's predictions is frame ``indices[v][k]`` of its file.
    """
    index, _, _ = sample_eval_frames(list(videos), list(names), fps, 1 << 30, size)
    out: list[list[int]] = [[] for _ in videos]
    for vi, frames in index:
        out[vi] += frames
    return out


def confident_errors(preds: Sequence[Tensor], labels: Sequence[Tensor], probs: Sequence[Tensor],
                     k: int = 8) -> list[dict[str, Any]]:
    """The ``k`` wrong frames with the highest predicted probability: errors the model is sure of are the dangerous ones."""
    found = []
    for v, (p, y, pr) in enumerate(zip(preds, labels, probs)):
        wrong = (p != y).nonzero().flatten()
        conf = pr[wrong, p[wrong]]
        found += [(float(c), v, int(i)) for c, i in zip(conf, wrong)]
    found.sort(key=lambda t: (-t[0], t[1], t[2]))
    return [{"video": v, "position": i, "true": int(labels[v][i]), "pred": int(preds[v][i]), "prob": c}
            for c, v, i in found[:k]]


def decode_frames(videos: Sequence[Resolved], refs: Sequence[tuple[int, int]],
                  size: tuple[int, int] | None = None) -> list[tuple[np.ndarray, float]]:
    """``(video, frame index)`` → (RGB ``uint8`` image, time in seconds), via :mod:`hvl.core.data.video`."""
    from hvl.core.data.video import ReaderCache

    readers = ReaderCache(1, size=size)
    out = []
    for v, f in refs:
        src = readers(videos[v][1]).source
        out.append((src.get([f])[0].numpy(), f / src.fps))
    return out


# ------------------------------------------------------------------ figures (object API: no pyplot state)
def _phase_colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def plot_confusion(cm: Tensor | np.ndarray, names: Sequence[str], title: str = "confusion (rows: true phase)"):
    """Heat map of a row-normalised confusion matrix with each cell's fraction written in it."""
    from matplotlib.figure import Figure

    cm = np.asarray(cm, dtype=float)
    n = len(names)
    fig = Figure(figsize=(1.0 + 0.9 * n, 0.8 + 0.8 * n), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{cm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), names, fontsize=8)
    ax.set_xlabel("predicted phase")
    ax.set_ylabel("true phase")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04)
    return fig


def plot_ribbon(truth: Tensor, pred: Tensor, smoothed: Tensor, names: Sequence[str], fps: float,
                title: str = "", smoothed_label: str = "smoothed"):
    """Phase timeline of one video: ground truth, prediction and smoothed prediction, one colour per phase."""
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    colors = _phase_colors(len(names))
    data = np.stack([np.asarray(truth), np.asarray(pred), np.asarray(smoothed)])
    fig = Figure(figsize=(10, 2.4), layout="constrained")
    ax = fig.subplots()
    ax.imshow(data, aspect="auto", interpolation="nearest", cmap=ListedColormap(colors),
              vmin=-0.5, vmax=len(names) - 0.5, extent=(0, data.shape[1] / fps, 2.5, -0.5))
    ax.set_yticks([0, 1, 2], ["ground truth", "prediction", smoothed_label], fontsize=8)
    ax.set_xlabel("time (s)")
    ax.set_title(title, fontsize=9)
    ax.legend(handles=[Patch(color=c, label=n) for c, n in zip(colors, names)], fontsize=7,
              loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig


def plot_progress(curves: Mapping[str, Sequence[float]]):
    """Accuracy along the procedure (fraction of the case elapsed), one line per prompt file."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3), layout="constrained")
    ax = fig.subplots()
    for label, acc in curves.items():
        x = (np.arange(len(acc)) + 0.5) / len(acc)
        ax.plot(x, acc, marker="o", label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("fraction of the procedure elapsed")
    ax.set_ylabel("accuracy (mean over videos)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def plot_prompt_comparison(per_phase: Sequence[Mapping[str, Any]], label_a: str, label_b: str):
    """Per-phase F1 and recall change (B − A) with the paired bootstrap interval as error bars."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 0.6 + 0.45 * len(per_phase)), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(per_phase))
    for ax, m in zip(axes, ("f1", "recall")):
        d = np.array([r[f"{m}_delta"] for r in per_phase], dtype=float)
        lo = np.array([r[f"{m}_delta_lo"] for r in per_phase], dtype=float)
        hi = np.array([r[f"{m}_delta_hi"] for r in per_phase], dtype=float)
        err = np.nan_to_num(np.stack([d - lo, hi - d]), nan=0.0).clip(min=0)
        ax.barh(y, np.nan_to_num(d), xerr=err, color=["tab:green" if v >= 0 else "tab:red" for v in np.nan_to_num(d)],
                capsize=3)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(f"{m} per phase: {label_b} − {label_a}", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, [r["phase"] for r in per_phase], fontsize=8)
    axes[0].invert_yaxis()
    return fig


def plot_gallery(images: Sequence[np.ndarray], captions: Sequence[str], ncols: int = 4):
    """Grid of frames with their captions (true / predicted phase, confidence)."""
    from matplotlib.figure import Figure

    n = max(len(images), 1)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(3.0 * ncols, 3.2 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).flatten()
    for ax in axes:
        ax.axis("off")
    for ax, img, cap in zip(axes, images, captions):
        ax.imshow(img)
        ax.set_title(cap, fontsize=7)
    if not images:
        axes[0].text(0.5, 0.5, "no wrong frames", ha="center", va="center")
    return fig


# ------------------------------------------------------------------ export
def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write via a temporary file in the same folder and rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(tmp, path)
    return path


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    """PNG bytes of a matplotlib figure (the same bytes go to the file and into the HTML)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "—" if math.isnan(v) else f"{v:.3f}"
    return html.escape(str(v))


def html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows of dicts as an HTML table; floats to 3 decimals, undefined (NaN) as '—'."""
    columns = list(columns or (rows[0].keys() if rows else []))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:13px}th,td{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}img{max-width:100%}
figure{margin:1em 0}figcaption{font-size:12px;color:#555}.meta td{text-align:left}"""


def write_report(out_dir: str | Path, title: str, blocks: Sequence[tuple], figures: Mapping[str, Any],
                 html_name: str = "report.html") -> dict[str, Any]:
    """PNG per figure plus one self-contained HTML page (figures embedded as data URIs, linked to their PNGs).

    ``blocks`` are ``("h2", text)``, ``("p", text)``, ``("table", rows[, columns])``,
    ``("html", raw)`` or ``("figure", name[, caption])``. Every file is written atomically and
    the HTML last, so a report that exists refers only to figures that are complete.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pngs: dict[str, bytes] = {}
    paths: dict[str, Path] = {}
    for name, fig in figures.items():
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
            raise ValueError(f"figure name {name!r} must be a plain file name (letters, digits, _ . -)")
        pngs[name] = fig if isinstance(fig, bytes) else figure_png(fig)
        paths[name] = atomic_write(out / f"{name}.png", pngs[name])
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for block in blocks:
        kind = block[0]
        if kind in ("h2", "h3", "p"):
            parts.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "html":
            parts.append(block[1])
        elif kind == "table":
            parts.append(html_table(block[1], block[2] if len(block) > 2 else None))
        elif kind == "figure":
            name = block[1]
            if name not in pngs:
                raise ValueError(f"report block refers to figure {name!r}, which was not given")
            data = base64.b64encode(pngs[name]).decode("ascii")
            cap = f"<figcaption>{html.escape(block[2])}</figcaption>" if len(block) > 2 else ""
            parts.append(f"<figure><a href='{name}.png'><img src='data:image/png;base64,{data}' "
                         f"alt='{name}.png'></a>{cap}</figure>")
        else:
            raise ValueError(f"unknown report block kind {kind!r}")
    parts.append("</body></html>")
    report = atomic_write(out / html_name, "\n".join(parts))
    return {"html": report, "figures": paths}


def jsonable(obj: Any) -> Any:
    """Plain JSON (NaN → null, tensors and paths → lists and strings)."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Tensor):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def mlflow_metrics(tag: str, ci: Mapping[str, Mapping[str, float]], smoothed_ci: Mapping[str, Mapping[str, float]],
                   names: Sequence[str]) -> dict[str, float]:
    """Metric name → value for MLflow: headline means with their interval, smoothed means, per-phase F1."""
    out: dict[str, float] = {}
    for k in PHASE_METRICS:
        out.update({f"clinical/{tag}/{k}": ci[k]["mean"], f"clinical/{tag}/{k}_ci_lo": ci[k]["lo"],
                    f"clinical/{tag}/{k}_ci_hi": ci[k]["hi"], f"clinical/{tag}/smoothed_{k}": smoothed_ci[k]["mean"]})
    out.update({f"clinical/{tag}/f1/{n}": ci[f"f1/{n}"]["mean"] for n in names})
    return {k: v for k, v in out.items() if math.isfinite(v)}


# ------------------------------------------------------------------ tables for display
def summary_rows(ci: Mapping[str, Mapping[str, float]], keys: Sequence[str] = PHASE_METRICS,
                 label: str | None = None) -> list[dict[str, Any]]:
    """``metric | mean | ci_low | ci_high | n_videos`` rows (optionally tagged with what was scored)."""
    return [{**({"scored": label} if label else {}), "metric": k, "mean": ci[k]["mean"], "ci_low": ci[k]["lo"],
             "ci_high": ci[k]["hi"], "n_videos": ci[k]["n_videos"]} for k in keys]


def per_phase_rows(ci: Mapping[str, Mapping[str, float]], names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per phase: precision, recall and F1 (mean over videos where defined) with intervals."""
    rows = []
    for n in names:
        r: dict[str, Any] = {"phase": n}
        for m in PER_PHASE:
            c = ci[f"{m}/{n}"]
            r.update({m: c["mean"], f"{m}_lo": c["lo"], f"{m}_hi": c["hi"]})
        r["n_videos"] = ci[f"recall/{n}"]["n_videos"]
        rows.append(r)
    return rows


def as_frame(rows: Sequence[Mapping[str, Any]]):
    """A pandas DataFrame of table rows, for display in the notebook."""
    import pandas as pd

    return pd.DataFrame(list(rows))


NOTEBOOK_SECTIONS = ("overall", "per_phase", "where", "per_video", "comparison", "failures")


def notebook_section(result: Mapping[str, Any], name: str) -> list[Any]:
    """What the notebook displays for one section: DataFrames and PNG images of :func:`evaluate_clinical`'s result.

    Kept here rather than in the notebook so that the notebook holds no untested logic.
    """
    from IPython.display import Image, Markdown

    tables, figs = result["tables"], result["figures"]

    def img(key: str) -> Any:
        return Image(filename=str(figs[key]))

    if name == "overall":
        return [as_frame(tables["summary"]), as_frame(tables["pooled"])]
    if name == "per_phase":
        return [as_frame(tables["per_phase"]), img("confusion_a"), *([img("confusion_b")] if "confusion_b" in figs else [])]
    if name == "where":
        return [img("progress"), *[img(r) for r in result["ribbons"]]]
    if name == "per_video":
        return [as_frame(tables["per_video"])]
    if name == "comparison":
        if "comparison" not in tables:
            return [Markdown("No prompt file B was given: set `prompts_b` to compare prompt wordings.")]
        return [as_frame(tables["comparison"]), as_frame(tables["comparison_per_phase"]), img("prompt_comparison")]
    if name == "failures":
        return [as_frame(tables["failures"]), img("failures")]
    raise ValueError(f"unknown section {name!r}; sections: {NOTEBOOK_SECTIONS}")


# ------------------------------------------------------------------ the whole review
def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", name)


def _score_prompts(model: Any, videos: Sequence[Resolved], spec: str, level: str | None, fps: float,
                   image_size: int, batch_size: int, num_workers: int, progress: bool, smoothing: str, window: int,
                   n_boot: int, ci_level: float, seed: int, preprocess: Any = None) -> dict[str, Any]:
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
                                   preprocess=preprocess)
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
                      text_model: str | None = None) -> dict[str, Any]:
    """Review a checkpoint on a dataset with prompt file A (and optionally B); write the report; return its content.

    ``ckpt`` is an hvl checkpoint file, or a pretrained model used directly as ``hvl zeroshot --model`` does: a
    local HF image-text directory or ``<kind>:<file>`` (e.g. ``surgvlp:/models/HecVL.pth``, with ``text_model``).

    The metrics of prompt file A (``result["a"]["zeroshot"]``) are those `hvl zeroshot` prints for
    the same checkpoint, videos, prompt file, level, fps and image size: same prediction and
    metric functions, same defaults (image size from the checkpoint, batch 64). ``split`` and
    ``video_ids`` go to a domain reader such as ``cholec80`` and are ignored for a manifest.
    """
    from hvl.core.models.backbones import BACKBONES
    from hvl.core.models.checkpoint import load_for_eval, preprocess_of

    check_method(smoothing)
    check_window(smoothing_window)
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
                  ci_level=ci_level, seed=seed)
    runs = {"a": _score_prompts(model, videos, prompts_a, **common)}
    if prompts_b:
        runs["b"] = _score_prompts(model, videos, prompts_b, **common)
        if runs["b"]["tag"] == runs["a"]["tag"]:
            runs["b"]["tag"] += "_b"
    a = runs["a"]
    names = a["names"]
    ids = [rec.video_id for rec, _ in videos]
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
    json_path = atomic_write(out / "clinical.json", json.dumps(jsonable(result), indent=2))
    result.update(report=str(written["html"]), json=str(json_path),
                  figures={k: str(p) for k, p in written["figures"].items()}, out_dir=str(out),
                  seconds=round(time.perf_counter() - t0, 2))
    if run_id:
        from hvl.core.tracking import log_files, log_metrics

        metrics: dict[str, float] = {}
        for r in runs.values():
            metrics.update(mlflow_metrics(r["tag"], r["ci"], r["smoothed_ci"], r["names"]))
        log_metrics(run_id, metrics, {"clinical_fps": fps, "clinical_smoothing": f"{smoothing}:{smoothing_window}",
                                      "clinical_bootstrap": f"{n_boot}@{ci_level}:seed{seed}"}, uri=tracking_uri)
        for f in [written["html"], json_path, *written["figures"].values()]:
            log_files(run_id, {f"clinical/{a['tag']}": f}, uri=tracking_uri)
    return result


def report_tables(result: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every table the report and the notebook show, from :func:`evaluate_clinical`'s result."""
    a = result["a"]
    names = a["names"]
    w = result["smoothing"]
    tables: dict[str, list[dict[str, Any]]] = {
        "summary": summary_rows(a["ci"], label=f"A: {a['tag']}")
        + summary_rows(a["smoothed_ci"], label=f"A: {a['tag']}, smoothed ({w['method']}, {w['window']})"),
        "per_phase": per_phase_rows(a["ci"], names),
        "per_video": [{k: r[k] for k in ["video_id", "n_frames", *PHASE_METRICS]
                       + [f"{m}/{n}" for m in ("precision", "recall") for n in names]} for r in a["per_video"]],
        "pooled": [{"metric": k, "pooled over frames": a["zeroshot"]["pooled"][k], "mean over videos": a["zeroshot"][k]}
                   for k in PHASE_METRICS],
        "failures": list(result["failures"]),
    }
    if result.get("b"):
        b = result["b"]
        tables["summary"] += summary_rows(b["ci"], label=f"B: {b['tag']}")
        tables["comparison"] = result["comparison"]["overall"]
        tables["comparison_per_phase"] = result["comparison"]["per_phase"]
    return tables


def report_blocks(result: Mapping[str, Any], tables: Mapping[str, list[dict[str, Any]]]) -> list[tuple]:
    """The report's layout: what each section shows and how to read it."""
    a, b = result["a"], result.get("b")
    bs, sm = result["bootstrap"], result["smoothing"]
    pct = f"{bs['level'] * 100:g}%"
    meta = [{"item": "checkpoint", "value": result["checkpoint"]},
            {"item": "dataset", "value": f"{result['dataset']} ({result['dataset_format']})"},
            {"item": "videos / frames", "value": f"{result['n_videos']} / {a['zeroshot']['n_frames']}"},
            {"item": "prompt file A", "value": a["prompt_file"]},
            *([{"item": "prompt file B", "value": b["prompt_file"]}] if b else []),
            {"item": "level / fps / image size", "value": f"{a['level']} / {result['fps']} / {result['image_size']}"},
            {"item": "intervals", "value": f"{pct} percentile bootstrap over videos, {bs['n_boot']} resamples, "
                                           f"seed {bs['seed']}"},
            {"item": "MLflow run", "value": result.get("mlflow_run_id") or "not logged"}]
    blocks: list[tuple] = [
        ("table", meta),
        ("h2", "Overall (mean over videos)"),
        ("p", f"Accuracy, macro-F1 and Jaccard are computed per video and averaged (SurgVLP protocol; the "
              f"numbers `hvl zeroshot` reports). The {pct} interval resamples whole videos with replacement. "
              f"Smoothed: the frame-wise predictions after a {sm['method']} filter of {sm['window']} frames."),
        ("table", tables["summary"]),
        ("table", tables["pooled"]),
        ("h2", "Per phase (mean over videos where the phase is defined)"),
        ("p", "Recall is undefined (—) in videos without the phase, precision where it is never predicted."),
        ("table", tables["per_phase"]),
        ("figure", "confusion_a", "Where each phase's frames went (frames pooled over videos, rows sum to 1)."),
        *([("figure", "confusion_b", "The same for prompt file B.")] if b else []),
        ("h2", "Where in the procedure it fails"),
        ("figure", "progress", "Accuracy in each tenth of the procedure, mean over videos."),
        *[("figure", name) for name in result["ribbons"]],
        ("h2", "Per video"),
        ("table", tables["per_video"]),
    ]
    if b:
        blocks += [("h2", "Prompt wording: B against A"),
                   ("p", "Delta = B − A averaged over videos, with a paired bootstrap interval over videos; an "
                         "interval that excludes 0 means the wording changes the result."),
                   ("table", tables["comparison"]),
                   ("table", tables["comparison_per_phase"]),
                   ("figure", "prompt_comparison")]
    blocks += [("h2", "Failure gallery: the most confidently wrong frames (prompt file A)"),
               ("table", tables["failures"]),
               ("figure", "failures")]
    return blocks
