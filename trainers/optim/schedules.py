"""Learning-rate schedules stepped once per optimizer step, built from torch's own schedulers."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LinearLR, LRScheduler, SequentialLR

from trainers.errors import SettingError


def linear_warmup_decay(optimizer: torch.optim.Optimizer, num_training_steps: int, warmup_fraction: float = 0.1) -> LRScheduler:
    """The usual schedule of a pre-trained model's fine-tune: the learning rate rises linearly over the
    first `warmup_fraction` of the steps, then falls linearly to zero at `num_training_steps`.

    A LitModule passes `num_training_steps` (the whole fit's optimizer steps) and steps the schedule
    every optimizer step (trainers.optim.configure).

    Args:
        optimizer: the optimizer whose learning rates are scheduled.
        num_training_steps: optimizer steps of the whole fit.
        warmup_fraction: share of the steps spent warming up, in [0, 1).
    """
    if not 0.0 <= warmup_fraction < 1.0:
        raise SettingError("scheduler.warmup_fraction", f"must be in [0, 1), got {warmup_fraction}")
    total = max(1, int(num_training_steps))
    warmup = max(1, round(total * warmup_fraction))
    rise = LinearLR(optimizer, start_factor=1.0 / (warmup + 1), end_factor=1.0, total_iters=warmup)
    fall = LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=max(1, total - warmup))
    return SequentialLR(optimizer, [rise, fall], milestones=[warmup])
