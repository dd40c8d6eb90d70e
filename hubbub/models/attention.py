"""Multi-head attention with a global or a local (banded) window.

One module serves the separator (intra- and inter-chunk transformers) and the
ASR encoder. ``window=None`` is ordinary global attention. ``window=W`` is local
attention: frame ``i`` sees only frames ``j`` with ``|i - j| <= W // 2``. Local
attention is computed block by block and never builds a ``T x T`` matrix, so its
memory is ``O(T * W)``.

Both paths go through :func:`torch.nn.functional.scaled_dot_product_attention`.
When attention weights are requested the same arithmetic is done explicitly so
that the weights can be returned; the outputs agree either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LOCAL_SCORE_BUDGET",
    "MultiHeadAttention",
    "TwoDAttention",
    "TwoDMaps",
    "band_to_dense",
    "local_attention_mask",
    "padding_mask",
    "parse_window",
]

#: most attention scores (floats) that local attention holds at once; longer inputs go in groups of blocks
LOCAL_SCORE_BUDGET = 1 << 22


def parse_window(spec: str | int | None, default_local: int | None = None) -> int | None:
    """An attention window from its spelling: ``"global"`` or None -> None (global),
    ``"local:W"`` or ``W`` -> ``W``, ``"local"`` -> ``default_local`` (when the model
    names one)."""
    if spec is None or spec == "global":
        return None
    if isinstance(spec, str):
        kind, _, width = spec.partition(":")
        if kind != "local" or (not width and default_local is None):
            raise ValueError(f"attention window must be 'global' or 'local:W' (W >= 1), got {spec!r}")
        try:
            spec = int(width) if width else default_local
        except ValueError:
            raise ValueError(f"attention window must be 'global' or 'local:W' (W >= 1), got {spec!r}") from None
    if spec < 1:
        raise ValueError(f"a local attention window must be at least 1, got {spec}")
    return int(spec)


def local_attention_mask(length: int, window: int, device=None) -> torch.Tensor:
    """Boolean ``(T, T)`` mask that is True where ``|i - j| <= window // 2``.

    Only for tests and small inputs: it is exactly what local attention computes.
    """
    idx = torch.arange(length, device=device)
    return (idx[:, None] - idx[None, :]).abs() <= window // 2


def band_to_dense(weights: torch.Tensor, length: int) -> torch.Tensor:
    """Expand banded local weights ``(..., T, 2h+1)`` into dense ``(..., T, T)``.

    Column ``k`` of the band holds the weight of key ``j = i + k - h``.
    """
    half = (weights.shape[-1] - 1) // 2
    dense = weights.new_zeros(*weights.shape[:-1], length + 2 * half)
    rows = torch.arange(weights.shape[-2], device=weights.device)
    cols = rows[:, None] + torch.arange(2 * half + 1, device=weights.device)[None, :]
    index = cols.expand(*weights.shape)
    dense.scatter_(-1, index, weights)
    return dense[..., half : half + length]


class MultiHeadAttention(nn.Module):
    """Multi-head attention, self or cross, with an optional local window.

    Args:
        d_model: model width ``D``.
        n_heads: number of heads ``H`` (``D`` must divide by it).
        window: None for global attention, or the local window ``W`` in frames
            (self-attention only).
        dropout: attention dropout during training.
        block_size: query block length for the local path (default ``max(W, 16)``).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        window: int | None = None,
        dropout: float = 0.0,
        block_size: int | None = None,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        if window is not None and window < 1:
            raise ValueError(f"window must be None or >= 1, got {window}")
        self.d_model = d_model
        self.n_heads = n_heads
        self.window = window
        self.dropout = dropout
        self.block_size = block_size
        self.q_proj = nn.Linear(d_model, d_model)
        self.kv_proj = nn.Linear(d_model, 2 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, H, T, D/H)"""
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, -1).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        need_weights: bool = False,
        cache: dict | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``x`` to ``memory`` (or to ``x`` itself).

        Args:
            x: queries ``(B, T, D)``.
            memory: keys and values ``(B, S, D)``; None for self-attention.
            key_padding_mask: ``(B, S)`` bool, True where the key is padding.
            attn_mask: ``(T, S)`` bool, True where attention is allowed (global
                path only; e.g. a causal mask for a decoder).
            need_weights: also return the attention weights.
            cache: a key/value cache for incremental decoding, shared by the
                layers of a model (keyed by module). Cross-attention projects
                ``memory`` once and reuses it; self-attention appends the keys
                and values of the new frames ``x`` to those cached before.

        Returns:
            ``(out, weights)``: ``out`` is ``(B, T, D)``. ``weights`` is None unless
            requested; then ``(B, H, T, S)`` for global attention or the band
            ``(B, H, T, 2 * (W // 2) + 1)`` for local attention (see
            :func:`band_to_dense`).
        """
        q = self._heads(self.q_proj(x))
        k, v = self._keys_values(x, memory, cache)
        p = self.dropout if self.training else 0.0
        if self.window is None:
            out, weights = self._global(q, k, v, key_padding_mask, attn_mask, p, need_weights)
        else:
            if memory is not None or attn_mask is not None:
                raise ValueError("local attention is self-attention without attn_mask")
            out, weights = self._local(q, k, v, key_padding_mask, p, need_weights)
        b, _, t, _ = out.shape
        out = out.transpose(1, 2).reshape(b, t, self.d_model)
        return self.out_proj(out), weights

    def _keys_values(self, x, memory, cache):
        """Keys and values ``(B, H, S, D/H)``, through ``cache`` when one is given."""
        if cache is not None and memory is not None and self in cache:
            return cache[self]
        k, v = (self._heads(t) for t in self.kv_proj(x if memory is None else memory).chunk(2, dim=-1))
        if cache is not None:
            if memory is None and self in cache:
                past_k, past_v = cache[self]
                k, v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
            cache[self] = (k, v)
        return k, v

    @staticmethod
    def _attend(q, k, v, mask, p, need_weights):
        """SDPA, or the same arithmetic spelled out when weights are wanted."""
        if not need_weights:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p), None
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = scores.softmax(dim=-1)
        return F.dropout(weights, p) @ v, weights

    def _global(self, q, k, v, key_padding_mask, attn_mask, p, need_weights):
        mask = None
        if key_padding_mask is not None:
            mask = ~key_padding_mask[:, None, None, :]  # (B, 1, 1, S)
        if attn_mask is not None:
            mask = attn_mask if mask is None else mask & attn_mask
        return self._attend(q, k, v, mask, p, need_weights)

    def _local(self, q, k, v, key_padding_mask, p, need_weights):
        b, h, t, d = q.shape
        half = self.window // 2
        block = self.block_size or max(self.window, 16)
        n_blocks = math.ceil(t / block)
        span = block + 2 * half
        q_pad = n_blocks * block - t
        # keys/values padded by `half` on the left and enough on the right that
        # every block sees `span` keys: padded index p is original frame p - half
        kv_len = n_blocks * block + 2 * half
        pad = (0, 0, half, kv_len - t - half)
        kb = F.pad(k, pad).unfold(2, span, block).transpose(-1, -2)  # (B, H, NB, span, d)
        vb = F.pad(v, pad).unfold(2, span, block).transpose(-1, -2)
        qb = F.pad(q, (0, 0, 0, q_pad)).view(b, h, n_blocks, block, d)

        valid = torch.ones(b, t, dtype=torch.bool, device=q.device)
        if key_padding_mask is not None:
            valid = ~key_padding_mask
        valid = F.pad(valid, (half, kv_len - t - half), value=False)
        valid = valid.unfold(1, span, block)  # (B, NB, span)
        qi = torch.arange(block, device=q.device)[:, None]
        kj = torch.arange(span, device=q.device)[None, :]
        offset = kj - qi  # key j = i + offset - half
        band = (offset >= 0) & (offset <= 2 * half)
        diag = offset == half  # a query always sees itself: no empty rows
        mask = (band & valid[:, :, None, :]) | diag  # (B, NB, block, span)
        # blocks are attended in groups so that the scores never exceed LOCAL_SCORE_BUDGET floats
        group = max(1, LOCAL_SCORE_BUDGET // max(1, b * h * block * span))
        if need_weights or group >= n_blocks:
            out, weights = self._attend(qb, kb, vb, mask[:, None], p, need_weights)
        else:
            weights = None
            out = torch.cat([
                self._attend(qb[:, :, i : i + group], kb[:, :, i : i + group], vb[:, :, i : i + group],
                             mask[:, None, i : i + group], p, False)[0]
                for i in range(0, n_blocks, group)
            ], dim=2)
        out = out.reshape(b, h, n_blocks * block, d)[:, :, :t]
        if weights is not None:
            # gather each query's band (2h+1 keys) out of its block's span
            idx = (qi + torch.arange(2 * half + 1, device=q.device)[None, :]).expand(
                b, h, n_blocks, block, 2 * half + 1
            )
            weights = weights.gather(-1, idx).reshape(b, h, n_blocks * block, -1)[:, :, :t]
        return out, weights


def padding_mask(lengths: torch.Tensor, length: int) -> torch.Tensor:
    """``(B,) -> (B, length)`` bool, True where a frame is padding."""
    return torch.arange(length, device=lengths.device)[None, :] >= lengths[:, None]


class _SharedKernels:
    """The projection-free attention kernels of :class:`MultiHeadAttention`,
    for tensors that are already ``(B, H, T, d)``: global, or local with the
    same band and ``O(T * W)`` memory."""

    _attend = staticmethod(MultiHeadAttention._attend)
    _global = MultiHeadAttention._global
    _local = MultiHeadAttention._local

    def __init__(self, window: int | None) -> None:
        self.window = window
        self.block_size = None

    def __call__(self, q, k, v, key_padding_mask=None, attn_mask=None, dropout=0.0, need_weights=False):
        if self.window is None:
            return self._global(q, k, v, key_padding_mask, attn_mask, dropout, need_weights)
        if attn_mask is not None:
            raise ValueError("local attention takes no attn_mask")
        out, weights = self._local(q, k, v, key_padding_mask, dropout, need_weights)
        return out, None if weights is None else band_to_dense(weights, q.shape[2])


@dataclass
class TwoDMaps:
    """Attention maps of one :class:`TwoDAttention` block.

    time: ``(B, C, T, T)``, each row sums to one over the last axis.
    freq: ``(B, C, F, F)``, each row sums to one over the last axis.
    """

    time: torch.Tensor
    freq: torch.Tensor


class TwoDAttention(nn.Module):
    """The 2D attention of Speech-Transformer: ``(B, C, T, F), (B,) -> (B, C, T, F)``.

    Convolutions give queries, keys and values with ``C`` channels. Each channel
    attends over time (a ``T x T`` map, features are the ``F`` mel bins, local
    when ``window`` is set) and over frequency (an ``F x F`` map, features are
    the frames, scaled by the utterance's own length). The ``2C`` outputs are
    concatenated, mixed back to ``C`` channels by a convolution, added to the
    input and normalised per frame.
    """

    def __init__(
        self, channels: int, n_freq: int, window: int | None = None, dropout: float = 0.0,
        attn_dropout: float | None = None,
    ) -> None:
        super().__init__()
        self.qkv = nn.Conv2d(channels, 3 * channels, 3, padding=1)
        self.out = nn.Conv2d(2 * channels, channels, 3, padding=1)
        self.norm = nn.LayerNorm([channels, n_freq])
        self.attend = _SharedKernels(window)
        self.dropout = dropout if attn_dropout is None else attn_dropout  # on the attention weights
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor,
        need_weights: bool = False,
        attn_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, TwoDMaps | None]:
        """``attn_mask``: optional ``(T, T)`` bool (True = allowed) for the time
        attention, global path only. Returns the output and, when asked, the maps."""
        b, c, t, f = x.shape
        pad = padding_mask(lengths, t)  # (B, T)
        keep = (~pad)[:, None, :, None]
        q, k, v = (z * keep for z in self.qkv(x).chunk(3, dim=1))  # (B, C, T, F)
        p = self.dropout if self.training else 0.0
        out_t, w_t = self.attend(
            q, k, v, key_padding_mask=pad, attn_mask=attn_mask, dropout=p, need_weights=need_weights
        )
        # frequency attention: padded frames are zero, so they add nothing to Q^T K;
        # scale by the true length: 1/sqrt(len) instead of SDPA's 1/sqrt(T)
        scale = (t / lengths.clamp(min=1).to(q.dtype)).sqrt()[:, None, None, None]
        qf, kf, vf = (q.transpose(-1, -2) * scale), k.transpose(-1, -2), v.transpose(-1, -2)  # (B, C, F, T)
        out_f, w_f = MultiHeadAttention._attend(qf, kf, vf, None, p, need_weights)
        y = self.out(torch.cat([out_t, out_f.transpose(-1, -2)], dim=1) * keep)
        y = self.norm((x + self.drop(y)).transpose(1, 2)).transpose(1, 2) * keep
        return y, TwoDMaps(w_t, w_f) if need_weights else None
