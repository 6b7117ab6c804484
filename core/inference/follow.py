"""Frames of a video that is still being recorded: the file is read as a stream while it grows, and it ends after a
quiet period in which it did not grow (``hvl predict --online``).

The decoder reads the file through :class:`GrowingFile`, a file object that, at the current end of the file, waits
for the recorder to append more instead of answering "end of file"; only when the file has not grown for
``quiet_seconds`` does it end, and the decoder then flushes its last frames. The file object is not seekable, so
FFmpeg demuxes it as a live stream and never looks for an index at its end. That works for containers written
front to back: MPEG-TS (every frame as soon as it is encoded), fragmented MP4 (``-movflags
frag_keyframe+empty_moov``: one fragment per keyframe interval) and Matroska with short clusters. A plain MP4 keeps
its index (the ``moov`` atom) at the end and cannot be read before it is finished: such a file is decoded once the
recorder stops (:func:`follow_frames` falls back to it, with a warning), so its labels come only at the end.

A recording cut off mid-frame (the recorder killed) loses that frame only: a packet that does not decode ends the
stream, and every frame before it is kept.
"""
from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Self

import numpy as np

from ..errors import HVLInputError

__all__ = ["DecodedFrame", "GrowingFile", "StreamClock", "follow_frames", "sample_at_fps"]

# FFmpeg reads up to 5 s of a stream before its first frame to learn what it holds: of a live recording, the first
# 5 s would then be labelled only 5 s late. The codec's parameters are all a decoder needs.
LIVE_PROBE = {"analyzeduration": "0", "probesize": "32", "fpsprobesize": "0"}
POLL_SECONDS = 0.05  # how often the end of a growing file is looked at: far below a frame interval at 1-25 fps


class GrowingFile:
    """A read-only, non-seekable view of ``path`` whose end waits for the file to grow; it ends once the file has
    not grown for ``quiet_seconds`` (and shrinking, i.e. the file replaced or truncated, is an error)."""

    def __init__(self, path: str | Path, quiet_seconds: float, poll_seconds: float = POLL_SECONDS,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.path, self.quiet, self.poll = Path(path), float(quiet_seconds), float(poll_seconds)
        self.clock, self.sleep = clock, sleep
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self.offset = 0
        self.last_growth = clock()
        self.ended = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False  # a live stream: the demuxer must not look for an index at the (moving) end

    def read(self, n: int = -1) -> bytes:
        n = 1 << 16 if n is None or n < 0 else n
        while True:
            data = os.pread(self._fd, n, self.offset)
            if data:
                self.offset += len(data)
                self.last_growth = self.clock()
                return data
            size = os.fstat(self._fd).st_size
            if size < self.offset:
                raise HVLInputError(f"{self.path}: the file shrank from {self.offset} to {size} bytes while it was "
                                    "read; the recorder must only append to it (record to a new file)")
            if self.clock() - self.last_growth >= self.quiet:
                self.ended = True
                return b""
            self.sleep(self.poll)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_for_file(path: Path, quiet_seconds: float, poll_seconds: float = POLL_SECONDS) -> None:
    """Until ``path`` exists and is not empty (a recorder about to start); an error after ``quiet_seconds``."""
    start = time.monotonic()
    while not (path.is_file() and path.stat().st_size > 0):
        if path.exists() and not path.is_file():
            raise HVLInputError(f"{path}: --online reads one video file that a recorder writes; this is not a file")
        if time.monotonic() - start >= quiet_seconds:
            raise HVLInputError(f"{path}: no video appeared within --quiet-seconds {quiet_seconds:g}; start the "
                                "recorder first, or give a longer --quiet-seconds")
        time.sleep(poll_seconds)


@dataclass
class DecodedFrame:
    """One decoded frame: its presentation time (seconds from the first frame), its pixels (RGB uint8 ``[H, W, 3]``
    at the asked size, as the project's decoders give them) and when it was decoded (``time.perf_counter``)."""

    pts: float
    tick: int
    time_base: Fraction
    rgb: np.ndarray
    decoded_at: float


def _frame_array(frame, size: tuple[int, int] | None) -> np.ndarray:
    from ..data.decoders import frame_to_array

    return frame_to_array(frame, size)


def _decode(box, size: tuple[int, int] | None, first: list[int]) -> Iterator[DecodedFrame]:
    import av

    stream = box.streams.video[0]
    stream.thread_count, stream.thread_type = 1, "SLICE"  # each frame out as soon as it decodes (frame threads delay)
    tb = Fraction(stream.time_base)
    packets = box.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except (av.error.FFmpegError, EOFError):  # a cut-off container: keep what decoded
            break
        try:
            frames = packet.decode()
        except av.error.FFmpegError:  # a frame cut off mid-packet (the recorder killed): the stream ends here
            break
        for frame in frames:
            ts = frame.pts if frame.pts is not None else frame.dts
            if ts is None:
                continue
            if not first:
                first.append(int(ts))
            yield DecodedFrame(float((int(ts) - first[0]) * tb), int(ts), tb, _frame_array(frame, size),
                               time.perf_counter())


def follow_frames(path: str | Path, size: tuple[int, int] | None, quiet_seconds: float,
                  poll_seconds: float = POLL_SECONDS) -> Iterator[DecodedFrame]:
    """Each frame of the growing video ``path`` in presentation order, as soon as it decodes; ends after the file
    has been quiet for ``quiet_seconds``. Not a video (or a plain MP4 that only decodes finished): decoded once the
    recorder has stopped; no frame at all: :class:`HVLInputError` naming the file."""
    import av

    path = Path(path)
    wait_for_file(path, quiet_seconds, poll_seconds)
    first: list[int] = []
    yielded = 0
    with GrowingFile(path, quiet_seconds, poll_seconds) as live:
        try:
            with av.open(live, mode="r", options=LIVE_PROBE) as box:
                if not box.streams.video:
                    raise HVLInputError(f"{path}: the file has no video stream")
                for f in _decode(box, size, first):
                    yielded += 1
                    yield f
        except av.error.FFmpegError:
            if yielded:
                return
        if yielded:
            return
        while not live.ended:  # read to the end of the recording before decoding it whole
            live.read(1 << 20)
    warnings.warn(f"{path}: it does not decode while it is written (a plain MP4 keeps its index at the end); "
                  "labelled only now that it is finished. Record MPEG-TS (-f mpegts) or fragmented MP4 (-movflags "
                  "frag_keyframe+empty_moov) to be labelled while recording", stacklevel=2)
    try:
        with av.open(str(path)) as box:
            if not box.streams.video:
                raise HVLInputError(f"{path}: the file has no video stream")
            yield from _decode(box, size, first)
            yielded = len(first)
    except av.error.FFmpegError as e:
        raise HVLInputError(f"{path}: cannot decode video ({str(e).splitlines()[0][:200]}); record MPEG-TS "
                            "(-f mpegts) or fragmented MP4 (-movflags frag_keyframe+empty_moov)") from None
    if not yielded:
        raise HVLInputError(f"{path}: no frame of the recording decodes")


@dataclass
class StreamClock:
    """The frames seen so far: their timestamps, to tell the stream's frame rate and duration as the offline
    decoders do (:class:`hvl.core.data.decoders.StreamInfo`, :class:`hvl.core.data.video.Video`)."""

    ticks: list[int] = field(default_factory=list)
    time_base: Fraction = Fraction(1, 1)

    def add(self, tick: int) -> None:
        if not self.ticks or tick > self.ticks[-1]:  # two frames at one pts: a player shows one picture
            self.ticks.append(tick)

    def _info(self):
        from ..data.decoders import StreamInfo

        t = np.asarray(self.ticks, np.int64)
        return StreamInfo(path="", container="", codec="", width=0, height=0, rotation=0, pix_fmt="", ticks=t,
                          keyframes=np.zeros(1, np.int64), time_base=self.time_base, nominal_fps=0.0)

    @property
    def num_frames(self) -> int:
        return len(self.ticks)

    @property
    def fps(self) -> float:
        return self._info().fps if self.ticks else 0.0

    @property
    def duration(self) -> float:
        """As :attr:`hvl.core.data.video.Video.duration`: frames / rate for a constant rate, else until the last
        frame stops being shown."""
        info = self._info()
        n = len(info)
        if info.constant_rate or n < 2:
            return n / info.fps
        return float(info.pts[-1] + (info.pts[-1] - info.pts[-2]))


def sample_at_fps(frames: Iterator[DecodedFrame], fps: float, clock: StreamClock | None = None
                  ) -> Iterator[tuple[float, DecodedFrame]]:
    """``(t, frame)`` for each time ``t = k / fps`` as soon as it is known which frame is presented at ``t`` (the
    last one with ``pts <= t``: known once a later frame has decoded); at the end, the times before the video's
    duration that are left. The offline selection (:meth:`hvl.core.data.video.Video.index_at`)."""
    clock = clock if clock is not None else StreamClock()
    k, prev = 0, None
    for f in frames:
        if prev is None:
            clock.time_base = f.time_base
        clock.add(f.tick)
        while prev is not None and k / fps + 1e-6 < f.pts:
            yield k / fps, prev
            k += 1
        if prev is None or f.pts > prev.pts:
            prev = f
    if prev is None:
        return
    last = math.ceil(clock.duration * fps - 1e-9)
    while k < last:
        yield k / fps, prev
        k += 1
