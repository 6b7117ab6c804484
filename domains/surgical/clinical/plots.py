"""The review's figures, drawn with matplotlib's object API (no pyplot state), and their PNG bytes."""
from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch import Tensor

__all__ = ["figure_png", "plot_confusion", "plot_gallery", "plot_ladder", "plot_progress", "plot_prompt_comparison",
           "plot_ribbon"]


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


def plot_ladder(rows: Sequence[Mapping[str, Any]], title: str = "the ladder: accuracy per rung"):
    """Mean accuracy (± std over seeds) of each rung of :func:`hvl.core.evaluation.adapt.ladder_table`, one marker
    per level's space, zero-shot dashed."""
    from matplotlib.figure import Figure

    rungs = list(dict.fromkeys(r["rung"] for r in rows))
    levels = list(dict.fromkeys(r["level"] for r in rows))
    fig = Figure(figsize=(8, 0.9 + 0.42 * len(rungs)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(rungs))
    for k, lv in enumerate(levels):
        got = {r["rung"]: r["accuracy"] for r in rows if r["level"] == lv}
        off = (k - (len(levels) - 1) / 2) * 0.18
        mean = np.array([got[n]["mean"] if n in got else np.nan for n in rungs])
        std = np.array([got[n]["std"] if n in got else np.nan for n in rungs])
        line = ax.errorbar(mean, y + off, xerr=np.nan_to_num(std), fmt="o", capsize=3, label=f"{lv} space")
        ax.axvline(mean[0], color=line[0].get_color(), ls="--", lw=0.8)
    ax.set_yticks(y, rungs, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("accuracy (mean over test videos; ± std over seeds)")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return fig


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    """PNG bytes of a matplotlib figure (the same bytes go to the file and into the HTML)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
