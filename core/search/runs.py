"""The runs behind ``hvl index``, ``hvl search`` and ``hvl search-eval``: each takes one typed set of options (what
the command line gave) and does the whole run, printing what the command prints."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import HVLInputError
from ..models.spec import ModelSource
from ..outputs import MlflowRecord, Outputs, emit, report
from .ann_specs import ANN_MEMORY_DEFAULT
from .store import DEFAULT_SHARD_ROWS

__all__ = ["IndexOptions", "SearchEvalOptions", "SearchOptions", "run_index", "run_search", "run_search_eval"]


@dataclass(frozen=True)
class IndexOptions:
    """``hvl index``: a video folder, the model, the index folder and how to fill it (defaults: the command's)."""

    videos: str
    source: ModelSource
    out: str
    fps: float = 1.0
    level: str = "clip"
    batch_size: int = 64
    num_workers: int = 2
    devices: int | str = 1
    accelerator: str = "auto"
    shard_rows: int = DEFAULT_SHARD_ROWS
    on_bad_video: str = "skip"
    replace_videos_root: bool = False
    ann: str = "auto"
    ann_memory: str = ANN_MEMORY_DEFAULT
    backend: str = "faiss"
    backend_url: str | None = None
    video_backend: str = "auto"
    progress: bool = True


def run_index(opts: IndexOptions) -> dict[str, Any]:
    """Embed the folder's frames into the index (resumable), print the summary, and fail (after the others are
    indexed) when a video could not be."""
    from .index import build_index

    src = opts.source
    res = build_index(opts.videos, src.ckpt, opts.out, fps=opts.fps, level=opts.level, batch_size=opts.batch_size,
                      num_workers=opts.num_workers, devices=opts.devices, accelerator=opts.accelerator,
                      shard_rows=opts.shard_rows, on_bad_video=opts.on_bad_video,
                      progress=opts.progress, ann=opts.ann, ann_memory=opts.ann_memory,
                      video_backend=opts.video_backend, model=src.model, text_model=src.text_model,
                      trust_remote_code=src.trust_remote_code, backend=opts.backend, backend_url=opts.backend_url,
                      replace_videos_root=opts.replace_videos_root)
    print(json.dumps(res, indent=2))
    failed = res.get("refused", []) + res.get("skipped_videos", [])
    if failed:  # the other videos are indexed; the exit status says that not all of them are
        lines = "\n".join(f"  {f['path']}: {f['reason']}" for f in failed[:20])
        more = f"\n  … and {len(failed) - 20} more" if len(failed) > 20 else ""
        raise HVLInputError(f"{len(failed)} video(s) not indexed; the other {res['indexed'] + res['already_indexed']} "
                            f"are in {opts.out}:\n{lines}{more}\nvideos that cannot be decoded are listed in "
                            f"{opts.out}/skipped.jsonl and retried by the next run; a refused file needs a new name")
    return res


@dataclass(frozen=True)
class SearchOptions:
    """``hvl search``: the query, the index, the ranking, the model (default: the one the index names) and
    ``--json`` (a file, or ``-`` for stdout instead of the table)."""

    query: str
    index: str
    k: int = 10
    group: str | None = None
    agg: str = "max"
    topk: int = 3
    pool: int = 1000
    exact: bool = False
    backend_url: str | None = None
    source: ModelSource = field(default_factory=ModelSource)
    json: str | None = None


def run_search(opts: SearchOptions) -> dict[str, Any]:
    """Ranked videos and their best moments for one text query, as a table (and ``--json``)."""
    from .query import embed_queries, format_table, load_index, model_for_index, search

    if opts.k < 1:
        raise HVLInputError(f"--k must be >= 1 (got {opts.k})")
    src = opts.source
    idx = load_index(opts.index, use_ann=not opts.exact, backend_url=opts.backend_url)
    try:
        model = model_for_index(idx, src.ckpt, src.model, src.text_model, src.trust_remote_code)
        q = embed_queries(model, [opts.query], idx.header["level"])[0]
        res = search(idx, q, k=opts.k, agg=opts.agg, topk=opts.topk, pool=opts.pool, group=opts.group,
                     exact=opts.exact)
    finally:
        idx.close()
    res = {"query": opts.query, "index": str(opts.index), "level": idx.header["level"]} | res
    emit(res, format_table(opts.query, res), opts.json)
    return res


@dataclass(frozen=True)
class SearchEvalOptions:
    """``hvl search-eval``: the config, the model, overrides of the config, and the outputs."""

    config: str
    source: ModelSource
    agg: str | None = None
    backend_url: str | None = None
    outputs: Outputs = field(default_factory=Outputs)


def run_search_eval(opts: SearchEvalOptions) -> dict[str, Any]:
    """Text -> video search quality on a query set (recall@k, mAP), printed, written as JSON, logged to MLflow."""
    from ..io import load_config
    from ..models.checkpoint import read_checkpoint
    from .evaluate import SearchEvalConfig, evaluate, format_table

    cfg = load_config(opts.config, SearchEvalConfig)
    if opts.agg:
        cfg.agg = opts.agg
    if opts.backend_url:
        cfg.backend_url = opts.backend_url
    src = opts.source
    result = evaluate(cfg, src.ckpt, progress=opts.outputs.progress, model=src.model, text_model=src.text_model,
                      trust_remote_code=src.trust_remote_code)

    def record() -> MlflowRecord:
        meta = read_checkpoint(src.ckpt).get("hvl", {}) if src.ckpt else {}
        metrics = {f"bugsearch/{t}/{k}": result[t][k] for t in (*result["query_types"], "overall") if t in result
                   for k in ("recall_at_1", "recall_at_5", "recall_at_10", "map")}
        return MlflowRecord(cfg.experiment, meta.get("mlflow_run_id"), metrics,
                            {"bugsearch_agg": cfg.agg, "bugsearch_fps": cfg.fps, "bugsearch_level": cfg.level},
                            "bugsearch/metrics.json", {"bugsearch": cfg.queries})

    return report(result, format_table(result), opts.outputs, record)

