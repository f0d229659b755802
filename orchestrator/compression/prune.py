"""The prune stage's two methods: unstructured global magnitude pruning (torch.nn.utils.prune, made
permanent) and structured neuron/channel pruning (Torch-Pruning, which really removes them)."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import prune

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def prunable_layers(net: nn.Module) -> list[nn.Module]:
    return [module for module in net.modules() if isinstance(module, PRUNABLE)]


def prune_unstructured(model: nn.Module, sparsity: float) -> nn.Module:
    """A copy of `model` whose `sparsity` share of Linear/Conv weights (smallest |w| across all layers)
    is zero. `prune.remove` folds the masks in, so the state_dict is plain weights, no masks."""
    pruned = copy.deepcopy(model)
    targets = [(module, "weight") for module in prunable_layers(pruned)]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=sparsity)
    for module, name in targets:
        prune.remove(module, name)
    return pruned


def prune_structured(model: nn.Module, net_attribute: str, ratio: float, example_input: torch.Tensor) -> nn.Module:
    """A copy of `model` whose `net_attribute` network lost `ratio` of the neurons/channels of every
    prunable layer but the output layer (L2-magnitude importance; Torch-Pruning keeps the graph consistent)."""
    import torch_pruning as tp

    pruned = copy.deepcopy(model)
    net = getattr(pruned, net_attribute)
    layers = prunable_layers(net)
    pruner = tp.pruner.MagnitudePruner(
        net, example_input, importance=tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=ratio, ignored_layers=layers[-1:],
    )
    pruner.step()
    return pruned
