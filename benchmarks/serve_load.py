"""Load on `hvl serve`: concurrent text searches over loopback HTTP, against the library call they wrap.

The server is the real command (``hvl serve``, uvicorn) in its own process; ``--clients`` threads here
send ``--queries`` text searches in total (the query set's texts, cycled and numbered so that no two are the same string: nothing is answered from a cache), each with a
``--timeout`` and the whole run with a ``--deadline``, so it always stops by itself. Measured in the same run:

* ``in_process``: ``embed_queries`` + ``search`` called directly, one query at a time (the work an
  ``/api/search`` request does: one text-encoder pass and the index scan);
* ``http_1_client``: the same queries over HTTP one at a time (adds JSON, HTTP and the model lock);
* ``http_concurrent``: ``--clients`` at once. The model lock serialises the encoder passes, so p50 grows
  with the clients while throughput is bounded by the encoder; no request may fail.

    python benchmarks/serve_load.py [--index data/demo_index] [--clients 8] [--queries 200] [--quick] > serve_load.json

Without ``--index`` a gameplay demo (60 test clips) is generated and indexed with a small untrained
checkpoint under ``--work`` (reused); the text encoder (the packaged MiniLM) is the same either way.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import requests
import yaml
from common import DEFAULT_WORK, emit, log, machine

FALLBACK_QUERIES = ["a red car", "a blue ball next to a yellow box", "a car falling through the floor",
                    "a character flying in the air", "a box stuck inside another object", "a stretched purple car"]


def stats(ms: list[float]) -> dict[str, float]:
    t = np.asarray(ms)
    return {"p50_ms": round(float(np.percentile(t, 50)), 2), "p95_ms": round(float(np.percentile(t, 95)), 2),
            "max_ms": round(float(t.max()), 2), "requests": len(t)}


def demo_index(work: Path, n_test: int) -> tuple[Path, Path]:
    """A gameplay demo's test clips indexed with a small untrained checkpoint (built once into ``work``)."""
    import torch
    from hvl.core.models.module import HierarchicalVLM
    from hvl.core.search.index import build_index
    from hvl.domains.gameplay import demo

    root = work / f"serve_load_{n_test}"
    index = root / "index"
    if (index / "index.json").is_file():
        return index, root / "demo" / "queries.yaml"
    log(f"building a {n_test}-clip gameplay demo index in {root} ...")
    demo.generate(root / "demo", seed=0, n_train=2, n_val=0, n_test=n_test, progress=False)
    torch.manual_seed(0)
    m = HierarchicalVLM(video_encoder={"frame_encoder": {"name": "small_cnn", "widths": [8, 16]}}, embed_dim=32,
                        levels=["clip", "video"])
    ckpt = root / "tiny.ckpt"
    torch.save({"state_dict": {k: v for k, v in m.state_dict().items() if not k.startswith("text.model.")},
                "hyper_parameters": dict(m.hparams),
                "hvl": {"class_path": "hvl.core.models.module.HierarchicalVLM", "frozen_text_dropped": True,
                        "image_size": 32}}, ckpt)
    build_index(root / "demo" / "videos", ckpt, index, num_workers=0, progress=False, accelerator="cpu")
    return index, root / "demo" / "queries.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index: Path, work: Path, timeout: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "hvl.core.cli", "serve", "--index", str(index), "--port", str(port),
           "--queries", str(work / "serve_load_queries.yaml"), "--cache", str(work / "serve_load_thumbs")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(f"{url}/api/info", timeout=2).ok:
                return proc, url
        except requests.ConnectionError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"hvl serve did not start: {proc.stderr.read()[-2000:] if proc.stderr else ''}")


def http_run(url: str, texts: list[str], clients: int, timeout: float, deadline: float) -> dict[str, Any]:
    """Every text once, ``clients`` at a time; stops at ``deadline`` (seconds from now) whatever is left."""
    ms: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + deadline
    local = threading.local()

    def one(text: str) -> None:
        if time.monotonic() > stop_at:
            with lock:
                errors.append("not sent: deadline")
            return
        s = getattr(local, "session", None) or requests.Session()
        local.session = s
        t0 = time.perf_counter()
        try:
            r = s.post(f"{url}/api/search", json={"query": text, "k": 10}, timeout=timeout)
            ok = r.status_code == 200 and len(r.json()["results"]) > 0
            err = None if ok else f"HTTP {r.status_code}: {r.text[:200]}"
        except requests.RequestException as e:
            err = f"{type(e).__name__}: {e}"
        dt = (time.perf_counter() - t0) * 1000
        with lock:
            (errors.append(err) if err else ms.append(dt))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, texts))
    wall = time.perf_counter() - t0
    out = stats(ms) if ms else {"requests": 0}
    return out | {"clients": clients, "errors": len(errors), "error_examples": errors[:3], "wall_s": round(wall, 2),
                  "throughput_rps": round(len(ms) / wall, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", help="an `hvl index` folder (default: build a demo index under --work)")
    p.add_argument("--query-set", help="YAML query set whose texts are sent (default: the demo's)")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--queries", type=int, default=200, help="requests in total")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    p.add_argument("--deadline", type=float, default=300.0, help="seconds for the whole concurrent run")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK)
    p.add_argument("--quick", action="store_true", help="12 clips, 2 clients, 20 queries (CI)")
    a = p.parse_args()
    if a.quick:
        a.clients, a.queries = 2, 20
    a.work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from hvl.core.models.checkpoint import load_model
    from hvl.core.search.query import embed_queries, load_index, search

    if a.index:
        index, qset = Path(a.index), a.query_set
    else:
        index, demo_q = demo_index(a.work, 12 if a.quick else 60)
        qset = a.query_set or demo_q
    pool = [q["text"] for q in yaml.safe_load(Path(qset).read_text())["queries"]] if qset else FALLBACK_QUERIES
    # every request a new string: the frozen text encoder caches by string, and a cache hit would skip the work
    def texts_for(run: str, n: int) -> list[str]:
        return [f"{pool[i % len(pool)]} ({run} {i})" for i in range(n)]

    texts = texts_for("load", a.queries)
    log(f"{a.queries} queries from {len(pool)} texts, {a.clients} clients, index {index}")
    info: dict[str, Any] = {"benchmark": "serve_load", "quick": a.quick, "machine": machine(),
                            "config": {"clients": a.clients, "queries": a.queries, "timeout_s": a.timeout,
                                       "deadline_s": a.deadline, "distinct_texts": len(pool), "k": 10}}

    idx = load_index(index)
    model, _ = load_model(idx.header["checkpoint"])
    info["index"] = {"path": str(index), "videos": len(idx.videos), "frames": len(idx.emb),
                     "level": idx.header["level"]}
    base = []
    for text in texts_for("library", min(a.queries, 100)):
        t0 = time.perf_counter()
        search(idx, embed_queries(model, [text], idx.header["level"])[0], k=10)
        base.append((time.perf_counter() - t0) * 1000)
    info["in_process"] = stats(base[1:] or base)  # the first call warms the tokenizer up
    del model

    proc, url = start_server(index, a.work, timeout=120)
    try:
        http_run(url, texts_for("warm-up", 4), 1, a.timeout, a.deadline)
        info["http_1_client"] = http_run(url, texts_for("one client", min(a.queries, 50)), 1, a.timeout, a.deadline)
        info["http_concurrent"] = http_run(url, texts, a.clients, a.timeout, a.deadline)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    c, one, lib = info["http_concurrent"], info["http_1_client"], info["in_process"]
    info["ratios"] = {"http_1_client_p50_vs_in_process": round(one["p50_ms"] / lib["p50_ms"], 2),
                      "concurrent_p50_vs_1_client": round(c["p50_ms"] / one["p50_ms"], 2) if c["requests"] else None,
                      "concurrent_throughput_vs_1_client": round(c["throughput_rps"] / one["throughput_rps"], 2)}
    info["no_request_failed"] = c["errors"] == 0 and one["errors"] == 0
    emit(info)


if __name__ == "__main__":
    main()
