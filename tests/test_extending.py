"""docs/extending.md's worked examples, run as written: its `# file: <name>` code blocks are written to a folder
and its `hvl …` lines run in it. The kitchen domain is the package examples/hvl-kitchen (the page's blocks of it
must be its files as they are), pip-installed into a folder put on sys.path, so hvl finds it through its real
entry point (tests/test_example_domain.py installs it into a virtual environment and uninstalls it again); the
backbone, search backend and command are registered the way the page says (their registry dicts)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hvl.core.cli import MODULE_COMMANDS, main
from test_docs_commands import argv_of, commands_in

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "extending.md"
EXAMPLE = "examples/hvl-kitchen"  # the domain's package, in the repository and in the test's folder
FAST = ["--no-progress"]  # appended to the page's zero-shot and index lines: the same run, quieter


def doc_files(text: str) -> dict[str, str]:
    """name -> content of every fenced block whose first line is ``# file: <name>``."""
    blocks = {}
    for body in [b.split("\n", 1)[1] for b in text.split("```")[1::2]]:  # the text inside each fence
        first, _, _ = body.partition("\n")
        if first.startswith("# file: "):
            blocks[first.removeprefix("# file: ").strip()] = body
    return blocks


def doc_lines(command: str) -> list[list[str]]:
    """The page's `hvl <command> …` lines, as argv."""
    return [argv for c in commands_in(DOC) if (argv := argv_of(c.text))[0] == command]


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory):
    """The page's files in a folder, the kitchen package installed beside them, and its demo data generated."""
    work = tmp_path_factory.mktemp("extending")
    for name, content in doc_files(DOC.read_text(encoding="utf-8")).items():
        if not name.startswith(f"{EXAMPLE}/"):  # the package's own files are copied whole, below
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(content, encoding="utf-8")
    # a copy: pip builds in the source folder, and the page's paths are relative to a checkout
    shutil.copytree(ROOT / EXAMPLE, work / EXAMPLE, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--no-index", "--target", str(work / "site"), str(work / EXAMPLE)],
                       capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(work))  # the backbone, backend and command modules of the page
    mp.syspath_prepend(str(work / "site"))  # the installed kitchen package, with its entry point
    mp.chdir(work)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    (demo,) = doc_lines("demo")
    assert main(demo) == 0
    yield work
    mp.undo()


def test_the_page_holds_every_example():
    files = doc_files(DOC.read_text(encoding="utf-8"))
    assert {f"{EXAMPLE}/pyproject.toml", f"{EXAMPLE}/hvl_kitchen/__init__.py", f"{EXAMPLE}/hvl_kitchen/demo.py",
            f"{EXAMPLE}/hvl_kitchen/prompts/demo.yaml", f"{EXAMPLE}/recipes/kitchen_zeroshot.yaml", "tiny_backbone.py",
            "exact_backend.py", "manifest_stats.py"} <= set(files)
    for command in ("demo", "fit", "zeroshot", "index", "search", "manifest-stats"):
        assert doc_lines(command), command


def test_the_domain_blocks_are_the_example_package_as_it_is():
    shown = {name: body for name, body in doc_files(DOC.read_text(encoding="utf-8")).items()
             if name.startswith(f"{EXAMPLE}/")}
    assert len(shown) >= 4
    for name, body in shown.items():  # the block less its `# file:` line
        assert body.split("\n", 1)[1] == (ROOT / name).read_text(encoding="utf-8"), f"docs/extending.md: {name}"


def test_the_domain_is_found_by_its_entry_point_with_its_demo_and_prompts(kitchen, capsys):
    from hvl.core.data.schema import load_manifest, load_prompt_file
    from hvl.core.registry import get_domain

    assert main(["domains"]) == 0
    assert "kitchen: cooking steps" in capsys.readouterr().out
    domain = get_domain("kitchen")
    assert Path(domain.prompts_dir).is_relative_to(kitchen / "site")  # the installed copy, package data included
    names = load_prompt_file(Path(domain.prompts_dir) / "demo.yaml").names
    assert names == ["chop", "stir", "plate"]
    for split, n in (("train", 6), ("val", 2), ("test", 2)):
        videos = load_manifest(kitchen / "data/demo_kitchen" / f"{split}.jsonl").videos
        assert len(videos) == n and all([p.label for p in v.phases] == names for v in videos)
        assert all((kitchen / "data/demo_kitchen" / v.path).is_file() for v in videos)


@pytest.mark.slow
def test_the_domain_trains_and_evaluates_zero_shot(kitchen):
    (fit,) = doc_lines("fit")
    assert main([*fit, "--data.init_args.num_workers", "0", "--trainer.enable_progress_bar", "false"]) == 0
    ckpt_line = next(z for z in doc_lines("zeroshot") if "--ckpt" in z)
    assert main([*ckpt_line, *FAST]) == 0
    m = json.loads((kitchen / "kitchen.json").read_text())
    assert sorted(r["video_id"] for r in m["per_video"]) == ["test0", "test1"]
    assert all(0.0 <= m[k] <= 1.0 for k in ("accuracy", "f1_macro", "jaccard"))
    assert m["n_frames"] == 2 * 18  # 1 fps over two 18 s videos


def test_the_backbone_is_a_model_like_any_other(kitchen, monkeypatch):
    import torch
    from hvl.core.models import backbones

    monkeypatch.setitem(backbones.BACKBONES, "tiny", "tiny_backbone")
    import tiny_backbone

    torch.manual_seed(0)
    torch.save(tiny_backbone.TinyPair().state_dict(), kitchen / "tiny.pt")
    model_line = next(z for z in doc_lines("zeroshot") if "--model" in z)
    assert main([*model_line, *FAST, "--no-mlflow"]) == 0
    m = json.loads((kitchen / "tiny.json").read_text())
    assert m["n_frames"] == 36 and 0.0 <= m["accuracy"] <= 1.0
    bb = backbones.load_backbone("tiny:tiny.pt")
    assert isinstance(bb, tiny_backbone.TinyPair) and bb.text_features(["chop it", ""]).shape == (2, 32)


def test_the_search_backend_answers_as_exact_faiss_search(kitchen, monkeypatch):
    from hvl.core.search import backends
    from hvl.core.search.query import load_index, search
    from index_helpers import tiny_checkpoint

    monkeypatch.setitem(backends.BACKENDS, "exact", "exact_backend")
    (index,) = doc_lines("index")
    ckpt = kitchen / index[index.index("--ckpt") + 1]
    if not ckpt.is_file():  # the slow training test made it, when it ran: any model shows the backend
        tiny_checkpoint(ckpt)
    assert main([*index, *FAST, "--num-workers", "0"]) == 0
    faiss_index = [*index[:index.index("--out")], "--out", "idx_faiss", *FAST, "--num-workers", "0"]
    assert main(faiss_index) == 0
    assert json.loads((kitchen / "idx_exact/index.json").read_text())["backend"] == "exact"
    exact, reference = load_index(kitchen / "idx_exact"), load_index(kitchen / "idx_faiss")
    import exact_backend

    assert exact_backend.open(kitchen / "idx_exact", {}, False).count() == len(reference.emb) > 0
    rng = np.random.default_rng(0)
    for q in rng.standard_normal((5, reference.emb.shape[1])).astype(np.float32):
        q /= np.linalg.norm(q)
        got, want = search(exact, q, k=3), search(reference, q, k=3, exact=True)
        assert [r["video_id"] for r in got["results"]] == [r["video_id"] for r in want["results"]]
    (query,) = doc_lines("search")
    assert main(query) == 0


def test_the_command_runs_from_its_module(kitchen, monkeypatch, capsys):
    monkeypatch.setitem(MODULE_COMMANDS, "manifest-stats", ("manifest_stats", "videos, phases, clips, hours"))
    (line,) = doc_lines("manifest-stats")
    assert main(line) == 0
    assert capsys.readouterr().out.startswith("videos 6  phases 18  clips 54  hours")
    assert json.loads((kitchen / "stats.json").read_text()) == {"videos": 6, "phases": 18, "clips": 54,
                                                                 "hours": 6 * 18 / 3600}
    (kitchen / "broken.jsonl").write_text('{"video_id": "a"}\n')
    assert main(["manifest-stats", "broken.jsonl"]) == 2
    assert "broken.jsonl" in capsys.readouterr().err
