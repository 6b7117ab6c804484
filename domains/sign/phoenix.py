"""RWTH-PHOENIX-Weather 2014 T on disk: corpus annotations plus PNG frame folders (25 fps).

``annotations/manual/PHOENIX-2014-T.<split>.corpus.csv`` is ``|``-separated with the header
``name|video|start|end|speaker|orth|translation``; the frames of row ``name`` are
``features/fullFrame-210x260px/<split>/<name>/images0001.png …`` (read by the frame-folder backend).

PHOENIX-2014T ships no poses. By hvl's convention a row's poses are a ``.pose`` file beside its frame folder,
``features/fullFrame-210x260px/<split>/<name>.pose`` (``poses_dir`` names another folder holding
``<name>.pose``); a row without one is read without poses.
"""
from __future__ import annotations

from pathlib import Path

from hvl.core.data.schema import PoseSource, VideoRecord
from hvl.core.errors import HVLInputError

COLUMNS = ["name", "video", "start", "end", "speaker", "orth", "translation"]
SPLITS = {"train": "train", "dev": "dev", "val": "dev", "test": "test"}
FPS = 25.0


def read_phoenix_corpus(path: str | Path) -> list[dict[str, str | int]]:
    path = Path(path)
    if not path.is_file():
        raise HVLInputError(f"{path}: PHOENIX-2014-T annotation not found; expected "
                            "annotations/manual/PHOENIX-2014-T.<split>.corpus.csv under dataset.path")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or lines[0].strip().split("|") != COLUMNS:
        raise HVLInputError(f"{path}, line 1: header must be '{'|'.join(COLUMNS)}'; "
                            f"got {(lines[0] if lines else '')[:120]!r}")
    rows, seen = [], {}
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != len(COLUMNS):
            raise HVLInputError(f"{path}, line {n}: expected {len(COLUMNS)} '|'-separated fields, got {len(parts)}")
        row: dict[str, str | int] = dict(zip(COLUMNS, (p.strip() for p in parts)))
        for f in ("name", "translation"):
            if not row[f]:
                raise HVLInputError(f"{path}, line {n}: field '{f}' is empty")
        if row["name"] in seen:
            raise HVLInputError(f"{path}, line {n}: field 'name': '{row['name']}' repeats line {seen[row['name']]}")
        seen[str(row["name"])] = n
        row["line"] = n
        rows.append(row)
    if not rows:
        raise HVLInputError(f"{path}: no rows after the header")
    return rows


def read_phoenix(root: str | Path, split: str = "test", annotations: str | None = None,
                 frames_dir: str | None = None, fps: float = FPS,
                 limit: int | None = None, poses_dir: str | None = None) -> list[tuple[VideoRecord, Path]]:
    """One record per row: ``texts = [translation]``; glosses (``orth``) and speaker in ``meta``."""
    root = Path(root)
    if split not in SPLITS:
        raise HVLInputError(f"phoenix split '{split}' is unknown; use one of {sorted(SPLITS)}")
    s = SPLITS[split]
    ann = root / (annotations or f"annotations/manual/PHOENIX-2014-T.{s}.corpus.csv")
    frames = root / (frames_dir or f"features/fullFrame-210x260px/{s}")
    poses = root / poses_dir if poses_dir else frames
    if poses_dir and not poses.is_dir():
        raise HVLInputError(f"phoenix option poses_dir: {poses} is not a folder; put the <name>.pose files there "
                            "or drop the option")
    out = []
    for row in read_phoenix_corpus(ann)[:limit]:
        folder = frames / str(row["name"])
        if not folder.is_dir():
            raise HVLInputError(f"{ann}, line {row['line']}: field 'name': frame folder {folder} not found; "
                                "extract the frames there, fix the frames_dir option, or remove the row")
        n = sum(1 for p in folder.iterdir() if p.suffix.lower() == ".png")
        if n == 0:
            raise HVLInputError(f"{ann}, line {row['line']}: frame folder {folder} has no PNG frames; "
                                "re-extract it or remove the row")
        pose_file = poses / f"{row['name']}.pose"
        pose = PoseSource(path=str(pose_file.resolve())) if pose_file.is_file() else None
        rec = VideoRecord(video_id=str(row["name"]), path=str(folder.resolve()), texts=[str(row["translation"])],
                          duration=n / fps, meta={"orth": row["orth"], "speaker": row["speaker"], "fps": fps},
                          pose=pose)
        out.append((rec, folder))
    return out
