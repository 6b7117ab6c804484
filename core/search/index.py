"""`hvl index`: embed the frames of a video folder into a resumable on-disk frame index.

Videos are found as ``<root>/<group>/<id>.<ext>`` (GamePhysics' layout, where a group is a game; files
directly under ``<root>`` get group ``""``). Frames are decoded at ``--fps`` (sample ``k`` is the frame presented at
``k / fps``; the index stores that frame's presentation timestamp, so a moment's time is when the
embedded frame appears in a player, also in variable-frame-rate files), embedded in batches through Lightning
``Trainer.predict`` (one process per device; videos dealt to ranks by duration, longest first to the least
loaded, so a 3-hour operation beside 20-second clips does not keep the other ranks waiting) and written by a
:class:`ShardWriter` prediction writer.

The on-disk format and its crash safety are described in :mod:`hvl.core.search.store`.
"""
from __future__ import annotations

import json
import math
import os
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm.auto import tqdm

from ..data.keypoints import KeypointReader
from ..data.sampler import deal_by_duration
from ..data.transforms import FrameTransform, Preprocess
from ..data.video import Video, open_source
from ..errors import HVLInputError
from ..io import open_append, write_json
from .ann import ANN_MEMORY_DEFAULT, ann_dir, parse_memory, refresh_ann
from .store import (
    DEFAULT_SHARD_ROWS,
    FORMAT,
    VERSION,
    ensure_header,
    indexed_keys,
    prune,
    remove_orphans,
    shards_dir,
    write_shard,
)
from .videos import VideoEntry, scan_videos


# ------------------------------------------------------------------ decoding and embedding
def frame_times(duration: float, fps: float) -> list[float]:
    return [k / fps for k in range(max(1, math.ceil(duration * fps - 1e-9)))]


def container_duration(path: str) -> float:
    """Seconds, from the container's header (no demuxing); the file size stands in where the header says nothing."""
    import av

    try:
        with av.open(path) as box:
            if box.duration:
                return box.duration / 1e6
    except (av.error.FFmpegError, OSError, ValueError):
        pass  # an unreadable file is reported by the decoder later, with the --on-bad-video policy
    return Path(path).stat().st_size / 1e6 if Path(path).exists() else 0.0


class RankShare:
    """Which videos this rank embeds: all of them on one device, else a deal by duration (computed once)."""

    def __init__(self, videos: list[VideoEntry]):
        self.videos = videos
        self._deal: dict[int, list[list[int]]] = {}

    def of(self, rank: int, world: int) -> list[VideoEntry]:
        if world == 1:
            return self.videos
        if world not in self._deal:
            self._deal[world] = deal_by_duration([container_duration(v.path) for v in self.videos], world)
        return [self.videos[i] for i in self._deal[world][rank]]


class VideoFrames(IterableDataset):
    """``{vi, frames, t, last}`` chunks (or ``{vi, error}``) of ``videos``, the videos split over loader workers."""

    def __init__(self, videos: list[VideoEntry], fps: float, preprocess: Preprocess, chunk: int, backend: str = "auto",
                 keypoints: KeypointReader | None = None):
        """``keypoints``: a pose-aware model's reader; each chunk then also carries the keypoints found beside its
        video (:attr:`KeypointReader.beside`) at its frames' times."""
        self.videos, self.fps, self.preprocess, self.chunk, self.backend = videos, fps, preprocess, chunk, backend
        self.keypoints = keypoints

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        pre = self.preprocess
        transform = FrameTransform(pre.output_size[0], train=False, preprocess=pre)
        for vi in range(wid, len(self.videos), nw):
            try:
                v = Video(open_source(self.videos[vi].path, size=pre.decode_size, backend=self.backend))
                frames = [v.index_at(t) for t in frame_times(v.duration, self.fps)]
                chunks = [frames[i:i + self.chunk] for i in range(0, len(frames), self.chunk)]
                decoded = [([v.time_of(i) for i in ix], v.source.get(ix)) for ix in chunks]
                track = self._track(Path(self.videos[vi].path), v.fps)
            except HVLInputError as e:  # reported by the writer with the policy; never a worker traceback
                yield {"vi": vi, "error": str(e)}
                continue
            for c, (ts, raw) in enumerate(decoded):
                yield {"vi": vi, "frames": transform(raw), "t": torch.tensor(ts, dtype=torch.float64),
                       "last": c == len(decoded) - 1} | self._poses(track, ts)

    def _track(self, video: Path, fps: float):
        if self.keypoints is None or self.keypoints.beside is None:
            return None
        return self.keypoints.beside(video, fps)

    def _poses(self, track, times: list[float]) -> dict[str, torch.Tensor]:
        """A chunk's keypoints (a video without poses: none seen); nothing for a model that reads none."""
        if self.keypoints is None:
            return {}
        if track is None:
            values, mask = self.keypoints.empty(len(times))
        else:
            values, mask = track.at_times(times)
        return {"keypoints": torch.from_numpy(values.reshape(len(times), -1)), "keypoint_mask": torch.from_numpy(mask)}


def _frame_dataset(videos: list[VideoEntry], fps: float, preprocess: Preprocess, chunk: int,
                   backend: str = "auto", keypoints: KeypointReader | None = None) -> VideoFrames:
    return VideoFrames(videos, fps, preprocess, chunk, backend, keypoints)


class FrameEmbedder(pl.LightningModule):
    """The trained model wrapped for ``Trainer.predict``: each rank embeds its share of the videos."""

    def __init__(self, model, level: str, share: RankShare, fps: float, preprocess: Preprocess, chunk: int,
                 num_workers: int, backend: str = "auto"):
        super().__init__()
        self.model, self.level, self.share = model, level, share
        self.fps, self.preprocess, self.chunk, self.num_workers, self.backend = fps, preprocess, chunk, num_workers, backend

    def predict_dataloader(self) -> DataLoader:
        mine = self.share.of(self.trainer.global_rank, self.trainer.world_size)
        keypoints = getattr(self.model, "keypoint_reader", None)
        return DataLoader(VideoFrames(mine, self.fps, self.preprocess, self.chunk, self.backend, keypoints), batch_size=None,
                          num_workers=min(self.num_workers, len(mine)))

    @torch.no_grad()
    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        if "error" in batch:
            return batch
        emb = self.model.embed_frames(batch["frames"], self.level, batch.get("keypoints"), batch.get("keypoint_mask"))
        emb = torch.nn.functional.normalize(emb.float(), dim=-1)
        return {"vi": int(batch["vi"]), "emb": emb.cpu().numpy(), "t": batch["t"].cpu().numpy(),
                "last": bool(batch["last"])}


class ShardWriter(BasePredictionWriter):
    """Collects each video's chunks; commits finished videos in shards of about ``shard_rows`` rows."""

    def __init__(self, index_dir: Path, share: RankShare, shard_rows: int, on_bad_video: str, progress: bool):
        super().__init__(write_interval="batch")
        self.index_dir, self.share, self.shard_rows = index_dir, share, shard_rows
        self.on_bad_video, self.progress = on_bad_video, progress
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
        self.videos = self.share.of(trainer.global_rank, trainer.world_size)  # as FrameEmbedder deals them
        self.bar = tqdm(total=len(self.videos), desc="indexing", unit="video",
                        disable=not self.progress or trainer.global_rank != 0)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                           dataloader_idx=0) -> None:
        vi = prediction["vi"]
        if "error" in prediction:
            if self.on_bad_video == "error":
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
            if self.rows >= self.shard_rows:
                self.commit()

    def _skip(self, vi: int, reason: str) -> None:
        v = self.videos[vi]
        entry = {"key": v.key, "path": v.path, "reason": reason}
        self.skipped.append(entry)
        print(f"hvl index: skipping {v.path}: {reason}", file=sys.stderr)
        with open_append(self.index_dir / "skipped.jsonl") as f:  # one short O_APPEND write per line
            f.write((json.dumps(entry) + "\n").encode())
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
                                     "row": row, "t": [round(float(x), 6) for x in t]} | ({"meta": v.meta} if v.meta else {})))
            row += len(e)
        write_shard(self.index_dir, name, emb, lines)
        self.committed_videos += len(self.done)
        self.done, self.rows = [], 0

    def on_predict_end(self, trainer, pl_module) -> None:
        self.commit()
        if self.bar is not None:
            self.bar.close()
        trainer.strategy.barrier()  # every rank has committed: what is left uncommitted is an orphan
        if trainer.global_rank == 0:
            remove_orphans(self.index_dir)


def build_index(videos_dir: str | Path, ckpt: str | Path | None, out: str | Path, fps: float = 1.0,
                level: str = "clip", batch_size: int = 64, num_workers: int = 2, devices: int | str = 1,
                accelerator: str = "auto", shard_rows: int = DEFAULT_SHARD_ROWS, on_bad_video: str = "skip",
                progress: bool = True, ann: str = "auto", video_backend: str = "auto",
                ann_memory: int | str = ANN_MEMORY_DEFAULT,
                videos: list[VideoEntry] | None = None, loaded: tuple[Any, dict[str, Any]] | None = None,
                model: str | None = None, text_model: str | None = None,
                trust_remote_code: bool = False, backend: str = "faiss",
                backend_url: str | None = None, replace_videos_root: bool = False) -> dict[str, Any]:
    """Index the videos not yet in ``out``; returns counts. Safe to re-run and to interrupt.

    A video that cannot be decoded is skipped (listed in ``skipped.jsonl`` and ``skipped_videos``, retried next run)
    and the others are indexed; ``on_bad_video="error"`` stops at the first one instead. A file whose name gives no
    usable video id ('..') is left out and listed in ``refused``. An ``out`` that indexes another videos folder is
    refused unless ``replace_videos_root`` (then that folder's videos leave the index).

    The frames are embedded by ``ckpt`` (an hvl checkpoint) or ``model`` (a pretrained image-text model used
    directly, frame-level: GamePhysics' no-training baseline). ``videos`` replaces the folder scan (e.g. a
    domain reader's records); ``loaded`` is an already loaded ``(model, meta)`` (saves loading it twice)."""
    from ..models.checkpoint import fingerprint, load_for_eval, preprocess_of

    if fps <= 0:
        raise HVLInputError(f"--fps must be > 0 (got {fps})")
    ann_memory = parse_memory(ann_memory)  # before hours of embedding, not after
    refused: list[dict[str, str]] = []
    videos = scan_videos(videos_dir, refused) if videos is None else videos
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
                                 "dtype": "float16", "videos_root": str(Path(videos_dir).resolve())}
                          | _backend_fields(backend, backend_url))
    if header.get("backend", "faiss") != backend or header.get("backend_url") != backend_url:
        raise HVLInputError(f"{out / 'index.json'}: the index's vectors are in backend {header.get('backend', 'faiss')!r}"
                            f"{' at ' + header['backend_url'] if header.get('backend_url') else ''}; index into it "
                            "with the same --backend / --backend-url, or use a new --out")
    header = _same_videos_root(out, header, str(Path(videos_dir).resolve()), replace_videos_root)
    shards_dir(out, create=True)
    ann_dir(out)  # a linked ann/ is refused now, not after the embedding
    if (out / "skipped.jsonl").is_symlink():  # refused by open_append too, but only at the first bad video
        raise HVLInputError(f"{out / 'skipped.jsonl'}: is a symbolic link; hvl appends only to a regular file "
                            "there (delete the link)")
    pruned = _prune_gone(out, videos) if _is_first_process() else []
    done = indexed_keys(out)
    todo = [v for v in videos if v.key not in done]
    result = {"index": str(out), "videos": len(videos), "already_indexed": len(videos) - len(todo),
              "indexed": 0, "skipped": 0, "pruned": len(pruned), "level": level, "fps": fps, "dim": header["dim"]}
    if refused:
        result["refused"] = refused
    if not todo:
        result |= _search_structure(out, header, ann, ann_memory, backend_url)
        return result
    share = RankShare(todo)
    writer = ShardWriter(out, share, shard_rows, on_bad_video, progress)
    trainer = pl.Trainer(accelerator=accelerator, devices=devices, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, use_distributed_sampler=False, callbacks=[writer])
    embedder = FrameEmbedder(net, level, share, fps, pre, batch_size, num_workers, video_backend)
    with warnings.catch_warnings():  # the writer keys rows by video and time, not by batch indices
        warnings.filterwarnings("ignore", message="Couldn't infer the batch indices")
        trainer.predict(embedder, return_predictions=False)
    result.update(indexed=writer.committed_videos, skipped=len(writer.skipped))
    if writer.skipped:
        result["skipped_videos"] = writer.skipped
    if trainer.global_rank == 0:
        result |= _search_structure(out, header, ann, ann_memory, backend_url)
    return result


def _backend_fields(backend: str, backend_url: str | None) -> dict[str, Any]:
    from .backends import BACKENDS

    if backend != "faiss" and backend not in BACKENDS:
        raise HVLInputError(f"--backend '{backend}' is unknown; use faiss (files in the index folder) or one of "
                            f"{sorted(BACKENDS)}")
    if backend == "faiss":
        if backend_url:
            raise HVLInputError("--backend-url names a vector database server; give it with --backend "
                                f"{' or '.join(sorted(BACKENDS))}")
        return {}
    return {"backend": backend} | ({"backend_url": backend_url} if backend_url else {})


def _search_structure(out: Path, header: dict[str, Any], kind: str, memory: int | str,
                      backend_url: str | None = None) -> dict[str, Any]:
    """What searches the frames: the FAISS approximate index (default), or the vector database mirrored from
    the shards (then no FAISS index is built)."""
    if header.get("backend", "faiss") == "faiss":
        return {"ann": _refresh_ann(out, kind, memory)}
    from .backends.mirror import mirror

    return {"ann": None, "backend": mirror(out, header, backend_url)}


def _same_videos_root(out: Path, header: dict[str, Any], root: str, replace: bool) -> dict[str, Any]:
    """The header, when the index is of the folder ``root``; an index of another folder is refused (indexing this
    one into it would prune every video of the other, and hvl serve would look for these under the other), or, with
    ``replace``, made this folder's index."""
    have = header.get("videos_root")
    if have is None or have == root:
        return header
    if not replace:
        raise HVLInputError(f"{out / 'index.json'}: field 'videos_root' is {have}, but this run indexes {root}; an "
                            "index holds the videos of one folder (indexing this one here would drop every video of the "
                            "other). Use a new --out for this folder, or pass --replace-videos-root to make it this "
                            "folder's index (the other folder's videos leave it)")
    header = header | {"videos_root": root}
    write_json(out / "index.json", header)
    print(f"hvl index: {out} now indexes {root} (was {have}); the videos of {have} leave it", file=sys.stderr)
    return header


def _is_first_process() -> bool:
    """Rank 0 before the Trainer exists (Lightning's DDP launcher re-runs the command with these set)."""
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
