"""``hvl prepare RAW --out DIR``: raw videos and transcripts -> hierarchical training manifests and a report."""
from __future__ import annotations

import argparse

from .options import add_deprecated_alias, add_json_argument


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..data.prepare.checks import KINDS
    from ..data.prepare.clips import ClipConfig

    p.add_argument("raw", help="folder with videos/, transcripts/ (+ chapters/, abstracts/), PeskaVLP's layout, "
                               "a yt-dlp download folder ('<title> [<id>].mp4', '.en.vtt', '.info.json'), "
                               "or any layout described by layout.yaml (see docs/prepare.md)")
    p.add_argument("--out", required=True, help="output folder: train/val/test.jsonl, report.json, report.html")
    p.add_argument("--layout", help="YAML naming the folders (videos, transcripts, chapters, abstracts, splits)")
    p.add_argument("--videos", help="videos folder, if not <raw>/videos (PeskaVLP layout)")
    g = p.add_argument_group("clips")
    d = ClipConfig()
    g.add_argument("--anchor", help="transcript source whose sentences anchor the clips (default: first by name)")
    g.add_argument("--min-seconds", type=float, default=d.min_seconds, help="clip windows widened to at least this")
    g.add_argument("--max-seconds", type=float, default=d.max_seconds, help="fragments merged up to this long")
    g.add_argument("--positives", dest="k", type=int, default=d.k,
                   help=f"extra positives per clip from the other sources (default {d.k})")
    add_deprecated_alias(g, "--k", "--positives", dest="k", type=int)
    g.add_argument("--pad", choices=["anchor", "none"], default=d.pad,
                   help="fill missing extra positives with the anchor sentence (PeskaVLP) or leave them out")
    g.add_argument("--no-merge", action="store_true", help="take every cue as a sentence")
    g.add_argument("--pause", type=float, default=d.pause_seconds,
                   help="word-timed captions (YouTube auto-captions): a sentence ends at a pause this long "
                        "(seconds from one word's start to the next's)")
    g.add_argument("--abstract-from", choices=["paragraph", "description", "title", "none"], default="paragraph",
                   help="yt-dlp folders: the video-level text is the description's first paragraph (links, hashtags "
                        "and timestamp lines dropped), the whole description so cleaned, the title, or none")
    s = p.add_argument_group("splits")
    s.add_argument("--split-ratios", default="0.8,0.1,0.1", help="train,val,test by video (seeded)")
    s.add_argument("--split-file", help="CSV video_id,split (or a PeskaVLP splits/ folder); overrides the ratios")
    s.add_argument("--seed", type=int, default=0)
    c = p.add_argument_group("checks")
    c.add_argument("--warn", nargs="+", default=[], metavar="KIND",
                   help=f"repair these problems with a warning instead of stopping ('all' or: {', '.join(KINDS)})")
    c.add_argument("--tolerance", type=float, default=0.05,
                   help="seconds a cue may outrun the video (clamped to its end and counted) or overlap the next "
                        "(counted) unreported")
    c.add_argument("--on-bad-video", choices=("skip", "error"), default="skip",
                   help="skip (default): a video with a problem is left out and named, the others are written, and "
                        "the run exits with status 2; error: any problem stops the run before anything is written")
    a = p.add_argument_group("transcription")
    a.add_argument("--asr", metavar="DIR", help="local Whisper directory: transcribe videos without a transcript")
    a.add_argument("--asr-all", action="store_true", help="transcribe every video (an extra 'asr' source)")
    a.add_argument("--asr-chunk", type=float, default=30.0, help="long-form chunk length in seconds")
    r = p.add_argument_group("re-encoding for fast training reads")
    r.add_argument("--reencode", choices=["h264"], help="short-GOP H.264 copies under <out>/videos")
    r.add_argument("--size", type=int, default=224, help="shorter side of the copies / frames")
    r.add_argument("--gop", type=int, default=8, help="keyframe every N frames")
    r.add_argument("--frames", type=float, metavar="FPS", help="extract frames to <out>/frames/<id>/ at FPS instead")
    p.add_argument("--no-progress", action="store_true")
    add_json_argument(p, "the report", was_switch=True)


def run(args: argparse.Namespace) -> None:
    from ..data.prepare.build import PrepareConfig, PrepareRun, run_prepare
    from ..data.prepare.clips import ClipConfig
    from ..data.prepare.splits import parse_ratios

    clips = ClipConfig(anchor=args.anchor, min_seconds=args.min_seconds, max_seconds=args.max_seconds, k=args.k,
                       pad=args.pad, merge=not args.no_merge, pause_seconds=args.pause)
    config = PrepareConfig(clips=clips, warn=args.warn, tolerance=args.tolerance, abstract_from=args.abstract_from,
                           split_ratios=parse_ratios(args.split_ratios), split_file=args.split_file, seed=args.seed,
                           layout=args.layout, videos=args.videos, asr=args.asr, asr_all=args.asr_all,
                           asr_chunk_seconds=args.asr_chunk, reencode=args.reencode, size=args.size, gop=args.gop,
                           frames_fps=args.frames, on_bad_video=args.on_bad_video)
    run_prepare(PrepareRun(raw=args.raw, out=args.out, config=config, json=args.json, progress=not args.no_progress))
