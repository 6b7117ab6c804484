"""The documentation holds together: README.md is a short front page, every relative link in the docs resolves
(files and `#fragment` headings alike), the README's test command is the one CI runs, and every page in docs/ is
reachable from the README's docs map."""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_BYTES = 15 * 1024


def doc_files() -> list[Path]:
    """The markdown files whose links are checked."""
    files = [README, ROOT / "benchmarks" / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "examples").glob("*/README.md"))]
    return [f for f in files if f.exists()]


# ---- a small markdown reader: links and headings outside code ----------------------------------------------------

_FENCE = re.compile(r"^\s*(```|~~~)")
# [text](target) and ![alt](target); the text may hold `code` but no nested brackets; an optional "title" is dropped
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_INLINE_CODE = re.compile(r"`+[^`]*`+")


def _prose_lines(text: str):
    """(line number, line) of the lines outside fenced code blocks."""
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield n, line


def links(text: str) -> list[tuple[int, str]]:
    """(line, target) of every markdown link and image outside code (fenced blocks and inline code spans)."""
    out = []
    for n, line in _prose_lines(text):
        # inline code may contain brackets that are not links; links may contain inline code in their text,
        # so blank code spans only outside a link's own [text]: match links first, then drop those in code spans
        code_spans = [m.span() for m in _INLINE_CODE.finditer(line)]
        for m in _LINK.finditer(line):
            if any(a <= m.start() < b for a, b in code_spans):
                continue
            out.append((n, m.group(1)))
    return out


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation other than '-' and '_' removed,
    each space a '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # a link in a heading keeps its text
    text = text.replace("`", "").strip().lower()
    text = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LMN")
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a markdown file's ATX headings, with GitHub's -1, -2 … suffixes for repeats."""
    seen: dict[str, int] = {}
    out = set()
    for _, line in _prose_lines(text):
        m = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = github_slug(m.group(1))
        k = seen.get(slug, 0)
        seen[slug] = k + 1
        out.add(slug if k == 0 else f"{slug}-{k}")
    return out


def broken_links(md: Path) -> list[str]:
    """Every relative link of `md` whose file does not exist, or whose #fragment names no heading of a markdown
    target; each as 'file:line: target (why)'."""
    problems = []
    for n, target in links(md.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):   # http:, https:, mailto: … are not checked
            continue
        if target.startswith("#"):                             # an anchor in the same file: not checked
            continue
        path, _, fragment = target.partition("#")
        resolved = (md.parent / path).resolve()
        where = f"{md.relative_to(ROOT) if md.is_relative_to(ROOT) else md}:{n}: {target}"
        if not resolved.exists():
            problems.append(f"{where} (no such file: {resolved})")
        elif (fragment and resolved.suffix.lower() == ".md"
              and fragment not in anchors(resolved.read_text(encoding="utf-8"))):
            problems.append(f"{where} (no heading with anchor #{fragment} in {path})")
    return problems


# ---- the checker itself -------------------------------------------------------------------------------------------

def test_link_checker_finds_broken_links(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## Data: manifests (`hvl prepare`)\n\ntext\n")
    (tmp_path / "img.png").write_bytes(b"")
    md = tmp_path / "README.md"
    md.write_text(
        "# Title\n"
        "[ok](docs/page.md) [ok anchor](docs/page.md#data-manifests-hvl-prepare) ![img](img.png)\n"
        "[web](https://example.com/x) [mail](mailto:a@b.c) [self](#title)\n"
        "[missing](docs/nope.md) ![missing image](docs/nope.png)\n"
        "[bad anchor](docs/page.md#data)\n"
        "`[not a link](nowhere.md)`\n"
        "```\n[in a code block](nowhere.md)\n```\n")
    problems = broken_links(md)
    assert len(problems) == 3, problems
    assert "docs/nope.md" in problems[0] and "no such file" in problems[0]
    assert "docs/nope.png" in problems[1]
    assert "#data" in problems[2] and "no heading" in problems[2]


def test_github_slugs():
    assert github_slug("Quick start (fresh machine, no network needed beyond the package index, no GPU)") == \
        "quick-start-fresh-machine-no-network-needed-beyond-the-package-index-no-gpu"
    assert github_slug("Installed (`pip install hvl-0.1.0-py3-none-any.whl`, no checkout)") == \
        "installed-pip-install-hvl-010-py3-none-anywhl-no-checkout"
    assert github_slug("Web app under load (`serve_load.py`)") == "web-app-under-load-serve_loadpy"
    assert github_slug("Sign language (text ↔ sign-video retrieval)") == "sign-language-text--sign-video-retrieval"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


# ---- the repository's docs ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("md", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(md):
    problems = broken_links(md)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_readme_is_a_front_page():
    size = README.stat().st_size
    assert size <= README_MAX_BYTES, (
        f"README.md is {size} bytes, over {README_MAX_BYTES}: move detail into docs/ and link it from the docs map")


def test_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_commands = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert ci_commands[-1] == "make test", f".ci/run should end with `make test`, ends with {ci_commands[-1]!r}"
    readme = README.read_text(encoding="utf-8")
    assert re.search(r"^make test\b", readme, re.MULTILINE), "README.md's quick start no longer shows `make test`"
    assert re.search(r"^make demo\b", readme, re.MULTILINE), "README.md's quick start no longer shows `make demo`"


def _docs_map(readme: str) -> str:
    """The README section that points at the docs: the '## Documentation' heading to the next '## '."""
    m = re.search(r"^## Documentation\s*$(.*?)(?=^## |\Z)", readme, re.MULTILINE | re.DOTALL)
    assert m, "README.md has no '## Documentation' section"
    return m.group(1)


def test_one_docs_table_in_docs_readme_and_the_front_page_links_it():
    """The table of pages lives once, in docs/README.md (it drifted when the README held a second copy)."""
    section = _docs_map(README.read_text(encoding="utf-8"))
    assert "docs/README.md" in [t.partition("#")[0] for _, t in links(section)]
    assert not re.search(r"^\|", section, re.MULTILINE), "README.md holds a docs table again: keep it in docs/README.md"


def test_every_docs_page_is_in_the_docs_table():
    index = ROOT / "docs" / "README.md"
    linked = {(index.parent / t.partition("#")[0]).resolve() for _, t in links(index.read_text(encoding="utf-8"))}
    pages = sorted((ROOT / "docs").glob("*.md"))
    assert len(pages) > 5, "docs/ has too few pages"
    missing = [str(p.relative_to(ROOT)) for p in pages if p != index and p.resolve() not in linked]
    assert not missing, f"docs pages missing from the table in docs/README.md: {missing}"
    for page in ("benchmarks/README.md", "CHANGELOG.md"):
        assert (ROOT / page).resolve() in linked, f"docs/README.md should link {page}"


# ---- docs/architecture.md names every package and module -------------------------------------------------------

def _architecture_rows() -> dict[str, str]:
    """folder (``core/search/``) -> the rest of its row, from the packages table of docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*`(hvl[\w.]*)`\s*\|\s*`([\w/]+/)`\s*\|(.*)\|\s*$", text, re.MULTILINE)
    return {folder: modules for _, folder, modules in rows}


def _packages() -> list[Path]:
    return sorted(p.parent for top in ("core", "domains") for p in (ROOT / top).rglob("__init__.py"))


def test_architecture_names_every_package_and_its_modules():
    rows = _architecture_rows()
    assert len(_packages()) > 10
    missing = [f"{p.relative_to(ROOT)}/" for p in _packages() if f"{p.relative_to(ROOT)}/" not in rows]
    assert not missing, f"docs/architecture.md has no row for these packages: {missing}"
    unnamed = [f"{p.relative_to(ROOT)}/{m.name}" for p in _packages() for m in sorted(p.glob("*.py"))
               if m.stem != "__init__" and f"`{m.stem}`" not in rows[f"{p.relative_to(ROOT)}/"]]
    assert not unnamed, f"docs/architecture.md's package rows do not name these modules: {unnamed}"
    stale = [folder for folder in rows if not (ROOT / folder / "__init__.py").is_file()]
    assert not stale, f"docs/architecture.md has rows for packages that no longer exist: {stale}"
    for folder in rows:  # the row's import name is the folder's
        assert f"`hvl.{folder.rstrip('/').replace('/', '.')}`" in (ROOT / "docs/architecture.md").read_text()
