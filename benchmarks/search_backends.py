"""Vector databases behind hvl's search backend interface, measured on the three data shapes of ``search.py``.

For each engine and shape (``clustered``, ``per_video``, ``isotropic``: :func:`search.make_data`, seeded, 10
frames per video, queries that are not index points): build seconds (insert, then index), size on disk, p50 /
p95 ms per query (one at a time, ``--queries`` of them: hvl's ``max`` search returning 10 videos with 3 moments
each), video recall@10 against exact max-aggregation search (numpy, every frame scored) and the fraction of
returned videos whose 3 moments are exactly their best 3 frames. The load average is printed at the start of
each engine and shape (the machine is shared: read latencies with it).

Engines:

* ``qdrant``: :mod:`hvl.core.search.backends.qdrant` as hvl uses it: Qdrant Edge in-process (HNSW with the
  backend's ``HNSW_M`` / ``HNSW_EF_CONSTRUCT``, 32 / 128 since issue 35, or ``--hnsw-m`` / ``--ef-construct``,
  over int8-quantized vectors, pool rescored from float32, pools gathered until they hold ``3 k`` videos, the 20
  with the best gathered frame rescored exactly), once per ``--pools`` value; then `hvl search`'s path on the
  same index (``search()`` over the frames: the backend's ``propose``, the FAISS pool's rule, exact rescoring).
  ``--frames 600`` / ``mixed``: long videos, as ``search_scale.py`` writes them; every recall against the full
  scan. ``--keep`` leaves the index (and ``qdrant_build.json``) in ``--work``; ``--reuse`` searches it again, e.g.
  with another version of the code, without rebuilding;
* ``milvus``: Milvus Lite (``pip install 'pymilvus<2.6' milvus-lite==2.5.1``: the last milvus-lite with the
  engine inside, a C++ Milvus 2.4 server started as a local process; 3.x is a Python re-implementation),
  through pymilvus as a Milvus server would be used: ``search(group_by_field="video_id")`` (Milvus Lite ignores
  ``group_size``: milvus-lite #214) for the 10 videos, then one filtered search over their frames for the
  moments; its index types ``FLAT`` and ``IVF_FLAT`` (the only ones Milvus Lite builds). Milvus Lite stores rows
  in SQLite (50-220 rows/s here), so it runs at ``--milvus-rows`` (default 30,000) and says so;
* ``milvus-server``: a real Milvus 2.3.5 standalone server (etcd, RocksMQ and local storage embedded), reached
  by ``--milvus-uri`` (default ``http://127.0.0.1:19530``). The server comes from PyPI's ``milvus`` 2.3.5
  ("embedded Milvus": the server binary, lzma-compressed, plus a Python starter), its client from pymilvus 2.3.8
  (the newest 2.3.x). Their dependencies clash with hvl's environment, so in a venv of their own:
  ``python3 -m venv /work/milvus-venv; /work/milvus-venv/bin/pip install milvus==2.3.5 pymilvus==2.3.8 numpy
  psutil 'setuptools<81' 'marshmallow<4'`` (pymilvus 2.3 imports ``pkg_resources``; its environs 9.5 breaks
  on marshmallow 4), start the server with ``/work/milvus-venv/bin/milvus-server --data /work/milvus-data/run
  --proxy-port 19530`` (stop it with SIGINT; its starter binds ports without ``SO_REUSEADDR`` and, unless told
  the port, moves to the next free one while the last server's are in TIME_WAIT), and run this script with that
  venv's python (``common`` only needs torch for the machine description, left out when missing). Collection
  ``hvl_frames``: ``id``
  int64 primary, ``video_id`` int64, ``frame`` int32, ``vector`` float_vector; inserted 5,000 rows a call,
  flushed, then an HNSW index (M 16, efConstruction 64, as Qdrant; metric IP) built and loaded (consistency
  Bounded). Milvus 2.3 has no group-by search, so each query asks for the ``pool`` best frames (per
  ``--pools`` value, ``ef`` = ``pool`` x each ``--milvus-ef-per-pool``), groups them into videos by best frame
  and keeps each video's 3 best returned frames as its moments; the ``rescore`` settings add hvl's Qdrant
  step: a second search over every frame of the best 30 videos (filter ``video_id in [...]``, limit and ``ef``
  = their frame count), which re-ranks them and gives their moments. (Fetching those frames' vectors with
  ``query`` and scoring them here took ~55 ms at 20,000 frames; the filtered search ~3 ms and returned exactly
  the candidates' best frames in that probe.) Not run unless named in ``--engine``.
  ``index_s`` ends when pymilvus's ``wait_for_index_building_complete`` returns; by then the server's
  auto-compaction has usually merged the flushed segments (~118 MB each) into bigger ones that are indexed
  again (``index_progress.pending_index_rows``), so ``index_settled_s`` waits (up to 20 min more) until no row
  is pending, to keep that indexing out of the query timings. ``--milvus-data`` (the server's ``--data`` dir)
  gives the size on disk: ``du`` of its ``data/`` (binlogs and index files, RocksMQ log, etcd: ~122 MiB
  preallocated), after load (``disk_mib``) and after the queries (``disk_end_mib``), per part; it counts the
  pre-compaction binlogs and indexes the server has not yet garbage-collected, so measure on a server started
  fresh for the run. The server process's CPU seconds come with the build times.

Build times are wall seconds and, where the machine is shared, also CPU seconds (``*_cpu_s``: this process's
threads, plus the Milvus Lite or Milvus server process).

    python benchmarks/search_backends.py [--rows 1000000] [--engine qdrant milvus] [--shape ...] > backends.json
    python benchmarks/search_backends.py --quick        # 20,000 x 512, qdrant and milvus, every shape
    /work/milvus-venv/bin/python benchmarks/search_backends.py --engine milvus-server --rows 200000 \
        --pools 300 1000 2000 --milvus-data /work/milvus-data/run --shape clustered > milvus_server.json
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
from common import DEFAULT_WORK, emit, log, machine
from search import SHAPES, latencies, make_data

ENGINES = ("qdrant", "milvus", "milvus-server")


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def exact_truth(emb: np.ndarray, queries: np.ndarray, lengths: np.ndarray, k: int = 10, moments: int = 3
                ) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` videos by best frame ``[nq, k]`` (the full scan: every video's best frame over every frame) and
    each one's best ``moments`` frame numbers ``[nq, k, m]``."""
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    try:
        from hvl.core.search.ann_measure import exact_videos
    except ImportError:  # the milvus-server venv has no hvl: the same scan, every frame in memory at once
        best = np.maximum.reduceat(queries @ emb.T, starts, axis=1)
        top = np.lexsort((np.broadcast_to(np.arange(len(lengths)), best.shape), -best), axis=-1)[:, :k]
    else:
        top, _ = exact_videos(emb, np.repeat(np.arange(len(lengths)), lengths), queries, k)
    mom = np.full((len(queries), k, moments), -1, np.int64)
    for i, (q, t) in enumerate(zip(queries, top)):
        for j, v in enumerate(t):
            best = np.argsort(-(emb[starts[v]: starts[v] + lengths[v]] @ q), kind="stable")[:moments]
            mom[i, j, :len(best)] = best
    return top, mom


def make_frames(shape: str, rows: int, frames: int | str, a) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames, each video's frame count and queries: ``search.make_data`` for videos of one length (the data of
    the earlier runs); ``mixed``: 10-frame clips and 3,600-frame recordings as ``search_scale.py`` writes them,
    queries half near clips, half near recordings."""
    if frames != "mixed":
        emb, _, queries = make_data(shape, rows // frames, frames, a.dim, a.topics, a.queries, a.seed)
        return emb, np.full(rows // frames, frames, np.int64), queries
    import tempfile

    from hvl.core.search.store import read_index
    from search_scale import queries_for, write_index

    with tempfile.TemporaryDirectory(dir=a.work) as d:
        centres, lengths = write_index(Path(d) / "idx", shape, rows, frames, a.dim, a.topics, a.seed)
        emb = read_index(Path(d) / "idx").emb.materialize()
    return emb, lengths, queries_for(centres, a.queries, a.seed, lengths)


def score(results: list[list[tuple[int, list[int]]]], top: np.ndarray, mom: np.ndarray) -> dict[str, float]:
    """Video recall@10 against exact, and how many returned true top-10 videos have exactly their best moments."""
    rec, ok, n = [], 0, 0
    for res, t, m in zip(results, top, mom):
        truth = {int(v): list(mm) for v, mm in zip(t, m)}
        rec.append(len({v for v, _ in res} & set(truth)) / len(t))
        for v, frames in res:
            if v in truth:
                n += 1
                ok += frames == truth[v]
    return {"video_recall_at_10_vs_exact": round(float(np.mean(rec)), 4),
            "moments_exact": round(ok / max(n, 1), 4)}


# ------------------------------------------------------------------ engines
def run_qdrant(emb, queries, lengths, top, mom, work: Path, a) -> dict[str, Any]:
    from hvl.core.search.backends import open_backend, qdrant

    for name, value in (("HNSW_M", a.hnsw_m), ("HNSW_EF_CONSTRUCT", a.ef_construct), ("EF_PER_POOL", a.ef_per_pool)):
        if value:  # the settings measured, in place of the backend's defaults
            setattr(qdrant, name, value)

    d = work / "qdrant_index"
    n_videos = len(lengths)
    ends = np.cumsum(lengths)
    built = json.loads((work / "qdrant_build.json").read_text()) if a.reuse and (d / "qdrant").is_dir() else None
    if built is not None:  # searched again with this code: the build as recorded when it was made
        be = open_backend(d, {"backend": "qdrant", "dim": emb.shape[1]}, create=False)
        return _search_qdrant(be, built | {"reused": True, "count": be.count()}, emb, queries, lengths, top, mom, d, a)
    shutil.rmtree(d, ignore_errors=True)
    be = open_backend(d, {"backend": "qdrant", "dim": emb.shape[1]}, create=True)
    t0, c0 = time.perf_counter(), time.process_time()
    step = 5000
    for s in range(0, n_videos, step):
        e = min(s + step, n_videos)
        vids = [{"video_id": str(v), "group": f"g{v % 10}", "key": "", "path": "",
                 "t": [float(j) for j in range(lengths[v])]} for v in range(s, e)]
        be.add(vids, emb[(ends[s - 1] if s else 0): ends[e - 1]])
    insert_s, insert_cpu = time.perf_counter() - t0, time.process_time() - c0
    log(f"  qdrant insert {insert_s:.1f}s, load {loadavg()}")
    t0, c0 = time.perf_counter(), time.process_time()
    be.optimize()
    index_s, index_cpu = time.perf_counter() - t0, time.process_time() - c0
    log(f"  qdrant optimize (HNSW) {index_s:.1f}s, load {loadavg()}")
    be.close()
    be = open_backend(d, {"backend": "qdrant", "dim": emb.shape[1]}, create=False)
    out: dict[str, Any] = {"rows": len(emb), "insert_s": round(insert_s, 1), "index_s": round(index_s, 1),
                           "build_s": round(insert_s + index_s, 1), "insert_cpu_s": round(insert_cpu, 1),
                           "index_cpu_s": round(index_cpu, 1), "disk_mib": round(du(d) / 2**20, 1),
                           "count": be.count(), "hnsw_m": qdrant.HNSW_M, "ef_construct": qdrant.HNSW_EF_CONSTRUCT,
                           "ef_per_pool": qdrant.EF_PER_POOL, "load_after_build": loadavg()}
    if a.keep:
        (work / "qdrant_build.json").write_text(json.dumps(out))
    return _search_qdrant(be, out, emb, queries, lengths, top, mom, d, a)


def _rss_anon_mib() -> float:
    return int(next(x for x in open("/proc/self/status") if x.startswith("RssAnon:")).split()[1]) / 1024


def _search_qdrant(be, out: dict[str, Any], emb, queries, lengths, top, mom, d: Path, a) -> dict[str, Any]:
    """Each ``--pools`` value: the backend's own search (gathered videos, the best rescored in the engine), and
    `hvl search`'s path (:func:`hvl.core.search.query.search`: the backend proposes, the frames rescore)."""
    from hvl.core.search.query import _OneAtATime, search
    from hvl.core.search.store import FrameIndex

    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    meta = [{"video_id": str(v), "group": f"g{v % 10}", "key": "", "path": "", "start": int(s), "n": int(n)}
            for v, (s, n) in enumerate(zip(starts, lengths))]
    idx = FrameIndex(d, {"dim": emb.shape[1], "level": "clip"}, emb, np.repeat(np.arange(len(lengths)), lengths),
                     np.concatenate([np.arange(n, dtype=np.float64) for n in lengths]), meta, ["synthetic"],
                     ann=_OneAtATime(be), ann_meta={"kind": "backend", "factory": "qdrant", "where": "embedded"})
    out["settings"] = {}
    for pool in a.pools:
        def one(q, pool=pool):
            return [(int(h.video_id), [int(t) for t, _ in h.moments]) for h in be.search(q, 10, 3, pool=pool)]

        def hvl(q):
            return [(int(r["video_id"]), [int(m["t"]) for m in r["moments"]]) for r in search(idx, q, 10)["results"]]

        lat, res = latencies(one, queries)
        out["settings"][f"pool={pool}"] = lat | score(res, top, mom) | {"load": loadavg()}
        log(f"  qdrant pool={pool}: {out['settings'][f'pool={pool}']}")
        be.pool = pool
        lat, res = latencies(hvl, queries)
        out["settings"][f"hvl search, pool={pool}"] = lat | score(res, top, mom) | {"load": loadavg()}
        log(f"  hvl search (qdrant) pool={pool}: {out['settings'][f'hvl search, pool={pool}']}")
    out["rss_anon_mib"] = round(_rss_anon_mib(), 1)
    out["frames_float32_mib"] = round(emb.nbytes / 2**20, 1)  # held by this process for the exact answers
    be.close()
    if not a.keep:
        shutil.rmtree(d, ignore_errors=True)
    return out


def _pymilvus():
    """pymilvus with milvus-lite 2.5.1 (whose __init__ still imports pkg_resources, gone from setuptools >= 81)."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        stub = types.ModuleType("pkg_resources")

        class DistributionNotFound(Exception):
            pass

        def get_distribution(name):
            raise DistributionNotFound(name)

        stub.DistributionNotFound, stub.get_distribution = DistributionNotFound, get_distribution
        sys.modules["pkg_resources"] = stub
    import pymilvus
    from milvus_lite.server import Server  # the engine binary (3.x has none: a Python re-implementation)

    return pymilvus, Server


def server_cpu() -> float:
    """CPU seconds of this process's Milvus Lite server (a child process)."""
    import psutil

    return sum(sum(p.cpu_times()[:2]) for p in psutil.Process().children(recursive=True) if "milvus" in p.name())


def run_milvus(emb, queries, frames, top, mom, work: Path, a) -> dict[str, Any]:
    try:
        pymilvus, _ = _pymilvus()
    except ImportError as e:
        return {"skipped": f"{e}: pip install 'pymilvus<2.6' milvus-lite==2.5.1"}
    from pymilvus import DataType, MilvusClient

    d = work / "milvus_index"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    c = MilvusClient(str(d / "hvl.db"))
    s = c.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("video_id", DataType.INT64)
    s.add_field("group", DataType.VARCHAR, max_length=64)
    s.add_field("t", DataType.FLOAT)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=emb.shape[1])
    c.create_collection("frames", schema=s)
    t0, c0, s0 = time.perf_counter(), time.process_time(), server_cpu()
    for st in range(0, len(emb), 5000):
        c.insert("frames", [{"id": i, "video_id": i // frames, "group": f"g{i // frames % 10}", "t": float(i % frames),
                             "vec": emb[i]} for i in range(st, min(st + 5000, len(emb)))])
    c.flush("frames")
    insert_s, insert_cpu = time.perf_counter() - t0, time.process_time() - c0 + server_cpu() - s0
    log(f"  milvus insert {insert_s:.1f}s, load {loadavg()}")
    out: dict[str, Any] = {"rows": len(emb), "version": pymilvus.__version__, "insert_s": round(insert_s, 1),
                           "insert_cpu_s": round(insert_cpu, 1), "settings": {}}
    nlist = int(4 * np.sqrt(len(emb)))
    for kind, params, probes in (("FLAT", {}, [None]), ("IVF_FLAT", {"nlist": nlist}, a.nprobes)):
        c.release_collection("frames")
        for ix in c.list_indexes("frames"):
            c.drop_index("frames", ix)
        ip = c.prepare_index_params()
        ip.add_index("vec", index_type=kind, metric_type="IP", params=params)
        t0 = time.perf_counter()
        c.create_index("frames", ip)
        c.load_collection("frames")
        index_s = time.perf_counter() - t0
        for nprobe in probes:
            sp = {"metric_type": "IP", "params": {"nprobe": nprobe} if nprobe else {}}

            def one(q, sp=sp):
                r = c.search("frames", [q], limit=10, group_by_field="video_id", output_fields=["video_id"],
                             search_params=sp)[0]
                vids = [h["entity"]["video_id"] for h in r]
                fr = c.search("frames", [q], limit=len(vids) * frames, filter=f"video_id in {vids}",
                              output_fields=["video_id", "t"], search_params={"metric_type": "IP"})[0]
                mom_: dict[int, list[int]] = {v: [] for v in vids}
                for h in fr:  # best first
                    lst = mom_[h["entity"]["video_id"]]
                    if len(lst) < 3:
                        lst.append(int(h["entity"]["t"]))
                return [(v, mom_[v]) for v in vids]
            lat, res = latencies(one, queries)
            name = kind + (f" nlist={nlist} nprobe={nprobe}" if nprobe else "")
            out["settings"][name] = lat | score(res, top, mom) | {"index_s": round(index_s, 1),
                                                                  "build_s": round(insert_s + index_s, 1)}
            log(f"  milvus {name}: {out['settings'][name]}")
    c.close()
    out["disk_mib"] = round(du(d) / 2**20, 1)
    if not a.keep:
        shutil.rmtree(d, ignore_errors=True)
    return out


def _server_procs():
    """The Milvus standalone server processes on this machine (started outside this script)."""
    import psutil

    out = []
    for p in psutil.process_iter(["name", "cmdline"]):
        cmd = p.info["cmdline"] or []
        if p.info["name"] == "milvus" and "standalone" in cmd:
            out.append(p)
    return out


def _cpu(procs) -> float:
    import psutil

    t = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):  # a process gone: its seconds are lost, the run goes on
            t += sum(p.cpu_times()[:2])
    return t


def run_milvus_server(emb, queries, frames, top, mom, work: Path, a) -> dict[str, Any]:
    """A Milvus 2.3 standalone server by URI: HNSW, pool search grouped into videos client-side."""
    try:
        import pymilvus
        from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections, utility
    except ImportError as e:
        return {"skipped": f"{e}: pip install pymilvus==2.3.8 (and run a Milvus 2.3 server: see the docstring)"}
    try:
        connections.connect("default", uri=a.milvus_uri, timeout=60)
    except Exception as e:  # noqa: BLE001 - no server there: say so in the JSON, measure the other engines
        return {"skipped": f"no Milvus server at {a.milvus_uri}: {e}"}
    name, dim, k, m, rescore = "hvl_frames", emb.shape[1], 10, 3, 30
    if utility.has_collection(name):
        utility.drop_collection(name)
    data_dir = Path(a.milvus_data) / "data" if a.milvus_data else None
    disk0 = du(data_dir) if data_dir else None
    procs = _server_procs()
    schema = CollectionSchema([FieldSchema("id", DataType.INT64, is_primary=True),
                               FieldSchema("video_id", DataType.INT64),
                               FieldSchema("frame", DataType.INT32),
                               FieldSchema("vector", DataType.FLOAT_VECTOR, dim=dim)])
    col = Collection(name, schema, consistency_level="Bounded")
    t0, c0, s0 = time.perf_counter(), time.process_time(), _cpu(procs)
    ids = np.arange(len(emb), dtype=np.int64)
    for st in range(0, len(emb), 5000):
        r = ids[st: st + 5000]
        col.insert([r.tolist(), (r // frames).tolist(), (r % frames).tolist(), emb[st: st + 5000]])
    col.flush()
    insert_s, insert_cpu = time.perf_counter() - t0, time.process_time() - c0 + _cpu(procs) - s0
    log(f"  milvus-server insert + flush {insert_s:.1f}s, load {loadavg()}")
    t0, c0, s0 = time.perf_counter(), time.process_time(), _cpu(procs)
    col.create_index("vector", {"index_type": "HNSW", "metric_type": "IP",
                                "params": {"M": 16, "efConstruction": 64}}, index_name="vector_hnsw")
    utility.wait_for_index_building_complete(name, index_name="vector_hnsw", timeout=None)
    index_s, index_cpu = time.perf_counter() - t0, time.process_time() - c0 + _cpu(procs) - s0
    progress = utility.index_building_progress(name, index_name="vector_hnsw")
    log(f"  milvus-server HNSW {index_s:.1f}s ({progress}), load {loadavg()}")
    # the wait returns once the flushed segments are indexed; auto-compaction may meanwhile have merged them
    # into new segments that are indexed again: wait (up to 20 min) until no row is pending, so no indexing
    # runs during the queries
    while progress.get("pending_index_rows", 0) and time.perf_counter() - t0 < index_s + 1200:
        time.sleep(2)
        progress = utility.index_building_progress(name, index_name="vector_hnsw")
    settled_s, settled_cpu = time.perf_counter() - t0, time.process_time() - c0 + _cpu(procs) - s0
    log(f"  milvus-server no rows pending after {settled_s:.1f}s ({progress})")
    t0 = time.perf_counter()
    col.load()
    utility.wait_for_loading_complete(name)
    load_s = time.perf_counter() - t0
    count = col.query("", output_fields=["count(*)"])[0]["count(*)"]
    segs = utility.get_query_segment_info(name)
    disk = du(data_dir) if data_dir else None
    parts = ({p.name: round(du(p) / 2**20, 1) for p in sorted(data_dir.iterdir()) if p.is_dir()}
             if data_dir else None)
    out: dict[str, Any] = {"rows": len(emb), "server_version": utility.get_server_version(),
                           "pymilvus": pymilvus.__version__, "insert_s": round(insert_s, 1),
                           "index_s": round(index_s, 1), "build_s": round(insert_s + index_s, 1),
                           "insert_cpu_s": round(insert_cpu, 1), "index_cpu_s": round(index_cpu, 1),
                           "index_settled_s": round(settled_s, 1), "index_settled_cpu_s": round(settled_cpu, 1),
                           "load_s": round(load_s, 1), "index_progress": dict(progress), "count": count,
                           "segments": len(segs), "segment_index": sorted({str(sg.index_name) for sg in segs}),
                           "disk_mib": round(disk / 2**20, 1) if disk is not None else None,
                           "disk_before_mib": round(disk0 / 2**20, 1) if disk0 is not None else None,
                           "disk_parts_mib": parts, "settings": {}}
    log(f"  milvus-server loaded {load_s:.1f}s, {count} rows in {len(segs)} segments, disk {out['disk_mib']} MiB")

    def pooled(q, pool, ef):
        hits = col.search([q.tolist()], "vector", {"metric_type": "IP", "params": {"ef": ef}}, limit=pool,
                          output_fields=["video_id", "frame"])[0]
        best: dict[int, float] = {}
        mom_: dict[int, list[int]] = {}
        for h in hits:  # best first: a video's first hit is its best pooled frame
            v = int(h.entity.get("video_id"))
            if v not in best:
                best[v], mom_[v] = float(h.distance), []
            if len(mom_[v]) < m:
                mom_[v].append(int(h.entity.get("frame")))
        return sorted(best, key=lambda v: (-best[v], v)), mom_

    def plain(q, pool, ef):
        vids, mom_ = pooled(q, pool, ef)
        return [(v, mom_[v]) for v in vids[:k]]

    def rescored(q, pool, ef):  # hvl's Qdrant step: the best `rescore` videos scored exactly from all their frames
        vids, _ = pooled(q, pool, ef)
        cand = vids[:rescore]
        lim = len(cand) * frames  # every frame of the candidates, by a filtered search (see the docstring)
        hits = col.search([q.tolist()], "vector", {"metric_type": "IP", "params": {"ef": max(lim, 64)}},
                          limit=lim, expr=f"video_id in {cand}", output_fields=["video_id", "frame"])[0]
        by: dict[int, list[tuple[float, int]]] = {v: [] for v in cand}
        for h in hits:
            by[int(h.entity.get("video_id"))].append((-float(h.distance), int(h.entity.get("frame"))))
        for fr in by.values():
            fr.sort()
        order = sorted((v for v in cand if by[v]), key=lambda v: (by[v][0][0], v))[:k]
        return [(v, [f for _, f in by[v][:m]]) for v in order]

    for pool in a.pools:
        for per in a.milvus_ef_per_pool:
            ef = min(max(per * pool, pool, 64), 32768)
            for fn, tag in ((plain, ""), (rescored, f" rescore={rescore}")) if a.milvus_rescore else ((plain, ""),):
                lat, res = latencies(lambda q, fn=fn, pool=pool, ef=ef: fn(q, pool, ef), queries)
                key = f"pool={pool} ef={ef}{tag}"
                out["settings"][key] = lat | score(res, top, mom)
                log(f"  milvus-server {key}: {out['settings'][key]}")
    # a server keeps working after load (compaction, RocksMQ): disk and segments once the queries are done
    out["disk_end_mib"] = round(du(data_dir) / 2**20, 1) if data_dir else None
    out["disk_end_parts_mib"] = ({p.name: round(du(p) / 2**20, 1) for p in sorted(data_dir.iterdir()) if p.is_dir()}
                                 if data_dir else None)
    out["segments_end"] = len(utility.get_query_segment_info(name))
    if not a.keep:
        col.release()
        utility.drop_collection(name)
    connections.disconnect("default")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="20,000 x 512 frames, 50 queries: a smoke run")
    p.add_argument("--rows", type=int, default=1_000_000, help="frames (10 per video)")
    p.add_argument("--milvus-rows", type=int, default=30_000,
                   help="frames for Milvus Lite (its SQLite insert: 50-220 rows/s on the shared 2-core machine)")
    p.add_argument("--frames", default="10", help="frames per video, or mixed (10-frame clips and 3,600-frame "
                                                    "recordings, qdrant only)")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--topics", type=int, default=1000, help="topics of the clustered shape")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--shape", nargs="+", choices=SHAPES, default=list(SHAPES))
    p.add_argument("--engine", nargs="+", choices=ENGINES, default=["qdrant", "milvus"],
                   help="milvus-server needs a running server (see above): only when named")
    p.add_argument("--pools", nargs="+", type=int, default=[300, 1000], help="qdrant, milvus-server: frame pools measured")
    p.add_argument("--hnsw-m", type=int, help="qdrant: HNSW m (default: the backend's HNSW_M)")
    p.add_argument("--ef-construct", type=int, help="qdrant: HNSW ef_construct (default: the backend's)")
    p.add_argument("--ef-per-pool", type=int, help="qdrant: search ef = pool x this (default: the backend's)")
    p.add_argument("--nprobes", nargs="+", type=int, default=[32, 128], help="milvus IVF_FLAT: nprobe measured")
    p.add_argument("--milvus-uri", default="http://127.0.0.1:19530", help="milvus-server: the server's URI")
    p.add_argument("--milvus-data", type=Path, default=None,
                   help="milvus-server: the server's data dir (milvus-server --data), for the size on disk")
    p.add_argument("--milvus-ef-per-pool", nargs="+", type=int, default=[1, 4],
                   help="milvus-server: HNSW ef = pool x each of these (Qdrant's engine uses 4)")
    p.add_argument("--milvus-rescore", action=argparse.BooleanOptionalAction, default=True,
                   help="milvus-server: also measure the best 30 videos rescored exactly (as hvl's Qdrant backend)")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK / "backends")
    p.add_argument("--keep", action="store_true", help="keep the built indexes in --work")
    p.add_argument("--reuse", action="store_true", help="qdrant: search the index --keep left in --work (same "
                   "--rows, --frames, --shape, --seed) again instead of building it; its build times are the recorded ones")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    a.frames = a.frames if a.frames == "mixed" else int(a.frames)
    if a.quick:
        a.rows, a.milvus_rows, a.queries = 20_000, min(a.milvus_rows, 20_000), 50
    a.work.mkdir(parents=True, exist_ok=True)
    shapes: dict[str, Any] = {}
    for shape in a.shape:
        shapes[shape] = {}
        for engine in a.engine:
            rows = min(a.rows, a.milvus_rows) if engine == "milvus" else a.rows
            start = loadavg()
            log(f"[{shape}] {engine}: {rows} x {a.dim}, load average {start}")
            emb, lengths, queries = make_frames(shape, rows, a.frames, a)
            top, mom = exact_truth(emb, queries, lengths)
            run = {"qdrant": run_qdrant, "milvus": run_milvus, "milvus-server": run_milvus_server}[engine]
            if engine != "qdrant" and a.frames == "mixed":
                raise SystemExit("search_backends.py: --frames mixed is measured for qdrant only")
            per = lengths if engine == "qdrant" else a.frames  # the Milvus engines take videos of one length
            shapes[shape][engine] = {"load_average_at_start": start} | run(emb, queries, per, top, mom,
                                                                            a.work, a)
            del emb
    try:
        mach = machine()
    except ImportError:  # the milvus-server venv has no torch: the machine without torch's fields
        mach = {"cpu_count": os.cpu_count(), "python": sys.version.split()[0]}
    emit({"benchmark": "search_backends", "machine": mach | {"load_average": loadavg()}, "quick": a.quick,
          "rows": a.rows, "milvus_rows": a.milvus_rows, "frames_per_video": a.frames, "dim": a.dim,
          "queries": a.queries, "seed": a.seed, "shapes": shapes})


if __name__ == "__main__":
    main()
