"""Real-world kinds of video, encoded here with PyAV: every frame carries its index in its pixels
(see helpers.index_frames), so a reader that returns a wrong frame is caught, not guessed at.

Each kind is a small file; ``KINDS`` maps a name to how to write it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from helpers import BITS


def stripe_frames(n: int, height: int = 64, width: int = 64) -> np.ndarray:
    """Frame i shows i in binary as 8 black/white vertical stripes, at any size."""
    out = np.zeros((n, height, width, 3), np.uint8)
    w = width // BITS
    for i in range(n):
        for b in range(BITS):
            if (i >> b) & 1:
                out[i, :, b * w:(b + 1) * w] = 255
    return out


@dataclass(frozen=True)
class Kind:
    suffix: str
    codec: str
    n: int = 40
    size: tuple[int, int] = (64, 64)  # as displayed: (height, width)
    fps: int = 25
    pix_fmt: str = "yuv420p"
    options: dict[str, str] = field(default_factory=dict)
    rotation: int = 0                 # display matrix, counter-clockwise degrees (as PyAV's frame.rotation)
    pts_ms: tuple[int, ...] | None = None  # variable frame rate: each frame's presentation time in ms
    audio: bool = False
    max_b_frames: int | None = None


def vfr_times(n: int = 60, stretch: int = 5) -> tuple[int, ...]:
    """``stretch`` frames at 50 fps (20 ms apart), then ``stretch`` at 16.7 fps (60 ms), alternating:
    frame 15 is presented at exactly 0.5 s, where ``floor(t * average_fps)`` says frame 12 or 13."""
    t, out = 0, []
    for i in range(n):
        out.append(t)
        t += 20 if (i // stretch) % 2 == 0 else 60
    return tuple(out)


X264_B = {"preset": "medium", "x264-params": "keyint=12:min-keyint=12:scenecut=0:bframes=3:b-pyramid=normal"}
KINDS: dict[str, Kind] = {
    "h264_bframes": Kind(".mp4", "libx264", options=X264_B),
    "hevc": Kind(".mp4", "libx265", options={"x265-params": "log-level=error:keyint=12:bframes=3"}),
    "vp9_webm": Kind(".webm", "libvpx-vp9", options={"g": "12", "deadline": "realtime", "cpu-used": "8"}),
    "av1": Kind(".mp4", "libsvtav1", options={"preset": "12", "svtav1-params": "keyint=12"}),
    "mpeg4_avi": Kind(".avi", "mpeg4", options={"g": "12", "qscale": "2"}, max_b_frames=2),
    "mjpeg_avi": Kind(".avi", "mjpeg", pix_fmt="yuvj420p", options={"q": "2"}),
    "vfr": Kind(".mp4", "libx264", n=60, options=X264_B, pts_ms=vfr_times()),
    "rotated_90": Kind(".mp4", "libx264", n=12, size=(128, 64), options=X264_B, rotation=90),
    "rotated_180": Kind(".mp4", "libx264", n=12, options=X264_B, rotation=180),
    "rotated_270": Kind(".mp4", "libx264", n=12, size=(128, 64), options=X264_B, rotation=-90),
    "hevc_10bit": Kind(".mp4", "libx265", pix_fmt="yuv420p10le", options={"x265-params": "log-level=error:keyint=12"}),
    "odd_size_852x478": Kind(".mp4", "libx264", n=12, size=(478, 852), options=X264_B),
    "portrait": Kind(".mp4", "libx264", n=12, size=(640, 360), options=X264_B),
    "width_72": Kind(".mp4", "libx264", n=12, size=(128, 72), options=X264_B),  # decord fails on this width
    "audio_video": Kind(".mp4", "libx264", options=X264_B, audio=True),
    "single_frame": Kind(".mp4", "libx264", n=1, options=X264_B),
}


def write_kind(path: Path, kind: Kind) -> Path:
    """Encode ``kind`` at ``path`` (``path`` gets the kind's suffix)."""
    import av

    path = Path(path).with_suffix(kind.suffix)
    upright = stripe_frames(kind.n, *kind.size)
    k = round(kind.rotation / 90) % 4
    stored = np.ascontiguousarray(np.rot90(upright, -k, axes=(1, 2)))  # a player rotates it back by +k
    h, w = stored.shape[1:3]
    with av.open(str(path), "w") as box:
        s = box.add_stream(kind.codec, rate=kind.fps)
        s.width, s.height, s.pix_fmt = w, h, kind.pix_fmt
        if kind.max_b_frames is not None:
            s.codec_context.max_b_frames = kind.max_b_frames
        s.options = dict(kind.options)
        if kind.pts_ms is not None:
            s.codec_context.time_base = Fraction(1, 1000)
        if kind.rotation:
            s.set_display_rotation(kind.rotation)
        a = box.add_stream("aac", rate=16000) if kind.audio else None
        a_pts = 0
        for i, img in enumerate(stored):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if kind.pts_ms is not None:
                frame.pts, frame.time_base = kind.pts_ms[i], Fraction(1, 1000)
            for p in s.encode(frame):
                box.mux(p)
            if a is not None:  # a tone as long as the frame, interleaved as a camera would write it
                n = 16000 // kind.fps
                tone = (0.1 * np.sin(np.arange(a_pts, a_pts + n) * 2 * np.pi * 440 / 16000)).astype(np.float32)
                af = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
                af.sample_rate, af.pts = 16000, a_pts
                a_pts += n
                for p in a.encode(af):
                    box.mux(p)
        for st in (s, a):
            if st is not None:
                for p in st.encode():
                    box.mux(p)
    return path
