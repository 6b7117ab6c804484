"""Embeddings → an on-disk frame index → ranked videos and moments.

The index format and reading it back (:mod:`.store`), building it from a video folder (:mod:`.index`,
``hvl index``), the approximate FAISS index tuned by measured recall (:mod:`.ann`), ranked search with
its aggregations (:mod:`.query`, ``hvl search``), query-set evaluation (:mod:`.evaluate`,
``hvl search-eval``) and the runs of those three commands (:mod:`.runs`). May import :mod:`hvl.core.models`, :mod:`hvl.core.data` and the leaves;
never evaluation or the CLI.
"""
from .._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["FORMAT", "VERSION", "FrameIndex", "committed_shards", "read_header",
                     "read_index"], "store"),
    **dict.fromkeys(["VideoEntry", "scan_videos"], "videos"),
    **dict.fromkeys(["build_index", "deal_by_duration"], "index"),
    **dict.fromkeys(["ANN_MIN_ROWS", "TARGET_RECALL", "ann_kind_for", "build_ann", "measure_candidate", "parse_memory",
                     "refresh_ann"], "ann"),
    **dict.fromkeys(["AGGREGATIONS", "Ranking", "aggregate", "embed_queries", "load_index", "rank_all", "search"],
                    "query"),
    **dict.fromkeys(["BugSearchConfig", "QuerySet", "SearchEvalConfig", "load_queries"], "evaluate"),
    **dict.fromkeys(["IndexOptions", "SearchEvalOptions", "SearchOptions", "run_index", "run_search",
                     "run_search_eval"], "runs"),
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
