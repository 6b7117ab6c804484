"""examples/hvl-kitchen, a fourth domain in its own package, used as a third party would use it: pip-installed
into a new virtual environment that sees the test environment's packages (hvl included, so nothing is
downloaded), its README's chain run there by the real `hvl` (`domains` -> `demo kitchen` -> `fit` -> `zeroshot`),
then pip-uninstalled: the domain is gone, and nothing in hvl names it. CI runs this file with the full suite."""
from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from test_docs_commands import argv_of, commands_in

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "hvl-kitchen"
README = EXAMPLE / "README.md"
# added to the README's lines: the same runs, quieter
QUIET = {"fit": ["--trainer.enable_progress_bar", "false"], "zeroshot": ["--no-progress"]}
# chance is 1/3 (three steps of equal length); after the recipe's tiny fit every run measured scored 1.0 (`hvl demo
# kitchen --seed S`, `hvl fit ... --seed_everything S`, S = 0..3), so 0.8 leaves room for another machine's numerics
MIN_ACCURACY = 0.8


class Venv:
    """A new virtual environment that also sees this interpreter's site-packages (hvl, torch, pip, setuptools)."""

    def __init__(self, folder: Path):
        self.folder = folder
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
        self.python = folder / "bin" / "python"
        purelib = subprocess.run([str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        # after the venv's own folder, so what is installed here comes first; addsitedir runs hvl's editable .pth
        lines = [f"import site; site.addsitedir({d!r})" for d in site.getsitepackages()]
        Path(purelib, "_inherit_test_env.pth").write_text("\n".join(lines) + "\n")
        self.env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder.parent / 'mlflow.db'}"}

    def run(self, *args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.python), *args], cwd=cwd, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def hvl(self, argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
        return self.run("-m", "hvl.core.cli", *argv, cwd=cwd)

    def pip(self, *args: str, cwd: Path) -> None:
        r = self.run("-m", "pip", "--disable-pip-version-check", "-q", *args, cwd=cwd)
        assert r.returncode == 0, r.stderr[-3000:]


def installed_example(tmp_path: Path) -> tuple[Venv, Path]:
    """A venv with the example installed from a copy of it (pip builds in the source folder, so not the checkout's),
    and a work folder that holds the copy where the README's paths expect it."""
    work = tmp_path / "work"
    shutil.copytree(EXAMPLE, work / "examples" / "hvl-kitchen", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    venv = Venv(tmp_path / "venv")
    venv.pip("install", "--no-index", "--no-deps", "--no-build-isolation", "./examples/hvl-kitchen", cwd=work)
    return venv, work


def readme_lines() -> list[list[str]]:
    return [argv_of(c.text) for c in commands_in(README)]


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> tuple[Venv, Path]:
    """One installed example for the module: the README chain runs in it first (defined first), then the uninstall
    test removes the package; installing twice cost a venv and a pip build more."""
    return installed_example(tmp_path_factory.mktemp("example"))


@pytest.mark.slow
def test_the_readme_chain_trains_and_evaluates_zero_shot(example):
    venv, work = example
    lines = readme_lines()
    assert [argv[0] for argv in lines] == ["domains", "demo", "fit", "zeroshot"]
    out = {}
    for argv in lines:
        r = venv.hvl([*argv, *QUIET.get(argv[0], [])], cwd=work)
        assert r.returncode == 0, f"hvl {' '.join(argv)}\n{r.stderr[-3000:]}"
        out[argv[0]] = r.stdout
    assert "kitchen: cooking steps" in out["domains"]
    assert json.loads(out["demo"])["videos"] == 6 + 2 + 2
    assert (work / "checkpoints/kitchen/best.ckpt").is_file()
    assert "mean over videos" in out["zeroshot"] and "pooled over frames" in out["zeroshot"]
    m = json.loads((work / "kitchen.json").read_text())
    assert sorted(r["video_id"] for r in m["per_video"]) == ["test0", "test1"]
    assert m["n_frames"] == 2 * 18  # 1 fps over two 18 s videos
    assert all(0.0 <= m[k] <= 1.0 for k in ("accuracy", "f1_macro", "jaccard"))
    assert m["accuracy"] >= MIN_ACCURACY, m  # the tiny fit learnt the steps: chance is 1/3


@pytest.mark.wheel
def test_installing_the_package_adds_the_domain_and_uninstalling_removes_it(example):
    venv, work = example
    listed = venv.hvl(["domains"], cwd=work)
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert "kitchen: cooking steps (chop, stir, plate), recognised zero-shot" in listed.stdout
    assert "surgical:" in listed.stdout  # hvl's own domains stay
    demo_help = venv.hvl(["demo", "kitchen", "--help"], cwd=work).stdout
    assert "options of the kitchen demo" in demo_help and "--train-videos" in demo_help
    refused = venv.hvl(["demo", "surgical", "--out", "d", "--train-videos", "3"], cwd=work)
    assert refused.returncode == 2 and "--train-videos: the surgical demo has no such option" in refused.stderr

    venv.pip("uninstall", "-y", "hvl-kitchen", cwd=work)
    listed = venv.hvl(["domains"], cwd=work)
    assert listed.returncode == 0 and "kitchen" not in listed.stdout and "surgical:" in listed.stdout
    gone = venv.hvl(["demo", "kitchen", "--out", "d"], cwd=work)
    assert gone.returncode == 2 and "unknown domain 'kitchen'" in gone.stderr
    assert not (work / "d").exists()
    # the domain lived only in its package: hvl's code and metadata never name it
    for path in [ROOT / "pyproject.toml", ROOT / "setup.py", *(ROOT / "core").rglob("*.py"),
                 *(ROOT / "domains").rglob("*.py")]:
        assert "hvl_kitchen" not in path.read_text(encoding="utf-8"), path
