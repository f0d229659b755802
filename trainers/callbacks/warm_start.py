"""WarmStart: start a fit from saved weights whose shapes may differ from the freshly built model
(a structurally pruned network), and optionally keep the zeros of a sparse one through training."""

from __future__ import annotations

import torch
from lightning import Callback
from torch import nn

# Module attributes that describe a shape, and the weight dimension each one is read from.
_SHAPE_ATTRIBUTES = {
    nn.Linear: {"out_features": ("weight", 0), "in_features": ("weight", 1)},
    nn.modules.conv._ConvNd: {"out_channels": ("weight", 0)},
    nn.modules.batchnorm._BatchNorm: {"num_features": ("weight", 0)},
    nn.LayerNorm: {},
}


def resize_to(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """Give every parameter and buffer of `model` the shape it has in `state_dict` (then load it), and
    update the shape attributes (in_features, out_channels, ...) of the modules that changed."""
    changed: set[str] = set()
    for key, tensor in state_dict.items():
        owner_name, _, attr = key.rpartition(".")
        owner = model.get_submodule(owner_name) if owner_name else model
        current = getattr(owner, attr, None)
        if not isinstance(current, torch.Tensor) or current.shape == tensor.shape:
            continue
        if isinstance(current, nn.Parameter):
            setattr(owner, attr, nn.Parameter(torch.empty_like(tensor), requires_grad=current.requires_grad))
        else:
            owner._buffers[attr] = torch.empty_like(tensor)
        changed.add(owner_name)
    for name in changed:
        module = model.get_submodule(name) if name else model
        for kind, attributes in _SHAPE_ATTRIBUTES.items():
            if isinstance(module, kind):
                for attribute, (param, dim) in attributes.items():
                    setattr(module, attribute, getattr(module, param).shape[dim])
        if isinstance(module, nn.modules.conv._ConvNd):
            module.in_channels = module.weight.shape[1] * module.groups
    model.load_state_dict(state_dict)
    return model


class WarmStart(Callback):
    """Loads a LightningModule state_dict (a `{"state_dict": ...}` file read with weights_only=True)
    into the module before training, resizing layers to the saved shapes.

    Args:
        weights_path: the file of saved weights (reachable from every worker).
        keep_sparsity: re-apply the zeros of the saved weight matrices after every optimizer step, so a
            pruned model stays exactly as sparse while it is fine-tuned.
    """

    def __init__(self, weights_path: str, keep_sparsity: bool = False):
        super().__init__()
        self.weights_path = weights_path
        self.keep_sparsity = keep_sparsity
        self._masks: dict[str, torch.Tensor] = {}

    def setup(self, trainer, pl_module, stage: str) -> None:
        # Runs before the optimizer is built and before DDP wraps the module, so both see the new shapes.
        saved = torch.load(self.weights_path, map_location="cpu", weights_only=True)
        resize_to(pl_module, saved["state_dict"])
        if self.keep_sparsity:
            self._masks = {name: param != 0 for name, param in pl_module.named_parameters() if param.dim() > 1 and bool((param == 0).any())}

    @torch.no_grad()
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._masks:
            return
        parameters = dict(pl_module.named_parameters())
        for name, mask in self._masks.items():
            parameters[name].mul_(mask.to(parameters[name].device))
