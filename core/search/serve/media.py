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
# Memory per decode is ~4 bytes a pixel (~70 MB at the cap) and at most DECODE_SLOTS decode at once, so a flood
# of uploads costs a bounded amount, where 40 Mpx images cost ~0.7 GB each without a bound on how many.
MAX_UPLOAD_PIXELS = 4096 * 4096
DECODE_SLOTS = 2
UPLOAD_MAX_SIDE = 1024  # decoded images are reduced to this before they reach the model's own resize
_decoding = threading.BoundedSemaphore(DECODE_SLOTS)


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
        raise UploadError(f"upload type '{content_type}' is not accepted; send one of {sorted(UPLOAD_TYPES)}", 415)
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != UPLOAD_TYPES[content_type]:
                raise UploadError(f"the upload says {content_type} but holds {im.format or 'no known'} image data")
            if im.width * im.height > MAX_UPLOAD_PIXELS:
                raise UploadError(f"image is {im.width}x{im.height}; at most {MAX_UPLOAD_PIXELS} pixels are accepted "
                                  f"(e.g. 4096x4096); scale it down first")
            with _decoding:
                if im.format == "JPEG":
                    im.draft("RGB", (UPLOAD_MAX_SIDE, UPLOAD_MAX_SIDE))
                rgb = im.convert("RGB")
                if max(rgb.size) > UPLOAD_MAX_SIDE:
                    rgb.thumbnail((UPLOAD_MAX_SIDE, UPLOAD_MAX_SIDE), Image.Resampling.BILINEAR)
                return np.asarray(rgb, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise UploadError(f"the upload is not a readable {content_type} image ({str(e)[:200]})") from None


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

    def get(self, key: str, video: ServedFile, t: float) -> Path:
        out = self.path_for(key, t)
        if out.is_file():
            return out
        with self._guard:
            lock = self._locks.setdefault(out.name, threading.Lock())
        with lock:
            if not out.is_file():
                from ...data.video import Video, open_source

                os.close(ServedFolder.open(video))  # still the file admitted at startup
                v = Video(open_source(str(video.path)))
                frame = v.source.get([v.index_at(t)])[0]
                atomic_write_bytes(out, jpeg(np.asarray(frame, dtype=np.uint8)))
                self.decoded += 1
        return out
