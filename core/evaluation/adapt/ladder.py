"""The ladder: how much each step from zero labels to a temporal head adds, for one model, in each level's space.

Rungs, each scored on the same test videos as zero-shot (accuracy, macro-F1 and Jaccard per video, averaged):
zero-shot on single frames → zero-shot on centred windows (a few lengths) → K labelled frames per class (linear,
a few K) → a linear probe on a share of the training videos (10 %, 100 %) → the probe on windows → the temporal
head. Every frame of the training and test videos is decoded and encoded once; each level's frame and window
embeddings come from those features, so one model's whole ladder costs one pass over the video plus the small
heads. Aggregated over seeds (model seeds x draws) with a paired per-video bootstrap against zero-shot in the same
space, and — the hierarchy question — of the phase space against the clip space on the same rung.
``benchmarks/ladder.py`` runs it on the realistic demo, the clinical notebook on a user's checkpoint.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...data.records import Resolved
from ...data.schema import PromptFile
from ...data.transforms import Preprocess
from ..metrics import PHASE_METRICS
from ..stats import bootstrap_ci
from ..zeroshot.classify import class_embeddings, summarize
from ..zeroshot.frames import sample_sequences
from ..zeroshot.windows import frame_features, window_embeddings, window_half
from .embeddings import LabelledSequence, sequence_features
from .fit import one_thread, train_head
from .heads import build_head

__all__ = ["Rung", "default_rungs", "head_predictions", "ladder_markdown", "ladder_table", "run_ladder"]


@dataclass(frozen=True)
class Rung:
    """One step of the ladder: zero-shot (``method`` None) or a head, on frames or ``window``-second windows."""

    name: str
    method: str | None = None
    window: float | None = None
    shots: int | None = None
    fraction: float | None = None


def default_rungs(windows: Sequence[float] = (2, 4, 8), shots: Sequence[int] = (1, 4, 16),
                  fractions: Sequence[float] = (0.1, 1.0), probe_windows: Sequence[float] = (4,),
                  temporal: bool = True) -> list[Rung]:
    rungs = [Rung("zero-shot")]
    rungs += [Rung(f"zero-shot, {w:g} s window", window=w) for w in windows]
    rungs += [Rung(f"{k} shot{'s' if k > 1 else ''} / class", "linear", shots=k) for k in shots]
    rungs += [Rung(f"linear probe, {p:.0%} of videos", "linear", fraction=None if p == 1 else p) for p in fractions]
    rungs += [Rung(f"linear probe, 100% of videos, {w:g} s windows", "linear", window=w) for w in probe_windows]
    if temporal:
        rungs.append(Rung("temporal head", "temporal"))
    return rungs


@torch.no_grad()
def head_predictions(head, seqs: Sequence[LabelledSequence]) -> list[Tensor]:
    """Predicted class of each labelled frame, per video (a temporal head sees the whole video)."""
    head.eval()
    out = []
    with one_thread():
        for s in seqs:
            emb = s.emb.to(next(head.parameters()).device)
            z = head.sequence_scores(emb)[s.positions] if head.reads_sequences else head.scores(emb[s.positions])
            out.append(z.argmax(-1).cpu())
    return out


def _embed(model, feats: list[Tensor], seqs, half: int, level: str, ids: list[str]) -> list[LabelledSequence]:
    return [LabelledSequence(i, window_embeddings(model, f, half, level), s.positions, s.labels)
            for i, f, s in zip(ids, feats, seqs)]


@torch.no_grad()
def run_ladder(model, preprocess: Preprocess, train_videos: list[Resolved], test_videos: list[Resolved],
               prompts: PromptFile, levels: Sequence[str] = ("clip", "phase"), rungs: Sequence[Rung] | None = None,
               seeds: Sequence[int] = (0, 1, 2), fps: float = 1.0, cache_dir: str | None = None,
               batch_size: int = 64, num_workers: int = 2, video_backend: str = "auto", progress: bool = False,
               head_options: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Every rung in every level's space: per level and rung, the :func:`summarize` result of each seed (zero-shot
    rungs: one, they draw nothing). ``head_options``: per method, :func:`train_head` keywords (e.g.
    ``{"temporal": {"steps": 50, "layers": 6}}``)."""
    t0 = time.perf_counter()
    rungs = list(rungs or default_rungs())
    model.eval()
    size = preprocess.output_size[0]
    names = prompts.names
    seq_tr = sample_sequences(train_videos, names, fps, size, video_backend)
    seq_te = sample_sequences(test_videos, names, fps, size, video_backend)
    feat_tr, cache = sequence_features(model, train_videos, seq_tr, preprocess, cache_dir, batch_size, num_workers,
                                       video_backend, progress)
    feat_te = frame_features(model, test_videos, seq_te, size, batch_size, num_workers, preprocess, video_backend,
                             progress, desc="test frames")
    ids_tr, ids_te = [r.video_id for r, _ in train_videos], [r.video_id for r, _ in test_videos]
    out: dict[str, Any] = {"levels": {}, "rungs": [asdict(r) for r in rungs], "seeds": list(seeds), "fps": fps,
                           "classes": names, "n_train_videos": len(train_videos), "n_test_videos": len(test_videos),
                           "feature_cache": cache}
    for lv in levels:
        if lv not in model.video_heads:
            continue
        w = class_embeddings(model, prompts, lv)
        emb_tr: dict[float | None, list[LabelledSequence]] = {}
        emb_te: dict[float | None, list[LabelledSequence]] = {}
        res: dict[str, list[dict[str, Any]]] = {}
        for rung in rungs:
            half = window_half(rung.window, fps) or 0
            if rung.window not in emb_te:
                emb_te[rung.window] = _embed(model, feat_te, seq_te, half, lv, ids_te)
            if rung.method is None:
                head = build_head("linear", w, names, lv, rung.window, fps)  # untrained: zero-shot's classifier
                heads = [head]
            else:
                if rung.window not in emb_tr:
                    emb_tr[rung.window] = _embed(model, feat_tr, seq_tr, half, lv, ids_tr)
                opts = (head_options or {}).get(rung.method, {})
                with torch.enable_grad():
                    heads = [train_head(rung.method, w, emb_tr[rung.window], names, lv, rung.window, fps,
                                        shots=rung.shots, fraction=rung.fraction, seed=s, **opts) for s in seeds]
            res[rung.name] = [summarize(ids_te, head_predictions(h, emb_te[rung.window]),
                                        [s.labels for s in seq_te], names, lv, fps) for h in heads]
        out["levels"][lv] = res
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _mean_std(xs: Sequence[float]) -> dict[str, Any]:
    a = np.asarray(xs, dtype=np.float64)
    return {"mean": round(float(a.mean()), 4), "std": round(float(a.std(ddof=1)) if len(a) > 1 else 0.0, 4),
            "n": len(a)}


def _per_video(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per test video (keyed by set and id), each metric averaged over the results (seeds)."""
    rows: dict[str, dict[str, list[float]]] = {}
    for res in results:
        for r in res["per_video"]:
            for m in PHASE_METRICS:
                rows.setdefault(r["video_id"], {}).setdefault(m, []).append(float(r[m]))
    return {v: {m: float(np.mean(x)) for m, x in ms.items()} for v, ms in rows.items()}


def _paired(rows: dict[str, dict[str, float]], base: dict[str, dict[str, float]], n_boot: int) -> dict[str, Any]:
    deltas = [{m: rows[v][m] - base[v][m] for m in PHASE_METRICS} for v in sorted(rows)]
    ci = bootstrap_ci(deltas, PHASE_METRICS, n_boot=n_boot)
    return {m: {"delta": round(ci[m]["mean"], 4), "lo": round(ci[m]["lo"], 4), "hi": round(ci[m]["hi"], 4)}
            for m in PHASE_METRICS}


def ladder_table(runs: Sequence[dict[str, Any]], n_boot: int = 2000) -> list[dict[str, Any]]:
    """One row per level and rung over all ``runs`` (e.g. one per pretraining seed, each with its draw seeds):
    mean ± std of each metric, and paired per-video bootstrap 95 % CIs (per-video scores averaged over the
    results first, videos resampled) against zero-shot in the same space and, for the phase space, against the
    clip space on the same rung."""
    levels = [lv for lv in runs[0]["levels"]]
    rungs = [r["name"] for r in runs[0]["rungs"]]
    per = {(lv, rung): [res for run in runs for res in run["levels"][lv][rung]] for lv in levels for rung in rungs}
    rows = []
    for lv in levels:
        base = _per_video(per[lv, rungs[0]])
        for rung in rungs:
            results = per[lv, rung]
            vids = _per_video(results)
            row = {"level": lv, "rung": rung, **{m: _mean_std([r[m] for r in results]) for m in PHASE_METRICS},
                   "vs_zeroshot": _paired(vids, base, n_boot)}
            if lv == "phase" and "clip" in levels:
                row["phase_vs_clip"] = _paired(vids, _per_video(per["clip", rung]), n_boot)
            rows.append(row)
    return rows


def ladder_markdown(rows: Sequence[dict[str, Any]]) -> str:
    def ci(v: dict[str, Any]) -> str:
        return f"{v['delta']:+.3f} [{v['lo']:+.3f}, {v['hi']:+.3f}]"

    head = ("| rung | space | accuracy | macro-F1 | Jaccard | Δ accuracy vs zero-shot [95 % CI] "
            "| Δ F1 vs zero-shot [95 % CI] | phase − clip accuracy [95 % CI] |")
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ms = [f"{r[m]['mean']:.3f} ± {r[m]['std']:.3f}" for m in PHASE_METRICS]
        pc = ci(r["phase_vs_clip"]["accuracy"]) if "phase_vs_clip" in r else "–"
        lines.append(f"| {r['rung']} | {r['level']} | {' | '.join(ms)} | {ci(r['vs_zeroshot']['accuracy'])} "
                     f"| {ci(r['vs_zeroshot']['f1_macro'])} | {pc} |")
    return "\n".join(lines)
