"""hvl as a user installs it: the built wheel in a fresh virtual environment, run from a folder outside the
checkout with named recipes (demo -> fit -> zeroshot), plus `hvl recipes`, `hvl recipes copy`, `hvl notebook copy`.
It is the plain install (`pip install hvl`, no extras): every package is in the wheel, every module that needs no
extra imports, and a command whose extra is missing (`hvl index`, `hvl serve`, `hvl demo gameplay`) says which.

The wheel is built (`pip wheel --no-deps`, with build isolation, as a user or CI builds it) from the files a
clean clone has (tracked + untracked-not-ignored), so a file hidden by .gitignore is missed here as it would be
in CI. It is then installed by pip into a new venv. Its dependencies: by default the new venv sees a read-only
view of exactly the distributions the wheel's Requires-Dist closure names, taken from this test environment
(symlinks, so that the test costs seconds, not the ~4-8 min of re-installing torch, Lightning, MLflow,
transformers); pip resolves the wheel's requirements against them (anything missing it installs from the index)
and `pip check` verifies them. ``HVL_WHEEL_TEST_INSTALL=full`` installs every dependency from the index instead.
"""
from __future__ import annotations

import email
import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import Distribution, distributions
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, ok: bool = True,
         timeout: int = 900) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if ok and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def _clone_files() -> list[str]:
    """The files a clean clone (after committing) would have: tracked plus untracked-but-not-ignored."""
    listed = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], ROOT).stdout
    # a tracked file deleted in the work tree is not part of the clone-to-be
    return [rel for rel in filter(None, listed.split("\0")) if (ROOT / rel).is_file()]


def _clean_clone(dest: Path) -> Path:
    for rel in _clone_files():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    return dest


def _requires(dist_requires: list[str] | None, extras: set[str]) -> list[Requirement]:
    out = []
    for line in dist_requires or []:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
            out.append(req)
    return out


def _closure(requires: list[str]) -> list[Distribution]:
    """The distributions of this environment that installing a package with ``requires`` would bring in."""
    installed = {canonicalize_name(d.metadata["Name"]): d for d in distributions()}
    todo, seen, out = _requires(requires, set()), set(), []
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        dist = installed.get(key[0])
        if key in seen or dist is None:  # not here: pip installs it from the index
            continue
        seen.add(key)
        out.append(dist)
        todo += _requires(dist.requires, set(req.extras) | {""})
    return out


def _dependency_view(requires: list[str], view: Path) -> int:
    """Symlink every top-level file/folder of the closure's distributions into ``view``; returns how many."""
    view.mkdir()
    for dist in _closure(requires):
        for f in dist.files or []:
            top = f.parts[0]
            src = Path(dist.locate_file(top))
            if top != ".." and src.exists() and not (view / top).exists():
                (view / top).symlink_to(src)
    return sum(1 for _ in view.iterdir())


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv, env for its commands, wheel path): the wheel built from a clean clone, pip-installed into a new venv."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = _clean_clone(tmp / "src")
    _run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-w", str(tmp / "dist"), "-q"], tmp)
    (wheel,) = (tmp / "dist").glob("hvl-*.whl")

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python)]  # this environment's pip, acting on the new venv
    if os.environ.get("HVL_WHEEL_TEST_INSTALL") == "full":
        import torch

        _run([*pip, "install", "-q", f"torch=={torch.__version__.split('+')[0]}"], tmp)
    else:
        with zipfile.ZipFile(wheel) as z:
            meta = email.message_from_bytes(z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))))
        assert _dependency_view(meta.get_all("Requires-Dist"), tmp / "deps") > 50
        purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp).stdout
        (Path(purelib.strip()) / "_hvl_test_dependencies.pth").write_text(f"{tmp / 'deps'}\n")
    _run([*pip, "install", "-q", str(wheel)], tmp)
    _run([*pip, "check"], tmp)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", HF_HUB_OFFLINE="1",
               MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}")
    yield venv, env, wheel


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """The user's working directory: outside the checkout."""
    w = tmp_path_factory.mktemp("user")
    assert ROOT not in w.parents
    return w


def _hvl(installed, work, *args, ok=True):
    venv, env, _ = installed
    return _run([str(venv / "bin" / "hvl"), *args], work, env, ok=ok)


def test_the_wheel_carries_code_recipes_and_notebook(installed):
    _, _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    # everything in the code folders (every subpackage's modules, prompt files, web assets), every recipe, notebook
    shipped = [f for f in _clone_files() if f.startswith(("core/", "domains/", "recipes/", "notebooks/"))]
    assert any(f.startswith("recipes/surgical/") for f in shipped) and "notebooks/clinical_evaluation.ipynb" in shipped
    missing = [f for f in shipped if f"hvl/{f}" not in names]
    assert not missing, f"not in the wheel (add the package or its data to pyproject.toml): {missing}"
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "core/", "recipes/"))]


def test_every_package_is_in_the_wheel_under_hvl_and_nothing_bare(installed):
    """setup.py finds the packages: every folder with an __init__.py under core/ and domains/ ships as hvl.<path>."""
    _, _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = sorted({str(Path(f).parent) for f in _clone_files()
                       if f.startswith(("core/", "domains/")) and Path(f).name == "__init__.py"})
    assert {"core", "core/cli", "core/search/serve", "domains/surgical/demo"} <= set(packages)
    missing = [p for p in packages if f"hvl/{p}/__init__.py" not in names]
    assert not missing, f"packages missing from the wheel: {missing}"
    assert {n.split("/")[0] for n in names} == {"hvl", f"hvl-{wheel.name.split('-')[1]}.dist-info"}


# what only an extra brings (the core dependencies bring some extras' other modules along: MLflow needs FastAPI)
NOT_IN_THE_PLAIN_INSTALL = ["faiss", "pymunk", "qdrant_edge", "qdrant_client", "python_multipart", "papermill"]


def test_the_plain_install_has_no_extra_and_every_other_module_imports(installed, work):
    """`pip install hvl` without extras: every module of hvl imports, except the one that needs an extra to exist
    at all (the gameplay demo generator: pymunk), which says which extra."""
    venv, env, _ = installed
    probe = ("import importlib, importlib.util, json, pkgutil, hvl.core, hvl.domains\n"
             f"absent = [m for m in {NOT_IN_THE_PLAIN_INSTALL!r} if importlib.util.find_spec(m) is None]\n"
             "failed = {}\n"
             "for pkg in (hvl.core, hvl.domains):\n"
             "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
             "        if m.name.endswith('.__main__'):  # a program: importing it runs it\n"
             "            continue\n"
             "        try:\n"
             "            importlib.import_module(m.name)\n"
             "        except Exception as e:\n"
             "            failed[m.name] = f'{type(e).__name__}: {e}'\n"
             "print(json.dumps({'absent': absent, 'failed': failed}))\n")
    out = json.loads(_run([str(venv / "bin" / "python"), "-c", probe], work, env).stdout.splitlines()[-1])
    assert out["absent"] == NOT_IN_THE_PLAIN_INSTALL, "the plain install's environment holds an extra's package"
    assert set(out["failed"]) == {"hvl.domains.gameplay.demo"}, out["failed"]
    assert out["failed"]["hvl.domains.gameplay.demo"].startswith("MissingExtraError")
    assert "pip install 'hvl[gameplay]'" in out["failed"]["hvl.domains.gameplay.demo"]


@pytest.mark.parametrize(("argv", "install"), [
    (["index", "videos", "--ckpt", "best.ckpt", "--out", "idx"], "pip install 'hvl[search]'"),
    (["search", "a car", "--index", "idx"], "pip install 'hvl[search]'"),
    (["serve", "--index", "idx"], "pip install 'hvl[serve,search]'"),
    (["demo", "gameplay", "--out", "data/demo_gameplay"], "pip install 'hvl[gameplay]'"),
])
def test_a_command_without_its_extra_says_which_to_install(installed, work, argv, install):
    r = _hvl(installed, work, *argv, ok=False)
    assert r.returncode == 2 and install in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (work / "idx").exists() and not (work / "data/demo_gameplay").exists()


def test_the_installed_code_is_the_wheels_not_the_checkout(installed, work):
    venv, env, _ = installed
    probe = ("import hvl.core, hvl.domains.surgical, importlib.metadata as m, importlib.resources as r; "
             "print(hvl.core.__file__); print(hvl.domains.surgical.__file__); print(r.files('hvl.recipes')); "
             "print(m.distribution('hvl').locate_file('hvl'))")
    paths = _run([str(venv / "bin" / "python"), "-c", probe], work, env).stdout.split()
    assert len(paths) == 4
    for p in paths:
        assert Path(p).resolve().is_relative_to(venv.resolve()), p


def test_version_is_the_packages(installed, work):
    _, _, wheel = installed
    assert _hvl(installed, work, "--version").stdout.strip() == f"hvl {wheel.name.split('-')[1]}"


def test_recipes_lists_every_shipped_recipe_with_its_summary(installed, work):
    lines = _hvl(installed, work, "recipes").stdout.splitlines()
    listed = {line.split()[0]: line for line in lines}
    shipped = {f"{p.parent.name}/{p.stem}": p for p in sorted(ROOT.glob("recipes/*/*.yaml"))}
    assert list(listed) == sorted(shipped)
    for name, path in shipped.items():
        summary = path.read_text().splitlines()[0].lstrip("#").strip()
        assert listed[name].endswith(summary), name
    assert "hvl fit" in listed["surgical/demo_pretrain"] and "hvl zeroshot" in listed["surgical/demo_zeroshot"]


def test_recipes_copy_writes_an_editable_copy_and_keeps_an_existing_file(installed, work):
    shipped = (ROOT / "recipes" / "surgical" / "demo_pretrain.yaml").read_bytes()
    out = _hvl(installed, work, "recipes", "copy", "surgical/demo_pretrain", "my.yaml").stdout
    assert (work / "my.yaml").read_bytes() == shipped
    assert "hvl fit --config my.yaml" in out
    (work / "my.yaml").write_text("# edited\n")
    again = _hvl(installed, work, "recipes", "copy", "surgical/demo_pretrain", "my.yaml", ok=False)
    assert again.returncode == 2 and "--force" in again.stderr and "Traceback" not in again.stderr
    assert (work / "my.yaml").read_text() == "# edited\n"
    _hvl(installed, work, "recipes", "copy", "surgical/demo_pretrain", "my.yaml", "--force")
    assert (work / "my.yaml").read_bytes() == shipped
    (work / "my.yaml").unlink()


def test_notebook_copy_writes_the_notebook_and_says_how_to_run_it(installed, work):
    out = _hvl(installed, work, "notebook", "copy", "clinical_evaluation", "nb").stdout
    assert (work / "nb" / "clinical_evaluation.ipynb").read_bytes() == \
        (ROOT / "notebooks" / "clinical_evaluation.ipynb").read_bytes()
    assert "papermill nb/clinical_evaluation.ipynb nb/clinical_evaluation_out.ipynb" in out
    from hvl.core.notebooks import parameters  # equal to papermill's own reading (tests/test_recipes.py)

    assert ", ".join(parameters(ROOT / "notebooks" / "clinical_evaluation.ipynb")) in out


def test_surgical_demo_chain_with_named_recipes(installed, work):
    """The README's installed quick start: generated data, a 2-step fit and zero-shot, all by recipe name."""
    venv, _, _ = installed
    _hvl(installed, work, "demo", "surgical", "--out", "data/demo_surgical")
    _hvl(installed, work, "fit", "--config", "surgical/demo_pretrain", "--trainer.max_epochs", "1",
         "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "0",
         "--data.init_args.num_workers", "0", "--trainer.enable_progress_bar", "false")
    ckpt = work / "checkpoints" / "surgical_demo" / "best.ckpt"  # the recipe's paths: relative to the working dir
    assert ckpt.is_file()
    _hvl(installed, work, "zeroshot", "--config", "surgical/demo_zeroshot", "--ckpt", str(ckpt),
         "--json", "m.json", "--no-progress")
    m = json.loads((work / "m.json").read_text())
    test_videos = [json.loads(line)["video_id"] for line in (work / "data/demo_surgical/test.jsonl").open()]
    assert sorted(r["video_id"] for r in m["per_video"]) == sorted(test_videos)
    assert all(0.0 <= m[k] <= 1.0 for k in ("accuracy", "f1_macro", "jaccard"))
    # the recipe's prompt file (surgical:demo) came from the installed package, not from a checkout
    prompt = Path(m["prompt_file"]).resolve()
    assert prompt.is_relative_to(venv.resolve()) and prompt.name == "demo.yaml"
    assert yaml.safe_load(prompt.read_text()) == yaml.safe_load((ROOT / "domains/surgical/prompts/demo.yaml").read_text())

    # the installed package computes what the checkout computes: same checkpoint, videos, recipe
    from hvl.core.cli import main

    os.chdir(work)
    try:
        assert main(["zeroshot", "--config", str(ROOT / "recipes/surgical/demo_zeroshot.yaml"), "--ckpt", str(ckpt),
                     "--json", "checkout.json", "--no-progress", "--no-mlflow"]) == 0
    finally:
        os.chdir(ROOT)
    ref = json.loads((work / "checkout.json").read_text())
    for k in ("accuracy", "f1_macro", "jaccard", "per_video", "pooled", "n_frames"):
        assert m[k] == ref[k], k


def test_unknown_recipe_name_lists_the_shipped_ones(installed, work):
    r = _hvl(installed, work, "fit", "--config", "surgical/demo_pretrian", ok=False)
    assert r.returncode == 2 and "surgical/demo_pretrain" in r.stderr and "Traceback" not in r.stderr
