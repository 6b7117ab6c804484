"""Zero-shot recognition: prompt file → class embeddings → per-frame prediction → metrics.

Protocol (SurgVLP/HecVL): frames sampled at ``fps`` (1 by default), each classified
alone by cosine similarity with the class embeddings in one level's space; metrics
per video, then averaged over videos. Prompt ensembles are averaged in embedding space.
``--window SECONDS`` embeds each scored frame with the centred window of frames around it instead (:mod:`.windows`).

One job per module: :mod:`.config` (the YAML config, input checks), :mod:`.frames` (which frames are scored, the
Dataset decoding them), :mod:`.threads` (the model's CPU threads), :mod:`.windows` (windowed embeddings),
:mod:`.classify` (prediction and metrics) and :mod:`.files` (``--predictions`` files, format in
:mod:`hvl.core.data.predictions`); the ``hvl zeroshot`` run is :func:`hvl.core.evaluation.runs.run_zeroshot`.
Imports nothing of :mod:`hvl.core.evaluation.adapt`. Names are imported on first use.
"""
from ..._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["ZeroShotConfig", "check_inputs"], "config"),
    **dict.fromkeys(["FrameChunks", "FrameSequence", "eval_frame_times", "sample_eval_frames", "sample_sequences"],
                    "frames"),
    **dict.fromkeys(["frame_features", "window_embeddings", "window_half"], "windows"),
    "CpuThreads": "threads",
    **dict.fromkeys(["class_embeddings", "evaluate", "format_table", "predict", "summarize"], "classify"),
    **dict.fromkeys(["PREDICTIONS_FORMAT", "write_predictions"], "files"),
}
__all__ = sorted(k for k in _EXPORTS if not k.startswith("_"))
__getattr__ = lazy_exports(__name__, _EXPORTS)
