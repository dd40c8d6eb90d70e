"""The models' configurations: frozen dataclasses, stored in each checkpoint's ``config.json``.

They live apart from the models (and from torch), so that what reads or writes a
configuration (a recipe's ``--help``, its config flags, a YAML file) needs no model
code; :mod:`hubbub.models.separator` and :mod:`hubbub.models.overlap` re-export them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OverlapConfig", "SeparatorConfig"]


@dataclass(frozen=True)
class SeparatorConfig:
    """Hyper-parameters of :class:`~hubbub.models.separator.Separator`; stored in ``config.json``."""

    sample_rate: int = 8000
    n_src: int = 2
    enc_channels: int = 128  # N: learned filterbank size
    kernel_size: int = 16  # encoder window in samples
    stride: int = 8  # encoder hop in samples
    d_model: int = 64
    n_heads: int = 4
    d_ff: int = 256
    n_blocks: int = 4  # dual-path blocks, each one intra + one inter layer
    intra_layers: int = 1
    inter_layers: int = 1
    chunk_size: int = 100  # K frames per chunk, hop K/2
    intra_window: int | None = None  # None: whole chunk
    inter_window: int | None = None  # None: global across chunks
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.n_src < 1:
            raise ValueError(f"n_src must be >= 1, got {self.n_src}")
        if self.chunk_size < 2 or self.chunk_size % 2:
            raise ValueError(f"chunk_size must be even and >= 2 (50 % overlap), got {self.chunk_size}")

@dataclass(frozen=True)
class OverlapConfig:
    """Hyper-parameters of :class:`~hubbub.models.overlap.OverlapDetector`; stored in ``config.json``."""

    sample_rate: int = 8000
    n_mels: int = 64
    win_ms: float = 25.0
    hop_ms: float = 10.0  # one output frame per hop: the pipeline's region frames
    d_model: int = 96
    n_heads: int = 4
    d_ff: int = 256
    n_layers: int = 4
    window: int | None = None  # None: global over each block the detector sees (10 s); W: local, frames
    n_classes: int = 3  # 0, 1, 2 or more voices
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.n_classes < 3:
            raise ValueError(f"n_classes must be at least 3 (silence, one voice, overlap), got {self.n_classes}")

    @property
    def hop_length(self) -> int:
        return round(self.hop_ms * self.sample_rate / 1000)

    @property
    def win_length(self) -> int:
        return round(self.win_ms * self.sample_rate / 1000)
