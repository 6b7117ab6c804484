"""Raw videos + transcripts (+ chapters, abstracts) → train / val / test manifests and a report.

Each video's result (probe, checks, clips, phases) is cached in ``<out>/.cache/`` under a key made of its
input files' contents (the video's size and modification time) and the settings, so a re-run rebuilds only
the videos whose inputs changed; the manifests and reports are rewritten from those results and are
byte-identical when nothing changed.

One video's problem is that video's: a file of it that cannot be read (a transcript, a chapter file) or a record
that cannot be built leaves it out, reported as ``unreadable_input``, and the other videos are still prepared; a
broken yt-dlp ``.info.json`` costs only its title, chapters and abstract (``unreadable_metadata``).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...errors import HVLInputError, format_validation_error
from ...io import atomic_write_bytes, file_sha256, write_json
from ...outputs import STDOUT, emit
from ..schema import ClipSegment, PhaseSegment, VideoRecord, write_manifest
from .chapters import Chapter, read_abstracts, read_chapters
from .checks import KINDS, RETIRED_KINDS, WARNED_BY_DEFAULT, Problem, check_cues, describe_errors, raise_errors
from .clips import ClipConfig, build_clips, prepare_sentences
from .layout import Inputs, Layout, discover, read_splits
from .report import render_html, render_table, summarise
from .splits import SPLITS, assign_splits, check_split_names
from .subtitles import read_transcript
from .ytdlp import AbstractMode, read_info_json

__all__ = ["PrepareConfig", "PrepareRun", "prepare", "run_prepare"]

CACHE_VERSION = 2  # 2: WebVTT blocks as the spec splits them, auto-captions read to their words, overlaps legal


class PrepareConfig(BaseModel):
    """Everything that decides the output; stored in report.json beside the manifests."""

    model_config = ConfigDict(extra="forbid")
    clips: ClipConfig = Field(default_factory=ClipConfig)
    warn: list[str] = Field(default_factory=list, description="problem kinds repaired with a warning, not an error")
    tolerance: float = Field(0.05, ge=0, description="seconds a cue (or chapter) may outrun the video before it "
                             "counts as a problem, and overlap the next cue before it counts as overlapping "
                             "(timestamp rounding)")
    abstract_from: AbstractMode = Field("paragraph", description="yt-dlp folders: the video-level text is the "
                                        "description's first paragraph, the whole description (links, hashtags and "
                                        "timestamp lines dropped), the title, or none")
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_file: str | None = None
    seed: int = 0
    layout: str | None = None
    videos: str | None = None
    asr: str | None = None
    asr_all: bool = False
    asr_chunk_seconds: float = 30.0
    reencode: Literal["h264"] | None = None
    size: int = Field(224, ge=16)
    gop: int = Field(8, ge=1)
    frames_fps: float | None = Field(None, gt=0)
    on_bad_video: Literal["skip", "error"] = Field("skip", description="skip: a video with a problem (under "
                                                   "error) is left out, the others are written, and the run says "
                                                   "so; error: any problem stops the run before anything is written")

    def policy(self) -> dict[str, str]:
        unknown = sorted(set(self.warn) - set(KINDS) - set(RETIRED_KINDS) - {"all"})
        if unknown:
            raise HVLInputError(f"--warn {unknown}: unknown problem kind(s); use 'all' or any of {sorted(KINDS)}")
        return {k: "warn" if "all" in self.warn or k in self.warn or k in WARNED_BY_DEFAULT else "error"
                for k in KINDS}


@dataclass
class Result:
    """One video's part of the output (what the cache holds)."""

    record: dict[str, Any] | None
    problems: list[dict[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def _sha(path: Path) -> str:
    return file_sha256(path)


def _key(inp: Inputs, cfg: PrepareConfig) -> str:
    settings = {"v": CACHE_VERSION, "clips": cfg.clips.model_dump(mode="json"), "tolerance": cfg.tolerance,
                "abstract_from": cfg.abstract_from}
    files = {"transcripts": {s: [p.name, _sha(p)] for s, p in sorted(inp.transcripts.items())},
             "chapters": [inp.chapters.name, _sha(inp.chapters)] if inp.chapters else None,
             "abstract": [inp.abstract.name, _sha(inp.abstract)] if inp.abstract else None,
             "info": [inp.info.name, _sha(inp.info)] if inp.info else None}
    if inp.video:
        st = inp.video.stat()
        files["video"] = [str(inp.video.resolve()), st.st_size, st.st_mtime_ns]
    return hashlib.sha256(json.dumps([settings, files], sort_keys=True).encode()).hexdigest()


def _probe(path: Path) -> tuple[float | None, str | None]:
    """(duration, None) or (None, why the decoder cannot read it): opens the video and decodes its last frame."""
    from ..video import Video, open_source

    try:
        v = Video(open_source(path))
        v.source.get([v.num_frames - 1])
        return v.duration, None
    except HVLInputError as e:
        return None, str(e).removeprefix(f"{path}: ")


def _phases(chapters: list[Chapter], duration: float, cfg: PrepareConfig, problems: list[Problem],
            counts: Counter) -> list[PhaseSegment]:
    chapters = sorted(chapters, key=lambda c: c.start)
    out = []
    for i, c in enumerate(chapters):
        end = c.end if c.end is not None else (chapters[i + 1].start if i + 1 < len(chapters) else duration)
        if end > duration + cfg.tolerance or c.start >= duration:
            problems.append(Problem("chapter_outside_video", c.at,
                                    f"runs to {end:.3f}s but the video lasts {duration:.3f}s"))
        start, end = round(min(c.start, duration), 3), round(min(end, duration), 3)
        if end <= start or not c.text:
            counts["dropped_chapters"] += 1
            continue
        out.append(PhaseSegment(start=start, end=end, text=c.text))
    return out


def _without_broken_info(inp: Inputs, cfg: PrepareConfig, problems: list[Problem]) -> Inputs:
    """``inp``, less its yt-dlp .info.json (and the chapters and abstract read from it) when that cannot be read."""
    if inp.info is None:
        return inp
    try:
        read_info_json(inp.info)
        if inp.chapters == inp.info:
            read_chapters(inp.info)
        if inp.abstract == inp.info:
            read_abstracts(inp.info, cfg.abstract_from)
    except HVLInputError as e:
        why = str(e).removeprefix(str(inp.info)).lstrip(":, ")
        problems.append(Problem("unreadable_metadata", str(inp.info),
                                f"{why}\n  (prepared without its title, chapters and abstract)"))
        return replace(inp, info=None, chapters=None if inp.chapters == inp.info else inp.chapters,
                       abstract=None if inp.abstract == inp.info else inp.abstract)
    return inp


def build_video(inp: Inputs, cfg: PrepareConfig) -> Result:
    """Probe, check, and build one video's record (None when it cannot be used)."""
    problems: list[Problem] = []
    counts: Counter = Counter()
    duration, why = _probe(inp.video)
    if why:
        return Result(None, [Problem("undecodable_video", str(inp.video), why).to_dict()])
    duration = round(duration, 3)
    inp = _without_broken_info(inp, cfg, problems)
    sources = {}
    for name, path in sorted(inp.transcripts.items()):
        cues = check_cues(read_transcript(path, counts), duration, cfg.tolerance, problems, counts)
        counts["cues_read"] += len(cues)
        sources[name] = prepare_sentences(name, cues, cfg.clips, counts)
    anchor = cfg.clips.anchor if cfg.clips.anchor in sources else sorted(sources)[0]
    if cfg.clips.anchor and anchor != cfg.clips.anchor:
        counts["anchor_fallback_videos"] += 1
    clips = build_clips(sources, anchor, duration, cfg.clips, counts)
    phases = _phases(read_chapters(inp.chapters), duration, cfg, problems, counts) if inp.chapters else []
    texts = read_abstracts(inp.abstract, cfg.abstract_from) if inp.abstract else []
    if not clips:
        counts["videos_without_clips"] += 1
    meta = {"anchor": anchor, "sources": sorted(sources)}
    if inp.info:
        info = read_info_json(inp.info)
        meta.update({k: info[k] for k in ("title", "uploader", "upload_date", "webpage_url") if info[k]})
    rec = VideoRecord(video_id=inp.video_id, path=str(inp.video.resolve()), texts=texts, duration=duration,
                      phases=phases, clips=[ClipSegment(start=c.start, end=c.end, texts=list(c.texts)) for c in clips],
                      meta=meta)
    return Result(rec.model_dump(mode="json", exclude_defaults=True), [p.to_dict() for p in problems], dict(counts))


def _build_or_report(inp: Inputs, cfg: PrepareConfig) -> tuple[str | None, Result]:
    """(cache key, result) of one video; a file of it that cannot be read, or a record that does not validate, is
    that video's ``unreadable_input`` problem (key None: not cached, so the next run tries again)."""
    try:
        key = _key(inp, cfg)
        return key, build_video(inp, cfg)
    except (HVLInputError, OSError) as e:
        why = str(e)
    except ValidationError as e:
        why = format_validation_error(e, f"the record of video '{inp.video_id}'")
    except RecursionError:  # a reader recursing on a crafted file
        why = "a file of this video is nested too deeply to read"
    return None, Result(None, [Problem("unreadable_input", str(inp.video), why).to_dict()])


def _cached(cache: Path, key: str) -> Result | None:
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Result(data["record"], data["problems"], data["counts"]) if data.get("key") == key else None


def _transcribe_missing(layout: Layout, cfg: PrepareConfig, out: Path, progress: bool) -> int:
    """Whisper JSON for videos without a transcript (or every video with ``asr_all``), in ``out/transcripts``."""
    from tqdm.auto import tqdm

    from .transcribe import load_asr, transcribe

    todo = [i for i in layout.inputs.values() if i.video and (cfg.asr_all or not i.transcripts)]
    if not todo:
        return 0
    asr, written = load_asr(cfg.asr, cfg.asr_chunk_seconds), 0
    for inp in tqdm(todo, desc="transcribing", unit="video", disable=not progress):
        duration, why = _probe(inp.video)
        if why:
            continue  # reported as undecodable by the build
        target = out / "transcripts" / f"{inp.video_id}.asr.json"
        written += transcribe(asr, cfg.asr, inp.video, target, duration)
        inp.transcripts["asr"] = target
    return written


def _reencode(recs: list[VideoRecord], cfg: PrepareConfig, out: Path, progress: bool) -> list[VideoRecord]:
    from tqdm.auto import tqdm

    from .reencode import extract_frames, reencode_h264

    done = []
    for r in tqdm(recs, desc="re-encoding", unit="video", disable=not progress):
        src = Path(r.path)
        if cfg.frames_fps:
            rel = f"frames/{r.video_id}"
            extract_frames(src, out / rel, cfg.frames_fps, cfg.size if cfg.reencode else None)
        else:
            rel = f"videos/{r.video_id}.mp4"
            reencode_h264(src, out / rel, cfg.size, cfg.gop)
        done.append(r.model_copy(update={"path": rel, "meta": {**r.meta, "original": str(src)}}))
    return done


def _splits(layout: Layout, ids: list[str], cfg: PrepareConfig) -> tuple[dict[str, str], str]:
    if cfg.split_file:
        given, _ = read_splits(Path(cfg.split_file))
        source = cfg.split_file
    elif layout.splits is not None:
        given, source = layout.splits, layout.splits_file or "layout"
    else:
        return assign_splits(ids, cfg.split_ratios, cfg.seed), f"seeded ratios {list(cfg.split_ratios)}"
    check_split_names(given, source)
    missing = [v for v in ids if v not in given]
    if missing:
        raise HVLInputError(f"{source}: no split for video(s) {missing[:10]}; add them (a video may be in one "
                            "split only) or drop the split file to split by --split-ratios")
    return {v: given[v] for v in ids}, source


def prepare(raw: str | Path, out: str | Path, cfg: PrepareConfig | None = None,
            progress: bool = True) -> dict[str, Any]:
    """Build ``out/{train,val,test}.jsonl``, ``report.json`` and ``report.html``; returns the report
    (plus ``_run``: what this run rebuilt, which the report files leave out)."""
    from tqdm.auto import tqdm

    cfg = cfg or PrepareConfig()
    policy = cfg.policy()
    out = Path(out)
    layout = discover(raw, cfg.layout, cfg.videos)
    if cfg.asr:
        _transcribe_missing(layout, cfg, out, progress)

    by_video: dict[str, list[dict[str, str]]] = {}  # each problem under the video it belongs to
    for vid, file, why in layout.refused:
        by_video.setdefault(vid, []).append(Problem("unusable_video_id", file, f"{why}; rename the file").to_dict())
    for i in layout.inputs.values():
        if i.transcripts and not i.video:
            by_video.setdefault(i.video_id, []).append(Problem(
                "transcript_without_video", str(next(iter(i.transcripts.values()))),
                f"no video '{i.video_id}' " + ("beside it" if layout.kind == "ytdlp" else "under the videos folder")
            ).to_dict())
    missing = ("no subtitles for this video (yt-dlp --write-subs / --write-auto-subs --sub-langs en, or --asr)"
               if layout.kind == "ytdlp" else
               "no transcript for this video (transcripts/<id>.<source>.srt|vtt|json|csv, or --asr)")
    for i in layout.inputs.values():
        if i.video and not i.transcripts:
            by_video.setdefault(i.video_id, []).append(Problem("video_without_transcript", str(i.video),
                                                               missing).to_dict())
    usable = [i for i in layout.inputs.values() if i.video and i.transcripts]
    cache_dir = out / ".cache" / "videos"
    cache_dir.mkdir(parents=True, exist_ok=True)
    records: list[VideoRecord] = []
    counts: Counter = Counter()
    rebuilt = 0
    for inp in tqdm(usable, desc="preparing", unit="video", disable=not progress):
        cache = cache_dir / f"{inp.video_id}.json"
        res = None
        with contextlib.suppress(HVLInputError, OSError):  # an unreadable file is reported by the build below
            res = _cached(cache, _key(inp, cfg))
        if res is None:
            key, res = _build_or_report(inp, cfg)
            rebuilt += 1
            if key is not None:
                atomic_write_bytes(cache, json.dumps({"key": key, "record": res.record, "problems": res.problems,
                                                      "counts": res.counts}).encode())
        by_video.setdefault(inp.video_id, []).extend(res.problems)
        counts.update(res.counts)
        if res.record is not None:
            records.append(VideoRecord.model_validate(res.record))
    problems = [p for ps in by_video.values() for p in ps]
    if cfg.on_bad_video == "error":
        raise_errors([Problem(**p) for p in problems], policy)
    failed = {vid: errs for vid, ps in by_video.items() if (errs := [p for p in ps if policy.get(p["kind"]) != "warn"])}
    records = [r for r in records if r.video_id not in failed]
    errors = [Problem(**p) for ps in failed.values() for p in ps]
    if not records:
        raise HVLInputError(describe_errors(errors, f"{raw}: no usable video (each needs a readable video and a "
                                                    "transcript); nothing was written:") if errors else
                            f"{raw}: no usable video (each needs a readable video and a transcript)")

    split_of, split_source = _splits(layout, [r.video_id for r in records], cfg)
    if cfg.reencode or cfg.frames_fps:
        records = _reencode(records, cfg, out, progress)
    by_split = {s: [r for r in records if split_of[r.video_id] == s] for s in SPLITS}
    by_split = {s: recs for s, recs in by_split.items() if recs}
    for s in SPLITS:
        if s in by_split:
            write_manifest(out / f"{s}.jsonl", by_split[s])
        else:
            (out / f"{s}.jsonl").unlink(missing_ok=True)  # a manifest from an earlier run would be stale
    info = {"root": str(Path(raw)), "kind": layout.kind, "splits": split_source, "stray_files": layout.stray,
            "videos_found": len(layout.inputs), "videos_kept": len(records)} | (
        {"videos_left_out": sorted(failed)} if failed else {})
    report = summarise(by_split, counts, problems, cfg.model_dump(mode="json"), info, cfg.seed)
    write_json(out / "report.json", report)
    atomic_write_bytes(out / "report.html", render_html(report).encode())
    left_out = describe_errors(errors, f"{len(errors)} problem(s) in the raw inputs; left out of the manifests: "
                                       f"{', '.join(sorted(failed))}; the other {len(records)} video(s) were written "
                                       f"to {out}:") if errors else None
    return {**report, "_run": {"rebuilt_videos": rebuilt, "cached_videos": len(usable) - rebuilt,
                               "left_out": left_out}}


@dataclass(frozen=True)
class PrepareRun:
    """``hvl prepare``: the raw folder, the output folder, the settings, and ``--json`` (a file, or ``-``: the
    report on stdout instead of the table)."""

    raw: str
    out: str
    config: PrepareConfig = field(default_factory=PrepareConfig)
    json: str | None = None
    progress: bool = True


def run_prepare(run: PrepareRun) -> dict[str, Any]:
    """:func:`prepare`, then the report as a table (or JSON); a video left out is one error after the others are
    written (the exit status says that not all of them are there)."""
    report = prepare(run.raw, run.out, run.config, progress=run.progress)
    run_info = report.pop("_run")
    emit(report, render_table(report), run.json)
    if run.json != STDOUT:
        print(f"rebuilt {run_info['rebuilt_videos']} video(s), {run_info['cached_videos']} from cache; "
              f"wrote {run.out}/{{train,val,test}}.jsonl, report.json, report.html")
    if run_info["left_out"]:
        raise HVLInputError(run_info["left_out"])
    return report
