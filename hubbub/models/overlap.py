"""Overlapped-speech detection: how many voices speak in each 10-ms frame of a recording.

The separator can say where each of its outputs has sound, but on voices it never
trained on it splits a lone talker across its outputs, which then look like two
people at once. This small model looks at the recording itself: a log-mel
front-end, a convolution, a stack of local-attention transformer layers
(:class:`~hubbub.models.transformer.TransformerLayer`) and a per-frame classifier
over 0, 1 and 2+ voices (pyannote's segmentation models answer the same question).
The pipeline separates only where it finds an overlap.

    >>> det = load_model("overlap-8k")
    >>> p = det.overlap_probability(wav, 16000)      # (frames,) P(2+ voices), 10-ms frames
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hubbub.models.configs import OverlapConfig
from hubbub.models.hub import PretrainedMixin
from hubbub.models.transformer import TransformerLayer

__all__ = ["OverlapConfig", "OverlapDetector"]

#: the detector decides this much audio at a time, seeing this much context at each side of a block
#: (6 + 2 x 2 s: the length it is trained on)
BLOCK_SECONDS = 6.0
CONTEXT_SECONDS = 2.0


class LogMel(nn.Module):
    """``(B, T) -> (B, frames, n_mels)``: log-mel energies, each band's mean over the input removed
    (so the level of a recording does not matter); ``frames = T // hop + 1``."""

    def __init__(self, cfg: OverlapConfig) -> None:
        super().__init__()
        import torchaudio

        n_fft = 1 << (cfg.win_length - 1).bit_length()
        self.mel = torchaudio.transforms.MelSpectrogram(
            cfg.sample_rate, n_fft=n_fft, win_length=cfg.win_length, hop_length=cfg.hop_length, n_mels=cfg.n_mels,
            center=True, power=2.0,
        )

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = torch.log(self.mel(wav.float()) + 1e-8).transpose(1, 2)
        return x - x.mean(dim=1, keepdim=True)


class OverlapDetector(nn.Module, PretrainedMixin):
    """Voices per frame: ``(B, T)`` waveform at ``config.sample_rate`` -> ``(B, frames, n_classes)`` logits."""

    model_type = "hubbub-overlap"
    config_class = OverlapConfig

    def __init__(self, config: OverlapConfig) -> None:
        super().__init__()
        self.config = config
        self.features = LogMel(config)
        self.norm_in = nn.LayerNorm(config.n_mels)
        self.conv = nn.Conv1d(config.n_mels, config.d_model, kernel_size=5, padding=2)
        self.layers = nn.ModuleList(
            TransformerLayer(config.d_model, config.n_heads, config.d_ff, window=config.window, dropout=config.dropout,
                             attn_dropout=0.0)  # no dropout on the weights: the fused attention kernel
            for _ in range(config.n_layers)
        )
        self.norm_out = nn.LayerNorm(config.d_model)
        self.classify = nn.Linear(config.d_model, config.n_classes)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = self.norm_in(self.features(wav))  # (B, frames, n_mels)
        x = F.gelu(self.conv(x.transpose(1, 2))).transpose(1, 2)  # (B, frames, D)
        for layer in self.layers:
            x, _ = layer(x)
        return self.classify(self.norm_out(x))

    @torch.inference_mode()
    def overlap_probability(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """``(T,)`` at ``sample_rate`` -> ``(frames,)`` probability of two or more voices per
        ``hop_ms`` frame (frame ``i`` centred on ``i * hop_ms``), computed block by block
        (:data:`BLOCK_SECONDS`, with :data:`CONTEXT_SECONDS` of context at each side)."""
        import torchaudio.functional as AF

        cfg = self.config
        wav = torch.as_tensor(wav, dtype=torch.float32).flatten()
        n_frames = int(round(wav.shape[-1] / sample_rate * 1000 / cfg.hop_ms)) + 1
        if sample_rate != cfg.sample_rate:
            wav = AF.resample(wav, sample_rate, cfg.sample_rate)
        hop = cfg.hop_length
        block, context = int(BLOCK_SECONDS * cfg.sample_rate) // hop, int(CONTEXT_SECONDS * cfg.sample_rate) // hop
        total = wav.shape[-1] // hop + 1
        out = torch.zeros(total)
        device = next(self.parameters()).device
        for first in range(0, total, block):
            a = max(0, first - context)
            b = min(total, first + block + context)
            piece = wav[a * hop : b * hop]
            if piece.numel() < cfg.win_length:
                piece = F.pad(piece, (0, cfg.win_length - piece.numel()))
            prob = self(piece[None].to(device)).softmax(-1)[0, :, 2:].sum(-1).cpu()
            keep = prob[first - a : first - a + min(block, total - first)]
            out[first : first + keep.numel()] = keep
        if out.numel() < n_frames:
            out = F.pad(out, (0, n_frames - out.numel()), value=float(out[-1]) if out.numel() else 0.0)
        return out[:n_frames]
