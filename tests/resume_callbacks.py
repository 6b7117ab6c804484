"""Test-only callback, importable by a `hvl fit` subprocess through PYTHONPATH."""
import os
import signal

import pytorch_lightning as pl


class KillAtStep(pl.Callback):
    """SIGKILLs its own process once ``step`` optimizer steps are done, before that step's checkpoint:
    a crash at a known point, so the resumed run has something to redo."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)

