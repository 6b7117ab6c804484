"""The model's CPU thread count during zero-shot prediction, chosen by timing the pipeline with each count."""
from __future__ import annotations

import os
import statistics
from typing import Self

import torch

__all__ = ["CpuThreads"]


class CpuThreads:
    """The model's intra-op threads on CPU, chosen by timing the pipeline with each count.

    The model shares the cores with the decoding workers, and its own speed there says little: on 2 busy cores
    torch's 2 threads made the demo CNN's forward ~5x slower than alone, which a rule comparing the loader wait
    with the model's time read as "the model holds the pipeline back" and so kept both threads (2.2 s of model
    time against 1.1 s with one, benchmarks/zeroshot.py). So after the first chunk (worker start-up) it runs
    ``probe`` chunks with the full count and ``probe`` with ``cores - workers`` (at least 1), keeps the count whose
    median time per chunk (blocked on the loader + in the model) was shorter, and measures again every ``every``
    chunks, in case the pace changes (videos of another size). A model the workers wait on keeps its full count
    that way, a small one leaves the workers their cores."""

    def __init__(self, device: torch.device | str, num_workers: int, probe: int = 3, every: int = 100):
        self.full = torch.get_num_threads()
        self.shared = max(1, min(self.full, (os.cpu_count() or 1) - num_workers))
        self.active = torch.device(device).type == "cpu" and num_workers > 0 and self.shared < self.full
        self.probe, self.every = probe, max(every, 2 * probe + 1)
        self.steps, self.chosen = 0, self.full
        self.pace: dict[int, list[float]] = {}

    def __enter__(self) -> Self:
        return self

    def step(self, waited_s: float, model_s: float) -> int:
        """Record one chunk (time blocked on the loader, time in the model); returns the thread count now set."""
        self.steps += 1
        if not self.active:
            return torch.get_num_threads()
        if self.steps > 1 and (self.steps - 2) % self.every < 2 * self.probe:  # that chunk ran as a probe
            self.pace.setdefault(torch.get_num_threads(), []).append(waited_s + model_s)
        p = (self.steps - 1) % self.every
        if p < self.probe:
            want = self.full
        elif p < 2 * self.probe:
            want = self.shared
        else:
            if p == 2 * self.probe:
                self.chosen = min(self.pace, key=lambda n: (statistics.median(self.pace[n]), -n))
                self.pace = {}
            want = self.chosen
        if want != torch.get_num_threads():
            torch.set_num_threads(want)
        return want

    def __exit__(self, *exc: object) -> None:
        if self.active:
            torch.set_num_threads(self.full)
