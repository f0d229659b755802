"""TransformerTextClassifier: token + position embeddings -> transformer blocks -> mean pool -> head."""

from __future__ import annotations

import torch
from torch import nn

from trainers.nets.pooling import masked_mean
from trainers.nets.transformer_block import Block


class TransformerTextClassifier(nn.Module):
    """A small encoder-only transformer over padded token ids, trained from scratch.

    Args:
        vocab_size: number of token ids.
        num_classes: output logits.
        max_length: longest sequence (size of the learned position table).
        pad_token_id: the padding id (masked in attention and pooling).
        d_model: model width. num_heads: attention heads. num_layers: encoder layers.
        ffn_dim: feed-forward width. dropout: dropout in every layer.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        max_length: int,
        pad_token_id: int = 0,
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        ffn_dim: int = 128,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.pad_token_id = pad_token_id
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=pad_token_id)
        self.position = nn.Embedding(max_length, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, num_heads, ffn_dim, dropout, causal=False) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        keep = ids != self.pad_token_id
        attend = keep.clone()
        attend[:, 0] = True  # an all-padding text (empty string) still has one key: no NaN rows
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.drop(self.embedding(ids) + self.position(positions))
        for block in self.blocks:
            x = block(x, attend)
        return self.head(masked_mean(self.norm(x), keep))
