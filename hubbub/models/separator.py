"""The attention separator: learned encoder, dual-path masker, decoder.

A SepFormer-style model (Subakan et al., 2021) sized for CPUs. The masker cuts
the encoded sequence into 50 %-overlapping chunks; each dual-path block runs an
intra-chunk transformer (local: it sees one chunk) and an inter-chunk
transformer across chunks (global by default, or windowed with
``inter_window`` so that memory stays linear in the length of the recording).

The study's other designs (a time-frequency dual-path model and a
multi-resolution U-Net) left the package; their code is at commit 91b3d3e.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hubbub.models.configs import SeparatorConfig
from hubbub.models.dualpath import chunk, overlap_add
from hubbub.models.hub import PretrainedMixin
from hubbub.models.transformer import TransformerLayer

__all__ = [
    "ARCHITECTURES",
    "LOCAL_INTER_WINDOW",
    "DualPathBlock",
    "Separator",
    "SeparatorBase",
    "SeparatorConfig",
    "SeparatorOutput",
    "decode_frames",
    "encode_frames",
    "separator_class",
]

#: separator designs by recipe name (``architecture:`` in a separator recipe YAML) -> "module:Class"
ARCHITECTURES = {"dualpath": "hubbub.models.separator:Separator"}


def separator_class(architecture: str) -> type:
    """The model class of a separator design named in :data:`ARCHITECTURES`."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown separator architecture {architecture!r}; choose from {sorted(ARCHITECTURES)} "
                         "(the study designs tf-dualpath and unet are at commit 91b3d3e)")
    module, name = ARCHITECTURES[architecture].split(":")
    return getattr(importlib.import_module(module), name)


def encode_frames(encoder: nn.Conv1d, mix: torch.Tensor) -> torch.Tensor:
    """Learned filterbank: ``(B, T) -> (B, N, L)``, padding ``T`` to a whole number of hops."""
    kernel, stride = encoder.kernel_size[0], encoder.stride[0]
    length = mix.shape[-1]
    frames = max(1, -(-(length - kernel) // stride) + 1)
    pad = (frames - 1) * stride + kernel - length
    return F.relu(encoder(F.pad(mix, (0, max(pad, 0))).unsqueeze(1)))


def decode_frames(decoder: nn.ConvTranspose1d, masked: torch.Tensor, length: int) -> torch.Tensor:
    """Transposed filterbank: ``(B, n_src, N, L) -> (B, n_src, T)``."""
    b, n_src, n, frames = masked.shape
    out = decoder(masked.reshape(b * n_src, n, frames)).view(b, n_src, -1)
    return out[..., :length]

#: inter-chunk window (chunks) that a bare ``local`` stands for (``--window local``)
LOCAL_INTER_WINDOW = 16


@dataclass
class SeparatorOutput:
    """Result of :meth:`Separator.forward` with ``return_details=True``.

    sources: ``(B, n_src, T)`` waveforms.
    masks: ``(B, n_src, N, L)`` encoder-domain masks.
    intra_attention: per block, weights ``(B, S, H, K, K')`` (or None).
    inter_attention: per block, weights ``(B, K, H, S, S')`` (or None).
    """

    sources: torch.Tensor
    masks: torch.Tensor
    intra_attention: list[torch.Tensor | None]
    inter_attention: list[torch.Tensor | None]


class DualPathBlock(nn.Module):
    """Intra-chunk then inter-chunk transformers: ``(B, D, K, S) -> (B, D, K, S)``.

    The time-frequency separator runs the same block with ``K`` frequency bands
    (intra: along frequency) and ``S`` frames (inter: along time).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        intra_layers: int = 1,
        inter_layers: int = 1,
        intra_window: int | None = None,
        inter_window: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()

        def stack(n, window):
            return nn.ModuleList(
                TransformerLayer(d_model, n_heads, d_ff, window=window, dropout=dropout) for _ in range(n)
            )

        self.intra = stack(intra_layers, intra_window)
        self.inter = stack(inter_layers, inter_window)
        self.intra_norm = nn.LayerNorm(d_model)
        self.inter_norm = nn.LayerNorm(d_model)

    @staticmethod
    def _run(layers, x, need_weights):
        weights = None
        for i, layer in enumerate(layers):
            x, w = layer(x, need_weights=need_weights and i == len(layers) - 1)
            weights = w if w is not None else weights
        return x, weights

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        b, d, k, s = x.shape
        # intra-chunk: sequences of K frames, one per (batch, chunk)
        intra = x.permute(0, 3, 2, 1).reshape(b * s, k, d)
        y, w_intra = self._run(self.intra, intra, need_weights)
        y = self.intra_norm(y).view(b, s, k, d).permute(0, 3, 2, 1)
        x = x + y
        # inter-chunk: sequences of S chunks, one per (batch, position in chunk)
        inter = x.permute(0, 2, 3, 1).reshape(b * k, s, d)
        y, w_inter = self._run(self.inter, inter, need_weights)
        y = self.inter_norm(y).view(b, k, s, d).permute(0, 3, 1, 2)
        x = x + y
        if w_intra is not None:
            w_intra = w_intra.view(b, s, *w_intra.shape[1:])
            w_inter = w_inter.view(b, k, *w_inter.shape[1:])
        return x, w_intra, w_inter


class Masker(nn.Module):
    """Dual-path transformer masker: ``(B, N, L) -> (B, n_src, N, L)`` masks."""

    def __init__(self, cfg: SeparatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.norm = nn.GroupNorm(1, cfg.enc_channels)
        self.bottleneck = nn.Conv1d(cfg.enc_channels, cfg.d_model, 1)
        self.blocks = nn.ModuleList(
            DualPathBlock(cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.intra_layers, cfg.inter_layers,
                          cfg.intra_window, cfg.inter_window, cfg.dropout)
            for _ in range(cfg.n_blocks)
        )
        self.head = nn.Sequential(nn.PReLU(), nn.Conv2d(cfg.d_model, cfg.n_src * cfg.d_model, 1))
        self.gate = nn.Conv1d(cfg.d_model, cfg.d_model, 1)
        self.value = nn.Conv1d(cfg.d_model, cfg.d_model, 1)
        self.expand = nn.Conv1d(cfg.d_model, cfg.enc_channels, 1, bias=False)

    def forward(self, w: torch.Tensor, need_weights: bool = False):
        b, _, length = w.shape
        x = chunk(self.bottleneck(self.norm(w)), self.cfg.chunk_size)  # (B, D, K, S)
        intra_maps, inter_maps = [], []
        for block in self.blocks:
            x, wi, we = block(x, need_weights)
            intra_maps.append(wi)
            inter_maps.append(we)
        x = self.head(x)  # (B, n_src * D, K, S)
        x = overlap_add(x, length).reshape(b * self.cfg.n_src, self.cfg.d_model, length)
        x = torch.tanh(self.value(x)) * torch.sigmoid(self.gate(x))
        masks = F.relu(self.expand(x)).view(b, self.cfg.n_src, self.cfg.enc_channels, length)
        return masks, intra_maps, inter_maps


class SeparatorBase(PretrainedMixin):
    """What every separator design offers the pipeline besides ``forward``:
    its rate, its number of sources, and saving/loading."""

    config: object

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def n_src(self) -> int:
        return self.config.n_src


class Separator(nn.Module, SeparatorBase):
    """Separates a mixture ``(B, T)`` into ``(B, n_src, T)`` sources.

    ``forward`` is the whole model: encode, estimate one mask per source, apply
    the masks, decode.
    """

    model_type = "hubbub-separator"
    config_class = SeparatorConfig

    def __init__(self, config: SeparatorConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or SeparatorConfig()
        self.encoder = nn.Conv1d(1, cfg.enc_channels, cfg.kernel_size, stride=cfg.stride, bias=False)
        self.masker = Masker(cfg)
        self.decoder = nn.ConvTranspose1d(cfg.enc_channels, 1, cfg.kernel_size, stride=cfg.stride, bias=False)

    def encode(self, mix: torch.Tensor) -> torch.Tensor:
        """``(B, T) -> (B, N, L)``, padding ``T`` to a whole number of hops."""
        return encode_frames(self.encoder, mix)

    def decode(self, masked: torch.Tensor, length: int) -> torch.Tensor:
        """``(B, n_src, N, L) -> (B, n_src, T)``."""
        return decode_frames(self.decoder, masked, length)

    def forward(self, mix: torch.Tensor, return_details: bool = False):
        """Args:
            mix: ``(B, T)`` or ``(T,)`` waveform at ``config.sample_rate``.
            return_details: also return masks and attention maps.

        Returns:
            ``(B, n_src, T)`` sources, or a :class:`SeparatorOutput`.
        """
        squeeze = mix.dim() == 1
        mix = mix.unsqueeze(0) if squeeze else mix
        w = self.encode(mix)
        masks, intra, inter = self.masker(w, need_weights=return_details)
        sources = self.decode(w.unsqueeze(1) * masks, mix.shape[-1])
        sources = sources.squeeze(0) if squeeze else sources
        if return_details:
            return SeparatorOutput(sources, masks, intra, inter)
        return sources
