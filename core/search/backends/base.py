"""The interface every search backend implements, and how an index folder names its backend.

A backend stores one vector per indexed frame with its payload (``video_id``, ``group``, ``t``) and answers
the question hvl's `max` ranking asks: the ``k`` videos whose best frame is nearest the query, each with its
``moments`` best frames. Videos are added and deleted whole (a video that moved or disappeared is deleted,
then added under its new group), so a backend never holds half a video.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ...errors import HVLInputError

# name -> module defining ``open(index_dir, header, create) -> SearchBackend``; imported on use (each pulls its client)
BACKENDS: dict[str, str] = {
    "qdrant": "hvl.core.search.backends.qdrant",  # Qdrant Edge in-process, or a Qdrant server (``backend_url``)
}


@dataclass
class VideoHit:
    """One ranked video: its best frame's score and time, and its best ``moments`` frames (time, score)."""

    video_id: str
    group: str
    score: float
    best_time: float
    moments: list[tuple[float, float]] = field(default_factory=list)
    path: str = ""  # the video file as indexed (``videos[i]['path']`` given to ``add``), when the backend keeps it


class SearchBackend(Protocol):
    name: str

    def add(self, videos: list[dict[str, Any]], emb: np.ndarray) -> None:
        """Add whole videos: ``videos[i]`` = ``{video_id, group, key, path, t: [seconds]}`` in row order,
        ``emb`` the L2-normalised frame vectors ``[sum(len(t)), dim]`` in the same order."""

    def delete(self, video_ids: list[str]) -> None:
        """Remove every frame of these videos (unknown ids are ignored)."""

    def search(self, query: np.ndarray, k: int = 10, moments: int = 3, group: str | None = None) -> list[VideoHit]:
        """The ``k`` videos with the best frame (inner product with ``query``), best first; ``group``: only that group."""

    def count(self) -> int:
        """Frames stored."""

    def optimize(self) -> None:
        """Build or refresh the approximate index after adds (blocking; a no-op where the engine does it on its
        own). Results are correct without it, only slower: `hvl index` calls it once at the end."""

    def close(self) -> None: ...


def open_backend(index_dir: str | Path, header: dict[str, Any], create: bool = False) -> SearchBackend:
    """The backend ``header['backend']`` names, for the index at ``index_dir``."""
    name = header.get("backend", "faiss")
    if name not in BACKENDS:
        raise HVLInputError(f"{Path(index_dir) / 'index.json'}: field 'backend' is {name!r}; this hvl knows "
                            f"{['faiss', *sorted(BACKENDS)]}")
    return importlib.import_module(BACKENDS[name]).open(Path(index_dir), header, create)
