"""LSTMTextClassifier: embeddings -> (bi)LSTM -> mean over tokens -> linear head."""

from __future__ import annotations

import torch
from torch import nn

from trainers.nets.pooling import masked_mean


class LSTMTextClassifier(nn.Module):
    """Classifies padded token-id sequences. Plain nn.LSTM and nn.Linear layers, so torch's dynamic
    int8 quantization (`quantize_dynamic({nn.LSTM, nn.Linear})`) applies as is.

    Args:
        vocab_size: number of token ids.
        num_classes: output logits.
        pad_token_id: the padding id (its embedding stays zero; its positions are not pooled).
        embed_dim: token embedding width.
        hidden_dim: LSTM hidden width (per direction).
        num_layers: stacked LSTM layers.
        bidirectional: read the sequence both ways.
        dropout: dropout on embeddings, between LSTM layers and before the head.
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
    ):
        super().__init__()
        self.pad_token_id = pad_token_id
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_token_id)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            embed_dim,
            hidden_dim,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.head = nn.Linear(hidden_dim * (2 if bidirectional else 1), num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(self.dropout(self.embedding(ids)))
        return self.head(self.dropout(masked_mean(hidden, ids != self.pad_token_id)))
