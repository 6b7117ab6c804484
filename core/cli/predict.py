"""``hvl predict VIDEO|FOLDER|MANIFEST... (--ckpt | --model) --prompts P --out DIR``: timelines of unlabelled videos."""
from __future__ import annotations

import argparse

from .options import add_json_argument, add_model_arguments, model_source


def _devices(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a number of devices >= 1, got {text!r}")
    return int(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..inference.formats import FORMATS

    p.epilog = ("Writes <out>/<video>/timeline.json (per frame the class probabilities, the predicted and smoothed "
                "class; the segments) and each --format. A video already predicted with the same content and "
                "settings is skipped, so a killed run resumes. Exit status 2 when a video could not be read (the "
                "others are predicted; <out>/predict.json lists each video's status).")
    p.add_argument("inputs", nargs="+", metavar="VIDEO|FOLDER|MANIFEST",
                   help="video files, folders (every video under them) or manifests (.jsonl; labels are ignored)")
    add_model_arguments(p, required=False)
    p.add_argument("--onnx", metavar="DIR", help="instead of --ckpt / --model: a folder `hvl export onnx` wrote, run on "
                                                 "onnxruntime (docs/deploy.md)")
    p.add_argument("--prompts", required=True, help="prompt file: the classes and their texts (path or <domain>:<name>)")
    p.add_argument("--out", required=True, help="output folder: one subfolder per video")
    p.add_argument("--level", help="embedding space (default: the head's, else the prompt file's, else phase)")
    p.add_argument("--window", type=float, metavar="SECONDS",
                   help="embed each frame with the centred window of frames around it (as `hvl zeroshot --window`)")
    p.add_argument("--head", help="score with a head trained by `hvl adapt` (its level, window and classes) instead of "
                                  "the prompt embeddings")
    p.add_argument("--fps", type=float, default=1.0, help="frames scored per second of video (default 1)")
    p.add_argument("--smooth-window", type=int, default=5,
                   help="frames of the majority vote for the smoothed timeline (odd; default 5)")
    p.add_argument("--format", action="append", dest="formats", choices=sorted(FORMATS), default=[],
                   help="also write this format per video (repeatable): json / csv = the segments, frames-csv = "
                        "the per-frame probabilities, cholec80 = a Frame<TAB>Phase file at the video's own frame "
                        "rate, label-studio, fiftyone")
    p.add_argument("--batch-size", type=int, default=64, help="frames per forward pass")
    p.add_argument("--num-workers", type=int, default=2, help="decoding processes per device")
    p.add_argument("--devices", type=_devices, default=1, help="processes, one per device (as `hvl index`)")
    p.add_argument("--accelerator", default="auto")
    p.add_argument("--video-backend", choices=("auto", "decord", "pyav"), default="auto")
    add_json_argument(p, "the run's summary")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--online", action="store_true",
                   help="label one video while a recorder writes it: each frame from the frames up to it only "
                        "(trailing --window and smoothing; a head from `hvl adapt --causal`), one line per frame "
                        "appended to <out>/<video>/labels.jsonl, the timeline when it ends (docs/predict.md)")
    p.add_argument("--quiet-seconds", type=float, default=10.0,
                   help="--online: the recording has ended when the file has not grown for this long (default 10)")


def run(args: argparse.Namespace) -> None:
    from ..inference.predict import PredictConfig
    from ..inference.run import predict_videos, report_run

    cfg = PredictConfig.checked(inputs=args.inputs, source=_source(args), prompts=args.prompts, out=args.out,
                                level=args.level, window=args.window, head=args.head, fps=args.fps,
                                smooth_window=args.smooth_window, formats=tuple(args.formats),
                                batch_size=args.batch_size, num_workers=args.num_workers, devices=args.devices,
                                accelerator=args.accelerator, video_backend=args.video_backend,
                                progress=not args.no_progress, online=args.online,
                                quiet_seconds=args.quiet_seconds)
    loaded = None
    if args.onnx:  # the export is the model; its folder names it in the run's settings
        from ..inference.onnx import load_onnx

        loaded = load_onnx(args.onnx)
    if cfg.online:
        from ..inference.online import run_online

        report_run(run_online(cfg, loaded), args.json)
        return
    report_run(predict_videos(cfg, loaded), args.json)


def _source(args: argparse.Namespace):
    from ..errors import HVLInputError
    from ..models.spec import ModelSource

    if sum(bool(x) for x in (args.ckpt, args.model, args.onnx)) != 1:
        raise HVLInputError("hvl predict: give exactly one of --ckpt, --model or --onnx (the model that labels the "
                            "frames)")
    if not args.onnx:
        return model_source(args)
    if args.devices != 1:
        raise HVLInputError("hvl predict: --onnx runs in one process (onnxruntime uses every core itself); drop "
                            "--devices")
    return ModelSource(model=args.onnx)
