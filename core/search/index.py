"""`hvl index`: embed the frames of a video folder into a resumable on-disk frame index.

Videos are found as ``<root>/<group>/<id>.<ext>`` (GamePhysics' layout, where a group is a game; files
directly under ``<root>`` get group ``""``). Frames are decoded at ``--fps`` (sample ``k`` is the frame presented at
``k / fps``; the index stores that frame's presentation timestamp, so a moment's time is when the
embedded frame appears in a player, also in variable-frame-rate files), embedded in batches through Lightning ``Trainer.predict`` (one process per device; each rank
takes every ``world``-th video) and written by a :class:`ShardWriter` prediction writer.

The on-disk format and its crash safety are described in :mod:`hvl.core.search.store`.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import HVLInputError
from .ann import ANN_MEMORY_DEFAULT, parse_memory, refresh_ann
from .store import FORMAT, VERSION, ensure_header, indexed_keys, prune, remove_orphans, write_shard

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi")
DEFAULT_SHARD_ROWS = 16384


# ------------------------------------------------------------------ what to index
@dataclass(frozen=True)
class VideoEntry:
    """One video to index; ``key`` (path under the root) is its identity for incremental runs."""

    key: str
    video_id: str
    group: str
    path: str


def scan_videos(root: str | Path) -> list[VideoEntry]:
    """``<root>/<group>/<id>.<ext>`` (and ``<root>/<id>.<ext>``), sorted by key; ids must be unique."""
    root = Path(root)
    if not root.is_dir():
        raise HVLInputError(f"{root}: video folder not found; expected <root>/<group>/<id>.mp4")
    out: list[VideoEntry] = []
    seen: dict[str, str] = {}
    real_root, outside = root.resolve(), []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in VIDEO_SUFFIXES or not p.is_file() or ".part" in p.suffixes:
            continue
        if not p.resolve().is_relative_to(real_root):  # a link out of the folder: hvl serve would expose its target
            outside.append(p)
            continue
        rel = p.relative_to(root)
        if len(rel.parts) > 2:
            raise HVLInputError(f"{p}: too deeply nested; videos go in <root>/<group>/<id>{p.suffix}")
        group = rel.parts[0] if len(rel.parts) == 2 else ""
        if p.stem in seen:
            raise HVLInputError(f"{p}: video id '{p.stem}' is also used by {seen[p.stem]}; "
                                "video ids (file names without extension) must be unique; rename one")
        seen[p.stem] = str(p)
        out.append(VideoEntry(key=rel.as_posix(), video_id=p.stem, group=group, path=str(p.resolve())))
    if outside:
        print(f"hvl index: skipped {len(outside)} link(s) to files outside {root} ({', '.join(map(str, outside[:3]))}"
              f"{' ...' if len(outside) > 3 else ''}); copy or move such videos into the folder", file=sys.stderr)
    if not out:
        raise HVLInputError(f"{root}: no videos ({'/'.join(VIDEO_SUFFIXES)}) found; expected <root>/<group>/<id>.mp4")
    return out


# ------------------------------------------------------------------ decoding and embedding
def frame_times(duration: float, fps: float) -> list[float]:
    return [k / fps for k in range(max(1, math.ceil(duration * fps - 1e-9)))]


def _frame_dataset(videos: list[VideoEntry], fps: float, preprocess, chunk: int, backend: str = "auto"):
    """An IterableDataset of ``{vi, frames, t, last}`` chunks (or ``{vi, error}``), videos split over workers."""
    import torch
    from torch.utils.data import IterableDataset, get_worker_info

    from ..data.transforms import FrameTransform
    from ..data.video import Video, open_source

    class VideoFrames(IterableDataset):
        def __iter__(self) -> Iterator[dict[str, Any]]:
            info = get_worker_info()
            wid, nw = (info.id, info.num_workers) if info else (0, 1)
            transform = FrameTransform(preprocess.output_size[0], train=False, preprocess=preprocess)
            for vi in range(wid, len(videos), nw):
                try:
                    v = Video(open_source(videos[vi].path, size=preprocess.decode_size, backend=backend))
                    frames = [v.index_at(t) for t in frame_times(v.duration, fps)]
                    chunks = [frames[i:i + chunk] for i in range(0, len(frames), chunk)]
                    decoded = [([v.time_of(i) for i in ix], v.source.get(ix)) for ix in chunks]
                except HVLInputError as e:  # reported by the writer with the policy; never a worker traceback
                    yield {"vi": vi, "error": str(e)}
                    continue
                for c, (ts, raw) in enumerate(decoded):
                    yield {"vi": vi, "frames": transform(raw), "t": torch.tensor(ts, dtype=torch.float64),
                           "last": c == len(decoded) - 1}

    return VideoFrames()


def make_embedder(model, level: str, videos: list[VideoEntry], fps: float, preprocess, chunk: int,
                  num_workers: int, backend: str = "auto"):
    """Wrap the trained model for ``Trainer.predict``: each rank gets its own slice of the videos."""
    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader

    class FrameEmbedder(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model, self.level = model, level

        def predict_dataloader(self) -> DataLoader:
            rank, world = self.trainer.global_rank, self.trainer.world_size
            mine = videos[rank::world]
            return DataLoader(_frame_dataset(mine, fps, preprocess, chunk, backend), batch_size=None,
                              num_workers=min(num_workers, len(mine)))

        @torch.no_grad()
        def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
            if "error" in batch:
                return batch
            emb = self.model.embed_frames(batch["frames"], self.level)
            emb = torch.nn.functional.normalize(emb.float(), dim=-1)
            return {"vi": int(batch["vi"]), "emb": emb.cpu().numpy(), "t": batch["t"].cpu().numpy(),
                    "last": bool(batch["last"])}

    return FrameEmbedder()


def make_writer(index_dir: Path, videos: list[VideoEntry], shard_rows: int, on_bad_video: str, progress: bool):
    from pytorch_lightning.callbacks import BasePredictionWriter
    from tqdm.auto import tqdm

    class ShardWriter(BasePredictionWriter):
        """Collects each video's chunks; commits finished videos in shards of about ``shard_rows`` rows."""

        def __init__(self) -> None:
            super().__init__(write_interval="batch")
            self.token = uuid.uuid4().hex[:8]
            self.seq = 0
            self.partial: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
            self.done: list[tuple[int, np.ndarray, np.ndarray]] = []
            self.rows = 0
            self.committed_videos = 0
            self.skipped: list[dict[str, str]] = []
            self.bar = None

        def on_predict_start(self, trainer, pl_module) -> None:
            self.rank = trainer.global_rank
            self.videos = videos[trainer.global_rank::trainer.world_size]  # as FrameEmbedder splits them
            self.bar = tqdm(total=len(self.videos), desc="indexing", unit="video",
                            disable=not progress or trainer.global_rank != 0)

        def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                               dataloader_idx=0) -> None:
            vi = prediction["vi"]
            if "error" in prediction:
                if on_bad_video == "error":
                    raise HVLInputError(f"{prediction['error']}\n(use --on-bad-video skip to index the other "
                                        "videos; skipped ones are listed in skipped.jsonl and retried next run)")
                self._skip(vi, prediction["error"])
                return
            self.partial.setdefault(vi, []).append((prediction["emb"], prediction["t"]))
            if prediction["last"]:
                parts = self.partial.pop(vi)
                emb = np.concatenate([e for e, _ in parts])
                self.done.append((vi, emb, np.concatenate([t for _, t in parts])))
                self.rows += len(emb)
                self.bar.update(1)
                if self.rows >= shard_rows:
                    self.commit()

        def _skip(self, vi: int, reason: str) -> None:
            v = self.videos[vi]
            entry = {"key": v.key, "path": v.path, "reason": reason}
            self.skipped.append(entry)
            print(f"hvl index: skipping {v.path}: {reason}", file=sys.stderr)
            with open(index_dir / "skipped.jsonl", "a") as f:  # one short O_APPEND write per line
                f.write(json.dumps(entry) + "\n")
            self.bar.update(1)

        def commit(self) -> None:
            """Write the finished videos as one shard: .npy first, then the .jsonl that commits it."""
            if not self.done:
                return
            name = f"{self.token}-r{self.rank}-{self.seq:05d}"
            self.seq += 1
            emb = np.concatenate([e for _, e, _ in self.done]).astype(np.float16)
            lines, row = [], 0
            for vi, e, t in self.done:
                v = self.videos[vi]
                lines.append(json.dumps({"key": v.key, "video_id": v.video_id, "group": v.group, "path": v.path,
                                         "row": row, "t": [round(float(x), 6) for x in t]}))
                row += len(e)
            write_shard(index_dir, name, emb, lines)
            self.committed_videos += len(self.done)
            self.done, self.rows = [], 0

        def on_predict_end(self, trainer, pl_module) -> None:
            self.commit()
            if self.bar is not None:
                self.bar.close()
            trainer.strategy.barrier()  # every rank has committed: what is left uncommitted is an orphan
            if trainer.global_rank == 0:
                remove_orphans(index_dir)

    return ShardWriter()


def build_index(videos_dir: str | Path, ckpt: str | Path | None, out: str | Path, fps: float = 1.0,
                level: str = "clip", batch_size: int = 64, num_workers: int = 2, devices: int | str = 1,
                accelerator: str = "auto", shard_rows: int = DEFAULT_SHARD_ROWS, on_bad_video: str = "error",
                progress: bool = True, ann: str = "auto", video_backend: str = "auto",
                ann_memory: int | str = ANN_MEMORY_DEFAULT,
                videos: list[VideoEntry] | None = None, loaded: tuple[Any, dict[str, Any]] | None = None,
                model: str | None = None, text_model: str | None = None,
                trust_remote_code: bool = False) -> dict[str, Any]:
    """Index the videos not yet in ``out``; returns counts. Safe to re-run and to interrupt.

    The frames are embedded by ``ckpt`` (an hvl checkpoint) or ``model`` (a pretrained image-text model used
    directly, frame-level: GamePhysics' no-training baseline). ``videos`` replaces the folder scan (e.g. a
    domain reader's records); ``loaded`` is an already loaded ``(model, meta)`` (saves loading it twice)."""
    import pytorch_lightning as pl

    from ..models.checkpoint import fingerprint, load_for_eval, preprocess_of

    if fps <= 0:
        raise HVLInputError(f"--fps must be > 0 (got {fps})")
    ann_memory = parse_memory(ann_memory)  # before hours of embedding, not after
    videos = scan_videos(videos_dir) if videos is None else videos
    out = Path(out)
    net, meta = loaded or load_for_eval(ckpt, model, text_model, trust_remote_code)
    if level not in net.video_heads:
        raise HVLInputError(f"--level '{level}' is not one the checkpoint was trained with ({list(net.video_heads)})")
    pre = preprocess_of(meta)
    header = ensure_header(out, {"format": FORMAT, "version": VERSION,
                                 "checkpoint": str(Path(ckpt).resolve()) if ckpt else None,
                                 "model": model, "text_model": text_model,
                                 "checkpoint_sha256": fingerprint(ckpt or model), "level": level,
                                 "dim": int(net.embed_dim), "fps": float(fps), "image_size": pre.output_size[0],
                                 "preprocess": pre.model_dump(mode="json"),
                                 "dtype": "float16", "videos_root": str(Path(videos_dir).resolve())})
    (out / "shards").mkdir(parents=True, exist_ok=True)
    pruned = _prune_gone(out, videos) if _is_first_process() else []
    done = indexed_keys(out)
    todo = [v for v in videos if v.key not in done]
    result = {"index": str(out), "videos": len(videos), "already_indexed": len(videos) - len(todo),
              "indexed": 0, "skipped": 0, "pruned": len(pruned), "level": level, "fps": fps, "dim": header["dim"]}
    if not todo:
        result["ann"] = _refresh_ann(out, ann, ann_memory)
        return result
    writer = make_writer(out, todo, shard_rows, on_bad_video, progress)
    trainer = pl.Trainer(accelerator=accelerator, devices=devices, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, use_distributed_sampler=False, callbacks=[writer])
    embedder = make_embedder(net, level, todo, fps, pre, batch_size, num_workers, video_backend)
    with warnings.catch_warnings():  # the writer keys rows by video and time, not by batch indices
        warnings.filterwarnings("ignore", message="Couldn't infer the batch indices")
        trainer.predict(embedder, return_predictions=False)
    result.update(indexed=writer.committed_videos, skipped=len(writer.skipped))
    if trainer.global_rank == 0:
        result["ann"] = _refresh_ann(out, ann, ann_memory)
    return result


def _is_first_process() -> bool:
    """Rank 0 before the Trainer exists (Lightning's DDP launcher re-runs the command with these set)."""
    import os

    return os.environ.get("NODE_RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


def _prune_gone(out: Path, videos: list[VideoEntry]) -> list[dict[str, Any]]:
    """Entries whose file moved (to another group folder: a new key) or disappeared leave the index."""
    pruned = prune(out, {v.key for v in videos})
    if pruned:
        names = ", ".join(m["key"] for m in pruned[:5])
        print(f"hvl index: pruned {len(pruned)} video(s) whose file moved or is gone ({names}"
              f"{' ...' if len(pruned) > 5 else ''})", file=sys.stderr)
    return pruned


def _refresh_ann(out: Path, kind: str, memory: int | str = ANN_MEMORY_DEFAULT) -> dict[str, Any] | None:
    """Build or refresh the approximate index when the index is large enough (see :mod:`hvl.core.search.ann`)."""
    meta = refresh_ann(out, kind, memory)
    keys = ("kind", "factory", "param", "value", "recall_at_10", "video_recall_at_10", "p50_ms", "reason")
    return None if meta is None else {k: meta[k] for k in keys if k in meta}


# ------------------------------------------------------------------ CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("videos", help="folder laid out as <videos>/<group>/<id>.mp4 (GamePhysics: a group is a game)")
    from ..models.checkpoint import add_model_arguments

    add_model_arguments(p)
    p.add_argument("--out", required=True, help="index folder (created, or extended when it exists)")
    p.add_argument("--fps", type=float, default=1.0, help="frames embedded per second of video (default 1)")
    p.add_argument("--level", default="clip", help="embedding space (default clip: frames <-> moment texts)")
    p.add_argument("--batch-size", type=int, default=64, help="frames per forward pass")
    p.add_argument("--num-workers", type=int, default=2, help="decoding processes per device")
    p.add_argument("--devices", default="1", help="devices for Lightning (e.g. 4, or 'auto')")
    p.add_argument("--accelerator", default="auto")
    p.add_argument("--shard-rows", type=int, default=DEFAULT_SHARD_ROWS, help="frames per committed shard")
    p.add_argument("--on-bad-video", choices=("error", "skip"), default="error")
    p.add_argument("--ann", choices=("auto", "none", "ivf", "ivfpq", "hnsw"), default="auto",
                   help="approximate index: auto = none below 100k frames, else every candidate (IVF-fp16/SQ8 with a "
                        "few list counts, IVF-PQ, HNSW up to 2M frames) is built on the index's own frames and the "
                        "fastest reaching recall@10 >= 0.95 within --ann-memory is kept (measurements in ann/ann.json); "
                        "ivf/ivfpq/hnsw = choose within that family only; none = exact search")
    p.add_argument("--ann-memory", default=ANN_MEMORY_DEFAULT,
                   help="largest approximate index to keep, e.g. 2GiB (default), 512MiB")
    p.add_argument("--video-backend", choices=("auto", "decord", "pyav"), default="auto",
                   help="decoder: auto = decord where it is frame-exact, PyAV for the rest (see docs/data.md)")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> None:
    devices: int | str = int(args.devices) if str(args.devices).isdigit() else args.devices
    res = build_index(args.videos, args.ckpt, args.out, fps=args.fps, level=args.level, batch_size=args.batch_size,
                      num_workers=args.num_workers, devices=devices, accelerator=args.accelerator,
                      shard_rows=args.shard_rows, on_bad_video=args.on_bad_video, progress=not args.no_progress,
                      ann=args.ann, ann_memory=args.ann_memory, video_backend=args.video_backend, model=args.model, text_model=args.text_model,
                      trust_remote_code=args.trust_remote_code)
    print(json.dumps(res, indent=2))
