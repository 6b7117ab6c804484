"""Heads on frozen embeddings, evaluated exactly like zero-shot (``hvl adapt``).

A linear classifier that starts as the zero-shot classifier (all labels, a fraction of the training videos, or
K shots per class) and a multi-stage temporal convolution over whole videos, both on one level's frame or window
embeddings of labelled training videos (computed once, through the feature cache); ``hvl zeroshot --head`` reuses a
saved head. One job per module: :mod:`.heads` (the heads and their file), :mod:`.embeddings` (frozen embeddings
through the cache), :mod:`.fit` (protocols and training), :mod:`.ladder` (zero-shot → windows → shots → probe →
temporal, paired against zero-shot); the ``hvl adapt`` run is :func:`hvl.core.evaluation.runs.run_adapt`. May
import :mod:`.zeroshot` (never the other way round), :mod:`hvl.core.models`,
:mod:`hvl.core.data`, the rest of :mod:`hvl.core.evaluation` and the leaves.
"""
from ..._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["HEAD_FORMAT", "METHODS", "LinearHead", "TemporalHead", "build_head", "load_head", "save_head",
                     "space_fingerprint"], "heads"),
    **dict.fromkeys(["LabelledSequence", "embed_sequences", "encoder_fingerprint", "sequence_features"],
                    "embeddings"),
    **dict.fromkeys(["check_protocol", "fit_linear", "fit_temporal", "select_training", "train_head"], "fit"),
    **dict.fromkeys(["Rung", "default_rungs", "head_predictions", "ladder_markdown", "ladder_table", "run_ladder"],
                    "ladder"),
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
