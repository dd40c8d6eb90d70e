"""Time-frequency dual-path attention separator on the STFT.

The TF-GridNet / TF-Locoformer family (Wang et al., 2023; Saijo et al., 2024)
sized for CPUs. The mixture's STFT (8 ms hop at 8 kHz) is cut into frequency
bands of ``band_width`` bins; each band of each frame is one token. Every
dual-path block attends along frequency (the bands of one frame: ``freq_window``
None for all bands, or a local band window) and then along time (the frames of
one band: ``time_window`` None for global attention, or a local window of
frames so that memory stays linear in the length of the recording). At 8 ms
hops the time axis has 4x fewer frames than the 2 ms time-domain encoder of
:class:`~hubbub.models.separator.Separator`. A complex ratio mask per source
and STFT bin is applied to the mixture's STFT and the inverse STFT gives the
waveforms.

The input features are divided by the mixture's RMS while the masks multiply
the raw STFT, so the model is exactly scale-equivariant.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hubbub.models.separator import DualPathBlock, SeparatorBase, SeparatorOutput

__all__ = ["TFSeparator", "TFSeparatorConfig"]


@dataclass(frozen=True)
class TFSeparatorConfig:
    """Hyper-parameters of :class:`TFSeparator`; stored in ``config.json``."""

    sample_rate: int = 8000
    n_src: int = 2
    n_fft: int = 256  # 32 ms window at 8 kHz
    hop: int = 64  # 8 ms at 8 kHz
    band_width: int = 8  # STFT bins per token along frequency
    d_model: int = 64
    n_heads: int = 4
    d_ff: int = 256
    n_blocks: int = 4  # dual-path blocks, each one frequency + one time layer
    freq_window: int | None = None  # None: all bands of a frame; W: local window of bands
    time_window: int | None = None  # None: global along time; W: local window of frames
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.n_src < 1:
            raise ValueError(f"n_src must be >= 1, got {self.n_src}")
        if self.hop < 1 or self.hop > self.n_fft:
            raise ValueError(f"hop must be in 1..n_fft, got {self.hop} (n_fft {self.n_fft})")

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def n_bands(self) -> int:
        return -(-self.n_bins // self.band_width)


class TFSeparator(nn.Module, SeparatorBase):
    """Separates a mixture ``(B, T)`` into ``(B, n_src, T)`` sources in the STFT domain.

    ``forward`` reads as the model: encode (STFT, band tokens), mask (dual-path
    frequency/time attention, complex masks), decode (masked STFT, inverse STFT).
    """

    model_type = "hubbub-tf-separator"
    config_class = TFSeparatorConfig

    def __init__(self, config: TFSeparatorConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or TFSeparatorConfig()
        features = 2 * cfg.band_width  # real and imaginary parts of the band's bins
        self.embed = nn.Conv2d(features, cfg.d_model, (3, 3), padding=1)
        self.band_embedding = nn.Parameter(torch.zeros(1, cfg.d_model, cfg.n_bands, 1))
        self.norm = nn.GroupNorm(1, cfg.d_model)
        self.blocks = nn.ModuleList(
            DualPathBlock(cfg.d_model, cfg.n_heads, cfg.d_ff, intra_window=cfg.freq_window,
                          inter_window=cfg.time_window, dropout=cfg.dropout)
            for _ in range(cfg.n_blocks)
        )
        self.head = nn.Sequential(nn.PReLU(), nn.Conv2d(cfg.d_model, cfg.n_src * features, (3, 3), padding=1))
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

    def set_inter_window(self, window: int | None) -> None:
        """Attention along time: global (None) or a local window of ``window`` frames."""
        for block in self.blocks:
            block.set_inter_window(window)

    def stft(self, mix: torch.Tensor) -> torch.Tensor:
        """``(B, T) -> (B, F, L)`` complex; inputs shorter than a window are zero-padded."""
        cfg = self.config
        mix = F.pad(mix, (0, max(0, cfg.n_fft - mix.shape[-1])))
        return torch.stft(mix, cfg.n_fft, cfg.hop, window=self.window, center=True, return_complex=True)

    def encode(self, spec: torch.Tensor) -> torch.Tensor:
        """Complex STFT ``(B, F, L)`` -> band tokens ``(B, D, n_bands, L)``."""
        cfg = self.config
        b, n_bins, frames = spec.shape
        rms = spec.abs().pow(2).mean(dim=(1, 2), keepdim=True).sqrt().clamp_min(1e-8)
        x = torch.view_as_real(spec / rms)  # (B, F, L, 2)
        x = F.pad(x, (0, 0, 0, 0, 0, cfg.n_bands * cfg.band_width - n_bins))
        x = x.view(b, cfg.n_bands, cfg.band_width, frames, 2).permute(0, 2, 4, 1, 3)
        x = x.reshape(b, 2 * cfg.band_width, cfg.n_bands, frames)
        return self.norm(self.embed(x) + self.band_embedding)

    def mask(self, x: torch.Tensor, need_weights: bool = False):
        """Band tokens ``(B, D, n_bands, L)`` -> complex masks ``(B, n_src, F, L)`` and attention maps."""
        cfg = self.config
        freq_maps, time_maps = [], []
        for block in self.blocks:
            x, w_freq, w_time = block(x, need_weights)
            freq_maps.append(w_freq)
            time_maps.append(w_time)
        b, _, n_bands, frames = x.shape
        m = self.head(x).view(b, cfg.n_src, cfg.band_width, 2, n_bands, frames)
        m = m.permute(0, 1, 4, 2, 5, 3).reshape(b, cfg.n_src, n_bands * cfg.band_width, frames, 2)
        masks = torch.view_as_complex(m[:, :, : cfg.n_bins].contiguous())
        return masks, freq_maps, time_maps

    def decode(self, masked: torch.Tensor, length: int) -> torch.Tensor:
        """Complex ``(B, n_src, F, L)`` -> ``(B, n_src, T)`` by the inverse STFT."""
        cfg = self.config
        b, n_src, n_bins, frames = masked.shape
        padded = max(length, cfg.n_fft)
        out = torch.istft(masked.reshape(b * n_src, n_bins, frames), cfg.n_fft, cfg.hop, window=self.window,
                          center=True, length=padded)
        return out.view(b, n_src, padded)[..., :length]

    def forward(self, mix: torch.Tensor, return_details: bool = False):
        """Args:
            mix: ``(B, T)`` or ``(T,)`` waveform at ``config.sample_rate``.
            return_details: also return masks (complex, ``(B, n_src, F, L)``) and the
                attention maps: ``intra_attention`` along frequency ``(B, L, H, nb, nb')``,
                ``inter_attention`` along time ``(B, nb, H, L, L')`` per block.

        Returns:
            ``(B, n_src, T)`` sources, or a :class:`~hubbub.models.separator.SeparatorOutput`.
        """
        squeeze = mix.dim() == 1
        mix = mix.unsqueeze(0) if squeeze else mix
        spec = self.stft(mix)
        masks, freq_maps, time_maps = self.mask(self.encode(spec), need_weights=return_details)
        sources = self.decode(spec.unsqueeze(1) * masks, mix.shape[-1])
        sources = sources.squeeze(0) if squeeze else sources
        if return_details:
            return SeparatorOutput(sources, masks, freq_maps, time_maps)
        return sources
