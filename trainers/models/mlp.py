"""MLPClassifierLitModule: the `model=mlp` classifier."""

from __future__ import annotations

from trainers.errors import SettingError
from trainers.models.classifier import (
    ClassifierLitModule,
    OptimizerFactory,
    SchedulerFactory,
)
from trainers.nets.mlp import MLP


class MLPClassifierLitModule(ClassifierLitModule):
    """An MLP classifier; `input_shape` and `num_classes` come from the DataModule.

    Args:
        input_shape: shape of one sample.
        num_classes: number of classes.
        hidden_dim: width of each hidden layer.
        num_layers: number of hidden layers.
        dropout: dropout after each hidden activation.
        optimizer: optimizer partial. scheduler: optional scheduler partial.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        hidden_dim: int = 128,
        num_layers: int = 2,
        dropout: float = 0.1,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ):
        if hidden_dim <= 0:
            raise SettingError("model.hidden_dim", f"must be a positive integer, got {hidden_dim}")
        if num_layers < 1:
            raise SettingError("model.num_layers", f"must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise SettingError("model.dropout", f"must be in [0, 1), got {dropout}")
        super().__init__(MLP(input_shape, num_classes, hidden_dim, num_layers, dropout), num_classes, optimizer, scheduler)
        self.save_hyperparameters(
            {
                "input_shape": list(input_shape),
                "num_classes": num_classes,
                "hidden_dim": hidden_dim,
                "num_layers": num_layers,
                "dropout": dropout,
            }
        )
