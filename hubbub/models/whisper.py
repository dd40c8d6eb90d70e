"""Whisper as a layout of hubbub's Speech-Transformer.

OpenAI's Whisper (Radford et al., 2022; MIT licence) is a Speech-Transformer: a
convolutional front-end and a pre-norm Transformer encoder-decoder over log-mel
features. Here it is built from hubbub's own parts (the shared
:class:`~hubbub.models.attention.MultiHeadAttention`, :class:`TransformerLayer`
and :class:`TransformerDecoderLayer`), so an imported Whisper checkpoint runs
with hubbub's local/global encoder windows, its key/value cache and its
time-frequency attention::

    wav (B, T) 16 kHz -> WhisperLogMel -> (B, n_mels, F) log-mel, 100 frames/s
        -> TimeFrequencyBlock (optional; zero residual at start: exactly Whisper)
        -> Conv1d(k3) GELU -> Conv1d(k3, stride 2) GELU -> + sinusoidal positions
        -> TransformerLayer x n_audio_layer (global, or local with encoder_window)
        -> LayerNorm -> memory (B, F/2, D)
    tokens (B, U) + learned positions -> TransformerDecoderLayer x n_text_layer
        -> LayerNorm -> logits = x @ embedding^T (tied)

Decoding lives in :mod:`hubbub.models.whisper_decoding`; importing OpenAI,
Hugging Face and CTranslate2 checkpoints in :mod:`hubbub.models.whisper_import`.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hubbub.models.attention import TwoDAttention, TwoDMaps
from hubbub.models.hub import PretrainedMixin
from hubbub.models.transformer import TransformerDecoderLayer, TransformerLayer

__all__ = [
    "SAMPLE_RATE",
    "TimeFrequencyBlock",
    "WhisperASR",
    "WhisperConfig",
    "WhisperDecoder",
    "WhisperEncoder",
    "WhisperLogMel",
    "WhisperTokenizer",
    "half_decoder",
    "quantize_int8",
]

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
#: seconds of audio one encoder pass covers (Whisper's context: 3000 log-mel frames)
CHUNK_SECONDS = 30.0
#: the encoder input past an utterance is rounded up to this many seconds (so it depends on the utterance alone)
PADDING_STEP = 5.0
TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True)
class WhisperConfig:
    """Dimensions and special tokens of a Whisper checkpoint, plus hubbub's
    additions; stored in ``config.json``.

    The names of the dimensions are OpenAI's (``ModelDimensions``). Token ids
    come from the checkpoint's tokenizer (multilingual and English-only models
    differ); ``language`` is None for English-only models, which take no
    language or task token.
    """

    n_mels: int = 80
    n_audio_ctx: int = 1500
    n_audio_state: int = 512
    n_audio_head: int = 8
    n_audio_layer: int = 6
    n_vocab: int = 51865
    n_text_ctx: int = 448
    n_text_state: int = 512
    n_text_head: int = 8
    n_text_layer: int = 6
    # special tokens (multilingual defaults)
    eot: int = 50257
    sot: int = 50258
    language: int | None = 50259  # <|en|>; None: an English-only model
    transcribe: int | None = 50359
    no_timestamps: int = 50363
    suppress_ids: tuple[int, ...] = ()  # never emitted (non-speech symbols)
    suppress_ids_begin: tuple[int, ...] = ()  # never emitted first (blank, end of text)
    alignment_heads: tuple[tuple[int, int], ...] = ()  # (decoder layer, head) pairs that follow the audio
    # hubbub's additions
    encoder_window: int | None = None  # None: global encoder attention; W: local, in encoder frames (20 ms)
    tf_channels: int = 0  # 0: no time-frequency block; C: a 2D attention block with C channels on the log-mel
    tf_window: int = 64  # local window of the time-frequency block's time attention, in log-mel frames (10 ms)

    def __post_init__(self) -> None:
        # JSON gives lists: store tuples so that the config stays hashable and frozen
        object.__setattr__(self, "suppress_ids", tuple(self.suppress_ids))
        object.__setattr__(self, "suppress_ids_begin", tuple(self.suppress_ids_begin))
        object.__setattr__(self, "alignment_heads", tuple(tuple(h) for h in self.alignment_heads))
        if self.encoder_window is not None and self.encoder_window < 1:
            raise ValueError(f"encoder_window must be None or >= 1, got {self.encoder_window}")
        if self.tf_channels < 0:
            raise ValueError(f"tf_channels must be >= 0, got {self.tf_channels}")

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def frame_shift(self) -> float:
        """Seconds per encoder frame (20 ms)."""
        return 2 * HOP / SAMPLE_RATE

    @property
    def timestamp_begin(self) -> int:
        """Id of ``<|0.00|>``, the first timestamp token."""
        return self.no_timestamps + 1

    @property
    def prompt(self) -> tuple[int, ...]:
        """The task prompt: ``<|startoftranscript|><|en|><|transcribe|><|notimestamps|>``
        (English-only models: ``<|startoftranscript|><|notimestamps|>``)."""
        task = () if self.language is None else (self.language, self.transcribe)
        return (self.sot, *task, self.no_timestamps)


def mel_filters(n_mels: int) -> np.ndarray:
    """Slaney-style mel filterbank ``(n_mels, N_FFT // 2 + 1)``, as Whisper's."""
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=n_mels).astype(np.float32)


class WhisperLogMel(nn.Module):
    """Whisper's log-mel features, one utterance at a time.

    ``(T,)`` waveform at 16 kHz -> ``(n_mels, T // 160)``: 160 zero samples are
    appended, a centred reflect-padded STFT (periodic Hann, 400 points, hop
    160) is taken and its last frame dropped, then
    ``max(log10(max(mel, 1e-10)), peak - 8)`` is mapped by ``(x + 4) / 4``, and
    the frame that the appended zeros made is dropped, exactly as faster-whisper
    does before it pads the features.
    """

    def __init__(self, n_mels: int) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.register_buffer("filters", torch.from_numpy(mel_filters(n_mels)), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        wav = F.pad(wav.float(), (0, HOP))
        spec = torch.stft(wav, N_FFT, HOP, window=self.window, center=True, pad_mode="reflect", return_complex=True)
        power = spec[..., :-1].abs() ** 2
        log_spec = (self.filters @ power).clamp(min=1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
        return ((log_spec + 4.0) / 4.0)[..., :-1]


class TimeFrequencyBlock(nn.Module):
    """Speech-Transformer 2D (time and frequency) attention on the log-mel, as a
    residual: ``(B, n_mels, F), (B,) -> (B, n_mels, F)``.

    A 3x3 convolution lifts the log-mel to ``C`` channels, a
    :class:`~hubbub.models.attention.TwoDAttention` block attends along time (local,
    ``window`` frames) and along frequency, and a 3x3 convolution maps back to
    one channel that is added to the input. That last convolution starts at
    zero, so a Whisper model with this block computes exactly what Whisper
    computes until the block is trained.
    """

    def __init__(self, channels: int, n_mels: int, window: int) -> None:
        super().__init__()
        self.lift = nn.Conv2d(1, channels, 3, padding=1)
        self.attend = TwoDAttention(channels, n_mels, window=window)
        self.out = nn.Conv2d(channels, 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(
        self, mel: torch.Tensor, lengths: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, TwoDMaps | None]:
        x = F.gelu(self.lift(mel.transpose(1, 2)[:, None]))  # (B, C, F, n_mels)
        x, maps = self.attend(x, lengths, need_weights=need_weights)
        return mel + self.out(x)[:, 0].transpose(1, 2), maps


class WhisperEncoder(nn.Module):
    """``(B, n_mels, F) -> (B, F / 2, D)`` (``F`` even, at most ``2 * n_audio_ctx``)."""

    def __init__(self, cfg: WhisperConfig) -> None:
        super().__init__()
        d = cfg.n_audio_state
        self.conv1 = nn.Conv1d(cfg.n_mels, d, 3, padding=1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
        self.register_buffer("positions", sinusoidal_whisper(cfg.n_audio_ctx, d))
        self.layers = nn.ModuleList(
            TransformerLayer(d, cfg.n_audio_head, 4 * d, window=cfg.encoder_window, pos_kernel=0)
            for _ in range(cfg.n_audio_layer)
        )
        self.norm = nn.LayerNorm(d)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)  # (B, F/2, D)
        if x.shape[1] > self.positions.shape[0]:
            raise ValueError(f"{x.shape[1]} encoder frames exceed the model's {self.positions.shape[0]}")
        x = x + self.positions[: x.shape[1]]
        for layer in self.layers:
            x, _ = layer(x)
        return self.norm(x)


def sinusoidal_whisper(length: int, dim: int) -> torch.Tensor:
    """Whisper's encoder position table ``(length, dim)``: sines then cosines,
    timescales from 1 to 10,000."""
    log_timescale = np.log(10000) / (dim // 2 - 1)
    inv = torch.exp(-log_timescale * torch.arange(dim // 2, dtype=torch.float32))
    t = torch.arange(length, dtype=torch.float32)[:, None] * inv[None, :]
    return torch.cat([t.sin(), t.cos()], dim=1)


class WhisperDecoder(nn.Module):
    """``(B, U) tokens, (B, S, D) memory -> (B, U, V) logits``, incrementally with
    a key/value ``cache`` (the ``offset`` is the number of tokens already cached)."""

    #: logits per row recomputed exactly after the int8 projection (see :meth:`project`)
    SHORTLIST = 32

    def __init__(self, cfg: WhisperConfig) -> None:
        super().__init__()
        d = cfg.n_text_state
        self.embed = nn.Embedding(cfg.n_vocab, d)
        self.positions = nn.Parameter(torch.zeros(cfg.n_text_ctx, d))
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(d, cfg.n_text_head, 4 * d) for _ in range(cfg.n_text_layer)
        )
        self.norm = nn.LayerNorm(d)

    def forward(
        self,
        tokens: torch.Tensor,
        memory: torch.Tensor,
        cache: dict | None = None,
        offset: int = 0,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Returns the logits and, with ``need_weights``, every layer's
        cross-attention ``(B, H, U, S)``."""
        u = tokens.shape[1]
        y = self.embed(tokens) + self.positions[offset : offset + u]
        rows = torch.arange(u, device=tokens.device)[:, None] + offset
        causal = torch.arange(offset + u, device=tokens.device)[None, :] <= rows
        weights = []
        for layer in self.layers:
            y, w = layer(y, memory, causal, need_weights=need_weights, cache=cache)
            if w is not None:
                weights.append(w)
        return self.project(self.norm(y)), weights

    def project(self, y: torch.Tensor) -> torch.Tensor:
        """``(B, U, D) -> (B, U, V)`` float32 logits over the tied embedding.

        With gradients off (decoding) on a CPU, the vocabulary projection, memory-bound
        there (51,865 x 512 float32 weights read for every token: 11 ms of a decoding
        step on 2 threads), runs on an int8 copy of the weights (dynamic quantisation,
        weights per output channel: 0.6 ms), and the ``SHORTLIST`` largest logits of each row are then
        recomputed exactly in float32: the argmax and the beam's candidates are those of
        the float32 product; the other logits, within about 2 % of the largest, only
        enter the log-softmax normaliser."""
        weight = self.embed.weight
        if torch.is_grad_enabled() or weight.device.type != "cpu" or weight.dtype != torch.float32:
            return F.linear(y, weight).float()
        key = (weight.data_ptr(), weight._version)
        if getattr(self, "_low", (None,))[0] != key:  # a tuple: not a submodule, not in the state dict
            self._low = (key, _int8_linear(weight.detach()))
        logits = self._low[1](y)
        top = logits.topk(min(self.SHORTLIST, logits.shape[-1]), dim=-1).indices  # (B, U, k)
        exact = torch.einsum("bud,bukd->buk", y, weight[top])
        return logits.scatter_(-1, top, exact)


def _int8_linear(weight: torch.Tensor) -> nn.Module:
    """``x @ weight.T`` with int8 weights (:func:`_int8`)."""
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    linear.weight = nn.Parameter(weight.clone(), requires_grad=False)
    return _int8(nn.Sequential(linear))


def _half_weights(module: nn.Module) -> nn.Module:
    """``module`` with its linear layers' weights stored as float16 and computed in
    float32 (``torch.ao`` dynamic ``float16``: fbgemm unpacks the weights on the fly;
    activations are not quantised, so a row's output does not depend on its batch)."""
    import warnings

    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(module.eval(), {nn.Linear}, dtype=torch.float16)


def _int8(module: nn.Module) -> nn.Module:
    """``module`` with its linear layers dynamically quantised to int8 (``torch.ao``,
    weights per output channel, activations one scale per call)."""
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(module.eval(), {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)


class WhisperTokenizer:
    """Whisper's byte-level BPE (a ``tokenizer.json`` of the tokenizers library)."""

    def __init__(self, path: str | Path, eot: int) -> None:
        from tokenizers import Tokenizer

        self.path = Path(path)
        self.eot = eot
        self._tok = Tokenizer.from_file(str(path))

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids) -> str:
        return self._tok.decode([int(i) for i in ids if int(i) < self.eot])

    def id_to_piece(self, token: int) -> str:
        """The text of one token (byte pieces of a split character show as ``\ufffd``)."""
        return self._tok.decode([int(token)], skip_special_tokens=False)

    def words(self, ids) -> list[tuple[str, list[int]]]:
        """Split text tokens into words (a word starts at a token that starts with
        a space): ``[(word, [token positions]), ...]``; punctuation stays with the
        word before it."""
        out: list[tuple[str, list[int]]] = []
        for i, tok in enumerate(ids):
            piece = self._tok.decode([int(tok)])
            if not out or piece.startswith(" ") or not piece.strip():
                out.append((piece, [i]))
            else:
                word, pos = out[-1]
                out[-1] = (word + piece, [*pos, i])
        return [(w.strip(), p) for w, p in out if w.strip()]


class WhisperASR(nn.Module, PretrainedMixin):
    """A Whisper checkpoint (or a from-scratch model of that layout) in hubbub.

    ``encode`` gives the memory; decoding is
    :func:`hubbub.models.whisper_decoding.whisper_decode`. The tokenizer
    (``tokenizer.json``) travels with the model folder.
    """

    model_type = "hubbub-whisper"
    config_class = WhisperConfig

    def __init__(self, config: WhisperConfig | None = None, tokenizer: WhisperTokenizer | None = None) -> None:
        super().__init__()
        self.config = cfg = config or WhisperConfig()
        self.logmel = WhisperLogMel(cfg.n_mels)
        self.tf = TimeFrequencyBlock(cfg.tf_channels, cfg.n_mels, cfg.tf_window) if cfg.tf_channels else None
        self.encoder = WhisperEncoder(cfg)
        self.decoder = WhisperDecoder(cfg)
        self.tokenizer = tokenizer

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def frame_shift(self) -> float:
        return self.config.frame_shift

    @cached_property
    def suppress_mask(self) -> torch.Tensor:
        """``(V,)`` additive mask: -inf on every id that transcription without
        timestamps never emits (the config's symbols and all special tokens but
        end of text)."""
        cfg = self.config
        mask = torch.zeros(cfg.n_vocab)
        mask[list(cfg.suppress_ids)] = float("-inf")
        mask[cfg.eot + 1 :] = float("-inf")
        return mask

    def encoder_frames(self, lengths: torch.Tensor, padding: float | None) -> int:
        """Log-mel frames of the encoder input for waveforms of ``lengths``
        samples: the longest plus at least ``padding`` seconds of zeros, rounded up
        to a multiple of ``PADDING_STEP`` seconds and at most the model's context
        (30 s); None: always 30 s, as Whisper was trained. The rounding lets
        utterances of similar length share a batch while each one's input depends
        only on its own length (:func:`~hubbub.models.whisper_decoding.whisper_decode`
        batches by it), so its words do not depend on its batch."""
        full = 2 * self.config.n_audio_ctx
        if padding is None:
            return full
        frames = int(lengths.max()) // HOP + int(math.ceil(padding * SAMPLE_RATE / HOP))
        step = int(PADDING_STEP * SAMPLE_RATE / HOP)
        return min(full, -(-frames // step) * step)

    def forward(
        self, wav: torch.Tensor, lengths: torch.Tensor, tokens: torch.Tensor, token_lengths: torch.Tensor,
        input_padding: float | None = 10.0,
    ) -> dict[str, torch.Tensor]:
        """Teacher-forced training loss.

        ``wav`` ``(B, T)`` 16 kHz with ``lengths`` ``(B,)``; ``tokens`` ``(B, U)``
        text ids (no special tokens; padded) with ``token_lengths`` ``(B,)``. The
        decoder reads the task prompt and the text and is scored (mean
        cross-entropy over the real targets) on the text followed by end of text.
        ``input_padding``: as in decoding, so the model trains on what it reads.
        Returns ``{"loss"}``.
        """
        cfg = self.config
        lengths = lengths.to(wav.device)
        mel = self.features(wav, lengths, self.encoder_frames(lengths.cpu(), input_padding))
        memory, _ = self.encode(mel, torch.clamp(lengths // HOP, min=1))
        b, p = tokens.shape[0], len(cfg.prompt)
        prompt = torch.tensor(cfg.prompt, device=wav.device).expand(b, p)
        inputs = torch.cat([prompt, tokens], dim=1)  # padding positions are never scored
        targets = torch.cat([tokens, tokens.new_full((b, 1), cfg.eot)], dim=1)
        pos = torch.arange(targets.shape[1], device=wav.device)[None]
        targets = torch.where(pos < token_lengths[:, None], targets, torch.full_like(targets, -100))
        targets[torch.arange(b), token_lengths] = cfg.eot  # end of text right after each text
        logits, _ = self.decoder(inputs, memory)
        return {"loss": F.cross_entropy(logits[:, p - 1 :].transpose(1, 2), targets, ignore_index=-100)}

    def features(self, wav: torch.Tensor, lengths: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``(B, T)`` waveforms -> ``(B, n_mels, n_frames)`` log-mel, each
        utterance's own frames followed by zeros (faster-whisper's padding)."""
        mel = wav.new_zeros(wav.shape[0], self.config.n_mels, n_frames)
        for i, n in enumerate(lengths.tolist()):
            m = self.logmel(wav[i, :n])[:, :n_frames]
            mel[i, :, : m.shape[1]] = m
        return mel

    def encode(
        self, mel: torch.Tensor, lengths: torch.Tensor | None = None, return_maps: bool = False
    ) -> tuple[torch.Tensor, list[TwoDMaps]]:
        """``(B, n_mels, F)`` log-mel (``lengths``: frames with speech, for the
        time-frequency block) -> memory ``(B, F / 2, D)`` and the block's maps."""
        maps = []
        if self.tf is not None:
            if lengths is None:
                lengths = torch.full((mel.shape[0],), mel.shape[-1], device=mel.device)
            mel, m = self.tf(mel, lengths, need_weights=return_maps)
            maps = [m] if m is not None else []
        return self.encoder(mel), maps

    def save_extra_files(self, directory: Path) -> None:
        if self.tokenizer is not None and self.tokenizer.path.resolve() != (directory / TOKENIZER_FILE).resolve():
            shutil.copyfile(self.tokenizer.path, directory / TOKENIZER_FILE)

    def load_extra_files(self, directory: Path) -> None:
        if (directory / TOKENIZER_FILE).is_file():
            self.tokenizer = WhisperTokenizer(directory / TOKENIZER_FILE, self.config.eot)

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        # a checkpoint saved without the time-frequency block loads into a model with one (zero residual)
        if self.tf is not None and not any(k.startswith("tf.") for k in state):
            state = {**state, **{f"tf.{k}": v for k, v in self.tf.state_dict().items()}}
        return super().load_state_dict(state, strict=strict, assign=assign)


def half_decoder(model: WhisperASR) -> WhisperASR:
    """The decoder blocks' linear layers with float16 weights (:func:`_half_weights`),
    for decoding on a CPU.

    Greedy decoding reads all the decoder's weights for every token, so its steps are
    bound by memory traffic, which float16 weights halve (a 512 -> 2048 -> 512 block
    at batch 8: 0.25 ms against 0.47 in float32). Whisper's released weights are
    float16, so for them nothing is rounded: only the order of the float32 sums
    changes (about 1e-6). The activations stay float32, so, unlike
    :func:`quantize_int8`, an utterance's words do not depend on its batch.
    """
    model.decoder.layers = _half_weights(model.decoder.layers)
    return model.eval()


def quantize_int8(model: WhisperASR, encoder: bool = False) -> WhisperASR:
    """Dynamic int8 quantisation (``torch.ao``, weights per output channel) of
    the linear layers of the decoder's blocks and, with ``encoder``, of the
    encoder's; the tied output projection, the convolutions and the embeddings
    stay float32.

    The decoder reads all its weights for every token, so on a CPU its steps are
    bound by memory traffic, which int8 weights cut by four: greedy decoding runs
    about 20 % faster at about the same WER. Activations are quantised with one
    scale per call, so an utterance's words depend a little on the others in its
    batch. The encoder's quantisation saves less and costs words on separated
    voices (docs/notes/benchmarks-history.md), so it is off unless asked.
    """
    if encoder:
        model.encoder = _int8(model.encoder)
    model.decoder.layers = _int8(model.decoder.layers)
    return model.eval()
