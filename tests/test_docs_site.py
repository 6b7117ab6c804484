"""The docs build as a site with every link checked: `mkdocs build --strict` (mkdocs.yml at the root, pages in
docs/, the repository pages they link to joined by docs/site_hooks.py) fails on a link to a missing page or a
missing #anchor; and the hooks point every link where it leads in the site, or at the repository."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
import site_hooks  # docs/ holds the hooks; it is not a package

REPO = "https://github.com/hvl-project/hvl"


def _build(root: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(root / "mkdocs.yml"), "--site-dir", str(site)],
                          cwd=root, capture_output=True, text=True, timeout=300, check=False)


def test_the_docs_build_as_a_site_with_strict_link_checks(tmp_path):
    r = _build(ROOT, tmp_path / "site")
    assert r.returncode == 0, r.stderr[-4000:]
    site = tmp_path / "site"
    pages = {p.parent.name for p in site.glob("*/index.html")}
    assert {Path(p).stem for p in (ROOT / "docs").glob("*.md") if p.name != "README.md"} <= pages
    assert (site / "index.html").is_file()  # docs/README.md, the table of pages, is the home page
    for page in ("repo/index.html", "repo/benchmarks/index.html", "repo/CHANGELOG/index.html"):
        assert (site / page).is_file(), page
    assert 'href="../repo/benchmarks/' in (site / "adapt/index.html").read_text()


@pytest.fixture()
def docs_copy(tmp_path):
    """The files the site is built from, to break on purpose."""
    for rel in ("mkdocs.yml", *site_hooks.INCLUDED):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, tmp_path / rel)
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


@pytest.mark.parametrize(("link", "said"), [
    ("[gone](nowhere.md)", "nowhere.md"),
    ("[bad anchor](data.md#no-such-heading)", "no-such-heading"),
    ("[bad anchor outside docs](../README.md#no-such-section)", "no-such-section"),
])
def test_a_broken_link_fails_the_build(docs_copy, link, said):
    page = docs_copy / "docs" / "adapt.md"
    page.write_text(page.read_text(encoding="utf-8") + f"\n{link}\n", encoding="utf-8")
    r = _build(docs_copy, docs_copy / "site")
    assert r.returncode != 0 and said in r.stderr, r.stderr[-2000:]


def test_links_point_into_the_site_or_at_the_repository():
    link = site_hooks.site_link
    assert link("data.md#cholec80", "docs/adapt.md", "adapt.md", REPO) == "data.md#cholec80"
    assert link("../README.md#quick-start", "docs/adapt.md", "adapt.md", REPO) == "repo/README.md#quick-start"
    assert link("../benchmarks/README.md", "docs/x.md", "x.md", REPO) == "repo/benchmarks/README.md"
    assert link("docs/search.md", "README.md", "repo/README.md", REPO) == "../search.md"
    assert link("../docs/hierarchy.md", "benchmarks/README.md", "repo/benchmarks/README.md", REPO) == \
        "../../hierarchy.md"
    assert link("../core/search/ann.py", "docs/search.md", "search.md", REPO) == f"{REPO}/blob/main/core/search/ann.py"
    assert link("../recipes", "docs/x.md", "x.md", REPO) == f"{REPO}/tree/main/recipes"
    assert link("https://example.com/a", "docs/x.md", "x.md", REPO) == "https://example.com/a"
    assert link("#local", "docs/x.md", "x.md", REPO) == "#local"


def test_headings_get_the_repository_hosts_anchors():
    assert site_hooks.github_slug("Installed (pip install hvl-0.1.0-py3-none-any.whl, no checkout)") == \
        "installed-pip-install-hvl-010-py3-none-anywhl-no-checkout"
    assert site_hooks.github_slug("Sign language (text ↔ sign-video retrieval)") == \
        "sign-language-text--sign-video-retrieval"
