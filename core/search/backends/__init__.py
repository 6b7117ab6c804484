"""Where an index's frame vectors are searched: one interface, several engines.

* ``faiss`` (default, embedded): hvl's own shard files (:mod:`hvl.core.search.store`), memory-mapped, with an
  approximate FAISS index chosen by measurement (:mod:`hvl.core.search.ann`).
* a vector database that scales out past one machine (see :mod:`.base` for the interface and the registry
  :data:`BACKENDS`): the index folder records which backend holds its vectors and where (``index.json``
  fields ``backend``, ``backend_url``, ``collection``), so `hvl search`, `hvl serve` and `hvl search-eval`
  work unchanged on either (a server only when ``--backend-url`` names it too: see :func:`.base.server_url`).
"""
from .base import BACKENDS, BackendUnreachable, SearchBackend, VideoHit, open_backend, server_url

__all__ = ["BACKENDS", "BackendUnreachable", "SearchBackend", "VideoHit", "open_backend", "server_url"]
