"""Unlabelled videos → timelines: ``hvl predict`` (offline and online), the writers for the formats users' tools
read (Cholec80 phase files, Label Studio, FiftyOne, CSV / JSON) and their readers back, and ONNX export.

:mod:`.timeline` is the one type all of them share. Names are imported on first use.
"""
from .._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["TIMELINE_FORMAT", "TIMELINE_VERSION", "Segment", "Timeline", "label_at", "merge_runs"],
                    "timeline"),
    **dict.fromkeys(["PredictConfig", "Predictor", "load_predictor", "video_key", "video_timeline"], "predict"),
    **dict.fromkeys(["predict_videos", "predict_one"], "run"),
    **dict.fromkeys(["TIMELINE_FILE", "finished_timeline", "read_timeline", "write_formats", "write_timeline"],
                    "write"),
    **dict.fromkeys(["VideoInput", "find_videos"], "sources"),
    **dict.fromkeys(["label_growing_video", "run_online"], "online"),
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
