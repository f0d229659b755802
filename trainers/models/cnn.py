"""CNNClassifierLitModule: the `model=cnn` classifier."""

from __future__ import annotations

from trainers.errors import SettingError
from trainers.models.classifier import (
    ClassifierLitModule,
    OptimizerFactory,
    SchedulerFactory,
)
from trainers.nets.cnn import CNN


class CNNClassifierLitModule(ClassifierLitModule):
    """A small CNN classifier for image-shaped inputs (`data=digits`).

    Args:
        input_shape: (channels, height, width) of one sample.
        num_classes: number of classes.
        hidden_dim: channels of the convolutions and width of the dense layer.
        dropout: dropout before the last layer.
        optimizer: optimizer partial. scheduler: optional scheduler partial.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        hidden_dim: int = 32,
        dropout: float = 0.1,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ):
        if hidden_dim <= 0:
            raise SettingError("model.hidden_dim", f"must be a positive integer, got {hidden_dim}")
        super().__init__(CNN(input_shape, num_classes, hidden_dim, dropout), num_classes, optimizer, scheduler)
        self.save_hyperparameters(
            {"input_shape": list(input_shape), "num_classes": num_classes, "hidden_dim": hidden_dim, "dropout": dropout}
        )
