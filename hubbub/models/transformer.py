"""Pre-norm transformer layers built on :class:`MultiHeadAttention`.

Positions come from a depthwise convolution (a convolutional position encoding)
rather than a table, so a layer takes inputs of any length and a local window
still knows the order of the frames it sees.
"""

from __future__ import annotations

import torch
from torch import nn

from hubbub.models.attention import MultiHeadAttention

__all__ = ["ConvPositionEncoding", "FeedForward", "TransformerDecoderLayer", "TransformerLayer"]


class ConvPositionEncoding(nn.Module):
    """Depthwise Conv1d over time, centred, added to the input: ``(B, T, D) -> (B, T, D)``."""

    def __init__(self, d_model: int, kernel_size: int = 7) -> None:
        super().__init__()
        self.pad = kernel_size // 2
        self.conv = nn.Conv1d(d_model, d_model, kernel_size, padding=self.pad, groups=d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.transpose(1, 2))[..., : x.shape[1]]  # an even kernel gives one output too many
        return x + y.transpose(1, 2)


class FeedForward(nn.Module):
    """Position-wise ``Linear -> GELU -> Linear``: ``(B, T, D) -> (B, T, D)``."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TransformerLayer(nn.Module):
    """Self-attention encoder layer: ``(B, T, D) -> (B, T, D)``.

    ``window`` selects global (None) or local attention, see
    :class:`~hubbub.models.attention.MultiHeadAttention`. ``pos_kernel=0``
    leaves out the position convolution (for models with position tables).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        window: int | None = None,
        dropout: float = 0.0,
        pos_kernel: int = 7,
        attn_dropout: float | None = None,
    ) -> None:
        super().__init__()
        attn_p = dropout if attn_dropout is None else attn_dropout
        self.pos = ConvPositionEncoding(d_model, pos_kernel) if pos_kernel else nn.Identity()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, n_heads, window=window, dropout=attn_p)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.pos(x)
        a, weights = self.attn(self.norm1(x), key_padding_mask=key_padding_mask, need_weights=need_weights)
        x = x + self.drop(a)
        x = x + self.drop(self.ff(self.norm2(x)))
        return x, weights


class TransformerDecoderLayer(nn.Module):
    """Causal self-attention, cross-attention to the encoder, feed-forward.

    ``(B, U, D), (B, T, D) -> (B, U, D)``; returns the cross-attention weights
    ``(B, H, U, T)`` when asked.
    """

    def __init__(
        self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0, attn_dropout: float | None = None
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        attn_p = dropout if attn_dropout is None else attn_dropout
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=attn_p)
        self.norm2 = nn.LayerNorm(d_model)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout=attn_p)
        self.norm3 = nn.LayerNorm(d_model)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        y: torch.Tensor,
        memory: torch.Tensor,
        causal_mask: torch.Tensor,
        tgt_padding_mask: torch.Tensor | None = None,
        memory_padding_mask: torch.Tensor | None = None,
        need_weights: bool = False,
        cache: dict | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``cache``: keys and values for incremental decoding (see
        :class:`~hubbub.models.attention.MultiHeadAttention`); ``causal_mask`` is
        then ``(U, cached + U)``."""
        a, _ = self.self_attn(self.norm1(y), key_padding_mask=tgt_padding_mask, attn_mask=causal_mask, cache=cache)
        y = y + self.drop(a)
        a, weights = self.cross_attn(
            self.norm2(y), memory=memory, key_padding_mask=memory_padding_mask, need_weights=need_weights,
            cache=cache,
        )
        y = y + self.drop(a)
        y = y + self.drop(self.ff(self.norm3(y)))
        return y, weights
