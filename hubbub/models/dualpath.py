"""Dual-path chunking: one helper to cut a sequence into 50 %-overlapping
chunks and to put it back together by overlap-add (Luo et al., DPRNN, 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["chunk", "overlap_add"]


def chunk(x: torch.Tensor, size: int) -> torch.Tensor:
    """Cut ``(B, D, L)`` into chunks ``(B, D, K, S)`` with hop ``K // 2``.

    The sequence is zero-padded by ``K // 2`` on the left and enough on the right
    that every frame lies in exactly two chunks.
    """
    b, d, length = x.shape
    hop = size // 2
    n_chunks = -(-length // hop) + 1  # ceil(L / hop) + 1
    total = (n_chunks - 1) * hop + size
    x = F.pad(x, (hop, total - length - hop))
    chunks = x.unfold(-1, size, hop)  # (B, D, S, K)
    return chunks.transpose(-1, -2).contiguous()


def overlap_add(chunks: torch.Tensor, length: int) -> torch.Tensor:
    """Inverse of :func:`chunk`: ``(B, D, K, S) -> (B, D, L)`` by overlap-add."""
    b, d, size, n_chunks = chunks.shape
    hop = size // 2
    total = (n_chunks - 1) * hop + size
    out = F.fold(
        chunks.reshape(b, d * size, n_chunks),
        output_size=(1, total),
        kernel_size=(1, size),
        stride=(1, hop),
    )
    return out.view(b, d, total)[..., hop : hop + length]
