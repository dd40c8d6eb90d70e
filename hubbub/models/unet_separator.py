"""Multi-resolution (U-Net) separator with attention at the coarse levels.

The Sudo rm -rf / TDANet family (Tzinis et al., 2020; Li et al., 2023) sized
for CPUs. A learned filterbank encodes the mixture; each U-block projects the
frames up to ``hidden`` channels, halves the time resolution ``depth`` times
with strided depthwise convolutions, runs transformer layers on the coarsest
``attn_levels`` levels, where sequences are ``2 ** depth`` times shorter, and
sums the levels back up from coarse to fine. The coarsest level attends
globally (``inter_window`` None) or in a local window; the finer attention
levels attend in a local window (``intra_window``). Masks on the encoder frames
are decoded by a transposed filterbank, as in
:class:`~hubbub.models.separator.Separator`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hubbub.models.separator import SeparatorBase, SeparatorOutput, decode_frames, encode_frames
from hubbub.models.transformer import TransformerLayer

__all__ = ["UBlock", "UNetSeparator", "UNetSeparatorConfig"]


@dataclass(frozen=True)
class UNetSeparatorConfig:
    """Hyper-parameters of :class:`UNetSeparator`; stored in ``config.json``."""

    sample_rate: int = 8000
    n_src: int = 2
    enc_channels: int = 256  # N: learned filterbank size
    kernel_size: int = 16
    stride: int = 8
    d_model: int = 64  # channels between U-blocks
    hidden: int = 96  # channels inside a U-block (the attention width)
    n_heads: int = 4
    d_ff: int = 192
    n_blocks: int = 4  # U-blocks
    depth: int = 4  # halvings of the time resolution inside a U-block
    attn_levels: int = 2  # the coarsest levels that get a transformer layer
    intra_window: int | None = 32  # local window (frames of its level) of the finer attention levels
    inter_window: int | None = None  # the coarsest level: None global, W local
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.n_src < 1:
            raise ValueError(f"n_src must be >= 1, got {self.n_src}")
        if not 0 <= self.attn_levels <= self.depth + 1:
            raise ValueError(f"attn_levels must be in 0..depth+1, got {self.attn_levels} (depth {self.depth})")


class UBlock(nn.Module):
    """One U-block: ``(B, C, L) -> (B, C, L)``, residual."""

    def __init__(self, cfg: UNetSeparatorConfig) -> None:
        super().__init__()
        e = cfg.hidden
        self.proj_in = nn.Sequential(nn.Conv1d(cfg.d_model, e, 1), nn.GroupNorm(1, e), nn.PReLU())

        def depthwise(stride):
            return nn.Sequential(nn.Conv1d(e, e, 5, stride=stride, padding=2, groups=e), nn.GroupNorm(1, e))

        self.down = nn.ModuleList(depthwise(1 if i == 0 else 2) for i in range(cfg.depth + 1))
        first_attn = cfg.depth + 1 - cfg.attn_levels
        self.attn = nn.ModuleDict({
            str(level): TransformerLayer(
                e, cfg.n_heads, cfg.d_ff, dropout=cfg.dropout,
                window=cfg.inter_window if level == cfg.depth else cfg.intra_window,
            )
            for level in range(first_attn, cfg.depth + 1)
        })
        self.proj_out = nn.Sequential(nn.GroupNorm(1, e), nn.PReLU(), nn.Conv1d(e, cfg.d_model, 1))

    def set_inter_window(self, window: int | None) -> None:
        top = str(len(self.down) - 1)
        if top in self.attn:
            self.attn[top].attn.window = window

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        """Returns ``(out, maps)``: ``maps[level]`` is ``(B, H, L_level, L_level')`` (or the band) when asked."""
        y = self.proj_in(x)
        levels, maps = [], {}
        for i, down in enumerate(self.down):
            y = down(y)
            key = str(i)
            if key in self.attn:
                a, w = self.attn[key](y.transpose(1, 2), need_weights=need_weights)
                y = a.transpose(1, 2)
                maps[i] = w
            levels.append(y)
        z = levels[-1]
        for finer in reversed(levels[:-1]):
            z = finer + F.interpolate(z, size=finer.shape[-1], mode="nearest")
        return x + self.proj_out(z), maps


class UNetSeparator(nn.Module, SeparatorBase):
    """Separates a mixture ``(B, T)`` into ``(B, n_src, T)`` sources.

    ``forward`` reads as the model: encode, estimate one mask per source with
    the U-blocks, apply the masks, decode.
    """

    model_type = "hubbub-unet-separator"
    config_class = UNetSeparatorConfig

    def __init__(self, config: UNetSeparatorConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or UNetSeparatorConfig()
        self.encoder = nn.Conv1d(1, cfg.enc_channels, cfg.kernel_size, stride=cfg.stride, bias=False)
        self.norm = nn.GroupNorm(1, cfg.enc_channels)
        self.bottleneck = nn.Conv1d(cfg.enc_channels, cfg.d_model, 1)
        self.blocks = nn.ModuleList(UBlock(cfg) for _ in range(cfg.n_blocks))
        self.head = nn.Sequential(nn.PReLU(), nn.Conv1d(cfg.d_model, cfg.n_src * cfg.enc_channels, 1))
        self.decoder = nn.ConvTranspose1d(cfg.enc_channels, 1, cfg.kernel_size, stride=cfg.stride, bias=False)

    def set_inter_window(self, window: int | None) -> None:
        """The coarsest level's attention: global (None) or local (``window`` frames of that level)."""
        for block in self.blocks:
            block.set_inter_window(window)

    def encode(self, mix: torch.Tensor) -> torch.Tensor:
        """``(B, T) -> (B, N, L)``."""
        return encode_frames(self.encoder, mix)

    def mask(self, w: torch.Tensor, need_weights: bool = False):
        """``(B, N, L) -> (B, n_src, N, L)`` masks, and per block the attention maps by level."""
        x = self.bottleneck(self.norm(w))
        maps = []
        for block in self.blocks:
            x, m = block(x, need_weights)
            maps.append(m)
        b, _, length = w.shape
        masks = F.relu(self.head(x)).view(b, self.config.n_src, self.config.enc_channels, length)
        return masks, maps

    def decode(self, masked: torch.Tensor, length: int) -> torch.Tensor:
        """``(B, n_src, N, L) -> (B, n_src, T)``."""
        return decode_frames(self.decoder, masked, length)

    def forward(self, mix: torch.Tensor, return_details: bool = False):
        """Args:
            mix: ``(B, T)`` or ``(T,)`` waveform at ``config.sample_rate``.
            return_details: also return masks and the attention maps per block:
                ``intra_attention`` of the finest attention level, ``inter_attention``
                of the coarsest.

        Returns:
            ``(B, n_src, T)`` sources, or a :class:`~hubbub.models.separator.SeparatorOutput`.
        """
        squeeze = mix.dim() == 1
        mix = mix.unsqueeze(0) if squeeze else mix
        w = self.encode(mix)
        masks, maps = self.mask(w, need_weights=return_details)
        sources = self.decode(w.unsqueeze(1) * masks, mix.shape[-1])
        sources = sources.squeeze(0) if squeeze else sources
        if return_details:
            intra = [m[min(m)] if m else None for m in maps]
            inter = [m[max(m)] if m else None for m in maps]
            return SeparatorOutput(sources, masks, intra, inter)
        return sources
