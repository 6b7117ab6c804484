"""``hvl index <videos> (--ckpt | --model) --out <index>``: embed a video folder's frames into a resumable index."""
from __future__ import annotations

import argparse

from .options import add_model_arguments, model_source


def _devices(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..search.ann_specs import ANN_MEMORY_DEFAULT
    from ..search.store import DEFAULT_SHARD_ROWS

    p.add_argument("videos", help="folder laid out as <videos>/<group>/<id>.mp4 (GamePhysics: a group is a game)")
    add_model_arguments(p)
    p.add_argument("--out", required=True, help="index folder (created, or extended when it exists)")
    p.add_argument("--fps", type=float, default=1.0, help="frames embedded per second of video (default 1)")
    p.add_argument("--level", default="clip", help="embedding space (default clip: frames <-> moment texts)")
    p.add_argument("--batch-size", type=int, default=64, help="frames per forward pass")
    p.add_argument("--num-workers", type=int, default=2, help="decoding processes per device")
    p.add_argument("--devices", type=_devices, default=1, help="devices for Lightning (e.g. 4, or 'auto')")
    p.add_argument("--accelerator", default="auto")
    p.add_argument("--shard-rows", type=int, default=DEFAULT_SHARD_ROWS, help="frames per committed shard")
    p.add_argument("--on-bad-video", choices=("skip", "error"), default="skip",
                   help="skip (default): a video that cannot be decoded is listed in <out>/skipped.jsonl and retried "
                        "by the next run, the others are indexed, and the run exits with status 2; error: stop at the "
                        "first one")
    p.add_argument("--replace-videos-root", action="store_true",
                   help="--out indexes another videos folder: make it this folder's index (the other folder's videos "
                        "leave it) instead of refusing")
    p.add_argument("--ann", choices=("auto", "none", "ivf", "ivfpq", "hnsw", "fastscan", "two_stage"), default="auto",
                   help="approximate index: auto = none below 100k frames, else every candidate (IVF-fp16/SQ8 with a "
                        "few list counts, IVF-PQ, HNSW up to 2M frames, 4-bit fast-scan PQ and a two-stage video -> "
                        "frame index, both with exact rescoring) is built on the index's own frames and the fastest "
                        "reaching recall@10 >= 0.95 within --ann-memory is kept (measurements in ann/ann.json); a "
                        "family name = choose within it only; none = exact search")
    p.add_argument("--ann-memory", default=ANN_MEMORY_DEFAULT,
                   help="largest approximate index to keep, e.g. 2GiB, 512MiB; auto (default): a fifth of the frames' "
                        "float32 size, at least 256MiB (the frames themselves stay on disk)")
    p.add_argument("--backend", default="faiss",
                   help="where the frame vectors are searched: faiss (default: files in the index folder) or qdrant "
                        "(a vector database: embedded in the index folder, or a server with --backend-url); the shards "
                        "stay the index's record either way (see docs/search.md)")
    p.add_argument("--backend-url", help="a running vector database server, e.g. http://localhost:6333")
    p.add_argument("--video-backend", choices=("auto", "decord", "pyav"), default="auto",
                   help="decoder: auto = decord where it is frame-exact, PyAV for the rest (see docs/data.md)")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> None:
    from ..search.runs import IndexOptions, run_index

    run_index(IndexOptions(videos=args.videos, source=model_source(args), out=args.out, fps=args.fps, level=args.level,
                           batch_size=args.batch_size, num_workers=args.num_workers, devices=args.devices,
                           accelerator=args.accelerator, shard_rows=args.shard_rows, on_bad_video=args.on_bad_video,
                           replace_videos_root=args.replace_videos_root, ann=args.ann, ann_memory=args.ann_memory,
                           backend=args.backend, backend_url=args.backend_url, video_backend=args.video_backend,
                           progress=not args.no_progress))
