"""Qdrant behind hvl's search backend interface: the engine in-process (Qdrant Edge) or a Qdrant server / cluster.

Chosen over Milvus by measurement (``benchmarks/search_backends.py``, on the shared 2-core machine, load
average 7-10): the only Milvus engine on PyPI is Milvus Lite 2.5.1 (a Milvus 2.4 server binary started as a
local process; milvus-lite 3.x is a pure-Python re-implementation without it). It keeps rows in SQLite: 30,000
x 512 frames took 263-612 s to insert (1M: hours), its group-by search plus the moments search took p50 34-63
ms at 30,000 frames (FLAT; IVF_FLAT no faster there, and at 100,000 its grouped search returned video
recall@10 0.24), it builds no HNSW, and it ignores ``group_size`` (milvus-lite #214). Qdrant Edge
(``qdrant-edge-py``, the Rust engine in-process) inserted the same 30,000 frames in 4 s, indexed them in
13-23 s and answered p50 8-9 ms at video recall@10 0.99-1.0 with exact moments on all three data shapes.

Where the vectors live (``index.json`` fields):

* ``backend``: ``"qdrant"``;
* ``dim``: the frame vectors' size (hvl's header already has it);
* no ``backend_url``: embedded, the Qdrant Edge shard in ``<index>/qdrant/`` (one process opens it at a time);
* ``backend_url`` (``"http://host:6333"``; ``QDRANT_API_KEY`` from the environment when the server wants one):
  a Qdrant server or distributed cluster, through ``qdrant-client`` (``pip install 'hvl[qdrant]'``), collection
  ``collection`` (default ``"hvl"``); the same code path, so an index moves to a cluster by naming its URL.
  Run a server with the official image: ``docker run -p 6333:6333 -v $PWD/qdrant:/qdrant/storage
  qdrant/qdrant`` (or its release binary), then ``hvl index ... --backend qdrant --backend-url
  http://localhost:6333``. The field records the server; it never chooses it: `hvl search`, `hvl serve` and
  `hvl search-eval` connect only to the ``--backend-url`` given, and refuse an index whose field names another
  (or one not given), since a shared index folder could name any server;
* ``backend_pool`` (optional, default :data:`POOL`): frames the approximate search proposes per query.

One point per frame: vector (inner product = cosine, vectors are L2-normalised) and payload ``video_id``,
``group``, ``t``, ``n`` (the video's frame count), ``key``, ``path``; keyword indexes on ``video_id`` and ``group``.
Point ids are a hash of (video_id, frame number), so re-adding a video overwrites it (``add`` first deletes
what a video had: a video re-added with fewer frames keeps none of its old ones).

Search gathers *videos*, not frames (a pool of frames fills up with a few long videos: the best 1,000 frames of
10-minute recordings are two or three recordings'): :meth:`QdrantBackend.propose` asks for the nearest frames
grouped by video, at most :data:`~hvl.core.search.candidates.PER_VIDEO` a video, until enough distinct videos
are in. A server groups in the engine (``query_points_groups``, ``group_by="video_id"``, ``group_size``,
``limit`` = the videos wanted); Qdrant Edge (``qdrant-edge-py`` 0.9) has no grouping, so it searches ``pool``
frames (an HNSW search, int8-quantized, breadth ``ef`` = 4 x pool, rescored from the float vectors), then again
without the videos already found (a ``must_not`` filter on ``video_id``), up to :data:`GATHER_ROUNDS` searches.
Both give each video its best gathered frames, exactly scored; its best one is its true best frame whenever HNSW
found it. The rest is the FAISS path's rule (:func:`hvl.core.search.candidates.pool_videos`): the videos with the
best gathered frames (``rescore``, default :func:`~hvl.core.search.candidates.rescored_videos` = 20 for a top
10) are rescored from every one of their frames (an exact filtered search), which fixes a best frame HNSW
missed and gives each video its ``moments`` best frames. `hvl search` on such an index takes ``propose``'s
frames instead and rescores from the shards (any ranking: ``max``, ``topk-mean``, ``count``).

At scale the HNSW breadth decides recall on near-uniform embeddings (``search.py``'s isotropic shape): video
recall@10 at pool 1000 fell from 0.99 (30k frames) to 0.81 (200k) with ef = 2 x pool; ef = 4 x pool gives 0.996
at 100k and 0.957 at 200k (p50 24 ms); clustered and per-video data stay at 0.99-1.0. For such data at 1M raise
``backend_pool`` (ef follows it). 1M per-video frames x 512: insert 125 s, HNSW build 663 s (722 CPU s), 2.9 GiB
on disk, p50 43 ms / p95 101 ms at video recall@10 0.966, moments exact (load average 3-8 on 2 cores).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Self

import numpy as np

from ...errors import HVLInputError
from ...extras import require
from ...io import confined_dir
from ..candidates import PER_VIDEO, rescored_videos
from .base import BackendUnreachable, VideoHit

__all__ = ["POOL", "QdrantBackend", "open"]

POOL = 1000            # frames proposed per query (hvl's --pool default)
# HNSW search breadth per pooled frame. Recall follows ef, not the pool: at 100k isotropic frames, pool 1000 with
# ef 2000 / 4000 / 8000 gave video recall@10 0.86 / 0.96 / 0.99 (p50 13 / 17 / 47 ms), pool 2000 with ef 4000 0.96
EF_PER_POOL = 4
# The graph a new collection is built with. Isotropic frames (search.py's hardest shape), 200k x 512, pool 1000 /
# 2000: M 16 / ef_construct 64 reached video recall@10 0.809 / 0.957, M 32 / 128 0.984 / 1.000 (HNSW build 793 /
# 843 s on the loaded 2-core machine); 50k: the same p50 (32.4 / 30.6 ms), twice the build (27.7 / 55.3 s).
HNSW_M, HNSW_EF_CONSTRUCT = 32, 128
BATCH = 2048           # points per upsert
PAYLOAD_FIELDS = ("video_id", "group")
SINGLE_RESCORE_MAX = 4096   # rescoring as one filtered search while the candidates have at most this many frames
GATHER_ROUNDS = 16          # frame pools searched at most per query to gather the videos rescored (long videos)
EDGE_DIR = "qdrant"


def point_id(video_id: str, frame: int) -> int:
    """A stable 63-bit id for frame ``frame`` of ``video_id`` (re-adding a video overwrites its points)."""
    return int.from_bytes(hashlib.blake2b(f"{video_id}\0{frame}".encode(), digest_size=8).digest(), "big") >> 1


# ------------------------------------------------------------------ the two ways to reach the engine
class _Edge:
    """Qdrant Edge: the engine in this process, its shard in a folder."""

    def __init__(self, path: Path, dim: int, create: bool) -> None:
        Q = require("qdrant_edge", extra="qdrant", needed_by="the Qdrant backend (--backend qdrant)")

        self.Q, self.path = Q, path
        exists = (path / "edge_config.json").is_file()
        try:
            if exists:
                self.shard = Q.EdgeShard.load(str(path))
            elif create:
                cfg = Q.EdgeConfig(
                    vectors=Q.EdgeVectorParams(size=dim, distance=Q.Distance.Dot, memory=Q.Memory.Cached),
                    hnsw_config=Q.HnswIndexConfig(m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT, full_scan_threshold=10_000),
                    quantization_config=Q.ScalarQuantizationConfig(type=Q.ScalarType.Int8, quantile=0.99,
                                                                   memory=Q.Memory.Pinned))
                self.shard = Q.EdgeShard.create(str(path), cfg)
                for f in PAYLOAD_FIELDS:
                    self.shard.update(Q.UpdateOperation.create_field_index(f, Q.PayloadSchemaType.Keyword))
            else:
                raise HVLInputError(f"{path}: no Qdrant data; build the index with `hvl index ... --backend qdrant`")
        except HVLInputError:
            raise
        except Exception as e:  # noqa: BLE001 (the extension raises plain Exception)
            if "WouldBlock" in str(e) or "lock" in str(e).lower():
                raise HVLInputError(f"{path}: open in another process (an embedded Qdrant shard has one user at a "
                                    "time); stop it, or serve the index from a Qdrant server (backend_url)") from None
            raise HVLInputError(f"{path}: cannot open the Qdrant shard ({e})") from None

    def _filter(self, key: str | None, values: list[str] | None, exclude: list[str] | None = None):
        """Points whose ``key`` is one of ``values`` (any point without ``key``), none of the videos ``exclude``."""
        Q = self.Q
        def match(v):
            return Q.MatchValue(v[0]) if len(v) == 1 else Q.MatchAny(list(v))

        must = [Q.FieldCondition(key, match=match(values))] if key else None
        must_not = [Q.FieldCondition("video_id", match=match(exclude))] if exclude else None
        return Q.Filter(must=must, must_not=must_not) if must or must_not else None

    def upsert(self, ids: list[int], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        Q = self.Q
        self.shard.update(Q.UpdateOperation.upsert_points(
            [Q.Point(i, v, p) for i, v, p in zip(ids, vectors, payloads)]))

    def delete(self, key: str, values: list[str]) -> None:
        self.shard.update(self.Q.UpdateOperation.delete_points_by_filter(self._filter(key, values)))

    def _request(self, q: np.ndarray, limit: int, flt, exact: bool, payload: list[str]):
        Q = self.Q
        params = (Q.SearchParams(exact=True, quantization=Q.QuantizationSearchParams(ignore=True)) if exact else
                  Q.SearchParams(hnsw_ef=max(EF_PER_POOL * limit, 64),
                                 quantization=Q.QuantizationSearchParams(rescore=True)))
        return Q.QueryRequest(limit=limit, query=Q.Query.Nearest(q), filter=flt, with_payload=payload, params=params)

    def query(self, q: np.ndarray, limit: int, key: str | None, values: list[str] | None, exact: bool,
              payload: list[str], exclude: list[str] | None = None) -> list[tuple[float, dict[str, Any]]]:
        flt = self._filter(key, values, exclude)
        return [(p.score, p.payload) for p in self.shard.query(self._request(q, limit, flt, exact, payload))]

    def query_groups(self, q: np.ndarray, videos: int, per_video: int, pool: int, key: str | None,
                     values: list[str] | None, payload: list[str]) -> dict[str, list[tuple[float, dict[str, Any]]]]:
        """Each video's ``per_video`` nearest frames, for at least ``videos`` videos (best video first), as a
        server's grouping answers: Qdrant Edge has none, so ``pool`` frames are searched, then again without the
        videos already in, up to :data:`GATHER_ROUNDS` searches."""
        groups: dict[str, list[tuple[float, dict[str, Any]]]] = {}
        for _ in range(GATHER_ROUNDS):
            hits = self.query(q, pool, key, values, False, payload, exclude=sorted(groups) or None)
            for s, p in hits:  # best first: a video's first hits are its best frames
                g = groups.setdefault(p["video_id"], [])
                if len(g) < per_video:
                    g.append((s, p))
            if len(groups) >= videos or len(hits) < pool:
                break
        return groups

    def query_each(self, q: np.ndarray, limit: int, key: str, values: list[str], payload: list[str]
                   ) -> list[list[tuple[float, dict[str, Any]]]]:
        reqs = [self._request(q, limit, self._filter(key, [v]), True, payload) for v in values]
        return [[(p.score, p.payload) for p in r] for r in self.shard.query_batch(self.Q.QueryBatchRequest(reqs))]

    def count(self, key: str | None = None, values: list[str] | None = None) -> int:
        flt = self._filter(key, values) if key else None
        return int(self.shard.count(self.Q.CountRequest(filter=flt, exact=True)))

    def optimize(self) -> None:
        self.shard.optimize()

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    def close(self) -> None:
        self.shard.flush()
        self.shard.close()


class _Answered:
    """A qdrant-client object whose every call fails as one :class:`BackendUnreachable` naming the server: a refused
    connection, or a reply that is not a Qdrant server's (httpx, gRPC, JSON and pydantic errors alike), is a
    problem with the URL given, not a traceback (or, in `hvl serve`, a 500)."""

    def __init__(self, target: Any, url: str) -> None:
        self._target, self._url = target, url

    def __call__(self, *args: Any, **kw: Any) -> Any:
        try:
            return self._target(*args, **kw)
        except HVLInputError:
            raise
        except Exception as e:  # noqa: BLE001 (whatever the transport or the reply's parser raises)
            raise BackendUnreachable(f"--backend-url {self._url!r}: no Qdrant server answers there "
                                     f"({type(e).__name__}: {str(e)[:200]}); check the URL and that the server "
                                     "runs") from None

    def __getattr__(self, name: str) -> Any:
        return _Answered(getattr(self._target, name), self._url)


class _Server:
    """A Qdrant server or cluster through ``qdrant-client`` (the same requests as :class:`_Edge`)."""

    def __init__(self, url: str, collection: str, dim: int, create: bool) -> None:
        try:
            from qdrant_client import QdrantClient, models
        except ImportError:
            raise HVLInputError(f"backend_url {url!r}: a Qdrant server needs qdrant-client "
                                "(pip install 'hvl[qdrant]')") from None
        self.M, self.collection = models, collection
        # the key goes only to a URL the user gave (--backend-url), never to one an index folder names
        kw = {"location": url} if url == ":memory:" else {"url": url, "api_key": os.environ.get("QDRANT_API_KEY")}
        self.client = _Answered(_Answered(QdrantClient, url)(**kw), url)
        if not self.client.collection_exists(collection):
            if not create:
                raise HVLInputError(f"{url}: no collection {collection!r}; build the index with `hvl index ... "
                                    "--backend qdrant`")
            self.client.create_collection(
                collection, vectors_config=models.VectorParams(size=dim, distance=models.Distance.DOT),
                hnsw_config=models.HnswConfigDiff(m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT),
                quantization_config=models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(
                    type=models.ScalarType.INT8, quantile=0.99, always_ram=True)))
            for f in PAYLOAD_FIELDS:
                self.client.create_payload_index(collection, f, models.PayloadSchemaType.KEYWORD)

    def _filter(self, key: str | None, values: list[str] | None, exclude: list[str] | None = None):
        M = self.M
        def match(v):
            return M.MatchValue(value=v[0]) if len(v) == 1 else M.MatchAny(any=list(v))

        must = [M.FieldCondition(key=key, match=match(values))] if key else None
        must_not = [M.FieldCondition(key="video_id", match=match(exclude))] if exclude else None
        return M.Filter(must=must, must_not=must_not) if must or must_not else None

    def upsert(self, ids: list[int], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        self.client.upsert(self.collection, wait=True, points=self.M.Batch(ids=ids, vectors=vectors.tolist(),
                                                                           payloads=payloads))

    def delete(self, key: str, values: list[str]) -> None:
        self.client.delete(self.collection, wait=True,
                           points_selector=self.M.FilterSelector(filter=self._filter(key, values)))

    def _params(self, limit: int, exact: bool):
        M = self.M
        return (M.SearchParams(exact=True, quantization=M.QuantizationSearchParams(ignore=True)) if exact else
                M.SearchParams(hnsw_ef=max(EF_PER_POOL * limit, 64),
                               quantization=M.QuantizationSearchParams(rescore=True)))

    def query(self, q: np.ndarray, limit: int, key: str | None, values: list[str] | None, exact: bool,
              payload: list[str], exclude: list[str] | None = None) -> list[tuple[float, dict[str, Any]]]:
        r = self.client.query_points(self.collection, query=q.tolist(), limit=limit, with_payload=payload,
                                     query_filter=self._filter(key, values, exclude),
                                     search_params=self._params(limit, exact))
        return [(p.score, p.payload) for p in r.points]

    def query_groups(self, q: np.ndarray, videos: int, per_video: int, pool: int, key: str | None,
                     values: list[str] | None, payload: list[str]) -> dict[str, list[tuple[float, dict[str, Any]]]]:
        """Each video's ``per_video`` nearest frames, for ``videos`` videos: grouped by the engine."""
        r = self.client.query_points_groups(self.collection, group_by="video_id", query=q.tolist(), limit=videos,
                                            group_size=per_video, query_filter=self._filter(key, values),
                                            search_params=self._params(pool, False), with_payload=payload)
        return {str(g.id): [(p.score, p.payload) for p in g.hits] for g in r.groups}

    def query_each(self, q: np.ndarray, limit: int, key: str, values: list[str], payload: list[str]
                   ) -> list[list[tuple[float, dict[str, Any]]]]:
        M = self.M
        reqs = [M.QueryRequest(query=q.tolist(), limit=limit, filter=self._filter(key, [v]), with_payload=payload,
                               params=self._params(limit, True)) for v in values]
        return [[(p.score, p.payload) for p in r.points] for r in self.client.query_batch_points(self.collection, reqs)]

    def count(self, key: str | None = None, values: list[str] | None = None) -> int:
        flt = self._filter(key, values) if key else None
        return int(self.client.count(self.collection, count_filter=flt, exact=True).count)

    def optimize(self) -> None:
        """A server indexes in the background (its optimizers); nothing to wait for."""

    def size_bytes(self) -> int:
        return 0

    def close(self) -> None:
        self.client.close()


# ------------------------------------------------------------------ the backend
class QdrantBackend:
    """hvl's :class:`~.base.SearchBackend` on Qdrant (see the module's docstring)."""

    name = "qdrant"

    def __init__(self, store: _Edge | _Server, dim: int, pool: int = POOL, where: str = "") -> None:
        self.store, self.dim, self.pool, self.where = store, int(dim), int(pool), where
        self._closed = False

    # -------------------------------------------------------------- checks
    def _check_open(self) -> None:
        if self._closed:
            raise HVLInputError(f"{self.where}: this Qdrant backend is closed")

    def _vector(self, query: np.ndarray) -> np.ndarray:
        q = np.asarray(query, np.float32)
        if q.ndim == 2 and q.shape[0] == 1:
            q = q[0]
        if q.ndim != 1 or q.shape[0] != self.dim:
            raise HVLInputError(f"query: one vector of size {self.dim} expected, got shape {tuple(np.shape(query))}")
        if not np.isfinite(q).all():
            raise HVLInputError("query: not finite (NaN or inf)")
        return q

    # -------------------------------------------------------------- SearchBackend
    def add(self, videos: list[dict[str, Any]], emb: np.ndarray) -> None:
        self._check_open()
        emb = np.asarray(emb)
        if emb.ndim != 2 or emb.shape[1] != self.dim:
            raise HVLInputError(f"add: embeddings [frames, {self.dim}] expected, got shape {emb.shape}")
        counts, ids_seen = [], set()
        for i, v in enumerate(videos):
            vid = v.get("video_id") if isinstance(v, dict) else None
            if not isinstance(vid, str) or not vid:
                raise HVLInputError(f"add: video {i} has no video_id (a non-empty string)")
            if vid in ids_seen:
                raise HVLInputError(f"add: video_id {vid!r} appears twice in one call")
            ids_seen.add(vid)
            t = v.get("t")
            if not isinstance(t, (list, tuple, np.ndarray)) or not len(t):
                raise HVLInputError(f"add: video {vid!r} has no frame times 't'")
            counts.append(len(t))
        if sum(counts) != len(emb):
            raise HVLInputError(f"add: the videos have {sum(counts)} frames in all, the embeddings {len(emb)} rows")
        emb = emb.astype(np.float32, copy=False)
        if not np.isfinite(emb).all():
            raise HVLInputError("add: embeddings are not finite (NaN or inf)")
        if not videos:
            return
        known = sorted(ids_seen)
        if any(self.store.count("video_id", known[s: s + 1000]) for s in range(0, len(known), 1000)):
            self.delete(known)  # re-adding a video replaces it whole (a fresh build skips the deletes)
        ids: list[int] = []
        payloads: list[dict[str, Any]] = []
        row = 0
        for v, n in zip(videos, counts):
            base = {"video_id": v["video_id"], "group": str(v.get("group", "")), "n": n,
                    "key": str(v.get("key", "")), "path": str(v.get("path", ""))}
            for j, t in enumerate(v["t"]):
                ids.append(point_id(v["video_id"], j))
                payloads.append(base | {"t": float(t)})
            row += n
            if len(ids) >= BATCH:
                self.store.upsert(ids, emb[row - len(ids): row], payloads)
                ids, payloads = [], []
        if ids:
            self.store.upsert(ids, emb[row - len(ids): row], payloads)

    def delete(self, video_ids: list[str]) -> None:
        self._check_open()
        if isinstance(video_ids, str) or not all(isinstance(v, str) for v in video_ids):
            raise HVLInputError("delete: a list of video_id strings expected")
        ids = list(dict.fromkeys(video_ids))
        for s in range(0, len(ids), 1000):
            self.store.delete("video_id", ids[s: s + 1000])

    def _check_search(self, query: np.ndarray, k: int, group: str | None) -> np.ndarray:
        self._check_open()
        q = self._vector(query)
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise HVLInputError(f"k must be an integer >= 1 (got {k!r})")
        if group is not None and not isinstance(group, str):
            raise HVLInputError(f"group must be a string (got {group!r})")
        return q

    def _gather(self, q: np.ndarray, videos: int, per_video: int, group: str | None, pool: int | None,
                frames: int = 0) -> dict[str, list[tuple[float, dict[str, Any]]]]:
        """At least ``videos`` videos (fewer where the index has fewer) and each one's ``per_video`` nearest frames
        (score, payload), best first; ``pool`` frames a search (default ``self.pool``); and every video among the
        ``frames`` nearest frames (what ``count`` counts: the engine's groups are only the best ``videos``)."""
        pool, per_video = max(int(pool or self.pool), 10 * videos), max(int(per_video), 1)
        key, values = ("group", [group]) if group is not None else (None, None)
        payload = ["video_id", "group", "n", "path", "t"]
        groups = self.store.query_groups(q, videos, per_video, pool, key, values, payload)
        if frames > 0:
            for s, p in self.store.query(q, int(frames), key, values, False, payload):
                g = groups.setdefault(p["video_id"], [])
                if len(g) < per_video and all(h["t"] != p["t"] for _, h in g):
                    g.append((s, p))
        if not groups and group is not None:
            raise HVLInputError(f"--group '{group}' is not in the index")
        return groups

    def propose(self, query: np.ndarray, videos: int, per_video: int = PER_VIDEO, group: str | None = None,
                pool: int | None = None, frames: int = 0) -> list[tuple[str, float]]:
        """The candidate stage alone: frames (video_id, time) of at least ``videos`` distinct videos and of every
        video among the ``frames`` nearest frames, at most ``per_video`` a video, each video's best first; hvl
        scores them exactly and picks what to rescore."""
        q = self._check_search(query, max(int(videos), 1), group)
        groups = self._gather(q, max(int(videos), 1), per_video, group, pool, int(frames))
        return [(v, float(p["t"])) for v, hits in groups.items() for _, p in hits]

    def search(self, query: np.ndarray, k: int = 10, moments: int = 3, group: str | None = None,
               pool: int | None = None, rescore: int | None = None) -> list[VideoHit]:
        """The ``k`` videos with the best frame, best first (ties by video_id), each with its ``moments`` best
        frames: ``3 k`` videos gathered (``pool`` frames a search, default ``self.pool``), the ``rescore`` with
        the best gathered frame (default :func:`~hvl.core.search.candidates.rescored_videos`) rescored exactly."""
        q = self._check_search(query, k, group)
        if not isinstance(moments, (int, np.integer)) or moments < 0:
            raise HVLInputError(f"moments must be an integer >= 0 (got {moments!r})")
        rescore = max(int(rescore or rescored_videos(k)), k)
        groups = self._gather(q, max(3 * k, rescore), 1, group, pool)
        if not groups:
            return []
        best = {v: hits[0] for v, hits in groups.items()}
        cand = sorted(best, key=lambda v: (-best[v][0], v))[:rescore]
        m = max(moments, 1)
        frames: dict[str, list[tuple[float, float]]] = {v: [] for v in cand}
        if sum(int(best[v][1]["n"]) for v in cand) <= SINGLE_RESCORE_MAX:  # every frame of the candidates, exactly
            for s, p in self.store.query(q, sum(int(best[v][1]["n"]) for v in cand), "video_id", cand, True,
                                         ["video_id", "t"]):
                frames[p["video_id"]].append((float(p["t"]), float(s)))
        else:  # long videos: each one's best frames, one exact filtered search per video (batched)
            for v, r in zip(cand, self.store.query_each(q, m, "video_id", cand, ["t"])):
                frames[v] = [(float(p["t"]), float(s)) for s, p in r]
        out = []
        for v in cand:
            fr = sorted(frames[v], key=lambda x: (-x[1], x[0]))
            if not fr:  # deleted between the two searches
                continue
            p = best[v][1]
            out.append(VideoHit(video_id=v, group=p["group"], score=fr[0][1], best_time=fr[0][0],
                                moments=fr[:moments], path=p.get("path", "")))
        out.sort(key=lambda h: (-h.score, h.video_id))
        return out[:k]

    def count(self) -> int:
        self._check_open()
        return self.store.count()

    def optimize(self) -> None:
        """Build the HNSW index over what was added (embedded: blocks until done; a server does it on its own).
        Search is correct without it (unindexed frames are scanned), only slower."""
        self._check_open()
        self.store.optimize()

    def size_bytes(self) -> int:
        """Bytes on disk (embedded; 0 for a server)."""
        return self.store.size_bytes()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open(index_dir: Path, header: dict[str, Any], create: bool, url: str | None = None) -> QdrantBackend:
    """The Qdrant backend of the index at ``index_dir`` (see the module's docstring for the header fields): the
    server at ``url`` when given (the user's; :func:`.base.open_backend` has checked it against the header, whose
    own ``backend_url`` is never contacted), else the embedded shard."""
    index_dir = Path(index_dir)
    dim = header.get("dim")
    if not isinstance(dim, int) or dim < 1:
        raise HVLInputError(f"{index_dir / 'index.json'}: field 'dim' is {dim!r}; the Qdrant backend needs the "
                            "vector size")
    pool = header.get("backend_pool", POOL)
    if not isinstance(pool, int) or pool < 1:
        raise HVLInputError(f"{index_dir / 'index.json'}: field 'backend_pool' is {pool!r}, expected an integer >= 1")
    if url:
        collection = str(header.get("collection", "hvl"))
        return QdrantBackend(_Server(str(url), collection, dim, create), dim, pool, f"{url} ({collection})")
    if create:
        index_dir.mkdir(parents=True, exist_ok=True)
    elif not index_dir.is_dir():
        raise HVLInputError(f"{index_dir}: no such index folder")
    path = edge_dir(index_dir)
    return QdrantBackend(_Edge(path, dim, create), dim, pool, str(path))


def edge_dir(index_dir: Path) -> Path:
    """``<index>/qdrant``, refused when it, or anything in it, is a link, or it lies outside the index: the engine
    rewrites its files on every open (even a read-only `hvl search`), so ``qdrant -> DIR`` would rewrite DIR."""
    path = confined_dir(index_dir, EDGE_DIR)
    for folder, dirs, files in os.walk(path):  # does not follow links
        for name in dirs + files:
            if os.path.islink(os.path.join(folder, name)):
                raise HVLInputError(f"{os.path.join(folder, name)}: is a symbolic link inside the Qdrant shard; hvl "
                                    f"opens only a shard of real files — delete {path} and re-run `hvl index`")
    return path
