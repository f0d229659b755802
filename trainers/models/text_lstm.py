"""TextLSTMLitModule: the `model=text_lstm` text classifier, trained from scratch."""

from __future__ import annotations

from trainers.errors import SettingError
from trainers.models.classifier import (
    ClassifierLitModule,
    OptimizerFactory,
    SchedulerFactory,
)
from trainers.nets.text_lstm import LSTMTextClassifier


class TextLSTMLitModule(ClassifierLitModule):
    """An LSTM over token ids; `vocab_size`, `pad_token_id` and `num_classes` come from the DataModule.

    Args:
        vocab_size: number of token ids. num_classes: number of classes. pad_token_id: padding id.
        embed_dim: token embedding width.
        hidden_dim: LSTM hidden width per direction.
        num_layers: stacked LSTM layers.
        bidirectional: read the text both ways.
        dropout: dropout rate.
        optimizer: optimizer partial. scheduler: optional scheduler partial.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        pad_token_id: int = 0,
        embed_dim: int = 64,
        hidden_dim: int = 64,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.1,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ):
        for key, value in (("embed_dim", embed_dim), ("hidden_dim", hidden_dim), ("num_layers", num_layers)):
            if value <= 0:
                raise SettingError(f"model.{key}", f"must be a positive integer, got {value}")
        if not 0.0 <= dropout < 1.0:
            raise SettingError("model.dropout", f"must be in [0, 1), got {dropout}")
        net = LSTMTextClassifier(vocab_size, num_classes, pad_token_id, embed_dim, hidden_dim, num_layers, bidirectional, dropout)
        super().__init__(net, num_classes, optimizer, scheduler)
        self.save_hyperparameters(
            {
                "vocab_size": vocab_size,
                "num_classes": num_classes,
                "pad_token_id": pad_token_id,
                "embed_dim": embed_dim,
                "hidden_dim": hidden_dim,
                "num_layers": num_layers,
                "bidirectional": bidirectional,
                "dropout": dropout,
            }
        )
