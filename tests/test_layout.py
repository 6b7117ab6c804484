"""The architecture as a test: core never imports a domain or the CLI, and its parts import one way
(data <- models <- evaluation / search), with no import cycle between modules or subpackages; a domain imports core
and itself, never another domain; no import cycle among the modules of core and the domains together; and no
library module grows past MAX_LINES."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"
DOMAINS = ROOT / "domains"
PACKAGES = {"core": CORE, "domains": DOMAINS}  # hvl.<name> lives in <folder>
MAX_LINES = 600  # a module longer than this does more than one job
# recipes / notebooks: the shipped recipes and notebooks (package data) by name, `hvl recipes`, `hvl notebook`
LEAVES = {"errors", "io", "registry", "tracking", "_lazy", "recipes", "notebooks"}
# what each part of hvl.core may import, besides itself
ALLOWED = {
    "errors": set(), "_lazy": set(), "tracking": set(), "io": {"errors"}, "registry": {"errors"},
    "recipes": {"errors", "io"}, "notebooks": {"errors", "recipes"},
    "data": LEAVES - {"tracking"},
    "models": {"data"} | LEAVES,
    "evaluation": {"models", "data"} | LEAVES,
    "search": {"models", "data"} | LEAVES,
    "cli": {"data", "models", "evaluation", "search"} | LEAVES,
}


def module_name(path: Path) -> str:
    top = next(name for name, folder in PACKAGES.items() if folder in path.parents)
    parts = ["hvl", top, *path.relative_to(PACKAGES[top]).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(mod: str) -> bool:
    """Whether ``hvl.core.x.y`` / ``hvl.domains.x.y`` is a module or package of the checkout."""
    parts = mod.split(".")
    if len(parts) < 2 or parts[0] != "hvl" or parts[1] not in PACKAGES:
        return False
    base = PACKAGES[parts[1]].joinpath(*parts[2:])
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports(path: Path) -> list[tuple[str, int]]:
    """Every hvl module ``path`` imports (module level and inside functions), resolved to full names."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.startswith("hvl")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("hvl"):
                out.append((target, node.lineno))
                out += [(f"{target}.{a.name}", node.lineno) for a in node.names if is_module(f"{target}.{a.name}")]
    return out


def unit(mod: str) -> str:
    """``hvl.core.data.video`` -> ``data``; ``hvl.core.errors`` -> ``errors``."""
    return mod.split(".")[2] if mod.count(".") >= 2 else "core"


FILES = sorted(CORE.rglob("*.py"))
GRAPH = {module_name(f): imports(f) for f in FILES}
DOMAIN_FILES = sorted(DOMAINS.rglob("*.py"))
DOMAIN_GRAPH = {module_name(f): imports(f) for f in DOMAIN_FILES}
ALL_GRAPH = GRAPH | DOMAIN_GRAPH


def domain(mod: str) -> str | None:
    """``hvl.domains.surgical.demo.render`` -> ``surgical``; None outside a domain."""
    parts = mod.split(".")
    return parts[2] if parts[:2] == ["hvl", "domains"] and len(parts) > 2 else None


def test_the_walk_sees_the_imports_it_checks():
    """Guards the test itself: known edges must be found, or every check below would pass vacuously."""
    assert "hvl.core.data.levels" in {m for m, _ in GRAPH["hvl.core.models.module"]}
    assert "hvl.core.models.checkpoint" in {m for m, _ in GRAPH["hvl.core.search.index"]}  # inside a function
    assert "hvl.core.data.records" in {m for m, _ in GRAPH["hvl.core.search.evaluate"]}  # `from ..data import x`
    assert "hvl.core.evaluation.stats" in {m for m, _ in ALL_GRAPH["hvl.domains.surgical.clinical.scores"]}
    assert "hvl.domains.surgical.demo.render" in {m for m, _ in ALL_GRAPH["hvl.domains.surgical.demo.dataset"]}
    assert "hvl.domains.surgical.demo" in {m for m, _ in ALL_GRAPH["hvl.domains.surgical"]}  # inside a function
    assert {"hvl.domains.surgical", "hvl.domains.sign", "hvl.domains.gameplay"} <= set(ALL_GRAPH)


def test_core_never_imports_a_domain_or_the_cli():
    bad = [f"{m} line {n} imports {t}" for m, edges in GRAPH.items() for t, n in edges
           if t.startswith("hvl.domains") or (t == "hvl.core.cli" and m != "hvl.core.cli")
           or not t.startswith("hvl.core")]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_parts_import_one_way(part):
    bad = [f"{m} line {n} imports {t}" for m, edges in GRAPH.items() if unit(m) == part
           for t, n in edges if unit(t) not in ALLOWED[part] | {part, "core"}]
    assert not bad, f"{part} may import only {sorted(ALLOWED[part])}:\n" + "\n".join(bad)


def test_every_part_is_known():
    assert {unit(m) for m in GRAPH} - {"core"} == set(ALLOWED)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        state[n] = 2
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_modules():
    """Among the modules of core and the domains together (a domain's module importing core and back would be one)."""
    graph = {m: {t for t, _ in edges if t in ALL_GRAPH and t != m} for m, edges in ALL_GRAPH.items()}
    # a package's __init__ is imported on the way to any of its modules: not a dependency of its own modules
    graph = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_no_import_cycle_between_parts():
    graph: dict[str, set[str]] = {}
    for m, edges in GRAPH.items():
        graph.setdefault(unit(m), set()).update(unit(t) for t, _ in edges if unit(t) != unit(m))
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_every_subpackage_documents_itself_and_its_public_names():
    import importlib

    for init in sorted(CORE.glob("*/__init__.py")):
        pkg = importlib.import_module(module_name(init))
        assert pkg.__doc__ and "import" in pkg.__doc__, f"{init}: docstring should say what it may import"
        assert pkg.__all__, init
        for name in pkg.__all__:
            assert getattr(pkg, name) is not None, f"{init}: __all__ names {name}, which does not resolve"


def test_domains_import_core_and_themselves_never_another_domain_or_the_cli():
    bad = [f"{m} line {n} imports {t}" for m, edges in DOMAIN_GRAPH.items() for t, n in edges
           if not (t.startswith("hvl.core") or domain(t) == domain(m)) or t == "hvl.core.cli"]
    assert not bad, "a domain may import hvl.core (not its CLI) and its own modules:\n" + "\n".join(bad)


def test_no_library_module_is_too_long():
    long = [f"{f.relative_to(ROOT)}: {n} lines" for f in FILES + DOMAIN_FILES
            if (n := len(f.read_text().splitlines())) > MAX_LINES]
    assert not long, f"split these by job (at most {MAX_LINES} lines a module):\n" + "\n".join(long)
