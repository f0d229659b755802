"""CNN: a small convolutional classifier for (channels, height, width) inputs."""

from __future__ import annotations

from torch import nn

from trainers.errors import SettingError


class CNN(nn.Sequential):
    """[Conv3x3 -> BatchNorm -> ReLU] x 2 -> global average pool -> Linear -> ReLU -> Linear.

    Args:
        input_shape: (channels, height, width) of one sample.
        num_classes: output logits.
        hidden_dim: channels of the convolutions and width of the dense layer.
        dropout: dropout before the last layer.
    """

    def __init__(self, input_shape, num_classes: int, hidden_dim: int = 32, dropout: float = 0.1):
        if len(input_shape) != 3:
            raise SettingError(
                "model",
                f"model=cnn needs image-shaped inputs (channels, height, width), got {tuple(input_shape)}",
                "use model=mlp for flat features",
            )
        channels = input_shape[0]
        super().__init__(
            nn.Conv2d(channels, hidden_dim, kernel_size=3, padding=1),
            nn.BatchNorm2d(hidden_dim),
            nn.ReLU(),
            nn.Conv2d(hidden_dim, hidden_dim, kernel_size=3, padding=1),
            nn.BatchNorm2d(hidden_dim),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, num_classes),
        )
