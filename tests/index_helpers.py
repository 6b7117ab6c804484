"""Tiny inputs for the index / search tests: a small untrained checkpoint and colour-coded videos."""
from __future__ import annotations

from pathlib import Path

import numpy as np

COLOURS = [(220, 40, 40), (40, 80, 220), (40, 180, 60), (230, 200, 40), (160, 60, 200), (250, 130, 30)]


def tiny_checkpoint(path: Path, image_size: int = 32, seed: int = 0) -> Path:
    """An untrained HierarchicalVLM saved as `hvl fit` would (frozen text weights dropped)."""
    import torch
    from hvl.core.models.module import HierarchicalVLM

    torch.manual_seed(seed)
    m = HierarchicalVLM(video_encoder={"frame_encoder": {"name": "small_cnn", "widths": [8, 16]}}, embed_dim=32,
                        levels=["clip", "video"])
    sd = {k: v for k, v in m.state_dict().items() if not k.startswith("text.model.")}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": sd, "hyper_parameters": dict(m.hparams),
                "hvl": {"class_path": "hvl.core.models.module.HierarchicalVLM", "frozen_text_dropped": True,
                        "image_size": image_size}}, path)
    return path


def colour_video(path: Path, colour: int, seconds: float = 2.0, fps: int = 10, size: int = 32) -> Path:
    """A square of one colour moving across a grey background: frames differ, videos differ more."""
    from hvl.core.data.video import write_video

    n = int(seconds * fps)
    frames = np.full((n, size, size, 3), 90, np.uint8)
    for i in range(n):
        x = int(i * (size - 10) / max(n - 1, 1))
        frames[i, 10:22, x:x + 10] = COLOURS[colour % len(COLOURS)]
    return write_video(path, frames, fps)


def video_tree(root: Path, games: int = 2, per_game: int = 3, **kw) -> Path:
    """``<root>/game<g>/v<g><i>.mp4``."""
    for g in range(games):
        for i in range(per_game):
            colour_video(root / f"game{g}" / f"v{g}{i:02d}.mp4", g * per_game + i, **kw)
    return root
