"""The architecture as a test: core never imports a domain or the CLI, and its parts import one way
(data <- models <- evaluation / search), with no import cycle between modules or subpackages (at every depth); a
domain imports core and itself, never another domain; no import cycle among the modules of core and the domains
together; argparse lives in the CLI package only, and `hvl --help` imports no torch; and no library module grows
past MAX_LINES."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"
DOMAINS = ROOT / "domains"
PACKAGES = {"core": CORE, "domains": DOMAINS}  # hvl.<name> lives in <folder>
MAX_LINES = 600  # a module longer than this does more than one job
# recipes / notebooks: the shipped recipes and notebooks (package data) by name, `hvl recipes`, `hvl notebook`;
# outputs: what a command prints and writes at its end (--json, the evaluation tail)
LEAVES = {"errors", "extras", "io", "registry", "tracking", "_lazy", "recipes", "notebooks", "outputs"}
# what each part of hvl.core may import, besides itself
ALLOWED = {
    "errors": set(), "_lazy": set(), "tracking": set(), "io": {"errors"}, "registry": {"errors"}, "extras": {"errors"},
    "recipes": {"errors", "io"}, "notebooks": {"errors", "recipes"}, "outputs": {"io", "tracking"},
    "data": LEAVES - {"tracking"},
    "models": {"data"} | LEAVES,
    "evaluation": {"models", "data"} | LEAVES,
    "search": {"models", "data"} | LEAVES,
    "inference": {"models", "data", "evaluation"} | LEAVES,
    "cli": {"data", "models", "evaluation", "search", "inference"} | LEAVES,
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


def in_cli(mod: str) -> bool:
    return mod == "hvl.core.cli" or mod.startswith("hvl.core.cli.")


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
           if t.startswith("hvl.domains") or (in_cli(t) and not in_cli(m)) or not t.startswith("hvl.core")]
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


def subpackage_graphs(graph: dict[str, set[str]]) -> dict[str, dict[str, set[str]]]:
    """For every package P (``hvl.core``, ``hvl.core.evaluation``, ``hvl.domains.surgical``, ...): the imports
    between its children, each child module or subpackage collapsed to one node (``hvl.core.evaluation.zeroshot.
    classify`` is ``zeroshot`` inside ``hvl.core.evaluation``)."""
    packages = {m for m in graph if any(o.startswith(m + ".") for o in graph)}
    out: dict[str, dict[str, set[str]]] = {}
    for pkg in packages:
        depth = pkg.count(".") + 2

        def child(mod: str, depth: int = depth) -> str:
            return ".".join(mod.split(".")[:depth])

        edges: dict[str, set[str]] = {}
        for m, targets in graph.items():
            if m.startswith(pkg + "."):
                edges.setdefault(child(m), set()).update(
                    child(t) for t in targets if t.startswith(pkg + ".") and child(t) != child(m))
        out[pkg] = edges
    return out


def test_subpackage_graphs_collapse_modules_to_their_child_of_each_package():
    graph = {"hvl.core.evaluation.zeroshot.run": {"hvl.core.evaluation.adapt.heads"},
             "hvl.core.evaluation.adapt.fit": {"hvl.core.evaluation.zeroshot.frames"},
             "hvl.core.evaluation.adapt.heads": set(), "hvl.core.evaluation.zeroshot.frames": set()}
    graph |= {"hvl.core.evaluation": set(), "hvl.core.evaluation.adapt": set(), "hvl.core.evaluation.zeroshot": set()}
    parts = subpackage_graphs(graph)
    assert _cycle(parts["hvl.core.evaluation"]) is not None  # the cycle the module graph alone does not see
    assert _cycle({m: {t for t in ts if t in graph} for m, ts in graph.items()}) is None


@pytest.mark.parametrize("package", sorted(subpackage_graphs({m: {t for t, _ in e} for m, e in ALL_GRAPH.items()})))
def test_no_import_cycle_between_subpackages_at_any_depth(package):
    """Inside every package, its modules and subpackages import one way (evaluation.adapt may use
    evaluation.zeroshot, or the other way round, never both)."""
    graph = subpackage_graphs({m: {t for t, _ in e if t in ALL_GRAPH} for m, e in ALL_GRAPH.items()})[package]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def _imports_argparse(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "argparse" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "argparse":
            return True
    return False


def test_argparse_only_in_the_cli_package():
    """Commands declare their options in hvl.core.cli; the library takes typed options, never a Namespace."""
    assert _imports_argparse(CORE / "cli" / "options.py")  # guards the check itself
    bad = [str(f.relative_to(ROOT)) for f in FILES + DOMAIN_FILES
           if not in_cli(module_name(f)) and (_imports_argparse(f) or "Namespace" in f.read_text())]
    assert not bad, "argparse (or a Namespace) outside hvl.core.cli:\n" + "\n".join(bad)


def test_every_command_is_a_module_of_the_cli_package():
    from hvl.core.cli import MODULE_COMMANDS

    for name, (module, help_) in MODULE_COMMANDS.items():
        assert module.startswith("hvl.core.cli."), f"hvl {name}: its module {module} is outside hvl.core.cli"
        assert module in GRAPH and help_, name


def test_help_imports_no_torch():
    """`hvl --help` and the parsing of a command's options load only the command's module, not torch."""
    probe = ("import json, sys\nfrom hvl.core.cli import build_parser, main\n"
             "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "build_parser('zeroshot').parse_args(['zeroshot', '--config', 'c.yaml', '--ckpt', 'x'])\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pytorch_lightning') "
             "or m.startswith('hvl.core.cli.'))))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    loaded = json.loads(r.stdout.strip().splitlines()[-1])
    assert not [m for m in loaded if not m.startswith("hvl.")], loaded
    assert set(loaded) == {"hvl.core.cli.lightning", "hvl.core.cli.options", "hvl.core.cli.zeroshot"}, loaded


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
           if not (t.startswith("hvl.core") or domain(t) == domain(m)) or in_cli(t)]
    assert not bad, "a domain may import hvl.core (not its CLI) and its own modules:\n" + "\n".join(bad)


def test_no_library_module_is_too_long():
    long = [f"{f.relative_to(ROOT)}: {n} lines" for f in FILES + DOMAIN_FILES
            if (n := len(f.read_text().splitlines())) > MAX_LINES]
    assert not long, f"split these by job (at most {MAX_LINES} lines a module):\n" + "\n".join(long)
