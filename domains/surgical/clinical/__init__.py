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

One job per module: :mod:`.scores` (per video, per phase, confusion, prompt comparison), :mod:`.failures`
(the most confidently wrong frames), :mod:`.plots` (figures), :mod:`.page` (the HTML page), :mod:`.report`
(its tables and layout, JSON, MLflow metrics), :mod:`.review` (the whole run), :mod:`.ladder` (zero-shot → windows →
shots → probe → temporal head on the user's labelled videos) and :mod:`.notebook` (what the notebook shows).
Smoothing and the bootstrap are :mod:`hvl.core.evaluation.temporal` and :mod:`hvl.core.evaluation.stats`.
"""
from .failures import confident_errors, decode_frames, eval_frame_indices
from .ladder import evaluate_ladder, ladder_rows
from .notebook import NOTEBOOK_SECTIONS, as_frame, ladder_section, notebook_section
from .page import html_table, write_report
from .plots import (
    figure_png,
    plot_confusion,
    plot_gallery,
    plot_ladder,
    plot_progress,
    plot_prompt_comparison,
    plot_ribbon,
)
from .report import jsonable, mlflow_metrics, per_phase_rows, protocol_rows, report_blocks, report_tables, summary_rows
from .review import evaluate_clinical, load_videos, zeroshot_summary
from .scores import PER_PHASE, accuracy_by_progress, compare_prompts, confusion, per_phase_scores, per_video_table

__all__ = ["NOTEBOOK_SECTIONS", "PER_PHASE", "accuracy_by_progress", "as_frame", "compare_prompts", "confident_errors",
           "confusion", "decode_frames", "eval_frame_indices", "evaluate_clinical", "evaluate_ladder", "figure_png",
           "html_table", "jsonable", "ladder_rows", "ladder_section", "load_videos", "mlflow_metrics",
           "notebook_section", "per_phase_rows", "per_phase_scores", "per_video_table", "plot_confusion",
           "plot_gallery", "plot_ladder", "plot_progress", "plot_prompt_comparison", "plot_ribbon", "protocol_rows",
           "report_blocks", "report_tables", "summary_rows", "write_report", "zeroshot_summary"]
