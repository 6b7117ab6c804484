"""What a command prints and writes at its end, the same way for every command.

``--json PATH`` writes the result as JSON to ``PATH``; ``--json -`` prints the JSON on stdout instead of the table
(the lines saying what was written then go to stderr, so that stdout pipes into ``jq``). :func:`report` is the tail
the evaluation commands share (``hvl zeroshot``, ``adapt``, ``retrieval``, ``search-eval``): the table, the JSON,
the files a command writes besides, and the metrics logged to MLflow.

A leaf: imports :mod:`hvl.core.io`, and :mod:`hvl.core.tracking` only when it logs.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .io import write_json

__all__ = ["STDOUT", "MlflowRecord", "Outputs", "emit", "info_stream", "report"]

STDOUT = "-"  # `--json -`


@dataclass(frozen=True)
class Outputs:
    """``--json`` / ``--no-mlflow`` / ``--no-progress``, shared by the evaluation commands."""

    json: str | None = None
    mlflow: bool = True
    progress: bool = True


@dataclass(frozen=True)
class MlflowRecord:
    """What an evaluation logs: its metrics and params into the training run the checkpoint names (else a new run
    of ``experiment``), the result JSON as ``artifact``, and ``files`` (artifact folder -> file)."""

    experiment: str
    parent_run_id: str | None
    metrics: dict[str, float]
    params: dict[str, Any]
    artifact: str
    files: dict[str, str | Path] = field(default_factory=dict)


def info_stream(json_path: str | None) -> IO[str]:
    """Where the lines saying what was written go: stderr when stdout carries the JSON."""
    return sys.stderr if json_path == STDOUT else sys.stdout


def emit(result: Any, table: str | None, json_path: str | None) -> None:
    """``table`` on stdout and ``result`` written to ``json_path``; with ``-``, the JSON on stdout instead of the
    table. ``table`` None: the JSON is printed whatever ``json_path`` says (a command without a table)."""
    if json_path == STDOUT or table is None:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(table)
    if json_path and json_path != STDOUT:
        print(f"wrote {write_json(json_path, result)}", file=info_stream(json_path))


def report(result: dict[str, Any], table: str, outputs: Outputs, record: Callable[[], MlflowRecord],
           also: Callable[[], list[Path]] | None = None) -> dict[str, Any]:
    """The table, ``--json``, the files ``also`` writes (said in that order) and, unless ``--no-mlflow``, the
    MLflow record (``record`` is called only then: building it may read a checkpoint)."""
    emit(result, table, outputs.json)
    info = info_stream(outputs.json)
    for written in also() if also else []:
        print(f"wrote {written}", file=info)
    if outputs.mlflow:
        from .tracking import log_files, log_json, log_metrics, start_eval_run

        rec = record()
        run_id = start_eval_run(rec.experiment, rec.parent_run_id)
        log_metrics(run_id, rec.metrics, rec.params)
        if rec.files:
            log_files(run_id, rec.files)
        log_json(run_id, result, rec.artifact)
        print(f"logged to MLflow run {run_id}", file=info)
    return result
