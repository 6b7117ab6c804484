"""What the clinical report says: its tables and layout, the result as plain JSON, the numbers sent to MLflow."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from hvl.core.evaluation.metrics import PHASE_METRICS
from torch import Tensor

from .scores import PER_PHASE

__all__ = ["jsonable", "mlflow_metrics", "per_phase_rows", "protocol_rows", "report_blocks", "report_tables",
           "summary_rows"]


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


def protocol_rows(strict: Mapping[str, Any], relaxed: Mapping[str, Any], first: str = "strict") -> list[dict[str, Any]]:
    """The same predictions under both metric protocols, one row each (``first`` on top): strict's F1 is the mean
    over videos of each video's macro-F1, relaxed's is 2PR/(P+R) of the mean precision and recall."""
    rows = [{"protocol": "strict", "accuracy": strict["accuracy"], "f1": strict["f1_macro"],
             "jaccard": strict["jaccard"], "precision": None, "recall": None,
             "averaging": "per video, then the mean over videos"},
            {"protocol": relaxed["protocol"], "accuracy": relaxed["accuracy"], "f1": relaxed["f1"],
             "jaccard": relaxed["jaccard"], "precision": relaxed["precision"], "recall": relaxed["recall"],
             "averaging": "per phase and video, clipped at 1; mean over videos, then over phases"}]
    return rows if first == "strict" else rows[::-1]


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
    if a.get("relaxed"):
        tables["protocols"] = protocol_rows(a["zeroshot"], a["relaxed"], result.get("protocol", "strict"))
        tables["protocols_per_phase"] = list(a["relaxed"]["per_phase"])
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
        *([("h2", "Metric protocols: the same predictions scored both ways"),
           ("p", "Strict (the zero-shot papers, and every other number in this report): accuracy, macro-F1 and "
                 "Jaccard per video, then the mean over videos. Relaxed (the M2CAI / Cholec80 scripts of supervised "
                 "work): a 10 s tolerance at phase boundaries, per-phase precision, recall and Jaccard averaged over "
                 "videos then phases. Compare a number only with one of the same protocol: "
                 f"{a['relaxed']['protocol_description']}."),
           ("table", tables["protocols"]),
           ("table", tables["protocols_per_phase"])] if "protocols" in tables else []),
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
