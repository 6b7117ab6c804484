"""``hvl predict --online``: a video labelled while it is recorded, each frame from the frames up to it only.

Causal versions of the offline pieces (:mod:`.predict`):

- **window**: the frame at ``t`` is embedded with the frames of ``[t - W, t]`` (the offline window is centred,
  ``[t - W/2, t + W/2]``): as many frames, all from the past, pooled by the model's own video encoder. The frame
  features of the last window are all that is kept.
- **head**: a temporal head from ``hvl adapt --causal`` sees only the past by construction; its receptive field is
  finite (:func:`receptive_field`), so each new frame runs it over the last receptive-field embeddings only and
  takes the last row, exactly the row it gives on the whole video. A head trained without ``--causal`` reads the
  future and is refused.
- **smoothing**: a trailing majority vote over the frame and the ``smooth_window - 1`` before it
  (:func:`smooth_trailing`; a tie keeps the frame's own class) instead of the centred one.

So a frame's label never changes when later frames arrive: the label of frame ``k`` of a growing recording is the
label of frame ``k`` of the finished one. With no window and a smoothing window of 1, it is the offline label.

Outputs in ``<out>/<video>/``: ``labels.jsonl``, one line per frame appended (and flushed) the moment it is
labelled, for a UI to tail; at the end ``timeline.json`` and the ``--format`` files, as offline.
"""
from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import HVLInputError
from .follow import POLL_SECONDS, StreamClock, follow_frames, sample_at_fps
from .predict import PredictConfig, Predictor
from .timeline import Timeline, merge_runs

__all__ = ["LABELS_FILE", "CausalScorer", "OnlineResult", "label_growing_video", "receptive_field", "run_online",
           "smooth_trailing", "trailing_mode"]

LABELS_FILE = "labels.jsonl"


def trailing_mode(labels: Sequence[int]) -> int:
    """The most frequent class of ``labels`` (a frame and those before it, the frame last); a tie keeps the frame's
    own class, else the lowest index (the tie rule of :func:`hvl.core.evaluation.temporal.smooth_mode`)."""
    counts: dict[int, int] = {}
    for y in labels:
        counts[y] = counts.get(y, 0) + 1
    own = labels[-1]
    best = max(counts.values())
    return own if counts[own] == best else min(y for y, c in counts.items() if c == best)


def smooth_trailing(seq: Sequence[int] | Tensor, window: int) -> list[int]:
    """Each frame's :func:`trailing_mode` over itself and the ``window - 1`` frames before it (fewer at the start)."""
    seq = [int(y) for y in (seq.tolist() if isinstance(seq, Tensor) else seq)]
    return [trailing_mode(seq[max(0, i - window + 1):i + 1]) for i in range(len(seq))]


def receptive_field(head: Any) -> int:
    """Frames a causal temporal head's last output depends on: per stage, ``layers`` convolutions of kernel 3 with
    dilations 1, 2, 4, ... reach ``2 * (2**layers - 1)`` frames back; stages add up."""
    opts = head.options()
    return 1 + int(opts["stages"]) * 2 * (2 ** int(opts["layers"]) - 1)


class CausalScorer:
    """Class probabilities of one frame after another, each from that frame and the bounded context before it."""

    def __init__(self, predictor: Predictor):
        from ..data.transforms import FrameTransform
        from ..evaluation.zeroshot.classify import class_embeddings
        from ..evaluation.zeroshot.windows import window_half

        p = predictor
        self.model, self.level, self.head = p.model, p.level, p.head
        self.model.eval()
        self.sequence_head = bool(getattr(p.head, "reads_sequences", False))
        half = window_half(p.window, p.fps)
        if self.sequence_head:
            if not p.head.options().get("causal"):
                raise HVLInputError(f"{getattr(p.head, 'source', 'the head')}: a temporal head trained without "
                                    "--causal reads later frames, which --online does not have; train one with "
                                    "`hvl adapt ... --method temporal --causal`")
            half = half or 0
        self.span = None if half is None else 2 * half + 1  # the offline window's frame count, all in the past
        self.feats: deque[Tensor] = deque(maxlen=self.span or 1)
        self.embs: deque[Tensor] = deque(maxlen=receptive_field(p.head) if self.sequence_head else 1)
        self.transform = FrameTransform(p.preprocess.output_size[0], train=False, preprocess=p.preprocess)
        if p.head is not None:
            p.head.check_compatible(p.prompts.names, p.level, self.model.embed_dim)
            self.text = None
        else:
            self.text = class_embeddings(self.model, p.prompts, p.level)

    @torch.no_grad()
    def __call__(self, rgb: np.ndarray) -> Tensor:
        """``[C]`` probabilities of the frame ``rgb`` (uint8 ``[H, W, 3]`` at the decode size) given those before."""
        m = self.model
        x = self.transform(torch.from_numpy(np.ascontiguousarray(rgb))[None]).to(m.device)
        if self.span is None:
            emb = m.embed_frames(x, self.level)
        else:
            self.feats.append(m.video.frames(x).float()[0])
            emb = m.embed_video(torch.stack(list(self.feats))[None], self.level).float().to(m.device)
        if self.sequence_head:
            self.embs.append(emb[0])
            logits = self.head.sequence_scores(torch.stack(list(self.embs)))[-1:]
        elif self.head is not None:
            logits = self.head.scores(emb)
        else:
            logits = 100.0 * emb @ self.text.T
        return logits.softmax(-1)[0].float().cpu()


@dataclass
class OnlineResult:
    """The finished timeline, and per labelled frame the seconds from its decoding to its line being written."""

    timeline: Timeline
    latencies: list[float] = field(default_factory=list)
    waited: float = 0.0  # seconds from the last frame to the end (the quiet period)


def online_settings(predictor: Predictor, quiet_seconds: float) -> dict[str, Any]:
    """The predictor's settings, with what makes them causal."""
    s = dict(predictor.settings or {})
    return s | {"online": True, "window_side": "trailing" if s.get("window") is not None else None,
                "smoothing": {"method": "trailing-mode", "window": predictor.smooth_window},
                "quiet_seconds": quiet_seconds}


def label_growing_video(predictor: Predictor, path: str | Path, folder: str | Path, video_id: str | None = None,
                        quiet_seconds: float = 10.0, formats: Sequence[str] = (),
                        poll_seconds: float = POLL_SECONDS,
                        on_label: Callable[[dict[str, Any]], None] | None = None,
                        scorer: CausalScorer | None = None) -> OnlineResult:
    """Label ``path`` while it grows: ``folder/labels.jsonl`` gets one line per frame at the predictor's fps as
    soon as it is labelled; once the file has been quiet for ``quiet_seconds``, ``folder/timeline.json`` and
    ``formats`` (:func:`hvl.core.inference.write.write_timeline`). A previous ``labels.jsonl`` there is replaced.
    ``scorer``: one made beforehand (it embeds the prompts), so that the first frame is labelled without delay."""
    from ..io import open_append, remove_inside
    from .write import write_timeline

    p, path, folder = predictor, Path(path), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    scorer = scorer if scorer is not None else CausalScorer(p)
    classes = p.classes
    size = p.preprocess.decode_size
    remove_inside(folder, LABELS_FILE)  # a UI tailing it sees one recording's lines, never two runs' mixed
    clock = StreamClock()
    times: list[float] = []
    probs: list[Tensor] = []
    preds: list[int] = []
    smoothed: list[int] = []
    latencies: list[float] = []
    recent: deque[int] = deque(maxlen=p.smooth_window)
    with open_append(folder / LABELS_FILE, "frame labels") as out:
        for t, frame in sample_at_fps(follow_frames(path, size, quiet_seconds, poll_seconds), p.fps, clock):
            prob = scorer(frame.rgb)
            y = int(prob.argmax())
            recent.append(y)
            s = trailing_mode(list(recent))
            times.append(t)
            probs.append(prob)
            preds.append(y)
            smoothed.append(s)
            row = {"frame": len(times) - 1, "t": t, "pred": classes[y], "smoothed": classes[s],
                   "confidence": round(float(prob[s]), 6), "probs": [round(float(v), 6) for v in prob]}
            out.write(json.dumps(row).encode() + b"\n")
            out.flush()
            latencies.append(time.perf_counter() - frame.decoded_at)
            if on_label is not None:
                on_label(row)
    if not times:
        raise HVLInputError(f"{path}: no frame to label at {p.fps} fps (the recording lasts {clock.duration:.3f}s)")
    duration = clock.duration
    prob_arr = torch.stack(probs)
    timeline = Timeline(video_id=video_id or path.stem or "video", path=str(path.resolve()), duration=duration,
                        fps=p.fps, video_fps=clock.fps, num_frames=max(1, min(clock.num_frames,
                                                                              round(duration * clock.fps))),
                        classes=classes, t=times, probs=prob_arr.tolist(), pred=preds, smoothed=smoothed,
                        segments=merge_runs(times, smoothed, classes, duration, prob_arr.numpy()),
                        settings=online_settings(p, quiet_seconds))
    write_timeline(timeline, folder, formats)
    return OnlineResult(timeline, latencies)


def run_online(cfg: PredictConfig, loaded: tuple[Any, dict] | None = None) -> dict[str, Any]:
    """``hvl predict --online``: the one recording ``cfg.inputs`` names labelled while it grows into
    ``cfg.out/<its name>/``; the summary in the shape of :func:`hvl.core.inference.run.run_predict`'s, plus the
    latency per frame."""
    from ..io import confined_dir, write_json
    from .predict import load_predictor
    from .run import RUN_FILE
    from .sources import MANIFEST_SUFFIXES, folder_name

    if len(cfg.inputs) != 1:
        raise HVLInputError(f"--online labels one recording, got {len(cfg.inputs)} inputs; run one `hvl predict "
                            "--online` per recording")
    path = Path(cfg.inputs[0])
    if path.is_dir() or path.suffix.lower() in MANIFEST_SUFFIXES:
        raise HVLInputError(f"{path}: --online reads one video file that a recorder writes, not a folder or a "
                            "manifest")
    if cfg.devices != 1:
        raise HVLInputError("--online runs in one process: drop --devices")
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise HVLInputError(f"{out}: --out must be a folder (one subfolder per video); it is a file")
    out.mkdir(parents=True, exist_ok=True)
    for name in cfg.formats:  # a missing extra is found before the recording starts, not after it ends
        from .formats import writer

        writer(name)
    predictor = load_predictor(cfg, loaded)
    video_id = path.stem or "video"
    folder = folder_name(video_id, set())
    row = {"video_id": video_id, "path": str(path), "folder": folder}
    try:
        res = label_growing_video(predictor, path, confined_dir(out, folder, create=True), video_id,
                                  cfg.quiet_seconds, cfg.formats)
        row |= {"status": "predicted", "frames": len(res.timeline.t)}
        lat = np.asarray(res.latencies) * 1000
        latency = {"p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95))}
    except (HVLInputError, OSError, RuntimeError, ValueError) as e:
        msg = str(e) if str(path) in str(e) else f"{path}: {e}"
        row |= {"status": "failed", "error": msg}
        latency = None
    result = {"out": str(out), "videos": 1, "predicted": int(row["status"] == "predicted"), "finished_before": 0,
              "failed": int(row["status"] == "failed"), "settings": online_settings(predictor, cfg.quiet_seconds),
              "formats": list(cfg.formats), "per_video": [row], "online": {"latency": latency}}
    write_json(out / RUN_FILE, result)
    return result
