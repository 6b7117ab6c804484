"""Embeddings → metrics.

Zero-shot classification from prompt files (:mod:`.zeroshot`), heads on frozen embeddings (:mod:`.adapt`), phase
metrics under the strict and the relaxed M2CAI / Cholec80 protocols (:mod:`.metrics`), temporal smoothing of frame-wise predictions (:mod:`.temporal`),
bootstrap intervals over videos (:mod:`.stats`), text ↔ video retrieval (:mod:`.retrieval`), the scoring
``hvl zeroshot`` and ``hvl adapt`` share (:mod:`.scoring`) and the runs of ``hvl zeroshot`` / ``adapt`` /
``retrieval`` (:mod:`.runs`, each one typed set of options).
May import :mod:`hvl.core.models`, :mod:`hvl.core.data` and the leaves; never search or the CLI.
"""
from .._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["PREDICTIONS_FORMAT", "ZeroShotConfig", "check_inputs", "class_embeddings", "eval_frame_times",
                     "evaluate", "predict", "sample_eval_frames", "summarize", "write_predictions"],
                    "zeroshot"),
    **dict.fromkeys(["SMOOTHING_METHODS", "check_window", "smooth", "smooth_median", "smooth_mode"], "temporal"),
    **dict.fromkeys(["PROTOCOLS", "check_protocol", "mean_over_videos", "phase_metrics", "relaxed_phase_scores",
                     "relaxed_summary"], "metrics"),
    "bootstrap_ci": "stats",
    **dict.fromkeys(["RetrievalConfig", "embed_sentences", "embed_videos", "evaluate_retrieval", "fuse_scores",
                     "group_by_sentence", "retrieval_metrics", "retrieval_ranks", "summarize_ranks"], "retrieval"),
    **dict.fromkeys(["AdaptOptions", "RetrievalOptions", "ZeroshotOptions", "run_adapt", "run_retrieval",
                     "run_zeroshot"], "runs"),
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
