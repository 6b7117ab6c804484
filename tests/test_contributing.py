"""The contributor's loop holds together: `make test-fast` leaves out exactly the markers declared by cost, the
README states its measured time, a test needing the trained demo is marked slow, and the fast subset's coverage
check (tests/fast_coverage.py) finds modules that no fast test exercises."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import pytest_collection_modifyitems
from fast_coverage import unexercised

ROOT = Path(__file__).resolve().parents[1]
PYTEST = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")


def _declared() -> set[str]:
    return {m.partition(":")[0].strip() for m in PYTEST["markers"]}


def test_the_fast_subset_leaves_out_every_declared_marker_and_nothing_else():
    fast = re.search(r"^FAST\s*:?=\s*(.+)$", MAKEFILE, re.MULTILINE).group(1).strip()
    assert set(re.findall(r"not (\w+)", fast)) == _declared()
    assert re.fullmatch(r"not \w+( and not \w+)*", fast), fast
    assert re.search(r'^test-fast:.*\n\t.*pytest -m "\$\(FAST\)"', MAKEFILE, re.MULTILINE)
    assert re.search(r"^test: setup\n\t\$\(BIN\)/python -m pytest\n", MAKEFILE, re.MULTILINE), \
        "make test must stay the full suite"
    assert "--strict-markers" in PYTEST["addopts"]


def test_whole_files_of_one_kind_say_so_once():
    kinds = {"test_wheel.py": "wheel", "test_serve_browser.py": "browser", "test_ddp.py": "distributed",
             "test_ddp_fit.py": "distributed", "test_index_ddp.py": "distributed", "test_benchmarks.py": "benchmark",
             "test_mlflow_server.py": "server", "test_learning.py": "slow", "test_ann.py": "slow",
             "test_adapt.py": "slow"}
    for name, marker in kinds.items():
        assert f"\npytestmark = pytest.mark.{marker}\n" in (ROOT / "tests" / name).read_text(encoding="utf-8"), name


def test_the_readme_states_the_fast_subsets_measured_time():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next((ln for ln in readme.splitlines() if ln.startswith("make test-fast")), "")
    assert re.search(r"\d+(\.\d+)? min", line), f"README.md: `make test-fast` without its measured time: {line!r}"


def test_a_test_needing_the_trained_demo_is_slow():
    items = [SimpleNamespace(fixturenames=["tmp_path", "trained_demo"], marks=[]),
             SimpleNamespace(fixturenames=["tmp_path"], marks=[])]
    for it in items:
        it.add_marker = it.marks.append
    pytest_collection_modifyitems(items)
    assert [m.name for m in items[0].marks] == ["slow"] and items[1].marks == []


def test_the_coverage_check_names_modules_the_fast_subset_left_alone():
    def entry(executed, functions):
        return {"executed_lines": executed, "summary": {"num_statements": 3}, "functions": {
            name: {"executed_lines": ran, "summary": {"num_statements": 2}} for name, ran in functions.items()}}

    ran, imported_only, declarations = ROOT / "core/io.py", ROOT / "core/errors.py", ROOT / "core/_lazy.py"
    report = {"files": {str(ran): entry([1, 5], {"read_yaml": [5]}),
                        str(ROOT / "core/__init__.py"): {**entry([], {}), "summary": {"num_statements": 0}},
                        str(imported_only): entry([1, 2], {"format_validation_error": []}),
                        str(declarations): entry([1], {})}}
    missing = unexercised(report)
    assert "core/io.py" not in missing and "core/_lazy.py" not in missing
    assert missing["core/errors.py"].startswith("imported, but none of its 1 functions ran")
    assert missing["core/registry.py"] == "never imported"
    assert "core/__init__.py" not in missing and "core/cli/__main__.py" not in missing


@pytest.mark.parametrize("marker", sorted(_declared()))
def test_each_marker_is_used(marker):
    used = any(re.search(rf"pytest\.mark\.{marker}\b", f.read_text(encoding="utf-8"))
               for f in (ROOT / "tests").glob("*.py") if f.name != "test_contributing.py")
    assert used, f"marker {marker!r} is declared but no test carries it"
