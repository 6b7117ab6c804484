"""Data for the `hvl serve` tests, built once per test process: a small gameplay demo, its index (a tiny
untrained checkpoint) and `hvl zeroshot --predictions` on its labelled test clips."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from index_helpers import tiny_checkpoint

_BUILT: dict[str, ServeData] = {}
LOCAL = "http://127.0.0.1:8000"  # a Host the server answers to (TestClient's default "testserver" is not one)


@dataclass(frozen=True)
class ServeData:
    root: Path
    ckpt: Path
    videos: Path
    index: Path
    predictions: Path


def serve_data(tmp_path_factory) -> ServeData:
    if "data" not in _BUILT:
        from hvl.core.cli import main
        from hvl.core.search.index import build_index
        from hvl.domains.gameplay import demo

        root = tmp_path_factory.mktemp("serve")
        demo.generate(root / "demo", seed=1, n_train=2, n_val=0, n_test=8, size=64, seconds=5.0, progress=False)
        ckpt = tiny_checkpoint(root / "tiny.ckpt", image_size=32)
        build_index(root / "demo" / "videos", ckpt, root / "index", fps=2.0, num_workers=0, progress=False, accelerator="cpu")
        cfg = root / "zs.yaml"
        cfg.write_text(yaml.safe_dump({"domain": "gameplay", "dataset": {"reader": "manifest",
                                                                        "path": str(root / "demo" / "test.jsonl")},
                                       "prompts": "gameplay:bug_types", "level": "clip", "fps": 2.0, "num_workers": 0}))
        assert main(["zeroshot", "--config", str(cfg), "--ckpt", str(ckpt), "--predictions", str(root / "zs"),
                     "--json", str(root / "zs.json"), "--no-mlflow", "--no-progress"]) == 0
        _BUILT["data"] = ServeData(root, ckpt, root / "demo" / "videos", root / "index", root / "zs")
    return _BUILT["data"]


def build_app(data: ServeData, tmp: Path, **kw):
    """``hvl serve``'s app over ``data`` (as the command builds it), with its writable files under ``tmp``."""
    import argparse

    from hvl.core.cli.serve import add_arguments, build

    p = argparse.ArgumentParser()
    add_arguments(p)
    argv = ["--index", str(data.index), "--zeroshot", str(data.predictions), "--queries", str(tmp / "queries.yaml"),
            "--cache", str(tmp / "thumbs")]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return build(p.parse_args(argv))


class LiveServer:
    """uvicorn on a free loopback port in a thread (what `hvl serve` runs), stopped on ``close``."""

    def __init__(self, app):
        import socket
        import threading
        import time

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
