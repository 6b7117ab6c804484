"""Every subcommand `hvl --help` lists runs: LightningCLI's ``fit`` / ``validate`` / ``test`` here, on a tiny copy of
the surgical demo recipe, and each of hvl's own commands in the test files that call it. ``hvl test`` scores the
config's ``data.test`` exactly as ``hvl validate`` scores ``data.val``; LightningCLI's ``predict`` is not offered
(``hvl predict`` is hvl's own command)."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import yaml
from hvl.core.cli import LIGHTNING_COMMANDS, MODULE_COMMANDS, build_parser, main
from pretrained_helpers import make_bert

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def listed_subcommands() -> list[str]:
    """The subcommands `hvl --help` lists, read from the real parser."""
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    return list(sub.choices)


def _tiny_config(work: Path, data: Path, test_manifest: Path | None) -> Path:
    cfg = yaml.safe_load((ROOT / "recipes" / "surgical" / "demo_pretrain.yaml").read_text())
    t = cfg["trainer"]
    t.update(max_epochs=1, enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1,
             num_sanity_val_steps=0, limit_val_batches=1, limit_test_batches=1,  # the text tower is the cost
             logger={"class_path": "pytorch_lightning.loggers.CSVLogger",
                     "init_args": {"save_dir": str(work / "logs"), "name": "", "version": ""}})
    t["callbacks"] = [{"class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
                       "init_args": {"dirpath": str(work / "ckpt"), "save_top_k": 0, "save_last": True}}]
    m = cfg["model"]["init_args"]
    m["video_encoder"]["frame_encoder"]["widths"] = [8, 16]
    # a 2-layer BERT for the packaged MiniLM: each of the five runs loads and runs the text tower
    m["text_encoder"] = {"path": str(make_bert(work / "bert")), "freeze": True}
    m.update(embed_dim=32, warmup_steps=1)
    d = cfg["data"]["init_args"]
    d.update(train=str(data / "train.jsonl"), val=str(data / "val.jsonl"),
             test=None if test_manifest is None else str(test_manifest), image_size=32, num_workers=0,
             steps_per_epoch=1, schedule={"clip": {"frames": 2, "batch_size": 2, "every": 1},
                                          "phase": {"frames": 2, "batch_size": 2, "every": 1}})
    path = work / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _logged(save_dir: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for row in csv.DictReader((save_dir / "metrics.csv").open()):
        out.update({k: float(v) for k, v in row.items() if v not in ("", None)})
    return out


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    from hvl.domains.surgical.demo import generate

    data = tmp_path_factory.mktemp("lightning_data")
    generate(data, n_train=2, n_val=1, n_test=1, size=32, progress=False)
    return data


def test_lightning_predict_is_not_offered_and_the_listed_lightning_commands_are_the_runnable_ones():
    listed = listed_subcommands()
    assert "predict" not in LIGHTNING_COMMANDS  # `hvl predict` is hvl's own command, not LightningCLI's
    assert set(LIGHTNING_COMMANDS) == {"fit", "validate", "test"} and set(LIGHTNING_COMMANDS) <= set(listed)
    assert set(listed) == set(LIGHTNING_COMMANDS) | set(MODULE_COMMANDS)
    assert "{fit,validate,test}" in build_parser().epilog


def test_every_listed_hvl_command_is_run_by_a_test():
    """hvl's own commands have their own tests; this keeps a listed command from having none."""
    calls = "\n".join(p.read_text() for p in TESTS.glob("test_*.py"))
    missing = [c for c in listed_subcommands() if c not in LIGHTNING_COMMANDS
               and not re.search(rf"""(main\(\[\s*|"hvl",\s*|'hvl',\s*)["']{re.escape(c)}["']""", calls)]
    assert not missing, f"listed by `hvl --help` but run by no test: {missing}"


@pytest.mark.slow
def test_each_lightning_subcommand_runs_and_test_scores_the_test_split_as_validate_scores_val(
        tiny_demo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _tiny_config(tmp_path, tiny_demo, tiny_demo / "test.jsonl")
    ckpt = tmp_path / "ckpt" / "last.ckpt"
    ran = {}
    for command in LIGHTNING_COMMANDS:  # fit first: the others score its checkpoint
        logs = tmp_path / f"logs_{command}"
        extra = [] if command == "fit" else ["--ckpt_path", str(ckpt)]
        assert main([command, "--config", str(config), "--trainer.logger.init_args.save_dir", str(logs), *extra]) == 0
        ran[command] = _logged(logs)
    assert ckpt.is_file() and "train/loss_step" in ran["fit"]
    assert {"val/loss", "val/loss_clip", "val/loss_phase"} <= set(ran["validate"])
    assert {"test/loss", "test/loss_clip", "test/loss_phase"} <= set(ran["test"])
    assert ran["test"]["test/loss"] != ran["validate"]["val/loss"]  # another manifest

    # the test split scored exactly as validate scores val: point data.test at the val manifest
    logs = tmp_path / "logs_test_on_val"
    assert main(["test", "--config", str(config), "--data.init_args.test", str(tiny_demo / "val.jsonl"),
                 "--trainer.logger.init_args.save_dir", str(logs), "--ckpt_path", str(ckpt)]) == 0
    on_val = _logged(logs)
    for level in ("", "_clip", "_phase"):
        assert on_val[f"test/loss{level}"] == pytest.approx(ran["validate"][f"val/loss{level}"], rel=1e-6)


@pytest.mark.slow
def test_hvl_test_without_a_test_manifest_says_how_to_give_one(tiny_demo, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = _tiny_config(tmp_path, tiny_demo, None)
    assert main(["test", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "hvl: error:" in err and "data.init_args.test" in err and "Traceback" not in err
