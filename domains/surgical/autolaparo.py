"""AutoLaparo Task 1 (surgical workflow recognition, 21 laparoscopic hysterectomies) as released:
``videos/NN.mp4`` (25 fps) and ``labels/label_NN.txt`` — one header line, then one row per second,
``<second>\\t<phase id>`` with seconds counted from 1 and phase ids 1–7 (:data:`AUTOLAPARO_PHASES`).
Row ``k`` labels the frame at ``k - 1`` s (the 1 fps frames are every 25th from the first).
Splits of the dataset paper: 01–10 train, 11–14 val, 15–21 test.
"""
from __future__ import annotations

from pathlib import Path

from hvl.core.data.schema import PhaseSegment, VideoRecord
from hvl.core.data.video import open_source
from hvl.core.errors import HVLInputError

from .phases import AUTOLAPARO_LABEL_FPS, AUTOLAPARO_PHASES

SPLITS: dict[str, range] = {"train": range(1, 11), "val": range(11, 15), "test": range(15, 22), "all": range(1, 22)}
_ROW = "'<second>\\t<phase id 1-7>'"


def read_label_file(path: Path) -> list[PhaseSegment]:
    """Run-length encode the per-second phase ids into segments ``[k - 1, k)`` seconds for row ``k``."""
    if not path.is_file():
        raise HVLInputError(f"{path}: phase labels not found (expected labels/label_NN.txt)")
    lines = [(n, line.split()) for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)]
    rows = [(n, parts) for n, parts in lines if parts]
    if rows and not rows[0][1][0].isdigit():
        rows = rows[1:]  # the header line
    if not rows:
        raise HVLInputError(f"{path}: no label rows after the header")
    origin = rows[0][1][0]
    if origin not in ("0", "1"):
        raise HVLInputError(f"{path}, line {rows[0][0]}: field 'frame': rows must count seconds from 1, got {origin}")
    segs: list[PhaseSegment] = []
    run_start, run_phase = 0, None
    for k, (n, parts) in enumerate(rows):
        if len(parts) != 2 or not parts[0].isdigit() or not parts[1].isdigit():
            raise HVLInputError(f"{path}, line {n}: expected {_ROW}, got {' '.join(parts)[:60]!r}")
        if int(parts[0]) != k + int(origin):
            raise HVLInputError(f"{path}, line {n}: field 'frame': expected {k + int(origin)}, got {parts[0]}; "
                                "rows must list every second in order")
        if not 1 <= int(parts[1]) <= len(AUTOLAPARO_PHASES):
            raise HVLInputError(f"{path}, line {n}: field 'phase': id {parts[1]} is not one of 1–7 "
                                f"({', '.join(f'{i} {p}' for i, p in enumerate(AUTOLAPARO_PHASES, start=1))})")
        phase = AUTOLAPARO_PHASES[int(parts[1]) - 1]
        if phase != run_phase:
            if run_phase is not None:
                segs.append(PhaseSegment(start=run_start / AUTOLAPARO_LABEL_FPS, end=k / AUTOLAPARO_LABEL_FPS,
                                         label=run_phase))
            run_start, run_phase = k, phase
    segs.append(PhaseSegment(start=run_start / AUTOLAPARO_LABEL_FPS, end=len(rows) / AUTOLAPARO_LABEL_FPS,
                             label=run_phase))
    return segs


def _video(root: Path, i: int) -> Path:
    for name in (f"{i:02d}.mp4", f"video{i:02d}.mp4"):
        if (root / "videos" / name).is_file():
            return root / "videos" / name
    return root / "videos" / f"{i:02d}.mp4"


def read_autolaparo(root: str | Path, split: str = "test", video_ids: list[int] | None = None,
                    max_length_mismatch: float = 2.0) -> list[tuple[VideoRecord, Path]]:
    """Records of one split (01–10 train, 11–14 val, 15–21 test, or ``all``), or of explicit ``video_ids``.

    Labels and video must agree in length to within ``max_length_mismatch`` seconds.
    """
    root = Path(root)
    if split not in SPLITS and video_ids is None:
        raise HVLInputError(f"autolaparo split '{split}' is unknown; use one of {sorted(SPLITS)} or video_ids")
    out = []
    for i in list(video_ids) if video_ids is not None else list(SPLITS[split]):
        vid, labels = _video(root, i), root / "labels" / f"label_{i:02d}.txt"
        if not vid.is_file():
            raise HVLInputError(f"{vid}: AutoLaparo video missing; pass video_ids to evaluate a subset of "
                                f"split '{split}'")
        phases = read_label_file(labels)
        source = open_source(vid)
        video_s, label_s = len(source) / source.fps, phases[-1].end
        if abs(video_s - label_s) > max_length_mismatch:
            raise HVLInputError(f"{labels}: labels {label_s:.0f} s but {vid.name} lasts {video_s:.1f} s; the labels "
                                "belong to another video or the video is truncated")
        dur = min(video_s, label_s)  # score only what both cover
        phases = [p.model_copy(update={"end": min(p.end, dur)}) for p in phases if p.start < dur]
        out.append((VideoRecord(video_id=f"autolaparo{i:02d}", path=str(vid), duration=dur, phases=phases), vid))
    return out
