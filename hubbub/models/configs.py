"""The models' configurations: frozen dataclasses, stored in each checkpoint's ``config.json``.

They live apart from the models (and from torch), so that what reads or writes a
configuration (a recipe's ``--help``, its config flags, a YAML file) needs no model
code; :mod:`hubbub.models.separator` and :mod:`hubbub.models.asr` re-export them.
"""

from __future__ import annotations

from dataclasses import dataclass

from hubbub.models.tokenizer import EOS_ID

__all__ = ["SUBSAMPLING", "ASRConfig", "OverlapConfig", "SeparatorConfig", "subsampled_length"]


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


#: time subsampling of the ASR's convolutional front-end
SUBSAMPLING = 4


@dataclass(frozen=True)
class ASRConfig:
    """Hyper-parameters of :class:`~hubbub.models.asr.SpeechTransformer`; stored in ``config.json``.

    The defaults are the embedded model (~3.9M parameters with a 256-piece
    sentencepiece vocabulary): greedy decoding runs at a real-time factor of
    about 0.02 and beam 5 + CTC at about 0.06 on one CPU thread. Characters
    (``tokenizer="char"``, ``vocab_size=42``) need no training but make about
    three times as many decoder steps.
    """

    sample_rate: int = 8000  # the default separator outputs 8 kHz
    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int | None = None  # None: the next power of two >= the window
    twod_channels: int = 32  # C: conv subsampling and 2D-attention channels
    twod_blocks: int = 1
    d_model: int = 144
    n_heads: int = 4
    d_ff: int = 576
    enc_layers: int = 12
    dec_layers: int = 2
    encoder_window: int | None = None  # None: global; W: local window, frames after subsampling
    ctc_weight: float = 0.3  # loss = w * CTC + (1 - w) * attention
    label_smoothing: float = 0.1
    tokenizer: str = "sentencepiece"  # "sentencepiece" or "char"
    vocab_size: int = 256  # tokenizer.vocab_size (CharTokenizer: 42)
    specaug_freq_masks: int = 2
    specaug_freq_width: int = 20  # mel channels, at most
    specaug_time_masks: int = 2
    specaug_time_width: int = 40  # frames before subsampling, at most
    specaug_time_ratio: float = 0.05  # and at most this fraction of the utterance
    dropout: float = 0.1
    # dropout on the attention weights; None: ``dropout``. 0 lets PyTorch's fused CPU attention kernel
    # run in training (a step of the default model takes about 40 % less time on a CPU)
    attn_dropout: float | None = None
    decoder: str = "attention"  # greedy decoding by default: "attention" decoder or "ctc" best path

    def __post_init__(self) -> None:
        if self.decoder not in ("attention", "ctc"):
            raise ValueError(f"decoder must be 'attention' or 'ctc', got {self.decoder!r}")
        if self.tokenizer not in ("char", "sentencepiece"):
            raise ValueError(f"tokenizer must be 'char' or 'sentencepiece', got {self.tokenizer!r}")
        if not 0.0 <= self.ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1], got {self.ctc_weight}")
        if self.vocab_size <= EOS_ID + 2:
            raise ValueError(f"vocab_size={self.vocab_size} leaves no room for tokens")
        for name in ("dropout", "attn_dropout"):
            p = getattr(self, name)
            if p is not None and not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        if self.n_fft is not None and self.n_fft < self.win_length:
            raise ValueError(f"n_fft={self.n_fft} is shorter than the window ({self.win_length} samples)")

    @property
    def attention_dropout(self) -> float:
        """Dropout on attention weights (``attn_dropout``, or ``dropout`` when that is None)."""
        return self.dropout if self.attn_dropout is None else self.attn_dropout

    @property
    def win_length(self) -> int:
        return round(self.win_ms * self.sample_rate / 1000)

    @property
    def hop_length(self) -> int:
        return round(self.hop_ms * self.sample_rate / 1000)

    @property
    def fft_size(self) -> int:
        return self.n_fft or 1 << (self.win_length - 1).bit_length()

    @property
    def frame_shift(self) -> float:
        """Seconds per encoder frame (after subsampling)."""
        return SUBSAMPLING * self.hop_length / self.sample_rate

    @property
    def n_freq(self) -> int:
        """Mel channels left after subsampling."""
        return subsampled_length(self.n_mels)


def subsampled_length(n):
    """Frames after two ``kernel 3, stride 2, padding 1`` convolutions (int or tensor)."""
    n = (n + 1) // 2
    return (n + 1) // 2
