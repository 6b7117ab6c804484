"""The index and the model, loaded once; every embedding goes through one lock.

Hugging Face fast tokenizers refuse concurrent use ("Already borrowed"), and two requests' forward passes
would only compete for the same cores, so text and image queries are embedded one at a time while
the (numpy) search itself runs in parallel."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ...data.transforms import Preprocess
from ..query import embed_queries, load_index, model_for_index, search
from ..store import FrameIndex
from .files import FileGone, ServedFile, ServedFolder

TEXT_CACHE_LIMIT = 10_000  # query strings kept by the text encoder's cache before it is emptied


def preprocess_of_header(header: dict[str, Any]) -> Preprocess:
    """The frame preprocessing the index was built with (`hvl search` has checked it is the model's)."""
    if header.get("preprocess"):
        return Preprocess.model_validate(header["preprocess"])
    return Preprocess.square(int(header.get("image_size") or 64))


class SearchEngine:
    """``search_text`` / ``search_frame`` / ``search_image``: `hvl search` over one loaded index."""

    def __init__(self, idx: FrameIndex, model: Any, preprocess: Preprocess | None = None,
                 videos: ServedFolder | None = None):
        self.idx, self.model = idx, model
        self.level = str(idx.header["level"])
        self.preprocess = preprocess or preprocess_of_header(idx.header)
        self.lock = threading.Lock()
        self.by_id = {v["video_id"]: i for i, v in enumerate(idx.videos)}
        self.groups = sorted({v["group"] for v in idx.videos})
        self.text_calls = 0  # encoder passes, so that tests can hold "once per query" to account
        self.folder = videos or ServedFolder(idx.header.get("videos_root") or idx.root,
                                             f"{idx.root / 'index.json'} field 'videos_root'")
        self.files: dict[str, ServedFile | str] = {}  # video id -> the file admitted at startup, or why not
        for v in idx.videos:
            # a folder given on the command line holds the videos under their keys (a shared index's own paths
            # are the machine's that built it)
            path = self.folder.root / v["key"] if videos is not None else v["path"]
            try:
                self.files[v["video_id"]] = self.folder.admit(path)
            except FileGone as e:
                self.files[v["video_id"]] = str(e)

    @classmethod
    def load(cls, index: str | Path, ckpt: str | Path | None = None, model: str | None = None,
             text_model: str | None = None, trust_remote_code: bool = False, exact: bool = False,
             videos: str | Path | None = None, backend_url: str | None = None) -> SearchEngine:
        """The index at ``index`` and the model it was built with, verified exactly as `hvl search` verifies it
        (the one ``index.json`` names, or ``ckpt`` / ``model`` if its fingerprint is the same)."""
        idx = load_index(index, use_ann=not exact, backend_url=backend_url)
        net = model_for_index(idx, ckpt, model, text_model, trust_remote_code)
        folder = ServedFolder(videos, "--videos") if videos else None
        return cls(idx, net, videos=folder)

    @property
    def image_size(self) -> int:
        return int(self.preprocess.output_size[0])

    def served_file(self, video_id: str) -> ServedFile:
        f = self.files[self.video(video_id)["video_id"]]
        if isinstance(f, str):
            raise FileGone(f)
        return f

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

        pre = self.preprocess
        frames = FrameTransform(pre.output_size[0], train=False, preprocess=pre)(
            torch.from_numpy(np.array(rgb, dtype=np.uint8))[None])
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
    def search(self, q: np.ndarray, k: int, agg: str, topk: int, pool: int, group: str | None) -> dict[str, Any]:
        res = search(self.idx, q, k=k, agg=agg, topk=topk, pool=pool, group=group or None)
        for r in res["results"]:
            r["clip"] = Path(r.pop("path")).name  # the page needs no server path
        return res
