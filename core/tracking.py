"""MLflow wiring. Default store: ``sqlite:///mlflow.db`` in the working directory (the ``./mlruns``
file store is deprecated and refused by newer MLflow); ``MLFLOW_TRACKING_URI`` overrides it."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pytorch_lightning.cli import SaveConfigCallback
from pytorch_lightning.loggers import MLFlowLogger

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def resolve_tracking_uri(uri: str | None = None) -> str:
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


class HVLMLFlowLogger(MLFlowLogger):
    """MLFlowLogger whose tracking URI defaults to the environment, then to local SQLite; logs checkpoints."""

    def __init__(self, experiment_name: str = "hvl", run_name: str | None = None, tracking_uri: str | None = None,
                 tags: dict[str, Any] | None = None, log_model: bool | str = True, **kwargs: Any):
        super().__init__(experiment_name=experiment_name, run_name=run_name,
                         tracking_uri=resolve_tracking_uri(tracking_uri), tags=tags, log_model=log_model,
                         **kwargs)


class MLflowSaveConfig(SaveConfigCallback):
    """Saves the resolved config into the MLflow run.

    Lightning's own callback asserts on ``trainer.log_dir`` which is None for a non-file
    MLflow URI (Lightning #19441); this one needs no log dir.
    """

    def save_config(self, trainer, pl_module, stage: str) -> None:
        text = self.parser.dump(self.config, skip_none=False)
        # Runs on rank 0 only: nothing here may call a collective (``trainer.log_dir`` broadcasts and would hang DDP).
        for logger in trainer.loggers:
            if isinstance(logger, MLFlowLogger):
                logger.experiment.log_text(logger.run_id, text, self.config_filename)


def log_files(run_id: str, files: dict[str, str | Path], uri: str | None = None) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(resolve_tracking_uri(uri))
    for dest_dir, f in files.items():
        client.log_artifact(run_id, str(f), artifact_path=dest_dir or None)


def log_json(run_id: str, obj: Any, name: str, uri: str | None = None) -> None:
    from mlflow import MlflowClient

    MlflowClient(resolve_tracking_uri(uri)).log_dict(run_id, obj, name)


def start_eval_run(experiment: str, run_id: str | None = None, uri: str | None = None,
                   run_name: str | None = None) -> str:
    """Reuse the training run (its id travels in the checkpoint) when the store has it, else open a new one."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(resolve_tracking_uri(uri))
    if run_id:
        try:
            client.get_run(run_id)
            return run_id
        except MlflowException:
            pass
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(experiment)
    run = client.create_run(exp_id, run_name=run_name)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def log_metrics(run_id: str, metrics: dict[str, float], params: dict[str, Any] | None = None,
                uri: str | None = None) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(resolve_tracking_uri(uri))
    for k, v in metrics.items():
        client.log_metric(run_id, k, float(v))
    for k, v in (params or {}).items():
        try:
            client.log_param(run_id, k, v)
        except Exception:  # noqa: BLE001 (a param already logged with another value: keep the first, tag the new one)
            client.set_tag(run_id, k, str(v))


