"""Test data the project generates: videos whose frames carry their own index."""
import socket
from pathlib import Path

import numpy as np

BITS = 8


def index_frames(n: int, size: int = 64) -> np.ndarray:
    """Frame i shows i in binary as 8 black/white vertical stripes (robust to H.264)."""
    out = np.zeros((n, size, size, 3), np.uint8)
    w = size // BITS
    for i in range(n):
        for b in range(BITS):
            if (i >> b) & 1:
                out[i, :, b * w:(b + 1) * w] = 255
    return out


def decode_index(frames) -> list[int]:
    frames = np.asarray(frames)
    w = frames.shape[2] // BITS
    return [sum(1 << b for b in range(BITS) if f[:, b * w:(b + 1) * w].mean() > 127) for f in frames]


def write_index_video(path: Path, n: int = 50, fps: float = 10.0) -> Path:
    from hvl.core.data.video import write_video

    return write_video(path, index_frames(n), fps)


def write_index_folder(path: Path, n: int = 30) -> Path:
    from PIL import Image

    path.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(index_frames(n)):
        Image.fromarray(f).save(path / f"images{i + 1:04d}.png")
    return path


def free_port() -> int:
    """A loopback TCP port nobody listens on (for gloo rendezvous, an MLflow server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_averaged(loss, params) -> tuple:
    """Backward on this rank's loss, then what DDP does: average the gradients (and, for the
    comparison, the loss) over ranks. Returns (mean loss, *averaged gradients)."""
    import torch.distributed as dist

    loss.backward()
    for p in params:
        dist.all_reduce(p.grad)
        p.grad /= dist.get_world_size()
    lt = loss.detach().clone()
    dist.all_reduce(lt)
    return (lt / dist.get_world_size(), *(p.grad for p in params))


def colour_histogram(frame: np.ndarray) -> np.ndarray:
    """Joint RGB histogram of one ``[H, W, 3]`` uint8 frame, 4 bins per channel, summing to 1."""
    q = frame.astype(np.int64) // 64
    hist = np.bincount((q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).ravel(), minlength=64)
    return hist / hist.sum()


def nearest_centroid(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Labels of ``x_test`` by the nearest class mean of ``x_train`` (classes 0..max(y_train))."""
    centroids = np.stack([x_train[y_train == c].mean(0) for c in range(int(y_train.max()) + 1)])
    return ((x_test[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
