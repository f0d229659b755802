"""EncoderClassifier: a local Hugging Face encoder (optionally LoRA-adapted, partly frozen) with a linear head."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainers.data.tokenizers import LEVELS
from trainers.errors import SettingError
from trainers.nets.pooling import masked_mean


def transformer_layers(encoder: nn.Module) -> nn.ModuleList:
    """The encoder's stack of layers: the ModuleList with `config.num_hidden_layers` entries."""
    count = getattr(encoder.config, "num_hidden_layers", None)
    for module in encoder.modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return module
    raise SettingError("model.path", f"cannot find the {count} transformer layers of this {type(encoder).__name__}")


def load_encoder(path: str, num_layers: int | None = None) -> nn.Module:
    """`AutoModel.from_pretrained` of a local folder (never the hub), with only its first `num_layers`
    transformer layers when given (null: all of them)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig, AutoModel

    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise SettingError("model.path", f"{folder} is not a Hugging Face model folder (no config.json in it)")
    unreadable = (OSError, ValueError, KeyError)
    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except unreadable as err:
        raise _not_loadable(folder, err) from err
    if num_layers is not None:
        if not 1 <= num_layers <= config.num_hidden_layers:
            raise SettingError("model.num_layers", f"must be between 1 and the model's {config.num_hidden_layers} layers, got {num_layers}")
        config.num_hidden_layers = num_layers  # from_pretrained then loads the first layers, leaves the rest unread
    # Its load report would list every layer left unread as UNEXPECTED, which is what num_layers asks for.
    report = logging.getLogger("transformers.modeling_utils")
    level = report.level
    if num_layers is not None:
        report.setLevel(logging.ERROR)
    try:
        return AutoModel.from_pretrained(str(folder), config=config, local_files_only=True)
    except unreadable as err:
        raise _not_loadable(folder, err) from err
    finally:
        report.setLevel(level)


def _not_loadable(folder: Path, err: Exception) -> SettingError:
    return SettingError("model.path", f"{folder} holds no loadable model ({err.__class__.__name__}: {str(err).splitlines()[0]})")


class EncoderClassifier(nn.Module):
    """Mean-pooled last hidden states of a pre-trained encoder -> dropout -> linear head.

    Args:
        path: local folder of a Hugging Face encoder (config.json + weights).
        num_classes: output logits.
        vocab_size: size of the DataModule's tokenizer (must fit the encoder's embedding table).
        pad_token_id: the DataModule's padding id (must be the encoder's).
        freeze_layers: freeze the embeddings and the first N transformer layers (0: train everything;
            -1: freeze the whole encoder).
        num_layers: keep only the encoder's first N transformer layers (null: all; a distillation
            student is the teacher's encoder cut to fewer layers).
        tokenizer: the DataModule's `data.tokenizer`, when known: refused unless it is a tokenizer
            folder (a word/char vocabulary built from the data cannot match pre-trained embeddings).
        lora: LoRA settings (r > 0 enables it): r, alpha, dropout, target_modules (null: peft's
            default for the architecture). With LoRA the encoder's own weights stay frozen.
        dropout: dropout before the head.
    """

    def __init__(
        self,
        path: str,
        num_classes: int,
        vocab_size: int,
        pad_token_id: int,
        freeze_layers: int = 0,
        lora: dict[str, Any] | None = None,
        dropout: float = 0.1,
        tokenizer: str | None = None,
        num_layers: int | None = None,
    ):
        super().__init__()
        if tokenizer in LEVELS:
            raise SettingError(
                "data.tokenizer",
                f"({tokenizer}) builds a new vocabulary from the data, which does not match the pre-trained model at model.path",
                f"set data.tokenizer to the model folder ({path})",
            )
        encoder = load_encoder(path, num_layers)
        config = encoder.config
        if vocab_size > config.vocab_size or (config.pad_token_id is not None and pad_token_id != config.pad_token_id):
            raise SettingError(
                "data.tokenizer",
                f"does not match the model at model.path: the tokenizer has {vocab_size} tokens "
                f"(pad id {pad_token_id}), the model embeds {config.vocab_size} (pad id {config.pad_token_id}); "
                f"set data.tokenizer to the model folder",
            )
        layers = transformer_layers(encoder)
        if freeze_layers > len(layers) or freeze_layers < -1:
            raise SettingError("model.freeze_layers", f"must be between -1 and the model's {len(layers)} layers, got {freeze_layers}")
        self.pad_token_id = pad_token_id
        frozen = [encoder] if freeze_layers == -1 else [encoder.get_input_embeddings(), *layers[:freeze_layers]]
        if freeze_layers > 0 and hasattr(encoder, "embeddings"):
            frozen.append(encoder.embeddings)  # position and type embeddings and their norm, too
        if getattr(encoder, "pooler", None) is not None:
            frozen.append(encoder.pooler)  # unused (mean pooling): DDP refuses parameters without gradients
        for module in frozen:
            module.requires_grad_(False)
        lora = dict(lora or {})
        if lora.get("r", 0) > 0:
            from peft import LoraConfig, get_peft_model

            encoder = get_peft_model(
                encoder,
                LoraConfig(
                    r=lora["r"],
                    lora_alpha=lora.get("alpha", 2 * lora["r"]),
                    lora_dropout=lora.get("dropout", 0.0),
                    target_modules=lora.get("target_modules"),
                ),
            )
        # from_pretrained returns the encoder in eval mode: its dropout would stay off while it fine-tunes
        self.encoder = encoder.train()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(config.hidden_size, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        keep = ids != self.pad_token_id
        hidden = self.encoder(input_ids=ids, attention_mask=keep.long()).last_hidden_state
        return self.head(self.dropout(masked_mean(hidden, keep)))
