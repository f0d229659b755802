"""MLP: a multi-layer perceptron over flattened inputs."""

from __future__ import annotations

import math

from torch import nn


class MLP(nn.Sequential):
    """Flatten -> [Linear -> ReLU -> Dropout] x num_layers -> Linear.

    Args:
        input_shape: shape of one sample (flattened before the first layer).
        num_classes: output logits.
        hidden_dim: width of every hidden layer.
        num_layers: number of hidden layers.
        dropout: dropout after each hidden activation.
    """

    def __init__(self, input_shape, num_classes: int, hidden_dim: int = 128, num_layers: int = 2, dropout: float = 0.1):
        in_features = math.prod(input_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        for _ in range(num_layers):
            layers += [nn.Linear(in_features, hidden_dim), nn.ReLU(), nn.Dropout(dropout)]
            in_features = hidden_dim
        layers.append(nn.Linear(in_features, num_classes))
        super().__init__(*layers)
