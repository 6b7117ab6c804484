"""A vector database kept equal to the index's committed shards.

The shards stay the index's record (crash-safe commits, resume, pruning, exact rescoring): a backend other
than ``faiss`` is a mirror of them that answers "which videos are near this query" at scale. After every
``hvl index`` run (on one process, after all ranks committed):

1. read ``<index>/backend.json``: the shards already mirrored and the video ids each held;
2. delete from the backend every video that a mirrored shard held and no live shard holds (pruned: moved or gone);
3. add every live shard not mirrored yet, whole videos at a time (a re-added video overwrites itself, so a run
   killed mid-way is repaired by the next one);
4. write ``backend.json`` atomically, then let the backend build its index (``optimize``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...io import read_json, write_json
from ..store import committed_shards, group_of, read_shard_embeddings, read_shard_meta
from .base import open_backend

STATE = "backend.json"


def _state(root: Path) -> dict[str, list[str]]:
    path = root / STATE
    if not path.is_file():
        return {}
    state = read_json(path, what="the record of the shards mirrored to the backend",
                      fix="delete it: the next `hvl index` mirrors every shard again")
    return {k: list(v) for k, v in state.get("shards", {}).items()}


def mirror(index_dir: str | Path, header: dict[str, Any], backend_url: str | None = None) -> dict[str, Any]:
    """Bring the backend ``header`` names (a server: at ``backend_url``, the user's) up to the committed shards;
    returns what was added and deleted."""
    root = Path(index_dir)
    done = _state(root)
    live = committed_shards(root)
    metas = {name: read_shard_meta(root, name) for name in live}
    live_ids = {m["video_id"] for ms in metas.values() for m in ms}
    gone = sorted({v for name, ids in done.items() if name not in metas for v in ids} - live_ids)
    backend = open_backend(root, header, create=True, backend_url=backend_url)
    added = 0
    try:
        if gone:
            backend.delete(gone)
        for name in live:
            if name in done:
                continue
            emb = np.asarray(read_shard_embeddings(root, name, mmap=True), np.float32)
            videos = [{"video_id": m["video_id"], "group": group_of(m), "key": m["key"], "path": m["path"],
                       "t": m["t"]} for m in metas[name]]
            backend.add(videos, emb)
            added += len(videos)
        write_json(root / STATE, {"backend": header.get("backend"), "shards": {
            name: [m["video_id"] for m in metas[name]] for name in live}})
        if added or gone:
            backend.optimize()
        frames = backend.count()
    finally:
        backend.close()
    return {"backend": header.get("backend"), "added_videos": added, "deleted_videos": len(gone), "frames": frames}
