"""Raw material → decoded, transformed frames and texts.

Manifest and prompt schemas (:mod:`.schema`), frame sources behind one interface (:mod:`.video`) and the
video decoders behind it (:mod:`.decoders`; what each reads is shown by `hvl probe`, :mod:`.probe`),
frame transforms (:mod:`.transforms`), the video records an evaluation reads and their checks (:mod:`.records`), and the
hierarchical DataModule (:mod:`.datamodule`) with its parts: the levels (:mod:`.levels`), the Dataset and collate
(:mod:`.dataset`), the level-schedule sampler (:mod:`.sampler`), the setup-time video check (:mod:`.video_check`)
and training on cached frozen features (:mod:`.frozen_features`); per-frame keypoints beside a video, read through
a domain (:mod:`.keypoints`); raw videos and transcripts turned
into manifests by :mod:`.prepare` (``hvl prepare``). May import only the
leaves of :mod:`hvl.core` (errors, io, registry); never models, evaluation, search or the CLI.
"""
from .._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["ClipSegment", "Manifest", "PhaseSegment", "PromptClass", "PromptFile", "VideoRecord",
                     "load_manifest", "load_prompt_file", "write_manifest"], "schema"),
    **dict.fromkeys(["BackgroundWriter", "DecordVideo", "FrameFolder", "FrameSource", "PyAVVideo", "ReaderCache",
                     "Video", "open_source", "read_frames", "write_video"], "video"),
    **dict.fromkeys(["BACKENDS", "StreamInfo", "choose_backend", "stream_info"], "decoders"),
    **dict.fromkeys(["FrameTransform", "normalize_batch"], "transforms"),
    **dict.fromkeys(["DatasetSpec", "Resolved", "check_videos", "describe_video", "format_probe_table",
                     "load_videos", "manifest_videos", "probe_video", "probe_videos"], "records"),
    **dict.fromkeys(["LEVELS", "Item", "LevelConfig", "build_items"], "levels"),
    **dict.fromkeys(["Augment", "HierarchicalDataset", "collate"], "dataset"),
    "LevelScheduleSampler": "sampler",
    **dict.fromkeys(["KeypointReader", "KeypointTrack", "keypoint_reader"], "keypoints"),
    "HVLDataModule": "datamodule",
    "PrepareConfig": "prepare",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
