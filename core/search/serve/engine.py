"""The index and the model, loaded once; every embedding goes through one lock.

Hugging Face fast tokenizers refuse concurrent use ("Already borrowed"), and two requests' forward passes
would only compete for the same cores, so text and image queries are embedded one at a time while
the (numpy) search itself runs in parallel."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import HVLInputError
from ..query import embed_queries, load_index, search
from ..store import FrameIndex, file_sha256

TEXT_CACHE_LIMIT = 10_000  # query strings kept by the text encoder's cache before it is emptied


class SearchEngine:
    """``search_text`` / ``search_frame`` / ``search_image``: `hvl search` over one loaded index."""

    def __init__(self, idx: FrameIndex, model: Any, image_size: int):
        self.idx, self.model = idx, model
        self.level = str(idx.header["level"])
        self.image_size = int(image_size)
        self.lock = threading.Lock()
        self.by_id = {v["video_id"]: i for i, v in enumerate(idx.videos)}
        self.games = sorted({v["game"] for v in idx.videos})
        self.text_calls = 0  # encoder passes, so that tests can hold "once per query" to account

    @classmethod
    def load(cls, index: str | Path, ckpt: str | Path | None = None, exact: bool = False) -> SearchEngine:
        """The index at ``index`` and the checkpoint it was built with (or ``ckpt``, if it is the same file)."""
        import torch

        from ...models.checkpoint import load_model

        idx = load_index(index, use_ann=not exact)
        path = Path(ckpt or idx.header["checkpoint"])
        if not path.is_file():
            raise HVLInputError(f"{path}: the index's checkpoint is gone; pass the same model with --ckpt")
        if ckpt and file_sha256(path) != idx.header["checkpoint_sha256"]:
            raise HVLInputError(f"{path}: not the checkpoint the index was built with (sha256 differs, see "
                                f"{Path(index) / 'index.json'}); its embeddings would not match the frames")
        model, _ = load_model(path, map_location="cuda" if torch.cuda.is_available() else "cpu")
        return cls(idx, model, int(idx.header.get("image_size") or 64))

    # ------------------------------------------------------------------ query embeddings
    def embed_text(self, text: str) -> np.ndarray:
        with self.lock:
            self.text_calls += 1
            q = embed_queries(self.model, [text], self.level)[0]
            # a frozen text encoder caches every string it embeds (for training); a server's queries never end
            text_encoder = getattr(self.model, "text", None)
            if len(getattr(text_encoder, "_cache", ())) > TEXT_CACHE_LIMIT:
                text_encoder.clear_cache()
            return q

    def embed_image(self, rgb: np.ndarray) -> np.ndarray:
        """``[H, W, 3]`` uint8 → the L2-normalised frame embedding, preprocessed as `hvl index` does its frames."""
        import torch

        from ...data.transforms import FrameTransform

        frames = FrameTransform(self.image_size, train=False)(torch.from_numpy(np.array(rgb, dtype=np.uint8))[None])
        with self.lock, torch.no_grad():
            e = self.model.embed_frames(frames.to(self.model.device), self.level).float()
            return torch.nn.functional.normalize(e, dim=-1)[0].cpu().numpy()

    def frame_row(self, video_id: str, t: float) -> int:
        """The index row of ``video_id``'s frame at ``t`` (one of its indexed times, to a microsecond)."""
        v = self.video(video_id)
        times = self.idx.row_time[v["start"]:v["start"] + v["n"]]
        hit = np.flatnonzero(np.abs(times - t) < 1e-3)
        if not len(hit):
            raise KeyError(f"video '{video_id}' has no indexed frame at t={t:g} s; its frames are at "
                           f"{[round(float(x), 3) for x in times[:8]]}{' ...' if len(times) > 8 else ''}")
        return int(v["start"] + hit[0])

    def video(self, video_id: str) -> dict[str, Any]:
        if video_id not in self.by_id:
            raise KeyError(f"video '{video_id}' is not in the index")
        return self.idx.videos[self.by_id[video_id]]

    # ------------------------------------------------------------------ search
    def search(self, q: np.ndarray, k: int, agg: str, topk: int, pool: int, game: str | None) -> dict[str, Any]:
        res = search(self.idx, q, k=k, agg=agg, topk=topk, pool=pool, game=game or None)
        for r in res["results"]:
            r["clip"] = Path(r.pop("path")).name  # the page needs no server path
        return res
