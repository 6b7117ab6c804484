"""Named recipes and shipped notebooks, in process (the installed-wheel run is tests/test_wheel.py):
a name resolves to the shipped file for every command, a path stays a path, the listing tells the truth."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hvl.core import notebooks, recipes
from hvl.core.cli import main
from hvl.core.errors import HVLInputError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {f"{p.parent.name}/{p.stem}": p for p in sorted(ROOT.glob("recipes/*/*.yaml"))}


def test_available_is_exactly_the_repositorys_recipes_folder():
    found = recipes.available()
    assert list(found) == sorted(SHIPPED)
    for name, f in found.items():
        assert f.read_bytes() == SHIPPED[name].read_bytes(), name


def test_a_name_resolves_to_the_shipped_file_and_a_path_stays_a_path(tmp_path, monkeypatch):
    assert Path(recipes.resolve_config("surgical/demo_pretrain")).read_bytes() == SHIPPED["surgical/demo_pretrain"].read_bytes()
    monkeypatch.chdir(tmp_path)
    for path in ("my.yaml", "configs/missing.yaml", str(tmp_path / "x.yml")):
        assert recipes.resolve_config(path) == path  # a file suffix: a path, even when missing (its command says so)
    # a local folder or file without suffix that exists wins over a shipped recipe of the same name
    (tmp_path / "surgical").mkdir()
    (tmp_path / "surgical" / "demo_pretrain").write_text("seed_everything: 1\n")
    assert recipes.resolve_config("surgical/demo_pretrain") == "surgical/demo_pretrain"


def test_an_unknown_name_lists_the_shipped_recipes():
    with pytest.raises(HVLInputError) as e:
        recipes.resolve_config("surgical/demo_pretrian")
    assert "surgical/demo_pretrain" in str(e.value) and "sign/demo_retrieval" in str(e.value)


def test_every_config_flag_form_is_rewritten_and_nothing_else():
    path = recipes.resolve_config("sign/demo_zeroshot")
    argv = ["fit", "--config", "sign/demo_zeroshot", "--config=sign/demo_zeroshot", "-c", "sign/demo_zeroshot",
            "--trainer.max_steps", "2", "--json", "sign/demo_zeroshot"]
    assert recipes.resolve_config_args(argv) == ["fit", "--config", path, f"--config={path}", "-c", path,
                                                 "--trainer.max_steps", "2", "--json", "sign/demo_zeroshot"]
    assert recipes.resolve_config_args(["fit", "--config"]) == ["fit", "--config"]  # the parser reports it


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_each_recipe_says_what_it_does_and_fits_the_command_listed_for_it(name):
    """The first line is the one-line summary `hvl recipes` shows; the command shown is one whose schema accepts it."""
    text = SHIPPED[name].read_text()
    summary = recipes.describe(text)
    assert text.startswith("# ") and 20 < len(summary) <= 140, f"{name}: first line should be a one-line summary"
    config = yaml.safe_load(text)
    command = recipes.command_for(config)
    if command == "fit":
        assert {"trainer", "model", "data"} <= set(config)
        return
    from hvl.core.evaluation.retrieval import RetrievalConfig
    from hvl.core.evaluation.zeroshot import ZeroShotConfig
    from hvl.core.io import load_config
    from hvl.core.search.evaluate import SearchEvalConfig

    schemas = {"zeroshot": ZeroShotConfig, "retrieval": RetrievalConfig, "search-eval": SearchEvalConfig}
    load_config(SHIPPED[name], schemas[command])  # extra="forbid": a recipe for another command fails here
    for other, schema in schemas.items():
        if other != command:
            with pytest.raises(HVLInputError):
                load_config(SHIPPED[name], schema)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_recipes_point_at_nothing_in_the_checkout(name):
    """Shipped files are named through the package (`<domain>:<name>`); other paths are the user's (data,
    checkpoints, relative to the working directory) — never a file of the repository, absent once installed."""
    def strings(node):
        if isinstance(node, dict):
            yield from (s for v in node.values() for s in strings(v))
        elif isinstance(node, list):
            yield from (s for v in node for s in strings(v))
        elif isinstance(node, str):
            yield node

    config = yaml.safe_load(SHIPPED[name].read_text())
    for s in strings(config):
        assert not (ROOT / s).is_file() or s.startswith(("data/", "checkpoints/")), f"{name}: '{s}' is a checkout file"
    if "prompts" in config:
        from hvl.core.registry import resolve_prompt_file

        assert re.fullmatch(r"\w+:\w+", config["prompts"]), config["prompts"]
        assert resolve_prompt_file(config["prompts"]).is_file()


def test_hvl_recipes_lists_one_line_each(capsys):
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == sorted(SHIPPED)
    row = next(line for line in lines if line.startswith("surgical/demo_zeroshot "))
    assert re.search(r"\bhvl zeroshot\b", row) and row.endswith(recipes.describe(SHIPPED["surgical/demo_zeroshot"].read_text()))


def test_copy_defaults_refuses_to_overwrite_and_goes_into_a_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["recipes", "copy", "gameplay/demo_eval"]) == 0
    assert (tmp_path / "gameplay_demo_eval.yaml").read_bytes() == SHIPPED["gameplay/demo_eval"].read_bytes()
    assert "hvl search-eval --config gameplay_demo_eval.yaml" in capsys.readouterr().out
    (tmp_path / "out").mkdir()
    assert main(["recipes", "copy", "sign/demo_pretrain", "out"]) == 0
    assert (tmp_path / "out" / "sign_demo_pretrain.yaml").is_file()
    assert main(["recipes", "copy", "sign/demo_pretrain", "out"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["recipes", "copy", "sign/nope", "x.yaml"]) == 2 and not (tmp_path / "x.yaml").exists()


def test_module_commands_take_a_name(tmp_path, monkeypatch, capsys):
    """zeroshot with a name reads the shipped recipe: its data path (relative to here) is what it then misses."""
    monkeypatch.chdir(tmp_path)
    assert main(["zeroshot", "--config", "surgical/demo_zeroshot", "--ckpt", "none.ckpt"]) == 2
    assert "data/demo_surgical/test.jsonl" in capsys.readouterr().err
    assert main(["retrieval", "--config", "sign/demo_zeroshot_typo", "--ckpt", "none.ckpt"]) == 2
    assert "not a shipped recipe" in capsys.readouterr().err


def test_lightning_commands_take_a_name(capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["hvl"])  # what LightningCLI would otherwise also see: pytest's arguments
    with pytest.raises(SystemExit) as e:
        main(["fit", "--config", "surgical/demo_pretrain", "--trainer.max_steps", "7", "--print_config"])
    assert e.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    shipped = yaml.safe_load(SHIPPED["surgical/demo_pretrain"].read_text())
    assert printed["trainer"]["max_steps"] == 7
    assert printed["data"]["init_args"]["train"] == shipped["data"]["init_args"]["train"]  # still relative
    assert printed["model"]["init_args"]["levels"] == shipped["model"]["init_args"]["levels"]


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"hvl {version('hvl')}"


def test_notebook_parameters_are_papermills():
    import papermill

    (nb,) = notebooks.available().values()
    assert notebooks.parameters(nb) == list(papermill.inspect_notebook(str(nb)))
    assert "Clinical evaluation" in notebooks.title(nb)


def test_notebook_copy(tmp_path, capsys):
    assert main(["notebook", "copy", "clinical_evaluation", str(tmp_path)]) == 0
    assert (tmp_path / "clinical_evaluation.ipynb").read_bytes() == \
        (ROOT / "notebooks" / "clinical_evaluation.ipynb").read_bytes()
    assert f"papermill {tmp_path}/clinical_evaluation.ipynb" in capsys.readouterr().out
    assert main(["notebook", "copy", "clinical_evaluation", str(tmp_path)]) == 2
    assert main(["notebook", "copy", "clinical_evaluation", str(tmp_path), "--force"]) == 0
    assert main(["notebook", "copy", "nope"]) == 2
