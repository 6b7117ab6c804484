"""Video decoders behind :class:`~hvl.core.data.video.FrameSource`, and which one reads which file.

Two decoders: decord (fast, one C++ call per batch) and PyAV (FFmpeg's own decoders: every codec the
bundled FFmpeg has). Both report frames in presentation order, upright (a phone's display matrix
applied, as a player shows them) and with the presentation time of every frame, read from the
container by :func:`stream_info` (one demux pass, no decoding; cached per file and process).

``video_backend``: ``pyav`` always works; ``decord`` is refused for codecs it reads wrong; ``auto``
(default) takes decord where it is frame-exact and PyAV everywhere else, and PyAV for recordings longer
than ``DECORD_MAX_MINUTES``: after its first read decord holds memory in proportion to the video's length
(measured at 854 x 480, read at 224²: +92 MB for 5 min, +297 MB for 15, +476 MB for 30; PyAV +18 MB for
30 min, as fast on the 1-fps pattern: ``benchmarks/decoders.py``), once per open reader. What decord gets wrong was
measured on files tests/test_video_backends.py encodes (frames carry their index in their pixels):
HEVC and MPEG-4 part 2 with B-frames come back as wrong frames on random access, MPEG-4 AVI with
garbage timestamps, AV1 does not open, and some frame widths (e.g. 72) fail on the first read.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..errors import HVLInputError

__all__ = ["BACKENDS", "DECORD_CODECS", "DECORD_MAX_MINUTES", "DecordVideo", "PyAVVideo", "StreamInfo",
           "choose_backend", "frame_to_array", "stream_info"]

DECORD_MAX_MINUTES = 10.0  # longer files: auto reads them with PyAV (decord's memory grows with length)

VideoBackend = Literal["auto", "decord", "pyav"]
BACKENDS: tuple[str, ...] = ("auto", "decord", "pyav")
# Codecs decord reads frame-exactly, random access included (every kind in tests/test_video_backends.py).
DECORD_CODECS = frozenset({"h264", "vp8", "vp9", "mjpeg"})


def _short(e: BaseException) -> str:
    """decord and FFmpeg errors carry C++ context over many lines; the first says what happened
    (without decord's ``[hh:mm:ss] /path/file.cc:171:`` prefix)."""
    line = (str(e).splitlines() or [type(e).__name__])[0]
    return re.sub(r"^\[[\d:]+\] \S+:\d+: ", "", line)[:200]


@dataclass(frozen=True)
class StreamInfo:
    """What the container says about a file's video stream: codec, size as displayed, rotation, and
    the presentation timestamp of every frame (from the packets, in presentation order)."""

    path: str
    container: str              # FFmpeg's demuxer name: mov (mp4/mov/m4v), matroska (mkv/webm), avi, ...
    codec: str
    width: int                  # as displayed (after rotation)
    height: int
    rotation: int               # degrees a player turns the stored picture counter-clockwise: 0/90/180/270
    pix_fmt: str
    ticks: np.ndarray           # int64 [N]: each frame's pts in the stream's time base, presentation order
    keyframes: np.ndarray       # int64: indices (presentation order) of the frames a decoder can start from
    time_base: Fraction
    nominal_fps: float          # what the container claims (average rate)

    def __len__(self) -> int:
        return len(self.ticks)

    @cached_property
    def pts(self) -> np.ndarray:
        """float64 [N]: seconds from the first frame (a player starts the video at its first frame)."""
        return (self.ticks - self.ticks[0]).astype(np.float64) * float(self.time_base)

    @cached_property
    def constant_rate(self) -> bool:
        """Frame intervals equal up to timestamp rounding (1.5 ticks, or 2 % of an interval)."""
        if len(self.ticks) < 3:
            return True
        d = np.diff(self.ticks)
        med = float(np.median(d))
        return float(np.abs(d - med).max()) <= max(1.5, 0.02 * med)

    @cached_property
    def frame_interval(self) -> float:
        """Seconds between frames: the median interval (the nominal one for a single frame)."""
        if len(self.ticks) < 2:
            return 1.0 / self.nominal_fps if self.nominal_fps > 0 else 1.0
        return float(np.median(np.diff(self.ticks))) * float(self.time_base)

    @property
    def duration(self) -> float:
        """Until the last frame stops being shown (its pts plus one interval)."""
        last = float(np.diff(self.pts[-2:])[0]) if len(self.pts) > 1 and not self.constant_rate else self.frame_interval
        return float(self.pts[-1]) + last

    @property
    def fps(self) -> float:
        """The frame rate for constant-rate files; the average (frames / duration) for variable-rate ones."""
        return 1.0 / self.frame_interval if self.constant_rate else len(self) / self.duration


def stream_info(path: str | Path) -> StreamInfo:
    """:class:`StreamInfo` of ``path``'s first video stream; cached per file (path, size, mtime)."""
    path = Path(path)
    if not path.is_file():
        raise HVLInputError(f"{path}: video file not found")
    st = path.stat()
    if st.st_size == 0:
        raise HVLInputError(f"{path}: video file is empty (0 bytes); re-export or remove it")
    return _stream_info(str(path), st.st_size, st.st_mtime_ns)


# Readers are reopened all the time (ReaderCache keeps one per worker), so the scan is cached: 8 bytes
# per frame, ~2 KB for a 10-s clip, 0.4 MB for a 30-min recording.
@lru_cache(maxsize=4096)
def _stream_info(path: str, size: int, mtime_ns: int) -> StreamInfo:
    import av

    try:
        with av.open(path) as box:
            if not box.streams.video:
                raise HVLInputError(f"{path}: cannot decode video (the file has no video stream)")
            s = box.streams.video[0]
            ticks, keys = [], []
            for pkt in box.demux(s):
                ts = pkt.pts if pkt.pts is not None else pkt.dts
                if pkt.size == 0 or ts is None:  # flush packets, AVI 'drop' entries: no picture
                    continue
                ticks.append(ts)
                keys.append(pkt.is_keyframe)
            if not ticks:
                raise HVLInputError(f"{path}: cannot decode video (its video stream has no frames)")
            box.seek(int(s.start_time or 0), stream=s)
            first = next(box.decode(s), None)
            if first is None:
                raise HVLInputError(f"{path}: cannot decode video (no frame of its video stream decodes)")
            codec, pix_fmt = s.codec_context.codec.canonical_name, first.format.name  # 'av1', not 'libdav1d'
            container = box.format.name.split(",")[0]
            tb, nominal = s.time_base, float(s.average_rate or s.guessed_rate or 0)
            rotation = round(first.rotation / 90) % 4 * 90
            w, h = first.width, first.height
    except HVLInputError:
        raise
    except Exception as e:  # FFmpeg: not a container, truncated header, no decoder...
        raise HVLInputError(f"{path}: cannot decode video ({_short(e)}); check the file is a complete video") from None
    t, k = np.asarray(ticks, np.int64), np.asarray(keys, bool)
    order = np.argsort(t, kind="stable")
    t, k = t[order], k[order]
    t, first_of = np.unique(t, return_index=True)  # two packets at one pts: a player shows one picture
    k = np.maximum.reduceat(k, first_of) if len(k) else k
    keyframes = np.flatnonzero(k)
    if not len(keyframes) or keyframes[0] != 0:
        keyframes = np.concatenate([[0], keyframes]).astype(np.int64)  # decoding from the start always works
    if rotation in (90, 270):
        w, h = h, w
    return StreamInfo(path=path, container=container, codec=codec, width=w, height=h, rotation=rotation, pix_fmt=pix_fmt, ticks=t,
                      keyframes=keyframes, time_base=tb, nominal_fps=nominal)


class _Timing:
    """Presentation times shared by both decoders: from the container, or ``i / fps`` when the user set fps."""

    info: StreamInfo

    def _set_timing(self, fps: float | None) -> None:
        n = len(self.info)
        if fps:
            self.fps, self.pts, self.constant_rate = float(fps), np.arange(n) / float(fps), True
        else:
            self.fps, self.pts, self.constant_rate = self.info.fps, self.info.pts, self.info.constant_rate
        if not math.isfinite(self.fps) or self.fps <= 0:
            raise HVLInputError(f"{self.path}: video reports no frame rate; set 'fps' for this source")

    def __len__(self) -> int:
        return len(self.info)


class DecordVideo(_Timing):
    """decord's reader: it applies the display matrix itself and resizes while converting."""

    backend = "decord"

    def __init__(self, path: Path, fps: float | None = None, size: tuple[int, int] | None = None,
                 info: StreamInfo | None = None):
        import decord

        path = Path(path)
        self.path, self.info = path, info or stream_info(path)
        if self.info.codec not in DECORD_CODECS:
            raise HVLInputError(f"{path}: decord does not read {self.info.codec} video frame-exactly "
                                f"(it reads {sorted(DECORD_CODECS)}); set video_backend: auto or pyav")
        kw = {"width": size[1], "height": size[0]} if size else {}
        try:
            self._vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1, **kw)
        except Exception as e:  # decord raises bare DECORDError with C++ context
            raise HVLInputError(f"{path}: decord cannot decode this video ({_short(e)}); "
                                "set video_backend: auto or pyav") from None
        if len(self._vr) != len(self.info):
            raise HVLInputError(f"{path}: decord counts {len(self._vr)} frames where the container has "
                                f"{len(self.info)}; set video_backend: auto or pyav")
        self._set_timing(fps)

    def get(self, indices: list[int]) -> torch.Tensor:
        try:
            frames = torch.from_numpy(self._vr.get_batch(list(indices)).asnumpy())
        except Exception as e:
            raise HVLInputError(f"{self.path}: decord failed to decode frames {list(indices)[:4]}… ({_short(e)}); "
                                "set video_backend: auto or pyav") from None
        self._park()
        return frames

    def _park(self) -> None:
        """Stop decord's decoder thread between reads.

        ``get_batch`` queues packets faster than its decoder thread consumes them, and after it
        returns that thread goes on decoding (and colour-converting) the queued packets for up
        to a second, using a core that the transforms, the other loader workers or the model
        need (measured: ~0.5 core-seconds after a 4-frame read). A seek to frame 0 joins the
        thread and drops its queue; the next read seeks anyway, and from frame 0 decord skips
        its rewind-to-start step.
        """
        try:
            self._vr.seek(0)
        except Exception:  # only an optimisation: the frames are already read
            pass


class PyAVVideo(_Timing):
    """FFmpeg through PyAV: seeks to the keyframe before each wanted frame (only when that skips
    decoding), decodes forward and keeps the frames asked for, identified by their timestamps."""

    backend = "pyav"

    def __init__(self, path: Path, fps: float | None = None, size: tuple[int, int] | None = None,
                 info: StreamInfo | None = None, threads: int = 1):
        import av

        path = Path(path)
        self.path, self.info, self.size = path, info or stream_info(path), size
        self._set_timing(fps)
        try:
            self._box = av.open(str(path))
        except Exception as e:
            raise HVLInputError(f"{path}: cannot decode video ({_short(e)})") from None
        self._stream = self._box.streams.video[0]
        self._stream.thread_count = threads  # 1 like decord's reader: loader workers are the parallelism
        self._index = {int(t): i for i, t in enumerate(self.info.ticks)}
        self._frames = None          # the decode iterator, positioned after frame ``self._last``
        self._last = -1
        self._floor = 0              # frames before the keyframe sought to may be broken (open GOPs)

    def get(self, indices: list[int]) -> torch.Tensor:
        indices = [int(i) for i in indices]
        n = len(self.info)
        bad = [i for i in indices if not 0 <= i < n]
        if bad:
            raise HVLInputError(f"{self.path}: frame(s) {bad[:4]} out of range (video has {n} frames)")
        wanted, got = set(indices), {}
        try:
            for i in sorted(wanted):
                if i not in got:
                    self._decode_to(i, wanted, got)
        except HVLInputError:
            raise
        except Exception as e:
            raise HVLInputError(f"{self.path}: failed to decode frames {indices[:4]}… ({_short(e)})") from None
        return torch.from_numpy(np.stack([got[i] for i in indices]))

    def _decode_to(self, target: int, wanted: set[int], got: dict[int, np.ndarray]) -> None:
        keys = self.info.keyframes
        k = int(np.searchsorted(keys, target, side="right")) - 1
        if self._frames is None or target <= self._last or keys[k] > self._last:
            self._seek(k)
        while True:
            for frame in self._frames:
                i = self._index_of(frame)
                if i is None:
                    continue
                if i > target and self._last < self._floor:  # the seek landed past the target
                    break
                self._last = i
                if i in wanted and i >= self._floor and i not in got:
                    got[i] = self._to_array(frame)
                if i >= target:
                    return
            else:
                self._frames = None
                raise HVLInputError(f"{self.path}: frame {target} of {len(self.info)} does not decode "
                                    "(truncated file?)")
            if k == 0:
                raise HVLInputError(f"{self.path}: frame {target} is not reachable by seeking")
            k -= 1  # the demuxer's seek went past the keyframe: start one keyframe earlier
            self._seek(k)

    def _seek(self, k: int) -> None:
        key = int(self.info.keyframes[k])
        self._box.seek(int(self.info.ticks[key]), stream=self._stream, backward=True, any_frame=False)
        self._frames, self._last, self._floor = self._box.decode(self._stream), -1, key

    def _index_of(self, frame) -> int | None:
        ts = frame.pts if frame.pts is not None else frame.dts
        if ts is None:
            return None
        i = self._index.get(int(ts))
        if i is None:  # a decoder that rewrites timestamps: the nearest frame within half an interval
            j = int(np.clip(np.searchsorted(self.info.ticks, ts), 1, len(self.info) - 1)) if len(self.info) > 1 else 0
            cand = min({j - 1, j} & set(range(len(self.info))), key=lambda c: abs(int(self.info.ticks[c]) - ts))
            half = self.info.frame_interval / float(self.info.time_base) / 2
            i = cand if abs(int(self.info.ticks[cand]) - ts) <= half else None
        return i

    def _to_array(self, frame) -> np.ndarray:
        return frame_to_array(frame, self.size)

    def close(self) -> None:
        self._frames = None
        self._box.close()


def frame_to_array(frame, size: tuple[int, int] | None = None) -> np.ndarray:
    """A PyAV frame in RGB as a player shows it: rotated by the display matrix, then at ``size`` (h, w)."""
    k = round(frame.rotation / 90) % 4
    kw = {}
    if size:
        h, w = size if k % 2 == 0 else size[::-1]
        kw = {"width": w, "height": h}
    arr = frame.to_ndarray(format="rgb24", **kw)
    return np.ascontiguousarray(np.rot90(arr, k)) if k else arr


def choose_backend(path: str | Path, requested: str = "auto", size: tuple[int, int] | None = None) -> tuple[str, str]:
    """``(backend, why)``: what ``requested`` resolves to for ``path`` decoded at ``size``, and the reason."""
    if requested not in BACKENDS:
        raise HVLInputError(f"video_backend '{requested}' is not one of {list(BACKENDS)}")
    if requested != "auto":
        return requested, "requested"
    info = stream_info(path)
    st = Path(path).stat()
    return _auto_choice(info.path, st.st_size, st.st_mtime_ns, tuple(size) if size else None)


@lru_cache(maxsize=4096)
def _auto_choice(path: str, size: int, mtime_ns: int, out_size: tuple[int, int] | None) -> tuple[str, str]:
    info = stream_info(path)
    if info.codec not in DECORD_CODECS:
        return "pyav", f"decord does not read {info.codec} frame-exactly"
    if info.duration > DECORD_MAX_MINUTES * 60:
        return "pyav", (f"{info.duration / 60:.0f} min long: decord would hold ~16-20 MB per minute of video in "
                        f"memory (auto: decord up to {DECORD_MAX_MINUTES:g} min)")
    # decord opens it, counts the frames the container has, and converts the first and last frame at
    # this size (it fails on some output widths, e.g. 16, 24, 48, 72: measured with decord 0.6)
    try:
        v = DecordVideo(Path(path), size=out_size, info=info)
        v.get([0, len(v) - 1])
    except HVLInputError as e:
        why = str(e).split(": ", 1)[-1].split("; set video_backend")[0]
        return "pyav", why if why.startswith("decord") else f"decord: {why}"
    return "decord", f"decord reads {info.codec} frame-exactly and decodes this file"


def open_video(path: str | Path, fps: float | None = None, size: tuple[int, int] | None = None,
               backend: str = "auto"):
    """A decoder for ``path``: ``backend`` as chosen by :func:`choose_backend`."""
    name, _ = choose_backend(path, backend, size)
    info = stream_info(path)
    cls = DecordVideo if name == "decord" else PyAVVideo
    return cls(Path(path), fps=fps, size=size, info=info)
