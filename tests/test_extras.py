"""Optional dependencies by job: pyproject's extras and hvl.core.extras agree, no module on the core path imports an
optional package at import time, and a command whose extra is missing stops with the `pip install 'hvl[…]'` to run.

A package is made missing the way Python itself sees it: ``sys.modules[name] = None`` makes ``import name`` raise
ModuleNotFoundError and ``importlib.util.find_spec(name)`` return None. The same checks against a real install
without extras: tests/test_wheel.py.
"""
from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from hvl.core.cli import main
from hvl.core.extras import COMMAND_EXTRAS, EXTRAS, MissingExtraError, require, require_extras
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
OPTIONAL = PYPROJECT["project"]["optional-dependencies"]
JOBS = set(OPTIONAL) - {"all", "test"}
# modules imported only by the command that needs their extra (`hvl serve`), so they may import it at the top
MODULE_LEVEL_OK = {"hvl.core.search.serve.app", "hvl.core.search.serve.files"}


def _distributions(extra: str) -> set[str]:
    """The distributions an extra brings, through the hvl[...] extras it names."""
    out: set[str] = set()
    for line in OPTIONAL[extra]:
        req = Requirement(line)
        if canonicalize_name(req.name) == "hvl":
            for inner in req.extras:
                out |= _distributions(inner)
        else:
            out.add(canonicalize_name(req.name))
    return out


def test_every_job_extra_is_declared_in_both_places_and_all_holds_them():
    assert set(EXTRAS) == JOBS, "hvl.core.extras.EXTRAS and pyproject's job extras differ"
    assert set(COMMAND_EXTRAS.values()) and {e for es in COMMAND_EXTRAS.values() for e in es} <= JOBS
    assert _distributions("all") == set().union(*(_distributions(e) for e in JOBS))
    assert _distributions("all") <= _distributions("test"), "`make test` (.[test]) must install every extra"


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_each_import_name_comes_from_its_extra(extra):
    provided = packages_distributions()
    for module in EXTRAS[extra]:
        dists = {canonicalize_name(d) for d in provided.get(module, [])}
        assert dists, f"{module} is not installed in the test environment (make setup installs .[test])"
        assert dists & _distributions(extra), f"{module} comes from {dists}, none of them in hvl[{extra}]"


def test_core_dependencies_hold_no_extra():
    core = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    for extra in JOBS:
        # pillow: frame folders and `hvl prepare --frames` need it in the core install too
        assert not (core & _distributions(extra)) - {"pillow"}, f"{extra}'s packages are core dependencies again"


def _module_level_imports(path: Path) -> list[tuple[str, int]]:
    """Top-level package names imported when ``path`` is imported (module body, not inside def or class bodies'
    functions)."""
    out = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            out += [(a.name.partition(".")[0], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module.partition(".")[0], node.lineno))
        elif isinstance(node, (ast.If, ast.Try)):  # `try: import x` at the top still runs on import
            for sub in ast.walk(node):
                if isinstance(sub, ast.Import):
                    out += [(a.name.partition(".")[0], sub.lineno) for a in sub.names]
    return out


def test_no_core_path_module_imports_an_optional_package_at_import_time():
    optional = {m.partition(".")[0] for ms in EXTRAS.values() for m in ms}
    bad = []
    for top in ("core", "domains"):
        for f in sorted((ROOT / top).rglob("*.py")):
            rel = f.relative_to(ROOT).with_suffix("")
            mod = ".".join(["hvl", *(rel.parts[:-1] if rel.name == "__init__" else rel.parts)])
            bad += [f"{f.relative_to(ROOT)}:{n} imports {name}" for name, n in _module_level_imports(f)
                    if name in optional and mod not in MODULE_LEVEL_OK]
    assert not bad, ("import these inside the function that needs them, or through "
                     "hvl.core.extras.require(...):\n" + "\n".join(bad))


def test_the_scan_sees_a_module_level_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\nimport faiss.contrib\nfrom pymunk import Body\ntry:\n    import qdrant_edge\nexcept "
                 "ImportError:\n    pass\ndef f():\n    import papermill\n")
    assert [n for n, _ in _module_level_imports(f)] == ["os", "faiss", "pymunk", "qdrant_edge"]


# ---- require / require_extras ------------------------------------------------------------------------------------

def test_require_returns_the_module_or_names_the_extra(monkeypatch):
    import json

    assert require("json", extra="search") is json
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'hvl\[search\]'") as e:
        require("faiss", extra="search", needed_by="hvl index")
    assert "hvl index" in str(e.value) and "faiss" in str(e.value)


def test_require_lets_a_broken_install_show_its_own_error(tmp_path, monkeypatch):
    """A module that is there but fails on its own dependency is not a missing extra: its real error stays."""
    (tmp_path / "half_installed.py").write_text("import no_such_dependency_of_it\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as e:
        require("half_installed", extra="search")
    assert e.value.name == "no_such_dependency_of_it"


def test_require_extras_lists_every_missing_module_and_one_install_command(monkeypatch):
    require_extras(("search", "serve"), needed_by="hvl serve")  # all installed here: no error
    monkeypatch.setitem(sys.modules, "faiss", None)
    monkeypatch.setitem(sys.modules, "python_multipart", None)
    with pytest.raises(MissingExtraError) as e:
        require_extras(("serve", "search"), needed_by="hvl serve")
    msg = str(e.value)
    assert msg.startswith("hvl serve needs python_multipart, faiss") and "pip install 'hvl[serve,search]'" in msg


# ---- the commands ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["index", "videos", "--ckpt", "best.ckpt", "--out", "idx"],
    ["search", "a car", "--index", "idx"],
    ["search-eval", "--config", "gameplay/demo_eval", "--ckpt", "best.ckpt"],
    ["serve", "--index", "idx"],
])
def test_a_search_command_without_faiss_names_the_extra_and_does_nothing(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "faiss", None)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "pip install 'hvl[" in err and "search" in err and "faiss" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_the_qdrant_backend_without_qdrant_edge_names_the_extra(tmp_path, monkeypatch):
    from hvl.core.search.backends import qdrant

    monkeypatch.setitem(sys.modules, "qdrant_edge", None)
    with pytest.raises(MissingExtraError, match=r"--backend qdrant.*pip install 'hvl\[qdrant\]'"):
        qdrant.open(tmp_path, {"backend": "qdrant", "dim": 4}, True)


def test_the_gameplay_demo_without_pymunk_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "hvl.domains.gameplay.demo", raising=False)
    monkeypatch.setitem(sys.modules, "pymunk", None)
    assert main(["demo", "gameplay", "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'hvl[gameplay]'" in err and "pymunk" in err
    assert not (tmp_path / "g").exists()
    assert main(["domains"]) == 0  # the domain itself (readers, prompts) still loads
    assert "gameplay" in capsys.readouterr().out
