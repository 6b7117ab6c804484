"""Pictures in and out: thumbnails of indexed moments (decoded once, cached on disk) and uploaded query images."""
from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path

import numpy as np

from ...io import atomic_write_bytes

THUMB_MAX_SIDE = 320
UPLOAD_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
MAX_UPLOAD_PIXELS = 40_000_000  # a decompression bomb is refused before it is decoded


class UploadError(ValueError):
    """An uploaded file that is not a usable picture (the API answers 415 or 422 with the message)."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def decode_upload(data: bytes, content_type: str | None) -> np.ndarray:
    """``[H, W, 3]`` uint8 from a PNG / JPEG / WebP upload; the declared type must match the content."""
    from PIL import Image, UnidentifiedImageError

    if content_type not in UPLOAD_TYPES:
        raise UploadError(f"upload type '{content_type}' is not accepted; send one of {sorted(UPLOAD_TYPES)}", 415)
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != UPLOAD_TYPES[content_type]:
                raise UploadError(f"the upload says {content_type} but holds {im.format or 'no known'} image data")
            if im.width * im.height > MAX_UPLOAD_PIXELS:
                raise UploadError(f"image is {im.width}x{im.height}; at most {MAX_UPLOAD_PIXELS} pixels are accepted")
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise UploadError(f"the upload is not a readable {content_type} image ({e})") from None


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

    def get(self, key: str, video_path: str, t: float) -> Path:
        out = self.path_for(key, t)
        if out.is_file():
            return out
        with self._guard:
            lock = self._locks.setdefault(out.name, threading.Lock())
        with lock:
            if not out.is_file():
                from ...data.video import Video, open_source

                v = Video(open_source(video_path))
                frame = v.source.get([v.index_at(t)])[0]
                atomic_write_bytes(out, jpeg(np.asarray(frame, dtype=np.uint8)))
                self.decoded += 1
        return out
