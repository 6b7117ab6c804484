"""``hvl prepare``: raw videos + transcripts (+ chapters, abstracts) → hierarchical manifests and a report.

Readers for the formats people have (:mod:`.subtitles`, :mod:`.chapters`; the cue text and timestamps they
share in :mod:`.text`), YouTube's rolling
auto-captions read to their words (:mod:`.autocaptions`), yt-dlp's file names and ``.info.json``
(:mod:`.ytdlp`), where a corpus keeps them (:mod:`.layout`), the checks and their policies
(:mod:`.checks`), clip construction (:mod:`.clips`), splits (:mod:`.splits`), the report
(:mod:`.report`), optional transcription (:mod:`.transcribe`) and re-encoding (:mod:`.reencode`), the
pipeline and the ``hvl prepare`` run (:mod:`.build`). Part of :mod:`hvl.core.data`: may import only
hvl.core.data and the leaves (errors, io, registry).
"""
from ..._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["Cue", "parse_csv", "parse_srt", "parse_vtt", "parse_whisper_json", "read_transcript"],
                    "subtitles"),
    **dict.fromkeys(["Chapter", "read_abstracts", "read_chapters"], "chapters"),
    **dict.fromkeys(["Inputs", "LayoutSpec", "discover"], "layout"),
    **dict.fromkeys(["Clip", "ClipConfig", "Sentence", "build_clips", "merge_fragments", "sentences_from_words"],
                    "clips"),
    **dict.fromkeys(["collapse", "is_rolling"], "autocaptions"),
    **dict.fromkeys(["description_abstract", "parse_ytdlp_name", "read_info_json", "split_ytdlp_name"], "ytdlp"),
    **dict.fromkeys(["KINDS", "Problem"], "checks"),
    "assign_splits": "splits",
    **dict.fromkeys(["PrepareConfig", "PrepareRun", "prepare", "run_prepare"], "build"),
    **dict.fromkeys(["decode_audio", "load_asr", "transcribe"], "transcribe"),
    **dict.fromkeys(["extract_frames", "reencode_h264"], "reencode"),
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
