"""Cholec80 on disk: ``videos/videoNN.mp4`` (25 fps) and ``phase_annotations/videoNN-phase.txt``
(tab-separated, header ``Frame\\tPhase``, one row per frame)."""
from __future__ import annotations

from pathlib import Path

from hvl.core.data.schema import PhaseSegment, VideoRecord
from hvl.core.data.video import open_source
from hvl.core.errors import HVLInputError

from .phases import CHOLEC80_FPS, CHOLEC80_PHASES

SPLITS: dict[str, range] = {"train": range(1, 41), "val": range(41, 49), "test": range(49, 81), "all": range(1, 81)}


def read_phase_annotation(path: Path, fps: float = CHOLEC80_FPS) -> list[PhaseSegment]:
    """Run-length encode the per-frame phases into segments ``[first / fps, (last + 1) / fps)``."""
    if not path.is_file():
        raise HVLInputError(f"{path}: phase annotation not found (expected phase_annotations/videoNN-phase.txt)")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip().split("\t") != ["Frame", "Phase"]:
        raise HVLInputError(f"{path}, line 1: header must be 'Frame<TAB>Phase', got {lines[0][:60] if lines else ''!r}")
    segs: list[PhaseSegment] = []
    run_start, run_phase, expect = 0, None, 0
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.strip().split("\t")
        if len(parts) != 2 or not parts[0].isdigit():
            raise HVLInputError(f"{path}, line {n}: expected '<frame>\\t<phase>', got {line[:60]!r}")
        frame, phase = int(parts[0]), parts[1]
        if frame != expect:
            raise HVLInputError(f"{path}, line {n}: field 'Frame': expected frame {expect}, got {frame}; "
                                "rows must list every frame in order from 0")
        if phase not in CHOLEC80_PHASES:
            raise HVLInputError(f"{path}, line {n}: field 'Phase': unknown phase {phase!r}; "
                                f"use one of {CHOLEC80_PHASES}")
        if phase != run_phase:
            if run_phase is not None:
                segs.append(PhaseSegment(start=run_start / fps, end=frame / fps, label=run_phase))
            run_start, run_phase = frame, phase
        expect += 1
    if run_phase is None:
        raise HVLInputError(f"{path}: no annotation rows after the header")
    segs.append(PhaseSegment(start=run_start / fps, end=expect / fps, label=run_phase))
    return segs


def read_cholec80(root: str | Path, split: str = "test", video_ids: list[int] | None = None,
                  fps: float = CHOLEC80_FPS, max_length_mismatch: int = 25) -> list[tuple[VideoRecord, Path]]:
    """Records of one split (1–40 train, 41–48 val, 49–80 test, or ``all``), or of explicit ``video_ids``.

    Annotation and video must agree in length to within ``max_length_mismatch`` frames.
    """
    root = Path(root)
    if split not in SPLITS and video_ids is None:
        raise HVLInputError(f"cholec80 split '{split}' is unknown; use one of {sorted(SPLITS)} or video_ids")
    ids = list(video_ids) if video_ids is not None else list(SPLITS[split])
    out = []
    for i in ids:
        vid, ann = root / "videos" / f"video{i:02d}.mp4", root / "phase_annotations" / f"video{i:02d}-phase.txt"
        if not vid.is_file():
            raise HVLInputError(f"{vid}: Cholec80 video missing; pass video_ids to evaluate a subset of split '{split}'")
        phases = read_phase_annotation(ann, fps)
        n_ann = round(phases[-1].end * fps)
        n_vid = len(open_source(vid, fps=fps))
        if abs(n_ann - n_vid) > max_length_mismatch:
            raise HVLInputError(f"{ann}: annotates {n_ann} frames but {vid.name} has {n_vid}; "
                                "the annotation belongs to another video or the video is truncated")
        dur = min(n_ann, n_vid) / fps  # a few frames' disagreement: score only what both cover
        phases = [p.model_copy(update={"end": min(p.end, dur)}) for p in phases if p.start < dur]
        out.append((VideoRecord(video_id=f"video{i:02d}", path=str(vid), duration=dur, phases=phases), vid))
    return out
