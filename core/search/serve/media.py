"""Pictures in and out: thumbnails of indexed moments (decoded once, cached on disk) and uploaded query images."""
from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path

import numpy as np

from ...io import atomic_write_bytes
from .files import ServedFile, ServedFolder

THUMB_MAX_SIDE = 320
UPLOAD_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
# A query image meets a model whose input is a few hundred pixels a side: a 4K screenshot (8.3 Mpx) is plenty.
# Memory per decode at the cap, measured (/proc peak RSS): a PNG ~90 MB (one decoded copy at 4 bytes a pixel, plus
# one band), a JPEG ~15 MB (decoded at reduced scale), a WebP ~260 MB (its decoder holds the frame twice before
# Pillow copies it); at most DECODE_SLOTS decode at once, so a flood of uploads costs a bounded amount, where
# 40 Mpx images cost ~0.7 GB each without a bound on how many.
MAX_UPLOAD_PIXELS = 4096 * 4096
DECODE_SLOTS = 2
UPLOAD_MAX_SIDE = 1024  # decoded images are reduced to this before they reach the model's own resize
_decoding = threading.BoundedSemaphore(DECODE_SLOTS)
_libc = None  # glibc, once looked up (False: not glibc)


class UploadError(ValueError):
    """An uploaded file that is not a usable picture (the API answers 415 or 422 with the message)."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def decode_upload(data: bytes, content_type: str | None) -> np.ndarray:
    """``[H, W, 3]`` uint8 from a PNG / JPEG / WebP upload; the declared type must match the content.

    The size is read from the header before anything is decoded; a JPEG is decoded at a reduced scale
    (``draft``) when it is larger than needed; every image leaves at most ``UPLOAD_MAX_SIDE`` a side."""
    from PIL import Image, UnidentifiedImageError

    if content_type not in UPLOAD_TYPES:
        # the client's text is not echoed: the reply names only the accepted types
        raise UploadError(f"this upload type is not accepted; send one of {sorted(UPLOAD_TYPES)}", 415)
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != UPLOAD_TYPES[content_type]:
                raise UploadError(f"the upload says {content_type} but holds {im.format or 'no known'} image data")
            if im.width * im.height > MAX_UPLOAD_PIXELS:
                raise UploadError(f"image is {im.width}x{im.height}; at most {MAX_UPLOAD_PIXELS} pixels are accepted "
                                  f"(e.g. 4096x4096); scale it down first")
            with _decoding:
                try:
                    return _reduced_rgb(im)
                finally:
                    release_freed_memory()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise UploadError(f"the upload is not a readable {content_type} image ({str(e)[:200]})") from None


COLOUR_BANDS = {"RGB": 3, "RGBA": 3, "RGBX": 3, "L": 1, "LA": 1}  # modes whose first bands are the picture


def _reduced_rgb(im) -> np.ndarray:
    """``im`` decoded as RGB, at most ``UPLOAD_MAX_SIDE`` a side: the pixels ``im.convert("RGB").thumbnail(...)``
    gives, without that full-size RGB copy. The colour bands are reduced one at a time (the alpha band is
    dropped, as ``convert`` drops it), so the decoded picture is the one full-size copy, plus one band of a
    quarter of its size; other modes (a palette) are converted first."""
    from PIL import Image

    size = (UPLOAD_MAX_SIDE, UPLOAD_MAX_SIDE)
    if im.format == "JPEG":
        im.draft("RGB", size)  # decoded at 1/2, 1/4 or 1/8 scale
    im.load()
    if im.mode not in COLOUR_BANDS:
        converted = im.convert("RGB")
        im.close()  # frees the decoded picture's pixels
        im = converted
    bands = []
    for i in range(COLOUR_BANDS[im.mode]):
        band = im.getchannel(i)
        band.thumbnail(size, Image.Resampling.BILINEAR)
        bands.append(band)
    im.close()
    rgb = Image.merge("RGB", bands) if len(bands) == 3 else bands[0].convert("RGB")
    return np.array(rgb, dtype=np.uint8)


def release_freed_memory() -> None:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    A decoded picture is freed at once, but glibc keeps freed blocks under 32 MB (Pillow allocates pictures in
    16 MB blocks) in the arena of the thread that freed them, where other threads of the server's pool cannot
    reuse them. Measured before this (and the band-wise reduction): a burst of 8 uploads at the pixel cap left
    an idle server 0.65 GB above where it started, 24 RGBA uploads 1.2 GB; 3 x 24 RGBA decodes in one process
    hold 0.11 GB without it and 0.01 GB with it (and peak 0.1 GB lower)."""
    global _libc
    if _libc is None:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("c")
        lib = ctypes.CDLL(name) if name else None
        _libc = lib if lib is not None and hasattr(lib, "malloc_trim") else False
    if _libc:
        _libc.malloc_trim(0)


def jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    from PIL import Image

    im = Image.fromarray(rgb)
    im.thumbnail((THUMB_MAX_SIDE, THUMB_MAX_SIDE))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


class ThumbnailCache:
    """``<dir>/<sha1(video key, time)>.jpg``: each moment decoded once, whichever request asks first.

    File names are hashes of index entries, never request text; a per-file lock makes concurrent
    requests for the same moment wait for one decode instead of each decoding it."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.decoded = 0  # frames decoded (not served from the cache), for tests

    def path_for(self, key: str, t: float) -> Path:
        return self.folder / f"{hashlib.sha1(f'{key}|{t:.3f}'.encode()).hexdigest()[:24]}.jpg"

    @staticmethod
    def _cached(out: Path) -> bool:
        """A thumbnail this cache wrote: a regular file, never a link (one planted in a shared folder would
        serve any file as a thumbnail; writing replaces it)."""
        return out.is_file() and not out.is_symlink()

    def get(self, key: str, video: ServedFile, t: float) -> Path:
        out = self.path_for(key, t)
        if self._cached(out):
            return out
        with self._guard:
            lock = self._locks.setdefault(out.name, threading.Lock())
        with lock:
            if not self._cached(out):
                from ...data.video import Video, open_source

                os.close(ServedFolder.open(video))  # still the file admitted at startup
                v = Video(open_source(str(video.path)))
                frame = v.source.get([v.index_at(t)])[0]
                atomic_write_bytes(out, jpeg(np.asarray(frame, dtype=np.uint8)))
                self.decoded += 1
        return out
