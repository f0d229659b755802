"""PretrainedEncoderLitModule: the `model=pretrained_encoder` classifier, fine-tuned from local weights."""

from __future__ import annotations

from typing import Any

from trainers.errors import SettingError
from trainers.models.classifier import (
    ClassifierLitModule,
    OptimizerFactory,
    SchedulerFactory,
)
from trainers.nets.pretrained_encoder import EncoderClassifier
from trainers.optim.configure import decay_groups


class PretrainedEncoderLitModule(ClassifierLitModule):
    """Fine-tunes a Hugging Face encoder from a local folder (no hub download) with a linear head.

    The config's fine-tuning defaults (conf/model/pretrained_encoder.yaml): AdamW at 3e-5 (1e-3 with LoRA
    or a frozen encoder), linear warm-up then decay per step; no weight decay on biases and norm weights.

    `vocab_size`, `pad_token_id` and `num_classes` come from the DataModule, whose tokenizer must be
    the model's own (conf/model/pretrained_encoder.yaml sets `data.tokenizer: ${model.path}`).

    Args:
        path: local model folder (config.json, weights, tokenizer files).
        vocab_size: tokenizer size. num_classes: number of classes. pad_token_id: padding id.
        freeze_layers: freeze the embeddings and the first N layers (-1: the whole encoder).
        num_layers: keep only the encoder's first N layers (null: all of them).
        lora: LoRA settings; `r: 0` disables LoRA.
        dropout: dropout before the head.
        tokenizer: the data's tokenizer setting (the config passes `${data.tokenizer}`), checked
            against the model.
        optimizer: optimizer partial. scheduler: optional scheduler partial.
    """

    def __init__(
        self,
        path: str,
        vocab_size: int,
        num_classes: int,
        pad_token_id: int = 0,
        freeze_layers: int = 0,
        lora: dict[str, Any] | None = None,
        dropout: float = 0.1,
        tokenizer: str | None = None,
        num_layers: int | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ):
        if not path:
            raise SettingError("model.path", "is required: a local Hugging Face model folder")
        if not 0.0 <= dropout < 1.0:
            raise SettingError("model.dropout", f"must be in [0, 1), got {dropout}")
        lora = dict(lora or {})
        if lora.get("r", 0) < 0:
            raise SettingError("model.lora.r", f"must be >= 0 (0 disables LoRA), got {lora['r']}")
        net = EncoderClassifier(path, num_classes, vocab_size, pad_token_id, freeze_layers, lora, dropout, tokenizer, num_layers)
        super().__init__(net, num_classes, optimizer, scheduler)
        self.save_hyperparameters(
            {
                "path": str(path),
                "vocab_size": vocab_size,
                "num_classes": num_classes,
                "pad_token_id": pad_token_id,
                "freeze_layers": freeze_layers,
                "lora": {k: (list(v) if isinstance(v, tuple) else v) for k, v in lora.items()},
                "dropout": dropout,
                "tokenizer": None if tokenizer is None else str(tokenizer),
                "num_layers": num_layers,
            }
        )

    def optimizer_parameters(self):
        return decay_groups(self)
