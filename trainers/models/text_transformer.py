"""TextTransformerLitModule: the `model=text_transformer` text classifier, trained from scratch."""

from __future__ import annotations

from trainers.errors import SettingError
from trainers.models.classifier import (
    ClassifierLitModule,
    OptimizerFactory,
    SchedulerFactory,
)
from trainers.nets.text_transformer import TransformerTextClassifier


class TextTransformerLitModule(ClassifierLitModule):
    """A small transformer encoder over token ids; `vocab_size`, `pad_token_id`, `num_classes` and
    `input_shape` (the padded length) come from the DataModule.

    Args:
        vocab_size: number of token ids. num_classes: number of classes.
        input_shape: `(max_length,)` of the DataModule. pad_token_id: padding id.
        d_model: model width. num_heads: attention heads. num_layers: encoder layers.
        ffn_dim: feed-forward width. dropout: dropout rate.
        optimizer: optimizer partial. scheduler: optional scheduler partial.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        input_shape: tuple[int, ...],
        pad_token_id: int = 0,
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        ffn_dim: int = 128,
        dropout: float = 0.1,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ):
        for key, value in (("d_model", d_model), ("num_heads", num_heads), ("num_layers", num_layers), ("ffn_dim", ffn_dim)):
            if value <= 0:
                raise SettingError(f"model.{key}", f"must be a positive integer, got {value}")
        if not 0.0 <= dropout < 1.0:
            raise SettingError("model.dropout", f"must be in [0, 1), got {dropout}")
        max_length = int(input_shape[-1])
        net = TransformerTextClassifier(vocab_size, num_classes, max_length, pad_token_id, d_model, num_heads, num_layers, ffn_dim, dropout)
        super().__init__(net, num_classes, optimizer, scheduler)
        self.save_hyperparameters(
            {
                "vocab_size": vocab_size,
                "num_classes": num_classes,
                "input_shape": [max_length],
                "pad_token_id": pad_token_id,
                "d_model": d_model,
                "num_heads": num_heads,
                "num_layers": num_layers,
                "ffn_dim": ffn_dim,
                "dropout": dropout,
            }
        )
