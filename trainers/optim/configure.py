"""What a LitModule's `configure_optimizers` returns, from the optimizer and scheduler partials of its
config: shared by every LitModule of trainers/models."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

# A scheduler partial whose function takes this is stepped every optimizer step and told their number.
STEPS_ARGUMENT = "num_training_steps"


def steps_per_fit(scheduler_factory: Callable) -> bool:
    """Whether `scheduler_factory` (a partial) schedules over optimizer steps (takes STEPS_ARGUMENT)."""
    function = getattr(scheduler_factory, "func", scheduler_factory)
    return STEPS_ARGUMENT in inspect.signature(function).parameters


def configure_optimizers(module, parameters: Iterable, optimizer_factory: Callable, scheduler_factory: Callable | None) -> Any:
    """The optimizer over `parameters` and, when there is one, its scheduler: stepped every epoch, or
    every optimizer step for a schedule over the whole fit (told the fit's `estimated_stepping_batches`)."""
    optimizer = optimizer_factory(parameters)
    if scheduler_factory is None:
        return optimizer
    if steps_per_fit(scheduler_factory):
        steps = int(module.trainer.estimated_stepping_batches)
        scheduler = scheduler_factory(optimizer, **{STEPS_ARGUMENT: steps})
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler_factory(optimizer), "interval": "epoch"}}


def decay_groups(module: nn.Module) -> list[dict[str, Any]]:
    """The trainable parameters in two groups, the usual exclusions of transformer fine-tuning: weight
    decay for weight matrices and embeddings, none for biases and norm weights (every tensor of fewer
    than 2 dimensions)."""
    decay: list[torch.Tensor] = []
    no_decay: list[torch.Tensor] = []
    for parameter in module.parameters():
        if parameter.requires_grad:
            (decay if parameter.dim() >= 2 else no_decay).append(parameter)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
