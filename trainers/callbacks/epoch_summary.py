"""EpochSummary: one compact line per epoch, from rank zero only (instead of a progress bar per worker)."""

from __future__ import annotations

import logging
import time

from lightning import Callback

log = logging.getLogger(__name__)


class EpochSummary(Callback):
    """Prints `epoch 3/10  train/loss 0.412  val/loss 0.380  val/acc 0.912  (1.2 s)` after validation.

    Args:
        keys: the logged metrics to show, in order.
    """

    def __init__(self, keys: tuple[str, ...] = ("train/loss", "val/loss", "val/acc")):
        super().__init__()
        self.keys = tuple(keys)
        self._epoch_start = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        shown = "  ".join(f"{k} {float(metrics[k]):.4f}" for k in self.keys if k in metrics)
        elapsed = time.perf_counter() - self._epoch_start
        log.info(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  {shown}  ({elapsed:.1f} s)")
