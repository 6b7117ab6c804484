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

    def propose(self, query: np.ndarray, videos: int, per_video: int, group: str | None = None,
                pool: int | None = None, frames: int = 0) -> list[tuple[str, float]]:
        """`hvl search`'s candidate stage: (video_id, time) of the frames nearest ``query`` of at least ``videos``
        distinct videos, and of every video among the ``frames`` nearest frames, at most ``per_video`` a video,
        each video's best first. Grouped by video, not a fixed number of frames (a few long videos would fill
        that); hvl scores them exactly and rescores the best videos whole
        (:func:`hvl.core.search.candidates.backend_videos`)."""

    def count(self) -> int:
        """Frames stored."""

    def optimize(self) -> None:
        """Build or refresh the approximate index after adds (blocking; a no-op where the engine does it on its
        own). Results are correct without it, only slower: `hvl index` calls it once at the end."""

    def close(self) -> None: ...


class BackendUnreachable(HVLInputError):
    """The server the user named does not answer as the backend's server does (down, or another kind of server)."""


def server_url(index_dir: str | Path, header: dict[str, Any], given: str | None) -> str | None:
    """The server an index's vectors are reached at: the one the user named (``--backend-url``), never one that
    a file in the index folder names. An index folder is shared; the server it names would receive every query
    vector and the user's ``QDRANT_API_KEY``. So ``index.json``'s ``backend_url`` is only checked against the
    command line: a URL it names and the user did not is refused, never contacted."""
    where = Path(index_dir) / "index.json"
    named = header.get("backend_url") or None
    if named is not None and given is None:
        raise HVLInputError(f"{where}: field 'backend_url' names the server {str(named)[:200]!r}; hvl does not "
                            "connect to a server that a file in the index folder names (it would receive your "
                            f"queries and QDRANT_API_KEY). If you trust it, pass --backend-url {str(named)[:200]}")
    if given is not None and given != named:
        have = f"names the server {str(named)[:200]!r}" if named else "names no server (its vectors are local)"
        raise HVLInputError(f"{where}: field 'backend_url' {have}, but --backend-url is {given!r}; pass the "
                            "index's own server, or index into the other server with `hvl index --backend-url`")
    return given


def open_backend(index_dir: str | Path, header: dict[str, Any], create: bool = False,
                 backend_url: str | None = None) -> SearchBackend:
    """The backend ``header['backend']`` names, for the index at ``index_dir``; a server only at ``backend_url``
    (the user's, see :func:`server_url`)."""
    name = header.get("backend", "faiss")
    if name not in BACKENDS:
        raise HVLInputError(f"{Path(index_dir) / 'index.json'}: field 'backend' is {name!r}; this hvl knows "
                            f"{['faiss', *sorted(BACKENDS)]}")
    url = server_url(index_dir, header, backend_url)
    return importlib.import_module(BACKENDS[name]).open(Path(index_dir), header, create, url)
