import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes" / "surgical"


@pytest.fixture(scope="session")
def trained_demo(tmp_path_factory):
    """The README's demo, once per session: generate → fit (shipped recipe) → zeroshot.

    Yields (work dir, best checkpoint, zero-shot metrics). Tests that need a trained model share it.
    """
    from hvl.core.cli import main

    work = tmp_path_factory.mktemp("demo")
    mp = pytest.MonkeyPatch()
    mp.chdir(work)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    assert main(["demo", "surgical", "--out", "data/demo_surgical"]) == 0
    assert main(["fit", "--config", str(RECIPES / "demo_pretrain.yaml"), "--trainer.enable_progress_bar", "false"]) == 0
    ckpt = work / "checkpoints" / "surgical_demo" / "best.ckpt"
    assert main(["zeroshot", "--config", str(RECIPES / "demo_zeroshot.yaml"), "--ckpt", str(ckpt),
                 "--json", "metrics.json", "--no-progress"]) == 0
    mp.undo()
    yield work, ckpt, json.loads((work / "metrics.json").read_text())


def pytest_collection_modifyitems(items):
    """A test that needs the trained demo costs its training (minutes, once per session): it is slow."""
    for item in items:
        if "trained_demo" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
