"""The demo dataset on disk: videos and manifests per split, or the raw texts ``hvl prepare`` reads."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from hvl.core.data.schema import VideoRecord, write_manifest
from hvl.core.data.video import BackgroundWriter
from hvl.core.errors import HVLInputError
from hvl.domains.surgical.presets import DemoPreset, get_preset

from .procedures import get_procedure
from .render import render_video
from .spec import Procedure

__all__ = ["generate", "write_raw_layout"]

SPLITS = {"train": 0, "val": 1, "test": 2}  # part of each video's seed: splits never share a stream


def _srt_time(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def _vtt_time(t: float) -> str:
    return _srt_time(t).replace(",", ".")


def write_raw_layout(out: Path, records: dict[str, list[VideoRecord]]) -> dict[str, int]:
    """The demo's texts as a user would bring them, for ``hvl prepare``: per video an ASR-style SubRip
    transcript (``transcripts/<id>.asr.srt``), a clean WebVTT one with a NOTE block and voice tags
    (``<id>.clean.vtt``), chapters (WebVTT for even-numbered videos, YouTube ``MM:SS Title`` lines for
    the others), an abstract (``abstracts/<id>.txt``) and ``splits.csv``. Cues do not overlap: each clip's
    narration is spoken from its start until the next clip starts."""
    for sub in ("transcripts", "chapters", "abstracts"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    split_rows = ["video_id,split"]
    for split, recs in records.items():
        for i, r in enumerate(recs):
            split_rows.append(f"{r.video_id},{split}")
            ends = [c.start for c in r.clips[1:]] + [r.clips[-1].end]
            srt = [f"{n}\n{_srt_time(c.start)} --> {_srt_time(e)}\n{c.texts[0]}\n"
                   for n, (c, e) in enumerate(zip(r.clips, ends), start=1)]
            (out / "transcripts" / f"{r.video_id}.asr.srt").write_text("\n".join(srt), encoding="utf-8")
            vtt = ["WEBVTT\n", "NOTE written by hvl's surgical demo\n"]
            vtt += [f"{_vtt_time(c.start)} --> {_vtt_time(e)} align:start\n<v Narrator>{c.texts[1]}</v>\n"
                    for c, e in zip(r.clips, ends)]
            (out / "transcripts" / f"{r.video_id}.clean.vtt").write_text("\n".join(vtt), encoding="utf-8")
            if i % 2 == 0:
                chap = ["WEBVTT\n"] + [f"{_vtt_time(p.start)} --> {_vtt_time(p.end)}\n{p.text}\n" for p in r.phases]
                (out / "chapters" / f"{r.video_id}.vtt").write_text("\n".join(chap), encoding="utf-8")
            else:
                lines = [f"{int(p.start) // 60:02d}:{int(p.start) % 60:02d} {p.text}" for p in r.phases]
                (out / "chapters" / f"{r.video_id}.txt").write_text("Chapters:\n" + "\n".join(lines) + "\n",
                                                                    encoding="utf-8")
            (out / "abstracts" / f"{r.video_id}.txt").write_text(r.texts[0] + "\n", encoding="utf-8")
    (out / "splits.csv").write_text("\n".join(split_rows) + "\n", encoding="utf-8")
    return {split: len(recs) for split, recs in records.items()}


def generate(out: str | Path, seed: int = 0, n_train: int = 16, n_val: int = 2, n_test: int = 6,
             size: int = 128, fps: float = 10.0, progress: bool = True, raw_layout: bool = False,
             preset: str | DemoPreset | None = None, procedure: str | Procedure | None = None) -> dict:
    """Write ``out/videos/*.mp4`` and ``out/{train,val,test}.jsonl``; return a summary.

    Video ``i`` of a split is drawn from ``SeedSequence([seed, split, i])``, so the same seed
    gives byte-identical manifests and identical pixels, whatever the other counts are.
    ``raw_layout``: instead of manifests, the texts as subtitle, chapter and abstract files
    (:func:`write_raw_layout`), the input of ``hvl prepare``.
    ``preset``: ``default`` (the original demo) or ``realistic`` (look-alike phases, sparse, unrelated and
    lagged narration; :mod:`hvl.domains.surgical.presets`). A non-default preset is stored as ``preset.json``.
    ``procedure``: ``cholecystectomy`` (default, Cholec80's phases) or ``hysterectomy`` (AutoLaparo's phases,
    :mod:`hvl.domains.surgical.hysterectomy`), e.g. to test transfer to another operation.
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    counts = {"train": n_train, "val": n_val, "test": n_test}
    if seed < 0 or min(counts.values()) < 0 or not sum(counts.values()):
        raise HVLInputError(f"demo: seed and video counts must be >= 0 with at least one video "
                            f"(got seed={seed}, {counts})")
    if fps <= 0 or abs(fps - round(fps)) > 1e-9 or size < 32:
        raise HVLInputError(f"demo: fps must be a whole number > 0 (H.264 stream rate) and size >= 32 "
                            f"(got fps={fps}, size={size})")
    preset, proc = get_preset(preset), get_procedure(procedure)
    fps, size = preset.fps or fps, preset.size or size  # a preset drawn at its own rate and size (long: 1 fps, 32 px)
    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    if not preset.is_default:
        (out / "preset.json").write_text(preset.model_dump_json(indent=2) + "\n", encoding="utf-8")
    bar = tqdm(total=sum(counts.values()), desc="demo videos", unit="video", disable=not progress)
    records: dict[str, list[VideoRecord]] = {split: [] for split in counts}
    n_frames = 0
    with BackgroundWriter(on_done=lambda: bar.update(1)) as writer:
        for split, n in counts.items():
            for i in range(n):
                entropy = [seed, SPLITS[split], i] + ([proc.stream] if proc.stream else [])
                frames, rec = render_video(f"demo_{split}_{i:03d}", np.random.SeedSequence(entropy),
                                           size=size, fps=fps, preset=preset, procedure=proc)
                writer.submit(out / rec.path, frames, fps)
                records[split].append(rec)
                n_frames += len(frames)
    bar.close()
    if raw_layout:
        write_raw_layout(out, records)
        manifests = {}
    else:  # manifests last: one that exists always points at finished videos
        manifests = {split: str(write_manifest(out / f"{split}.jsonl", recs))
                     for split, recs in records.items() if recs}
    seconds = sum(r.duration for recs in records.values() for r in recs)
    return {"root": str(out), "manifests": manifests, "videos": counts, "frames": n_frames,
            "video_seconds": round(seconds, 1), "seconds": round(time.perf_counter() - t0, 2), "seed": seed,
            "preset": preset.name, "procedure": proc.name}
