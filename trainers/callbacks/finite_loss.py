"""FiniteLossCheck: stop training with a clear error as soon as the training loss is NaN or infinite."""

from __future__ import annotations

import math

import torch
from lightning import Callback


class NonFiniteLossError(ArithmeticError):
    """The training loss became NaN or infinite; the last good checkpoint is the previous epoch's."""


class FiniteLossCheck(Callback):
    """Raises NonFiniteLossError on the first non-finite training loss.

    Each rank checks its own loss (no collective per step): under DDP a NaN reaches every rank's
    weights through the gradient all-reduce within one step, and Ray Train ends the whole worker group
    when any rank raises, so no rank is left blocking the others.
    """

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and not torch.isfinite(loss).all():
            value = loss.detach().float().mean().item()
            raise NonFiniteLossError(
                f"training loss is {'NaN' if math.isnan(value) else value} at epoch {trainer.current_epoch + 1}, "
                f"step {trainer.global_step}: lower optimizer.lr or set trainer.gradient_clip_val "
                "(the last good checkpoint is kept)"
            )
