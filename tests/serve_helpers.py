"""Data for the `hvl serve` tests, built once per test process: a small gameplay demo, its index (a tiny
untrained checkpoint) and `hvl zeroshot --predictions` on its labelled test clips."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from index_helpers import tiny_checkpoint

_BUILT: dict[str, ServeData] = {}


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
        build_index(root / "demo" / "videos", ckpt, root / "index", num_workers=0, progress=False, accelerator="cpu")
        cfg = root / "zs.yaml"
        cfg.write_text(yaml.safe_dump({"domain": "gameplay", "dataset": {"reader": "manifest",
                                                                        "path": str(root / "demo" / "test.jsonl")},
                                       "prompts": "gameplay:bug_types", "level": "clip", "num_workers": 0}))
        assert main(["zeroshot", "--config", str(cfg), "--ckpt", str(ckpt), "--predictions", str(root / "zs"),
                     "--json", str(root / "zs.json"), "--no-mlflow", "--no-progress"]) == 0
        _BUILT["data"] = ServeData(root, ckpt, root / "demo" / "videos", root / "index", root / "zs")
    return _BUILT["data"]
