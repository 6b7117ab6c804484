"""Videos made cheap to read for training: short-GOP H.264 at the training size, or frame folders.

A random-access read decodes from the previous keyframe; with a long GOP (x264's default is 250 frames)
that dominates the loader's cost, so training copies get a keyframe every ``gop`` frames. Each output is
written under a temporary name and renamed when complete, and a finished one whose settings and source are
unchanged is kept: an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np

from ...errors import HVLInputError
from ...io import atomic_dir, atomic_path, write_json

__all__ = ["FRAMES_META", "extract_frames", "reencode_h264", "source_key"]

FRAMES_META = "frames.json"  # written into a frame folder: its fps (hvl.core.data.video.open_source reads it)


def source_key(path: Path, **settings: object) -> dict[str, object]:
    st = path.stat()
    return {"source": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, **settings}


def _done(meta: Path, key: dict[str, object]) -> bool:
    try:
        return json.loads(meta.read_text()) == key
    except (OSError, ValueError):
        return False


def _scaled(w: int, h: int, size: int) -> tuple[int, int]:
    """Shorter side ``size``, aspect kept, even dimensions (yuv420p)."""
    s = size / min(w, h)
    return max(2, round(w * s / 2) * 2), max(2, round(h * s / 2) * 2)


def reencode_h264(src: Path, dst: Path, size: int, gop: int, crf: int = 20) -> bool:
    """``src`` → ``dst`` (H.264, shorter side ``size``, keyframe every ``gop`` frames, same frame rate).
    Returns False when an up-to-date copy was already there."""
    import av
    from av.video.frame import PictureType

    from ..video import muxer_for

    meta = dst.with_name(dst.name + ".json")
    key = source_key(src, codec="h264", size=size, gop=gop, crf=crf)
    if dst.is_file() and _done(meta, key):
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (atomic_path(dst) as tmp, av.open(str(src)) as inp,
              av.open(str(tmp), mode="w", format=muxer_for(dst)) as out):
            vin = inp.streams.video[0]
            rate = vin.average_rate or vin.guessed_rate or 25
            w, h = _scaled(vin.codec_context.width, vin.codec_context.height, size)
            vout = out.add_stream("libx264", rate=rate)
            tb = vout.codec_context.time_base = Fraction(1, 1) / rate
            vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
            vout.options = {"crf": str(crf), "preset": "veryfast",
                            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0"}
            for i, frame in enumerate(inp.decode(vin)):
                frame = frame.reformat(width=w, height=h, format="yuv420p")
                # frames renumbered at the stream's rate (left to PyAV, pts restart after ~10 s of a
                # long-GOP source and the muxer refuses them); the source's keyframe flags would force
                # extra keyframes, so they are cleared: the GOP alone decides
                frame.pts, frame.time_base, frame.pict_type = i, tb, PictureType.NONE
                for packet in vout.encode(frame):
                    out.mux(packet)
            for packet in vout.encode():
                out.mux(packet)
    except av.FFmpegError as e:
        raise HVLInputError(f"{src}: cannot re-encode ({e})") from None
    write_json(meta, key)
    return True


def extract_frames(src: Path, dst: Path, fps: float, size: int | None = None) -> bool:
    """``src`` → ``dst/000001.jpg …`` at ``fps`` (frame ``i`` shows time ``i / fps``), plus ``frames.json``."""
    import av
    from PIL import Image

    key = source_key(src, frames_fps=fps, size=size)
    if dst.is_dir() and _done(dst / FRAMES_META, {**key, "fps": fps}):
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    n = 0

    def emit(img: np.ndarray, until: float) -> None:
        """``img`` for every output time before ``until`` (a source frame shows until the next one)."""
        nonlocal n
        if size:
            w, h = _scaled(img.shape[1], img.shape[0], size)
            img = np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))
        while n / fps < until - 1e-6:
            n += 1
            Image.fromarray(img).save(tmp / f"{n:06d}.jpg", quality=92)

    try:
        with atomic_dir(dst) as tmp, av.open(str(src)) as inp:
            vin = inp.streams.video[0]
            tb, step = float(vin.time_base), 1.0 / float(vin.average_rate or 25)
            prev, prev_t = None, 0.0
            for frame in inp.decode(vin):
                t = float(frame.pts) * tb if frame.pts is not None else prev_t + step
                if prev is not None:
                    emit(prev, t)
                prev, prev_t = frame.to_ndarray(format="rgb24"), t
            if prev is not None:
                emit(prev, prev_t + step)
            write_json(tmp / FRAMES_META, {**key, "fps": fps})
    except av.FFmpegError as e:
        raise HVLInputError(f"{src}: cannot extract frames ({e})") from None
    return True
