"""``hvl fit | validate | test``: LightningCLI over :class:`~hvl.core.models.module.HierarchicalVLM` and
:class:`~hvl.core.data.datamodule.HVLDataModule`, with the config saved into the MLflow run.

``test`` scores the config's ``data.test`` manifest as ``validate`` scores ``data.val`` (the same losses, logged as
``test/…``). LightningCLI's ``predict`` is not offered: ``hvl predict`` is hvl's own command (unlabelled videos →
timelines, :mod:`hvl.core.cli.predict`), and a recipe's loaders sample training pairs, not every frame of a video."""
from __future__ import annotations

import logging
import os
import warnings

__all__ = ["LIGHTNING_COMMANDS", "lightning_main", "quiet_env"]

LIGHTNING_COMMANDS = ("fit", "validate", "test")


class _DropLightningTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(ad in str(record.msg) for ad in ("litlogger", "litmodels"))


_TIPS = _DropLightningTips()


def quiet_env() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Lightning advertises its cloud logger and model registry on every run without them (hvl logs to MLflow on
    # purpose), and its own pytree helper calls a torch API that torch >= 2.10 deprecates: nothing a user can change
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_TIPS)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")


def lightning_main(argv: list[str] | None, cli_class: type | None = None) -> None:
    """``argv`` None: LightningCLI reads ``sys.argv`` itself (passing it explicitly makes it warn). ``cli_class``: a
    LightningCLI subclass (tests/test_docs_commands.py parses the docs' command lines with one that stops there)."""
    from pytorch_lightning.cli import LightningCLI

    from ..data.datamodule import HVLDataModule
    from ..models.module import HierarchicalVLM
    from ..tracking import MLflowSaveConfig

    (cli_class or LightningCLI)(HierarchicalVLM, HVLDataModule, subclass_mode_model=True, subclass_mode_data=True,
                                save_config_callback=MLflowSaveConfig,
                                save_config_kwargs={"save_to_log_dir": False, "overwrite": True},
                                args=argv, auto_configure_optimizers=False)
