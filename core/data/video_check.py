"""The DataModule's setup-time check of a manifest's videos, and what it tells the run.

Every video is opened once with the decoder that will read it (:func:`~.records.probe_videos`). What the check
saw (codec, size, rotation, frame rate, decoder per video) is printed as a table and stored as
``data/video_probe.json`` in the MLflow run; an unusable video stops the run (``error``) or is left out and
listed in ``data/skipped_videos.json`` (``skip``); ``ignore`` skips the check.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ..errors import HVLInputError
from .records import format_probe_table, probe_videos
from .schema import Manifest

__all__ = ["VideoCheck", "log_json"]


class VideoCheck:
    """``check(manifest, size, trainer)`` → the manifest with the videos training can use; keeps every
    manifest's probe rows (:attr:`probe`) and the videos left out (:attr:`skipped`) for the run."""

    def __init__(self, on_bad_video: str = "error", backend: str = "auto"):
        self.on_bad_video, self.backend = on_bad_video, backend
        self.probe: dict[str, list[dict[str, Any]]] = {}
        self.skipped: list[dict[str, str]] = []

    def __call__(self, m: Manifest, size: tuple[int, int] | None, trainer: Any = None) -> Manifest:
        if self.on_bad_video == "ignore":
            return m
        report: list[dict[str, Any]] = []
        good, bad = probe_videos(m, self.backend, size, report)
        self._report_probe(m.file, report, trainer)
        if bad and self.on_bad_video == "error":
            b = bad[0]
            raise HVLInputError(f"{m.file}: video '{b['video_id']}' ({b['path']}): {b['reason']}\n"
                                f"{len(bad)} of {len(m.videos)} videos are unusable; fix or remove them, "
                                "or set data.on_bad_video: skip to train without them (they are listed in the run)")
        if bad:
            self._report_skipped(m.file, bad, trainer)
            m = Manifest(file=m.file, videos=good)
        return m

    def _report_probe(self, manifest: Path, rows: list[dict[str, Any]], trainer: Any) -> None:
        """The probe's table in the log (rank 0; 40 lines at most) and every row in the MLflow run."""
        from pytorch_lightning.utilities import rank_zero_info

        self.probe[str(manifest)] = rows
        rank_zero_info(f"videos of {manifest}:\n{format_probe_table(rows, limit=40)}")
        log_json(trainer, {"manifests": self.probe}, "data/video_probe.json")

    def _report_skipped(self, manifest: Path, bad: list[dict[str, str]], trainer: Any) -> None:
        self.skipped = self.skipped + [{"manifest": str(manifest), **b} for b in bad]
        warnings.warn(f"{manifest}: skipping {len(bad)} unusable video(s): "
                      + ", ".join(b["video_id"] for b in bad[:10]), stacklevel=2)
        log_json(trainer, {"skipped": self.skipped}, "data/skipped_videos.json")


def log_json(trainer: Any, obj: dict[str, Any], name: str) -> None:
    """``obj`` as the JSON file ``name`` in the MLflow run of each of ``trainer``'s loggers (rank 0 only)."""
    if trainer is None or trainer.global_rank != 0:
        return
    for logger in trainer.loggers:
        run_id = getattr(logger, "run_id", None)
        if run_id and hasattr(logger.experiment, "log_dict"):
            logger.experiment.log_dict(run_id, obj, name)
