"""One meaning for each common flag, declared once (hvl.core.cli.options): `--json PATH` everywhere (`-`: stdout),
the old spellings kept as deprecated aliases with a warning, the model flags alike in every command that takes a
model, and a domain's `hvl demo` options declared by its plugin. Parsing only, except where a run is cheap."""
from __future__ import annotations

import argparse
import importlib.util
import json

import pytest
from hvl.core.cli import MODULE_COMMANDS, build_parser, main
from hvl.core.outputs import MlflowRecord, Outputs, emit, report

COMMANDS = sorted(set(MODULE_COMMANDS) - {"bugsearch-eval"})
MODEL_COMMANDS = {"zeroshot": True, "adapt": True, "retrieval": True, "index": True, "search-eval": True,
                  "search": False, "serve": False}  # command -> whether a model flag is required
# the minimal arguments of each command that takes a model (before the model flags)
BASE = {"zeroshot": ["--config", "c.yaml"], "adapt": ["--config", "c.yaml"], "retrieval": ["--config", "c.yaml"],
        "index": ["videos", "--out", "idx"], "search-eval": ["--config", "c.yaml"], "search": ["q", "--index", "i"],
        "serve": ["--index", "i"]}


def options_of(command: str, hidden: bool = True) -> dict[str, object]:
    """Every option string of ``hvl <command>`` -> its argparse action (``hidden``: deprecated aliases too)."""
    parser = build_parser(command)
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    out: dict[str, object] = {}
    for action in sub._actions:
        if hidden or action.help != argparse.SUPPRESS:
            out.update(dict.fromkeys(action.option_strings, action))
    return out


def parse(argv: list[str]):
    return build_parser(argv[0]).parse_args(argv)


def test_json_is_a_path_in_every_command():
    have = [c for c in COMMANDS if "--json" in options_of(c)]
    assert {"zeroshot", "adapt", "retrieval", "search", "search-eval", "prepare", "probe"} <= set(have)
    for command in have:
        action = options_of(command)["--json"]
        assert action.metavar == "PATH" and "PATH" in action.help and "-: print" in action.help, command
    assert parse(["zeroshot", "--config", "c", "--ckpt", "k", "--json", "m.json"]).json == "m.json"
    assert parse(["search", "q", "--index", "i", "--json", "-"]).json == "-"
    assert parse(["prepare", "raw", "--out", "o", "--json", "r.json"]).json == "r.json"


@pytest.mark.parametrize("argv", [["search", "q", "--index", "i", "--json", "--exact"],
                                  ["prepare", "raw", "--out", "o", "--json"]])
def test_a_bare_json_keeps_its_old_meaning_with_a_warning(argv, capsys):
    assert parse(argv).json == "-"
    assert "--json without a value is deprecated" in capsys.readouterr().err


def test_a_bare_json_where_it_always_took_a_path_is_still_an_error(capsys):
    with pytest.raises(SystemExit) as e:
        parse(["zeroshot", "--config", "c", "--ckpt", "k", "--json"])
    assert e.value.code == 2 and "--json: expected one argument" in capsys.readouterr().err


def test_common_flags_mean_one_thing():
    """--out: the one folder or file a command writes; --k: how many results (search only); --fps: frames per
    second sampled; --level: the embedding level; --seed: an integer."""
    flags = {c: options_of(c, hidden=False) for c in COMMANDS}
    assert [c for c in COMMANDS if "--k" in flags[c]] == ["search"]
    assert flags["search"]["--k"].type is int
    assert flags["prepare"]["--positives"].dest == "k"  # prepare's old --k: extra positives per clip
    for command, opts in flags.items():
        if "--fps" in opts:
            assert opts["--fps"].type is float and "per second" in opts["--fps"].help, command
        if "--level" in opts:
            assert opts["--level"].type is None and "embedding" in opts["--level"].help, command
        if "--seed" in opts:
            assert opts["--seed"].type is int, command
        if "--out" in opts:
            assert opts["--out"].required, command
    assert {c for c in COMMANDS if "--out" in flags[c]} == {"demo", "index", "predict", "prepare", "wise-ft"}
    assert {c for c in COMMANDS if "--level" in flags[c]} == {"zeroshot", "adapt", "retrieval", "index", "predict"}
    # --model is a pretrained model directory wherever it appears (wise-ft's old --zeroshot clashed with serve's)
    assert "--model" in flags["wise-ft"] and "predictions" in flags["serve"]["--zeroshot"].help


@pytest.mark.parametrize(("argv", "dest", "value", "new"), [
    (["prepare", "raw", "--out", "o", "--k", "3"], "k", 3, "--positives"),
    (["wise-ft", "--finetuned", "f.ckpt", "--alpha", "0.5", "--out", "w.ckpt", "--zeroshot", "/m"], "model", "/m",
     "--model"),
])
def test_old_spellings_still_work_and_say_so(argv, dest, value, new, capsys):
    assert getattr(parse(argv), dest) == value
    err = capsys.readouterr().err
    assert f"is deprecated, use {new}" in err
    assert options_of(argv[0])[argv[-2]].help == argparse.SUPPRESS  # hidden from --help


@pytest.mark.parametrize("command", sorted(MODEL_COMMANDS))
def test_the_model_flags_are_declared_once(command, capsys):
    opts = options_of(command)
    assert {"--ckpt", "--model", "--text-model", "--trust-remote-code"} <= set(opts)
    assert opts["--model"].help.startswith("pretrained image-text model used directly")
    assert opts["--trust-remote-code"].help == options_of("zeroshot")["--trust-remote-code"].help
    with pytest.raises(SystemExit):  # one model at most, always
        parse([command, *BASE[command], "--ckpt", "a", "--model", "b"])
    assert "not allowed with argument" in capsys.readouterr().err
    if MODEL_COMMANDS[command]:
        with pytest.raises(SystemExit):
            parse([command, *BASE[command]])
        assert "one of the arguments --ckpt --model is required" in capsys.readouterr().err
    else:
        args = parse([command, *BASE[command]])
        assert args.ckpt is None and args.model is None


# ---- the outputs every command shares ------------------------------------------------------------------------

def test_json_dash_prints_the_json_instead_of_the_table_and_says_the_rest_on_stderr(tmp_path, capsys):
    emit({"a": 1}, "TABLE", None)
    assert capsys.readouterr().out == "TABLE\n"
    emit({"a": 1}, "TABLE", str(tmp_path / "x.json"))
    out = capsys.readouterr().out
    assert out.startswith("TABLE\n") and f"wrote {tmp_path / 'x.json'}" in out
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}

    def never() -> MlflowRecord:
        raise AssertionError("the MLflow record is built only when logging")

    report({"a": 2}, "TABLE", Outputs(json="-", mlflow=False), never, also=lambda: [tmp_path / "preds"])
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"a": 2}  # stdout is the JSON alone: it pipes into jq
    assert f"wrote {tmp_path / 'preds'}" in captured.err


# ---- hvl demo: a domain's own options --------------------------------------------------------------------------

def test_the_surgical_demo_options_are_the_plugins(tmp_path, monkeypatch, capsys):
    from hvl.domains.surgical import demo

    calls = []
    monkeypatch.setattr(demo, "generate", lambda out, **kw: calls.append((out, kw)) or {"out": out})
    assert main(["demo", "surgical", "--out", str(tmp_path / "a"), "--raw-layout", "--split-sizes", "1", "0", "2",
                 "--preset", "realistic", "--seed", "3"]) == 0
    assert main(["demo", "surgical", "--out", str(tmp_path / "b")]) == 0
    assert calls == [(str(tmp_path / "a"), {"seed": 3, "raw_layout": True, "preset": "realistic", "n_train": 1,
                                            "n_val": 0, "n_test": 2}),
                     (str(tmp_path / "b"), {"seed": 0})]  # options not given: the generator's own defaults
    assert f'"out": "{tmp_path / "a"}"' in capsys.readouterr().out  # the summary, as JSON
    # the core CLI declares none of them: they come from the plugin object
    from hvl.core.registry import get_domain

    assert get_domain("surgical").add_demo_arguments is not None
    assert get_domain("sign").add_demo_arguments is None


def test_the_surgical_demo_has_one_entry_point():
    """`python -m hvl.domains.surgical.demo` is gone: `hvl demo surgical --raw-layout` does what it did."""
    assert importlib.util.find_spec("hvl.domains.surgical.demo.__main__") is None
    assert "--raw-layout" in options_of("demo") and "--split-sizes" in options_of("demo")


def test_an_option_of_another_domain_or_an_unknown_domain_is_one_clear_error(tmp_path, capsys):
    assert main(["demo", "gameplay", "--out", str(tmp_path / "g"), "--raw-layout"]) == 2
    assert "--raw-layout: the gameplay demo has no such option (it is the surgical demo's)" in \
        capsys.readouterr().err
    assert main(["demo", "chess", "--out", str(tmp_path / "c"), "--preset", "x"]) == 2
    assert "unknown domain 'chess'" in capsys.readouterr().err
    assert not (tmp_path / "g").exists() and not (tmp_path / "c").exists()
