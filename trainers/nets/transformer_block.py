"""Block: a pre-norm transformer layer (self-attention + MLP) built only from nn.Linear and LayerNorm.

Unlike nn.TransformerEncoderLayer (whose attention projections are raw parameters or a
NonDynamicallyQuantizableLinear, and whose eval fast path breaks on quantized weights), every
projection here is a plain nn.Linear: dynamic int8 quantization and structured pruning see them all.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from trainers.errors import SettingError


class SelfAttention(nn.Module):
    """Multi-head self-attention through `F.scaled_dot_product_attention`.

    Args:
        d_model: model width. num_heads: attention heads. dropout: attention dropout.
        causal: each position attends only to itself and earlier ones (decoders).
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float, causal: bool):
        super().__init__()
        if d_model % num_heads:
            raise SettingError("model.d_model", f"({d_model}) must be divisible by model.num_heads ({num_heads})")
        self.num_heads = num_heads
        self.causal = causal
        self.dropout = dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, attend: torch.Tensor | None = None) -> torch.Tensor:
        """`attend` [B, T] (optional): False marks padding positions no query may attend to."""
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.num_heads, c // self.num_heads).transpose(1, 2) for z in (q, k, v))
        mask = None if attend is None else attend[:, None, None, :]
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            is_causal=self.causal and mask is None,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.proj(y.transpose(1, 2).contiguous().view(b, t, c))


class Block(nn.Module):
    """x + attn(norm(x)), then x + mlp(norm(x)).

    Args:
        d_model: model width. num_heads: attention heads. ffn_dim: MLP hidden width.
        dropout: dropout rate. causal: causal attention (decoders).
    """

    def __init__(self, d_model: int, num_heads: int, ffn_dim: int, dropout: float, causal: bool):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, num_heads, dropout, causal)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, ffn_dim), nn.GELU(), nn.Linear(ffn_dim, d_model), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, attend: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), attend)
        return x + self.mlp(self.ln_2(x))
