"""Speech-Transformer ASR: log-mel front-end, conv + 2D attention, transformer
encoder/decoder and a CTC head.

After Dong, Xu and Xu, "Speech-Transformer: a no-recurrence sequence-to-sequence
model for speech recognition" (ICASSP 2018), with the joint CTC/attention
training of Watanabe et al. (2017)::

    wav (B, T) -> FilterbankFrontend -> (B, F, n_mels) log-mel, normalised
               -> SpecAugment (training only)
               -> ConvSubsampling  -> (B, C, F/4, n_mels/4)
               -> TwoDAttention x twod_blocks (time and frequency attention per channel)
               -> Linear(C * n_mels/4 -> D) -> TransformerLayer x enc_layers -> memory (B, F/4, D)
    memory -> CTC head (B, F/4, V)          (CTC loss, prefix scoring, word timestamps)
    memory + tokens -> ASRDecoder -> (B, U, V) (label-smoothed cross entropy)

Padded frames are zeroed between stages so that an utterance gives the same
output alone or in a padded batch. Decoding lives in :mod:`hubbub.models.decoding`.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from hubbub.models.attention import MultiHeadAttention, band_to_dense
from hubbub.models.configs import SUBSAMPLING, ASRConfig, subsampled_length
from hubbub.models.hub import PretrainedMixin
from hubbub.models.lm import LM_DIR, NgramLM
from hubbub.models.tokenizer import (
    BLANK_ID,
    EOS_ID,
    PAD_ID,
    SOS_ID,
    TOKENIZER_JSON,
    CharTokenizer,
    Tokenizer,
    load_tokenizer,
)
from hubbub.models.transformer import TransformerDecoderLayer, TransformerLayer

__all__ = [
    "SUBSAMPLING",
    "ASRConfig",
    "ASRDecoder",
    "ASREncoder",
    "ConvSubsampling",
    "FilterbankFrontend",
    "SpecAugment",
    "SpeechTransformer",
    "TwoDAttention",
    "TwoDMaps",
    "sinusoidal_positions",
    "subsampled_length",
]

def padding_mask(lengths: torch.Tensor, length: int) -> torch.Tensor:
    """``(B,) -> (B, length)`` bool, True where a frame is padding."""
    return torch.arange(length, device=lengths.device)[None, :] >= lengths[:, None]


def sinusoidal_positions(length: int, dim: int, device=None) -> torch.Tensor:
    """Sinusoidal position table ``(length, dim)`` (Vaswani et al., 2017)."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


class FilterbankFrontend(nn.Module):
    """Log-mel filterbank with per-utterance mean/variance normalisation.

    ``(B, T) waveform, (B,) lengths -> (B, F, n_mels) features, (B,) frame lengths``
    with ``F = T // hop + 1`` (centred frames, zero padding at the edges, so any
    non-empty waveform works). Padded frames are zero.
    """

    def __init__(self, cfg: ASRConfig) -> None:
        super().__init__()
        self.hop_length = cfg.hop_length
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate,
            n_fft=cfg.fft_size,
            win_length=cfg.win_length,
            hop_length=cfg.hop_length,
            n_mels=cfg.n_mels,
            center=True,
            pad_mode="constant",
        )

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        wav, lengths = as_batch(wav, lengths)
        wav = wav.float().masked_fill(padding_mask(lengths, wav.shape[-1]), 0.0)
        feats = (self.mel(wav) + 1e-6).log().transpose(1, 2)  # (B, F, n_mels)
        frames = lengths // self.hop_length + 1
        valid = (~padding_mask(frames, feats.shape[1]))[..., None]
        count = frames[:, None, None].to(feats.dtype)
        mean = (feats * valid).sum(1, keepdim=True) / count
        var = (((feats - mean) * valid) ** 2).sum(1, keepdim=True) / count
        feats = (feats - mean) * torch.rsqrt(var + 1e-5)
        return feats * valid, frames


def as_batch(wav: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(T,)`` or ``(B, T)`` waveform and optional lengths -> ``(B, T), (B,)``; rejects empty input."""
    if wav.dim() == 1:
        wav = wav[None]
    if wav.dim() != 2:
        raise ValueError(f"expected a (B, T) or (T,) waveform, got shape {tuple(wav.shape)}")
    if lengths is None:
        lengths = torch.full((wav.shape[0],), wav.shape[-1], dtype=torch.long, device=wav.device)
    lengths = torch.as_tensor(lengths, device=wav.device).long().reshape(-1)
    if lengths.numel() != wav.shape[0]:
        raise ValueError(f"{lengths.numel()} lengths for a batch of {wav.shape[0]}")
    if wav.shape[-1] == 0 or bool((lengths < 1).any()):
        raise ValueError("empty waveform: every utterance needs at least one sample")
    return wav, lengths.clamp(max=wav.shape[-1])


class SpecAugment(nn.Module):
    """Frequency and time masking (Park et al., 2019), only in training mode.

    ``(B, F, M) features, (B,) lengths -> (B, F, M)``: masked values become 0,
    the mean of normalised features. Time masks stay inside each utterance and
    are at most ``time_ratio`` of its length. No time warping.
    """

    def __init__(self, freq_masks=2, freq_width=20, time_masks=2, time_width=40, time_ratio=0.05) -> None:
        super().__init__()
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width, self.time_ratio = time_masks, time_width, time_ratio

    @staticmethod
    def _bands(extent: torch.Tensor, max_width: torch.Tensor, n: int, size: int) -> torch.Tensor:
        """``n`` random bands per row inside ``[0, extent)``: ``(B, size)`` bool."""
        b = extent.shape[0]
        width = (torch.rand(b, n, device=extent.device) * (max_width[:, None] + 1)).floor()
        start = (torch.rand(b, n, device=extent.device) * (extent[:, None] - width + 1).clamp(min=1)).floor()
        idx = torch.arange(size, device=extent.device)[None, None, :]
        return ((idx >= start[..., None]) & (idx < (start + width)[..., None])).any(1)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return feats
        b, frames, mels = feats.shape
        if self.freq_masks and self.freq_width:
            extent = torch.full((b,), mels, device=feats.device)
            width = torch.full((b,), min(self.freq_width, mels), device=feats.device)
            feats = feats.masked_fill(self._bands(extent, width, self.freq_masks, mels)[:, None, :], 0.0)
        if self.time_masks and self.time_width:
            width = (lengths.float() * self.time_ratio).floor().clamp(max=self.time_width)
            feats = feats.masked_fill(self._bands(lengths.float(), width, self.time_masks, frames)[:, :, None], 0.0)
        return feats


class ConvSubsampling(nn.Module):
    """Two ``3x3`` stride-2 convolutions: ``(B, F, M), (B,) -> (B, C, F', M'), (B,)``
    with ``F' = ceil(ceil(F / 2) / 2)``; any ``F >= 1`` works."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.conv1(feats[:, None]))
        lengths = (lengths + 1) // 2
        x = x.masked_fill(padding_mask(lengths, x.shape[2])[:, None, :, None], 0.0)
        x = F.relu(self.conv2(x))
        lengths = (lengths + 1) // 2
        return x.masked_fill(padding_mask(lengths, x.shape[2])[:, None, :, None], 0.0), lengths


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


class ASREncoder(nn.Module):
    """Features to memory: ``(B, F, n_mels), (B,) -> (B, T, D), (B,), [TwoDMaps]``.

    Conv subsampling (x4), ``twod_blocks`` 2D-attention blocks, a projection to
    ``d_model`` and ``enc_layers`` transformer layers (global, or local with
    ``encoder_window``).
    """

    def __init__(self, cfg: ASRConfig) -> None:
        super().__init__()
        self.subsample = ConvSubsampling(cfg.twod_channels)
        self.twod = nn.ModuleList(
            TwoDAttention(cfg.twod_channels, cfg.n_freq, cfg.encoder_window, cfg.dropout, cfg.attention_dropout)
            for _ in range(cfg.twod_blocks)
        )
        self.proj = nn.Linear(cfg.twod_channels * cfg.n_freq, cfg.d_model)
        self.layers = nn.ModuleList(
            TransformerLayer(
                cfg.d_model, cfg.n_heads, cfg.d_ff, window=cfg.encoder_window, dropout=cfg.dropout,
                attn_dropout=cfg.attention_dropout,
            )
            for _ in range(cfg.enc_layers)
        )
        self.norm = nn.LayerNorm(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor, return_maps: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, list[TwoDMaps]]:
        x, lengths = self.subsample(feats, lengths)
        maps = []
        for block in self.twod:
            x, m = block(x, lengths, need_weights=return_maps)
            if m is not None:
                maps.append(m)
        b, c, t, f = x.shape
        x = self.drop(self.proj(x.transpose(1, 2).reshape(b, t, c * f)))
        pad = padding_mask(lengths, t)
        for layer in self.layers:
            # zero the padding so that the layer's position convolution sees what it would alone
            x, _ = layer(x.masked_fill(pad[..., None], 0.0), key_padding_mask=pad)
        return self.norm(x).masked_fill(pad[..., None], 0.0), lengths, maps


class ASRDecoder(nn.Module):
    """Autoregressive transformer decoder with sinusoidal token positions.

    ``(B, U) tokens, (B, T, D) memory -> (B, U, V) logits`` and, when asked, the
    last layer's cross-attention ``(B, H, U, T)``.
    """

    def __init__(self, cfg: ASRConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model, padding_idx=PAD_ID)
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.dropout, cfg.attention_dropout)
            for _ in range(cfg.dec_layers)
        )
        self.norm = nn.LayerNorm(cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.vocab_size)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self,
        tokens: torch.Tensor,
        memory: torch.Tensor,
        memory_padding_mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        u = tokens.shape[1]
        y = self.drop(self.embed(tokens) + sinusoidal_positions(u, self.embed.embedding_dim, tokens.device))
        causal = torch.ones(u, u, dtype=torch.bool, device=tokens.device).tril()
        weights = None
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            y, w = layer(y, memory, causal, None, memory_padding_mask, need_weights=need_weights and last)
            weights = w if w is not None else weights
        return self.out(self.norm(y)), weights


class SpeechTransformer(nn.Module, PretrainedMixin):
    """Joint CTC/attention Speech-Transformer.

    ``forward`` computes the training losses; decoding is in
    :func:`hubbub.models.decoding.greedy_decode` and
    :func:`hubbub.models.decoding.beam_search`. The tokenizer travels with the
    model: :meth:`save_pretrained` writes it beside the weights and
    :meth:`from_pretrained` reads it back.
    """

    model_type = "hubbub-asr"
    config_class = ASRConfig

    def __init__(self, config: ASRConfig | None = None, tokenizer: Tokenizer | None = None) -> None:
        super().__init__()
        self.config = cfg = config or ASRConfig()
        self.frontend = FilterbankFrontend(cfg)
        self.specaug = SpecAugment(
            cfg.specaug_freq_masks,
            cfg.specaug_freq_width,
            cfg.specaug_time_masks,
            cfg.specaug_time_width,
            cfg.specaug_time_ratio,
        )
        self.encoder = ASREncoder(cfg)
        self.decoder = ASRDecoder(cfg)
        self.ctc = nn.Linear(cfg.d_model, cfg.vocab_size)
        self.tokenizer = None
        if tokenizer is not None:
            self.set_tokenizer(tokenizer)
        self.lm = None  # an NgramLM for CTC beam search, loaded from the model folder's lm/ when there is one

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def frame_shift(self) -> float:
        """Seconds per encoder frame."""
        return self.config.frame_shift

    def set_tokenizer(self, tokenizer: Tokenizer) -> None:
        if tokenizer.vocab_size != self.config.vocab_size:
            raise ValueError(f"tokenizer has {tokenizer.vocab_size} tokens, config.vocab_size={self.config.vocab_size}")
        if tokenizer.kind != self.config.tokenizer:
            raise ValueError(f"tokenizer is {tokenizer.kind!r}, config.tokenizer={self.config.tokenizer!r}")
        self.tokenizer = tokenizer

    def save_extra_files(self, directory: Path) -> None:
        if self.tokenizer is not None:
            self.tokenizer.save(directory)
        if self.lm is not None and self.lm.directory.resolve() != (directory / LM_DIR).resolve():
            shutil.copytree(self.lm.directory, directory / LM_DIR, dirs_exist_ok=True)

    def load_extra_files(self, directory: Path) -> None:
        if (directory / TOKENIZER_JSON).is_file():
            self.set_tokenizer(load_tokenizer(directory))
        elif self.config.tokenizer == "char" and self.config.vocab_size == CharTokenizer().vocab_size:
            self.set_tokenizer(CharTokenizer())
        self.lm = NgramLM.from_model_dir(directory, self.tokenizer)

    def encode(
        self, wav: torch.Tensor, lengths: torch.Tensor | None = None, return_maps: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, list[TwoDMaps]]:
        """``(B, T)`` waveform -> memory ``(B, T', D)``, lengths ``(B,)`` and the
        2D-attention maps (one :class:`TwoDMaps` per block when ``return_maps``,
        else an empty list). ``T' ~ T / (4 * hop)``."""
        feats, frames = self.frontend(wav, lengths)
        feats = self.specaug(feats, frames)
        return self.encoder(feats, frames, return_maps=return_maps)

    def ctc_log_probs(self, memory: torch.Tensor) -> torch.Tensor:
        """``(B, T', D) -> (B, T', V)`` CTC log-probabilities (float32)."""
        return self.ctc(memory).float().log_softmax(dim=-1)

    def forward(
        self,
        wav: torch.Tensor,
        wav_lengths: torch.Tensor | None,
        tokens: torch.Tensor,
        token_lengths: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Joint CTC/attention loss.

        Args:
            wav: ``(B, T)`` waveforms at ``config.sample_rate``.
            wav_lengths: ``(B,)`` samples, or None when none is padded.
            tokens: ``(B, U)`` token ids without sos/eos; beyond
                ``token_lengths`` anything (it is ignored).
            token_lengths: ``(B,)``.

        Returns:
            dict with ``loss`` (``w * ctc_loss + (1 - w) * att_loss``),
            ``att_loss`` (label-smoothed cross entropy per token), ``ctc_loss``
            (per target token, averaged over the batch), ``acc`` (teacher-forced
            token accuracy) and ``memory_lengths``.
        """
        cfg = self.config
        memory, mem_lengths, _ = self.encode(wav, wav_lengths)
        b, u = tokens.shape
        token_lengths = token_lengths.to(tokens.device).long()
        tok_pad = padding_mask(token_lengths, u)
        ys = tokens.long().masked_fill(tok_pad, PAD_ID)
        zero = memory.new_zeros(())
        att_loss = acc = ctc_loss = zero
        if cfg.ctc_weight < 1.0:
            sos = ys.new_full((b, 1), SOS_ID)
            target = torch.cat([ys.masked_fill(tok_pad, -100), ys.new_full((b, 1), -100)], dim=1)
            target[torch.arange(b, device=ys.device), token_lengths] = EOS_ID
            logits, _ = self.decoder(torch.cat([sos, ys], dim=1), memory, padding_mask(mem_lengths, memory.shape[1]))
            att_loss = F.cross_entropy(
                logits.float().transpose(1, 2), target, ignore_index=-100, label_smoothing=cfg.label_smoothing
            )
            valid = target != -100
            acc = (logits.argmax(-1) == target)[valid].float().mean()
        if cfg.ctc_weight > 0.0:
            log_probs = self.ctc_log_probs(memory).transpose(0, 1)  # (T', B, V)
            ctc_loss = F.ctc_loss(
                log_probs, ys, mem_lengths, token_lengths, blank=BLANK_ID, reduction="mean", zero_infinity=True
            )
        loss = cfg.ctc_weight * ctc_loss + (1.0 - cfg.ctc_weight) * att_loss
        return {"loss": loss, "att_loss": att_loss, "ctc_loss": ctc_loss, "acc": acc, "memory_lengths": mem_lengths}
