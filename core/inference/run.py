"""The ``hvl predict`` run: the videos dealt to processes, each video resumed or predicted and written, failures
reported per video, a summary at the end.

Processes: ``devices`` > 1 runs one process per device through Lightning (as ``hvl index`` does); each process
takes its share of the videos, dealt by duration, longest first to the least loaded (every process computes the
same deal), and writes its videos' folders itself. A video's folder name is fixed before the deal, so the files are
those of one process. Resume: a video whose ``timeline.json`` records the key of its content and of this run's
settings is not predicted again (a format asked for only now is written from that timeline).
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..data.sampler import deal_by_duration
from ..errors import HVLInputError
from ..io import confined_dir, file_sha256, write_json
from .predict import PredictConfig, Predictor, load_predictor, video_key, video_timeline
from .sources import VideoInput, find_videos
from .write import TIMELINE_FILE, finished_timeline, read_timeline, write_formats, write_timeline

__all__ = ["RUN_FILE", "deal_by_duration", "finished_keys", "format_run", "predict_one", "predict_videos",
           "report_run"]

RUN_FILE = "predict.json"  # the last run's summary, beside the videos' folders
# what reading or decoding one video can raise; anything else is a bug and stops the run
VIDEO_ERRORS = (HVLInputError, OSError, RuntimeError, ValueError)


def _duration(path: Path) -> float:
    """Seconds from the container's header; the file size stands in where it says nothing (or is unreadable)."""
    import av

    try:
        with av.open(str(path)) as box:
            if box.duration:
                return box.duration / 1e6
    except (av.error.FFmpegError, OSError, ValueError):
        pass  # reported when the video is predicted
    return path.stat().st_size / 1e6 if path.is_file() else 0.0


def finished_keys(out: Path) -> dict[str, str]:
    """The key of each finished video folder in ``out`` (key -> folder name): a video moved or renamed since is
    found by its content."""
    found = {}
    for d in sorted(out.iterdir()) if out.is_dir() else []:
        if d.is_dir() and not d.is_symlink() and (d / TIMELINE_FILE).is_file():
            try:
                key = read_timeline(d / TIMELINE_FILE).settings.get("key")
            except HVLInputError:
                continue
            if isinstance(key, str):
                found.setdefault(key, d.name)
    return found


def predict_one(predictor: Predictor, video: VideoInput, out: Path, formats: tuple[str, ...],
                progress: bool = False, known: dict[str, str] | None = None) -> dict[str, Any]:
    """Resume or predict one video into ``out/<its folder>``: ``{video_id, path, folder, status}`` with status
    ``predicted`` or ``finished`` (already done with this key, in its folder or, for a renamed file, in the folder
    ``known`` names for the key); raises on an unreadable video."""
    folder = confined_dir(out, video.folder, create=True)
    key = video_key(file_sha256(video.path), predictor.settings or {})
    row = {"video_id": video.video_id, "path": str(video.path), "folder": video.folder}
    done = finished_timeline(folder, key)
    if done is None and known and known.get(key, video.folder) != video.folder:
        other = finished_timeline(confined_dir(out, known[key]), key)
        if other is not None:
            moved = other.model_copy(update={"video_id": video.video_id, "path": str(video.path.resolve())})
            write_timeline(moved, folder, formats)
            return row | {"status": "finished"}
    if done is not None:
        write_formats(done, folder, formats)  # a format asked for only now; the same bytes otherwise
        return row | {"status": "finished"}
    timeline = video_timeline(predictor, video.path, video.video_id, progress)
    timeline.settings["key"] = key
    write_timeline(timeline, folder, formats)
    return row | {"status": "predicted"}


class _VideoRunner(pl.LightningModule):
    """The predictor wrapped for ``Trainer.predict``: each process predicts its share of the videos, one per step."""

    def __init__(self, predictor: Predictor, videos: list[VideoInput], out: Path, formats: tuple[str, ...],
                 progress: bool):
        super().__init__()
        self.model = predictor.model  # moved to this process's device by the Trainer
        self.predictor, self.videos, self.out, self.formats, self.progress = predictor, videos, out, formats, progress
        self.rows: list[dict[str, Any]] = []
        self.bar = None
        self.known = finished_keys(out)

    def _mine(self) -> list[int]:
        world, rank = self.trainer.world_size, self.trainer.global_rank
        if world == 1:
            return list(range(len(self.videos)))
        return deal_by_duration([_duration(v.path) for v in self.videos], world)[rank]

    def predict_dataloader(self) -> DataLoader:
        mine = self._mine()
        self.bar = tqdm(total=len(mine), desc="hvl predict", unit="video",
                        disable=not self.progress or self.trainer.global_rank != 0)
        # a rank dealt nothing still takes one (empty) step: Lightning skips the hooks of an empty loop, and the
        # others would wait for it in on_predict_end's gather
        return DataLoader(mine or [-1], batch_size=None, collate_fn=None)

    def predict_step(self, i: Any, batch_idx: int) -> None:
        if int(i) < 0:
            return
        video = self.videos[int(i)]
        self.predictor.model = self.model
        try:
            row = predict_one(self.predictor, video, self.out, self.formats,
                              self.progress and self.trainer.global_rank == 0, self.known)
        except VIDEO_ERRORS as e:
            msg = str(e) if str(video.path) in str(e) else f"{video.path}: {e}"
            print(f"hvl predict: error: {msg}", file=sys.stderr)
            row = {"video_id": video.video_id, "path": str(video.path), "folder": video.folder, "status": "failed",
                   "error": msg}
        self.rows.append(row | {"rank": self.trainer.global_rank})
        self.bar.update(1)

    def on_predict_end(self) -> None:
        self.bar.close()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            parts: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(parts, self.rows)
            self.rows = [r for p in parts for r in p]


def predict_videos(cfg: PredictConfig, loaded: tuple[Any, dict] | None = None) -> dict[str, Any]:
    """Predict every video ``cfg`` names into ``cfg.out``; the summary (also ``<out>/predict.json``): counts, and
    per video its folder and status (``predicted``, ``finished`` earlier, ``failed`` with the error)."""
    videos = find_videos(cfg.inputs)
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise HVLInputError(f"{out}: --out must be a folder (one subfolder per video); it is a file")
    out.mkdir(parents=True, exist_ok=True)
    for name in cfg.formats:  # a missing extra is found before the model loads, not after the first video
        from .formats import writer

        writer(name)
    predictor = load_predictor(cfg, loaded)
    runner = _VideoRunner(predictor, videos, out, cfg.formats, cfg.progress)
    trainer = pl.Trainer(accelerator=cfg.accelerator, devices=cfg.devices, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, use_distributed_sampler=False, enable_checkpointing=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Couldn't infer the batch indices")
        warnings.filterwarnings("ignore", message="predict returned None")  # each step writes its video itself
        trainer.predict(runner, return_predictions=False)
    order = {v.folder: i for i, v in enumerate(videos)}
    rows = sorted(runner.rows, key=lambda r: order[r["folder"]])
    failed = [r for r in rows if r["status"] == "failed"]
    result = {"out": str(out), "videos": len(videos), "predicted": sum(r["status"] == "predicted" for r in rows),
              "finished_before": sum(r["status"] == "finished" for r in rows), "failed": len(failed),
              "settings": predictor.settings, "formats": list(cfg.formats), "per_video": rows}
    if trainer.global_rank == 0:
        write_json(out / RUN_FILE, result)
    return result


def format_run(result: dict[str, Any]) -> str:
    """One line per video (its status and folder, or its error), then the counts."""
    lines = [f"{r['status']:<10} {r['video_id']} -> {r['folder']}" + (f"  ({r['error']})" if "error" in r else "")
             for r in result["per_video"]]
    lines.append(f"{result['predicted']} predicted, {result['finished_before']} finished before, "
                 f"{result['failed']} failed; timelines in {result['out']}")
    return "\n".join(lines)


def report_run(result: dict[str, Any], json_path: str | None = None) -> dict[str, Any]:
    """The table (or ``--json``); a run where a video failed ends with one error listing them (exit status 2)."""
    from ..outputs import emit

    emit(result, format_run(result), json_path)
    failed = [r for r in result["per_video"] if r["status"] == "failed"]
    if failed:
        lines = "\n".join(f"  {r['error']}" for r in failed[:20])
        more = f"\n  … and {len(failed) - 20} more" if len(failed) > 20 else ""
        raise HVLInputError(f"{len(failed)} video(s) could not be predicted; the other "
                            f"{result['videos'] - len(failed)} are in {result['out']}:\n{lines}{more}")
    return result
