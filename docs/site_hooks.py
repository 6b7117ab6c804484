"""MkDocs hooks (mkdocs.yml): the docs build as one site whose links are checked like the repository's.

The markdown is written for reading on the repository host, so it links out of docs/ (``../README.md``,
``../benchmarks/README.md``, ``../core/...``). For the site:

* the repository's other pages (:data:`INCLUDED`) join it under ``repo/``;
* every relative link is resolved against the page's place in the repository and pointed at that page in the site,
  or, for a file the site does not carry (code, recipes, tests), at the file in the repository (``repo_url``);
* headings get the host's anchors (GitHub's slugs), so a ``#fragment`` that works there is what the build checks.
"""
from __future__ import annotations

import posixpath
import re
import unicodedata
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
INCLUDED = ("README.md", "CHANGELOG.md", "benchmarks/README.md")  # repository pages outside docs/ in the site
SITE_PREFIX = "repo/"

_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"(!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?)([^)\s>]+)(>?(?:\s+\"[^\"]*\")?\s*\))")
_INLINE_CODE = re.compile(r"`+[^`]*`+")


def github_slug(value: str, separator: str = "-") -> str:
    """The anchor GitHub gives a heading: lower case, punctuation other than '-' and '_' dropped, spaces '-'."""
    text = value.strip().lower()
    text = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LMN")
    return text.replace(" ", separator)


def repo_path(file: File) -> str:
    """Where the page lives in the repository."""
    if file.src_uri.startswith(SITE_PREFIX):
        return file.src_uri[len(SITE_PREFIX):]
    return f"docs/{file.src_uri}"


def site_link(target: str, page_repo: str, page_src: str, repo_url: str) -> str:
    """``target``, written for the page at ``page_repo`` in the repository, as a link from ``page_src`` in the site."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith(("#", "/")):
        return target
    path, hash_, fragment = target.partition("#")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(page_repo), path))
    if resolved.startswith("docs/"):
        in_site = resolved[len("docs/"):]
    elif resolved in INCLUDED:
        in_site = SITE_PREFIX + resolved
    else:
        kind = "tree" if (ROOT / resolved).is_dir() else "blob"
        return f"{repo_url.rstrip('/')}/{kind}/main/{resolved}{hash_}{fragment}"
    return posixpath.relpath(in_site, posixpath.dirname(page_src) or ".") + hash_ + fragment


def rewrite_links(markdown: str, page_repo: str, page_src: str, repo_url: str) -> str:
    """Every link outside code blocks and inline code, pointed at its place in the site."""
    out, fenced = [], False
    for line in markdown.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            spans = [m.span() for m in _INLINE_CODE.finditer(line)]
            line = _LINK.sub(lambda m, spans=spans: m.group(0) if any(a <= m.start() < b for a, b in spans)
                             else m.group(1) + site_link(m.group(2), page_repo, page_src, repo_url) + m.group(3), line)
        out.append(line)
    return "\n".join(out)


def on_config(config, **_):
    config.mdx_configs.setdefault("toc", {})["slugify"] = github_slug
    return config


def on_files(files: Files, config, **_) -> Files:
    for rel in INCLUDED:
        files.append(File.generated(config, SITE_PREFIX + rel, abs_src_path=str(ROOT / rel)))
    return files


def on_page_markdown(markdown: str, page, config, **_) -> str:
    source = repo_path(page.file)
    if page.file.src_uri.startswith(SITE_PREFIX):  # edit it where it lives, not under docs/
        page.edit_url = f"{config.repo_url.rstrip('/')}/blob/main/{source}"
    return rewrite_links(markdown, source, page.file.src_uri, config.repo_url)
