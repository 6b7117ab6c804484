"""Frame features of a frozen frame encoder, computed once and read by training instead of decoding video.

CLIP4Clip and CLIPxGamePhysics users pre-extract frame features for the same reason: when the image tower does
not train, decoding, resizing and a ViT forward per frame per epoch is wasted work. One memory-mapped float16
``.npy`` per video holds the features of exactly the frames the level schedule reads (sampling is
deterministic: the centres of equal bins), with a sorted ``.idx.npy`` of their frame indices beside it.

The cache lives in ``<root>/<key>/``, ``key`` a hash of the encoder's weights and the preprocessing (both also
written to ``key.json``): another model or other preprocessing is another folder, so a stale feature is never
read. Each video's files are written to temporary names and renamed, the index last: an interrupted build
leaves whole videos only, and a re-run computes just the missing ones.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from ..errors import HVLInputError
from ..io import read_npy, write_json, write_npy

__all__ = ["FeatureCache", "cache_key"]


def cache_key(encoder_fingerprint: str, preprocess: dict[str, Any]) -> str:
    blob = json.dumps({"encoder": encoder_fingerprint, "preprocess": preprocess}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class FeatureCache:
    def __init__(self, root: str | Path, encoder_fingerprint: str, preprocess: dict[str, Any]):
        self.key = cache_key(encoder_fingerprint, preprocess)
        self.dir = Path(root) / self.key
        self.dir.mkdir(parents=True, exist_ok=True)
        if not (self.dir / "key.json").is_file():
            write_json(self.dir / "key.json", {"encoder": encoder_fingerprint, "preprocess": preprocess})
        self._open: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _paths(self, video_id: str) -> tuple[Path, Path]:
        safe = hashlib.sha256(video_id.encode()).hexdigest()[:20]  # ids may hold '/' or other odd characters
        return self.dir / f"{safe}.npy", self.dir / f"{safe}.idx.npy"

    def has(self, video_id: str, indices: Iterable[int]) -> bool:
        feats, idx = self._paths(video_id)
        if not idx.is_file() or not feats.is_file():
            return False
        have = read_npy(idx)
        return bool(np.isin(np.fromiter(indices, np.int64), have).all())

    def build(self, videos: dict[str, tuple[Any, list[int]]], read: Callable[[Any, list[int]], torch.Tensor],
              encode: Callable[[torch.Tensor], torch.Tensor], chunk: int = 64, progress: bool = True) -> dict[str, int]:
        """``videos``: id → (source, frame indices needed); ``read(source, indices)`` → preprocessed frames
        ``[n, 3, H, W]``; ``encode`` → features ``[n, D]``. Videos already complete are skipped."""
        from tqdm.auto import tqdm

        built = skipped = 0
        for vid, (src, needed) in tqdm(sorted(videos.items()), desc="feature cache", unit="video",
                                       disable=not progress):
            needed = sorted(set(needed))
            if self.has(vid, needed):
                skipped += 1
                continue
            parts = []
            with torch.no_grad():
                for i in range(0, len(needed), chunk):
                    parts.append(encode(read(src, needed[i:i + chunk])).float().cpu())
            feats, idx = self._paths(vid)
            write_npy(feats, torch.cat(parts).numpy().astype(np.float16))
            write_npy(idx, np.asarray(needed, np.int64))  # last: it commits the video
            self._open.pop(vid, None)
            built += 1
        return {"built": built, "reused": skipped, "dir": str(self.dir)}

    def get(self, video_id: str, indices: list[int]) -> torch.Tensor:
        """Features ``[T, D]`` (float32) of ``indices``, read from the memory map."""
        if video_id not in self._open:
            feats, idx = self._paths(video_id)
            if not idx.is_file():
                raise HVLInputError(f"{self.dir}: no cached features for video '{video_id}'; the cache was built "
                                    "for other data: delete the folder to rebuild it")
            self._open[video_id] = (read_npy(feats, mmap=True), read_npy(idx))
        feats, have = self._open[video_id]
        pos = np.searchsorted(have, indices)
        if (pos >= len(have)).any() or not np.array_equal(have[np.minimum(pos, len(have) - 1)], indices):
            raise HVLInputError(f"{self.dir}: video '{video_id}' lacks cached features of frames {indices[:4]}...; "
                                "the schedule changed since the cache was built: delete the folder to rebuild it")
        return torch.from_numpy(np.asarray(feats[pos], np.float32))
