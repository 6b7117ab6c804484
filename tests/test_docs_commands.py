"""Every `hvl …` line in the docs' code blocks (README.md, docs/*.md) parses with the real parser.

The argparse commands go through ``hvl.core.cli.build_parser``; fit / validate / test / predict through the real
LightningCLI (the recipe named by ``--config`` is read and every ``--trainer.*`` / ``--model.*`` / ``--data.*``
option checked), stopped before it builds the model. Nothing runs. Synopsis notation is read as a reader would:
``[--agg max|topk-mean|count]`` is checked as ``--agg max``.
"""
from __future__ import annotations

import contextlib
import functools
import io
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hvl.core.cli import LIGHTNING_COMMANDS, build_parser, lightning_main
from hvl.core.recipes import resolve_config_args

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# what only docs/extending.md's worked examples add (a command, a domain); tests/test_extending.py runs those lines
EXAMPLE_ONLY = [("manifest-stats",), ("demo", "kitchen")]
# configs the docs name that are the user's own files (a copy of a shipped recipe): parsed as that recipe
STAND_INS = {"my.yaml": "recipes/surgical/demo_pretrain.yaml", "my_zeroshot.yaml": "recipes/surgical/demo_zeroshot.yaml"}

_FENCE = re.compile(r"^\s*(```|~~~)")
# `hvl` as the command of a line: first, after a `$ ` prompt or `srun`, or as `$(which hvl)` (torchrun)
_HVL = re.compile(r"^(?:\$\s+)?(?:srun\s+)?(?:hvl|.*\$\(which hvl\))\s+(?P<args>.*)$")


@dataclass(frozen=True)
class DocCommand:
    page: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: hvl {self.text}"


def commands_in(md: Path, root: Path = ROOT) -> list[DocCommand]:
    """The `hvl …` command lines of ``md``'s fenced code blocks, continuation lines (``\\``) joined."""
    out, fenced, pending, start = [], False, "", 0
    for n, line in enumerate(md.read_text(encoding="utf-8").splitlines(), 1):
        if _FENCE.match(line):
            fenced, pending = not fenced, ""
            continue
        if not fenced:
            continue
        if not pending:
            start = n
        pending += line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip() + " "
            continue
        logical, pending = pending, ""
        code = logical.split(" #", 1)[0] if not logical.startswith("#") else ""
        m = _HVL.search(code)
        if m:
            out.append(DocCommand(str(md.relative_to(root)), start, m.group("args").strip()))
    return out


def argv_of(text: str) -> list[str]:
    """Shell words of a docs line; ``[--opt a|b]`` read as ``--opt a``, a trailing `; done` dropped."""
    text = re.sub(r"\[([^\]]*)\]", lambda m: re.sub(r"(\S+?)\|\S+", r"\1", m.group(1)), text)
    words = shlex.split(text, comments=True)
    for i, w in enumerate(words):
        if w in (";", "&&", "||", "|"):
            return words[:i]
    return words


class _Parsed(Exception):
    """Raised by the parse-only LightningCLI once the arguments parsed, carrying its parser for the next lines."""

    def __init__(self, parser):
        super().__init__()
        self.parser = parser


def _parse_only_cli():
    from pytorch_lightning.cli import LightningCLI

    class ParseOnly(LightningCLI):
        def parse_arguments(self, parser, args):
            super().parse_arguments(parser, args)
            raise _Parsed(parser)

    return ParseOnly


_lightning_parser = []  # built once (seconds): the parser hvl's LightningCLI builds, reused for every line


def _parse_lightning(argv: list[str]) -> None:
    if _lightning_parser:
        _lightning_parser[0].parse_args(argv)
        return
    try:
        lightning_main(argv, cli_class=_parse_only_cli())
    except _Parsed as parsed:
        _lightning_parser.append(parsed.parser)


def parse_problem(argv: list[str]) -> str | None:
    """None when ``argv`` (after `hvl`) parses; else what the parser said."""
    return _parse_problem(tuple(STAND_INS.get(a, a) for a in argv))


@functools.cache  # the same line on several pages is parsed once
def _parse_problem(words: tuple[str, ...]) -> str | None:
    argv = list(words)
    err = io.StringIO()
    saved_argv = sys.argv
    try:
        argv = resolve_config_args(argv)
        sys.argv = ["hvl"]  # LightningCLI warns when its args and the command line both hold arguments
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            if argv and argv[0] in LIGHTNING_COMMANDS:
                _parse_lightning(argv)
            else:
                build_parser(argv[0] if argv else None).parse_args(argv)
    except SystemExit as e:  # --help, --version: 0
        return None if e.code == 0 else f"exit {e.code}: {err.getvalue().strip().splitlines()[-1:] or ''}"
    except Exception as e:  # noqa: BLE001 (any error while parsing is the finding)
        return f"{type(e).__name__}: {e}"
    finally:
        sys.argv = saved_argv
    return None


ALL = [c for page in PAGES for c in commands_in(page)]


def test_the_docs_hold_commands_of_every_kind():
    firsts = {argv_of(c.text)[0] for c in ALL if argv_of(c.text)}
    assert len(ALL) > 50
    assert {"demo", "fit", "zeroshot", "index", "search", "serve", "adapt", "prepare", "retrieval"} <= firsts


@pytest.mark.parametrize("command", ALL, ids=str)
def test_docs_command_parses(command, monkeypatch):
    monkeypatch.chdir(ROOT)  # recipe paths in the docs are relative to a checkout
    argv = argv_of(command.text)
    if any(tuple(argv[:len(prefix)]) == prefix for prefix in EXAMPLE_ONLY):
        assert command.page == "docs/extending.md", f"{command}: only the worked examples add this"
        return
    problem = parse_problem(argv)
    assert problem is None, f"{command}\n  does not parse: {problem}"


# ---- the checker itself ------------------------------------------------------------------------------------------

def test_extraction_joins_lines_drops_comments_and_finds_hvl_after_other_words(tmp_path):
    md = tmp_path / "p.md"
    md.write_text("hvl fit --config outside.yaml\n```bash\n# hvl not this\nhvl demo surgical --out d  # seeded\n"
                  "hvl adapt --ckpt a \\\n  --train t.jsonl\nsrun hvl fit --config my.yaml\n"
                  "torchrun --nnodes 2 \\\n  $(which hvl) fit --config x.yaml\nmlflow ui\n```\n")
    got = [(c.line, c.text) for c in commands_in(md, root=tmp_path)]
    assert got == [(4, "demo surgical --out d"), (5, "adapt --ckpt a --train t.jsonl"),
                   (7, "fit --config my.yaml"), (8, "fit --config x.yaml")]
    assert argv_of("search q --index i [--agg max|topk-mean|count] [--json]") == \
        ["search", "q", "--index", "i", "--agg", "max", "--json"]


@pytest.mark.parametrize(("argv", "said"), [
    (["zeroshot", "--config", "recipes/surgical/demo_zeroshot.yaml", "--ckpt", "c", "--no-such-flag"], "no-such-flag"),
    (["serch", "a car"], "invalid choice"),
    (["fit", "--config", "recipes/surgical/demo_pretrain.yaml", "--trainer.max_epoks", "3"], "max_epoks"),
    (["fit", "--config", "recipes/surgical/demo_pretrain.yaml", "--model.init_args.no_such", "3"], "no_such"),
    (["fit", "--config", "recipes/surgical/no_such_recipe.yaml"], "no_such_recipe"),
])
def test_a_wrong_line_is_reported(argv, said, monkeypatch):
    monkeypatch.chdir(ROOT)
    problem = parse_problem(argv)
    assert problem is not None and said in problem, problem
    assert parse_problem(["fit", "--config", "recipes/surgical/demo_pretrain.yaml", "--trainer.max_epochs", "3"]) \
        is None
