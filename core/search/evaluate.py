"""`hvl search-eval` (old name `hvl bugsearch-eval`): text → video search quality on a query set with known
relevant videos.

The eval videos are indexed (or an index of the same checkpoint and settings is reused), each
query is embedded once and every indexed video is ranked by the configured aggregation
(exactly: evaluation needs the full ranking). Metrics, per query type (``simple``,
``compound``, ``bug``: the types a domain's query sets use) and ``overall`` (every query counted once), averaged over queries:

* ``recall_at_k`` (k = 1, 5, 10): the fraction of queries with **at least one** relevant
  video among the top k (the usual text→video R@k; torchmetrics' ``retrieval_hit_rate``);
* ``map``: mean average precision over the full ranking (``retrieval_average_precision``).

``chance`` gives the same under a uniformly random ranking (R@k exactly; mAP by simulation),
so a number can be read against what guessing gets on this corpus.
"""
from __future__ import annotations

import time
from collections import Counter
from math import comb
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..data import records as datasets
from ..errors import HVLInputError, format_validation_error
from ..io import confined_dir, read_yaml

QUERY_TYPE_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"
KS = (1, 5, 10)


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    type: str = Field(pattern=QUERY_TYPE_PATTERN, description="a kind of query, e.g. simple, compound, bug")
    text: str = Field(min_length=1)
    relevant: list[str] = Field(min_length=1, description="video ids that answer the query")
    bug: str | None = None


class QuerySet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    queries: list[Query] = Field(min_length=1)


class DatasetSpec(datasets.DatasetSpec):
    reader: str = Field("manifest", description="a reader of the domain, e.g. 'gamephysics', or 'manifest'")


class SearchEvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    domain: str | None = Field(None, description="the domain whose reader reads dataset (e.g. gameplay)")
    dataset: DatasetSpec
    queries: str = Field(description="YAML query set: queries: [{id, type, text, relevant: [video ids]}]")
    index: str = Field(description="folder for eval indexes; one sub-folder per checkpoint (reused when present)")
    fps: float = Field(1.0, gt=0)
    level: str = "clip"
    agg: Literal["max", "topk-mean", "count"] = "max"
    topk: int = Field(3, ge=1)
    pool: int = Field(1000, ge=1)
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(2, ge=0)
    experiment: str = "hvl-search-eval"
    backend: str = Field("faiss", description="where the eval index's vectors live: faiss, or a vector database")
    backend_url: str | None = Field(None, description="a running vector database server for backend")


BugSearchConfig = SearchEvalConfig  # the name before search was domain-neutral


def load_queries(path: str | Path, types: tuple[str, ...] | None = None) -> QuerySet:
    """A query set, validated; ``types``: the query types its domain uses (any type when None)."""
    data = read_yaml(path)
    try:
        qs = QuerySet.model_validate(data if isinstance(data, dict) else {"queries": data})
    except ValidationError as e:
        raise HVLInputError(format_validation_error(e, path)) from None
    for i, q in enumerate(qs.queries):
        if types and q.type not in types:
            raise HVLInputError(f"{path}: field 'queries[{i}].type' is '{q.type}'; this domain's query types are "
                                f"{list(types)}")
    dup = sorted(i for i, n in Counter(q.id for q in qs.queries).items() if n > 1)
    if dup:
        raise HVLInputError(f"{path}: query id(s) {dup} repeat; each query needs its own id")
    return qs


def chance(n: int, n_rel: int, k: int) -> float:
    """P(at least one of ``n_rel`` relevant videos in a random top ``k`` of ``n``)."""
    return 1.0 - comb(n - n_rel, min(k, n)) / comb(n, min(k, n))


def _random_map(n: int, n_rel: int, draws: int = 200, seed: int = 0) -> float:
    import torch
    from torchmetrics.functional.retrieval import retrieval_average_precision

    g = torch.Generator().manual_seed(seed)
    target = torch.zeros(n, dtype=torch.bool)
    target[:n_rel] = True
    return float(torch.stack([retrieval_average_precision(torch.rand(n, generator=g), target)
                              for _ in range(draws)]).mean())


def score_queries(rankings: list[list[int]], relevant: list[set[int]], n_videos: int) -> list[dict[str, float]]:
    """Per query: R@1/5/10 (hit rate) and AP, from each query's ranking (video indices, best first)."""
    import torch
    from torchmetrics.functional.retrieval import retrieval_average_precision, retrieval_hit_rate

    out = []
    for order, rel in zip(rankings, relevant):
        preds = torch.zeros(n_videos)
        preds[torch.tensor(order)] = torch.arange(len(order), 0, -1, dtype=torch.float32)  # higher = earlier
        target = torch.zeros(n_videos, dtype=torch.bool)
        target[torch.tensor(sorted(rel))] = True
        row = {f"recall_at_{k}": float(retrieval_hit_rate(preds, target, top_k=k)) for k in KS}
        row["map"] = float(retrieval_average_precision(preds, target))
        out.append(row)
    return out


def query_types_of(queries: list[Query]) -> list[str]:
    """The query set's types: the installed domains' in their order, then any other in first-seen order."""
    from ..registry import query_types

    seen, known = list(dict.fromkeys(q.type for q in queries)), query_types()
    return [t for t in known if t in seen] + [t for t in seen if t not in known]


def summarize(queries: list[Query], per_query: list[dict[str, float]], n_videos: int) -> dict[str, Any]:
    keys = [f"recall_at_{k}" for k in KS] + ["map"]
    types = query_types_of(queries)
    res: dict[str, Any] = {"query_types": types}
    groups = {t: [i for i, q in enumerate(queries) if q.type == t] for t in types}
    groups["overall"] = list(range(len(queries)))
    res["chance"] = {}
    for name, idx in groups.items():
        if not idx:
            continue
        res[name] = {k: round(sum(per_query[i][k] for i in idx) / len(idx), 4) for k in keys} | {"n_queries": len(idx)}
        ch = {f"recall_at_{k}": sum(chance(n_videos, len(queries[i].relevant), k) for i in idx) / len(idx) for k in KS}
        ch["map"] = sum(_random_map(n_videos, len(queries[i].relevant)) for i in idx) / len(idx)
        res["chance"][name] = {k: round(v, 4) for k, v in ch.items()}
    return res


def evaluate(cfg: SearchEvalConfig, ckpt: str | Path | None, progress: bool = True, model: str | None = None,
             text_model: str | None = None, trust_remote_code: bool = False) -> dict[str, Any]:
    """``ckpt``: an hvl checkpoint; or ``model``: a pretrained image-text model used directly (the baseline)."""
    from ..models.checkpoint import fingerprint, load_for_eval
    from ..registry import get_domain
    from .index import VideoEntry, build_index
    from .query import embed_queries, load_index, rank_all

    qs = load_queries(cfg.queries, get_domain(cfg.domain).query_types if cfg.domain else None)
    records = datasets.load_videos(cfg.dataset, cfg.domain)
    entries = [VideoEntry(key=str(r.meta.get("key", Path(p).name)), video_id=r.video_id,
                          group=str(r.meta.get("group", "")), path=str(p)) for r, p in records]
    known = {e.video_id for e in entries}
    for q in qs.queries:
        missing = sorted(set(q.relevant) - known)
        if missing:
            raise HVLInputError(f"{cfg.queries}: query '{q.id}' field 'relevant' names video(s) {missing[:5]} that are "
                                f"not in {cfg.dataset.path}; fix the query set or point dataset.path at its videos")
    loaded = load_for_eval(ckpt, model, text_model, trust_remote_code)
    # the sub-folder is hvl's, inside the folder the config names: a link there is refused as any index subfolder
    index_dir = confined_dir(cfg.index, f"{fingerprint(ckpt or model)[:12]}_{cfg.level}_{cfg.fps:g}fps"
                             + (f"_{cfg.backend}" if cfg.backend != "faiss" else ""))
    t0 = time.perf_counter()
    built = build_index(cfg.dataset.path, ckpt, index_dir, fps=cfg.fps, level=cfg.level, batch_size=cfg.batch_size,
                        num_workers=cfg.num_workers, progress=progress, videos=entries, loaded=loaded, model=model,
                        text_model=text_model, backend=cfg.backend, backend_url=cfg.backend_url,
                        replace_videos_root=True)  # hvl's own cache of the configured dataset: follows it
    index_s = time.perf_counter() - t0
    idx = load_index(index_dir, use_ann=False)
    pos = {v["video_id"]: i for i, v in enumerate(idx.videos)}
    absent = sorted(known - set(pos))
    if absent:
        raise HVLInputError(f"{index_dir}: video(s) {absent[:5]} were not indexed (skipped as unreadable?); "
                            "fix them or remove them from the query set")
    q_emb = embed_queries(loaded[0], [q.text for q in qs.queries], cfg.level)
    rankings = [rank_all(idx, q, cfg.agg, cfg.topk, cfg.pool).video.tolist() for q in q_emb]
    per_query = score_queries(rankings, [{pos[v] for v in q.relevant} for q in qs.queries], len(idx.videos))
    result = summarize(qs.queries, per_query, len(idx.videos))
    result["per_query"] = [{"id": q.id, "type": q.type, "text": q.text, "n_relevant": len(q.relevant),
                            "top5": [idx.videos[v]["video_id"] for v in r[:5]], **m}
                           for q, r, m in zip(qs.queries, rankings, per_query)]
    result.update(agg=cfg.agg, level=cfg.level, fps=cfg.fps, n_videos=len(idx.videos), n_frames=int(len(idx.emb)),
                  index=str(index_dir), newly_indexed=built["indexed"], index_seconds=round(index_s, 2),
                  checkpoint=str(ckpt or model), pretrained=model is not None, queries=str(cfg.queries))
    return result


def format_table(result: dict[str, Any]) -> str:
    lines = [f"{'queries':<10}{'n':>4}{'R@1':>8}{'R@5':>8}{'R@10':>8}{'mAP':>8}   (chance R@5)"]
    for t in (*result["query_types"], "overall"):
        if t in result:
            r = result[t]
            lines.append(f"{t:<10}{r['n_queries']:>4}{r['recall_at_1']:>8.3f}{r['recall_at_5']:>8.3f}"
                         f"{r['recall_at_10']:>8.3f}{r['map']:>8.3f}   ({result['chance'][t]['recall_at_5']:.3f})")
    return "\n".join(lines)
