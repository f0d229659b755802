"""The prune stage's two methods: unstructured global magnitude pruning (torch.nn.utils.prune, made
permanent) and structured neuron/channel pruning (Torch-Pruning, which really removes them)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from fnmatch import fnmatch

import torch
from torch import nn
from torch.nn.utils import prune

from orchestrator.errors import ConfigError

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def prunable_layers(net: nn.Module) -> list[nn.Module]:
    return [module for module in net.modules() if isinstance(module, PRUNABLE)]


def prunable_weights(net: nn.Module) -> list[tuple[nn.Module, str]]:
    """(module, parameter name) of every weight matrix unstructured pruning may zero: Linear/Conv
    weights and an LSTM's input-hidden and hidden-hidden weights (every layer and direction)."""
    weights = [(module, "weight") for module in prunable_layers(net)]
    for module in net.modules():
        if isinstance(module, nn.LSTM):
            weights += [(module, name) for name, _ in module.named_parameters(recurse=False) if name.startswith("weight_")]
    return weights


def prune_unstructured(model: nn.Module, sparsity: float) -> nn.Module:
    """A copy of `model` whose `sparsity` share of weight matrices (smallest |w| across all layers) is
    zero. `prune.remove` folds the masks in, so the state_dict is plain weights, no masks."""
    pruned = copy.deepcopy(model)
    targets = prunable_weights(pruned)
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=sparsity)
    for module, name in targets:
        prune.remove(module, name)
    return pruned


def channel_targets(net: nn.Module, layer_patterns: Sequence[str]) -> list[nn.Module]:
    """The layers structured pruning narrows: those whose names match one of `layer_patterns`
    (fnmatch), or every prunable layer but the output layer when there are none."""
    if not layer_patterns:
        return prunable_layers(net)[:-1]
    return [
        module
        for name, module in net.named_modules()
        if isinstance(module, PRUNABLE) and any(fnmatch(name, pattern) for pattern in layer_patterns)
    ]


def check_channel_layers(model: nn.Module, layer_patterns: Sequence[str]) -> None:
    """Every pattern of compression.prune.channel_layers names at least one Linear/Conv layer of the
    model's network, or a ConfigError naming it."""
    net = getattr(model, "net", model)
    names = [name for name, module in net.named_modules() if isinstance(module, PRUNABLE)]
    for i, pattern in enumerate(layer_patterns):
        if not any(fnmatch(name, pattern) for name in names):
            raise ConfigError(
                f"compression.prune.channel_layers[{i}]",
                f"{pattern!r} matches no Linear/Conv layer of the network",
                f"its layers are named like {names[:3]}",
            )


def prune_structured(
    model: nn.Module, net_attribute: str, ratio: float, example_input: torch.Tensor, layer_patterns: Sequence[str] = ()
) -> nn.Module:
    """A copy of `model` whose `net_attribute` network lost `ratio` of the output neurons/channels of
    the layers `channel_targets` picks (L2-magnitude importance); Torch-Pruning removes the matching
    inputs of the layers that consume them, so the graph stays consistent. Every other layer keeps its
    outputs (Torch-Pruning's ignored_layers)."""
    import torch_pruning as tp

    pruned = copy.deepcopy(model)
    net = getattr(pruned, net_attribute)
    targets = channel_targets(net, layer_patterns)
    pruner = tp.pruner.MagnitudePruner(
        net,
        example_input,
        importance=tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=ratio,
        ignored_layers=[layer for layer in prunable_layers(net) if layer not in targets],
    )
    pruner.step()
    return pruned
