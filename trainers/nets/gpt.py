"""GPT: a small decoder-only transformer (nanoGPT's shape) for next-token prediction."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from trainers.nets.transformer_block import Block


class GPT(nn.Module):
    """Token + position embeddings, pre-norm causal blocks (transformer_block.Block), a final norm and a
    tied output layer. Every projection is an nn.Linear, so dynamic int8 quantization applies as is.

    Args:
        vocab_size: number of token ids.
        block_size: context length (size of the position table).
        d_model: model width. num_heads: attention heads. num_layers: blocks. dropout: dropout rate.
    """

    def __init__(self, vocab_size: int, block_size: int, d_model: int = 128, num_heads: int = 4, num_layers: int = 2, dropout: float = 0.1):
        super().__init__()
        self.block_size = block_size
        self.token = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(block_size, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, num_heads, 4 * d_model, dropout, causal=True) for _ in range(num_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.lm_head.weight = self.token.weight  # weight tying (GPT-2, nanoGPT)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # GPT-2's init: small normal weights. Unit-variance embeddings (torch's default), tied to the
        # output layer, would start the loss far above log(vocab_size).
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits [B, T, vocab_size] of the next token at every position."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.drop(self.token(ids) + self.position(positions))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    @torch.no_grad()
    def generate(
        self,
        ids: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Append `max_new_tokens` sampled tokens to `ids` [B, T] (context cropped to block_size)."""
        for _ in range(max_new_tokens):
            logits = self(ids[:, -self.block_size :])[:, -1, :]
            if temperature <= 0:
                next_id = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k:
                    kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, [-1]]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                next_id = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)
            ids = torch.cat([ids, next_id], dim=1)
        return ids
