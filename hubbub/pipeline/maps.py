"""What the models looked at, for display: spectrograms, masks and attention maps.

Everything here reuses the models' own outputs, taken from the forward passes
that separated and transcribed the recording (``Separator.forward(...,
return_details=True)``, the encoder's 2D maps and ``decode(...,
return_cross_attention=True)``); nothing here runs a model. It only reshapes them:
averages over heads or channels, expands banded local attention, pools long
maps to a displayable size, and puts every axis on the recording's time (or
frequency) scale. The results are plain NumPy arrays; drawing them is
:mod:`hubbub.demo.plots`' business.

Separator time axes: encoder frame ``f`` starts at ``f * stride / sample_rate``
seconds. The masker cuts the frames into chunks of ``K`` frames with hop
``K / 2``; chunk ``s`` starts at frame ``s * K / 2 - K / 2`` (the first chunk
begins half a chunk before the recording), so its centre is at frame
``s * K / 2``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from hubbub.models.attention import band_to_dense

__all__ = ["asr_details", "separator_details", "separator_seconds_limit", "spectrogram"]

#: attention maps are pooled to at most this many rows and columns
MAX_BINS = 400
#: largest global inter-chunk weight tensor (K * H * S * S floats) computed for display
INTER_BUDGET = 1 << 26


def _mono(wav) -> torch.Tensor:
    wav = torch.as_tensor(np.asarray(wav, dtype=np.float32) if not torch.is_tensor(wav) else wav).float()
    if wav.dim() == 2:
        wav = wav.mean(dim=0 if wav.shape[0] < wav.shape[1] else 1)
    if wav.dim() != 1 or wav.numel() == 0:
        raise ValueError(f"expected a non-empty mono waveform (T,), got shape {tuple(wav.shape)}")
    return wav.cpu()


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()


def spectrogram(
    wav, sample_rate: int, n_fft: int | None = None, hop_length: int | None = None, ref: float | None = None
) -> dict:
    """Magnitude spectrogram in dB of a mono waveform.

    ``n_fft`` defaults to the power of two nearest 32 ms, ``hop_length`` to a
    quarter of it. ``ref`` is the amplitude that maps to 0 dB (default: this
    spectrogram's maximum); values are floored at -80 dB.

    Returns ``{"db": (F, T), "times": (T,) s, "freqs": (F,) Hz, "sample_rate",
    "n_fft", "hop_length", "ref"}``; frame ``t`` is centred at ``t * hop / sr``.
    """
    x = _mono(wav)
    n_fft = n_fft or 1 << round(math.log2(0.032 * sample_rate))
    hop_length = hop_length or n_fft // 4
    window = torch.hann_window(n_fft)
    mag = torch.stft(x, n_fft, hop_length, window=window, center=True, return_complex=True).abs()
    ref = float(mag.max()) if ref is None else float(ref)
    ref = ref if ref > 0 else 1.0
    db = 20 * torch.log10(mag.clamp_min(1e-10) / ref)
    return {
        "db": _numpy(db.clamp_min(-80.0)),
        "times": np.arange(mag.shape[-1]) * hop_length / sample_rate,
        "freqs": np.arange(mag.shape[0]) * sample_rate / n_fft,
        "sample_rate": sample_rate,
        "n_fft": n_fft,
        "hop_length": hop_length,
        "ref": ref,
    }


def _pool(weights: np.ndarray, q_pos: np.ndarray, k_pos: np.ndarray, n_bins: int, bin_size: int) -> np.ndarray:
    """Scatter attention rows into a ``(n_bins, n_bins)`` grid on a common axis.

    ``weights (..., Q, Kk)`` are the weights from queries at positions
    ``q_pos (..., Q)`` to keys at ``k_pos (..., Q, Kk)`` (integer positions,
    negative or ``>= n_bins * bin_size`` ones are padding and dropped). Each
    cell is the attention a query in the row bin pays to all keys in the
    column bin, averaged over the row's queries (so rows sum to about one);
    cells no query reaches are NaN.
    """
    limit = n_bins * bin_size
    q = np.broadcast_to(q_pos[..., None], weights.shape)
    k = np.broadcast_to(k_pos, weights.shape)
    ok = (q >= 0) & (q < limit) & (k >= 0) & (k < limit)
    cell = (q[ok] // bin_size) * n_bins + k[ok] // bin_size
    grid = np.bincount(cell, weights=weights[ok], minlength=n_bins * n_bins).reshape(n_bins, n_bins)
    reached = np.bincount(cell, minlength=n_bins * n_bins).reshape(n_bins, n_bins) > 0
    q_ok = (q_pos >= 0) & (q_pos < limit)
    rows = np.bincount(q_pos[q_ok] // bin_size, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = grid / rows[:, None]
    out[~reached] = np.nan
    return out.astype(np.float32)


def _heads_mean(weights: torch.Tensor, head_dim: int, window: int | None, length: int) -> np.ndarray:
    """Average over heads, then expand a local attention band to ``length`` keys."""
    w = weights.float().mean(dim=head_dim)
    if window is not None:
        w = band_to_dense(w, length)
    return _numpy(w)


def separator_seconds_limit(cfg) -> float | None:
    """Longest window whose global inter-chunk weights fit in :data:`INTER_BUDGET`
    (None: any, with local inter-chunk attention)."""
    if cfg.inter_window is not None:
        return None
    k, h = cfg.chunk_size, cfg.n_heads
    s_max = int(math.sqrt(INTER_BUDGET / (k * h)))
    frames = max(1, (s_max - 1) * (k // 2))
    return frames * cfg.stride / cfg.sample_rate


def separator_details(separator, x: torch.Tensor, output) -> dict:
    """Spectrograms, masks and last-block attention of one forward pass of ``separator``.

    Args:
        separator: the :class:`~hubbub.models.separator.Separator` that ran (its
            configuration and encoder filters are read, it is not run again).
        x: ``(T,)`` the window it separated, at its rate.
        output: the :class:`~hubbub.models.separator.SeparatorOutput` of
            ``separator(x[None], return_details=True)``.

    Returns a dict (arrays are NumPy, times in seconds from the start of the
    window, frequencies in Hz)::

        sample_rate, seconds, n_src, stride, chunk_size, n_chunks,
        frame_seconds, inter_window, intra_window, n_blocks
        mixture (T,), sources (n_src, T)             at the separator's rate
        mixture_spec, source_specs [...]             spectrogram() dicts, common 0 dB
        masks (n_src, N, L), mask_times (L,), mask_channel_hz (N,)
            channels sorted by the peak frequency of their encoder filter
        intra (B, B), intra_times (B,)               intra-chunk attention, query x key,
                                                     pooled onto the recording's time axis
        intra_chunk (K, K), intra_chunk_index, intra_chunk_times (K,)
                                                     the loudest whole chunk's own map
        inter (C, C), inter_times (C,)               inter-chunk attention, query chunk x key
                                                     chunk, averaged over the K positions
        chunk_starts (S,), chunk_centres (S,)
    """
    cfg = separator.config
    sr = cfg.sample_rate
    x = x.detach().float().cpu()
    n = x.shape[-1]
    inter_window, intra_window = cfg.inter_window, cfg.intra_window
    sources = output.sources[0].detach().float().cpu()

    k = cfg.chunk_size
    hop = k // 2
    frame_s = cfg.stride / sr
    masks = _numpy(output.masks[0])  # (n_src, N, L)
    n_frames = masks.shape[-1]

    # encoder channels ordered by the peak frequency of their filters
    filters = separator.encoder.weight.detach().float().cpu()[:, 0]  # (N, kernel)
    n_fft = max(64, 1 << (filters.shape[-1] - 1).bit_length())
    peak_bin = torch.fft.rfft(filters, n=n_fft).abs().argmax(-1)
    order = torch.argsort(peak_bin, stable=True).numpy()
    channel_hz = peak_bin.numpy()[order] * sr / n_fft

    details = {
        "sample_rate": sr,
        "seconds": n / sr,
        "n_src": cfg.n_src,
        "stride": cfg.stride,
        "chunk_size": k,
        "frame_seconds": frame_s,
        "inter_window": inter_window,
        "intra_window": intra_window,
        "n_blocks": cfg.n_blocks,
        "mixture": _numpy(x),
        "sources": _numpy(sources),
        "masks": masks[:, order],
        "mask_times": np.arange(n_frames) * frame_s,
        "mask_channel_hz": channel_hz,
    }
    mix_spec = spectrogram(x, sr)
    details["mixture_spec"] = mix_spec
    details["source_specs"] = [spectrogram(s, sr, ref=mix_spec["ref"]) for s in sources]

    intra_w, inter_w = output.intra_attention[-1], output.inter_attention[-1]
    if intra_w is None or inter_w is None:
        return details
    intra = _heads_mean(intra_w[0], 1, intra_window, k)  # (S, K, K)
    inter = _heads_mean(inter_w[0], 1, inter_window, intra.shape[0]).mean(axis=0)  # (S, S)
    n_chunks = intra.shape[0]
    starts = np.arange(n_chunks) * hop - hop  # first frame of each chunk
    details["n_chunks"] = n_chunks
    details["chunk_starts"] = starts * frame_s
    details["chunk_centres"] = (starts + hop) * frame_s

    # intra-chunk maps placed at their frames of the recording and pooled
    bin_frames = max(1, -(-n_frames // MAX_BINS))
    bins = -(-n_frames // bin_frames)
    frames = starts[:, None] + np.arange(k)[None, :]  # (S, K) global frame of each position
    keys = np.broadcast_to(frames[:, None, :], intra.shape)
    details["intra"] = _pool(intra, frames, keys, bins, bin_frames)
    details["intra_times"] = (np.arange(bins) + 0.5) * bin_frames * frame_s
    # the loudest chunk that lies wholly inside the recording (any chunk when none does)
    power = np.concatenate([[0.0], np.cumsum(_numpy(x).astype(np.float64) ** 2)])
    first, last = np.clip(starts * cfg.stride, 0, n), np.clip((starts + k) * cfg.stride, 0, n)
    energy = power[last] - power[first]
    inside = (starts >= 0) & (starts + k <= n_frames)
    loudest = int(np.argmax(np.where(inside, energy, -1.0) if inside.any() else energy))
    details["intra_chunk"] = intra[loudest]
    details["intra_chunk_index"] = loudest
    details["intra_chunk_times"] = (starts[loudest] + np.arange(k)) * frame_s

    # inter-chunk map on the chunk centres (pooled when there are many chunks)
    bin_chunks = max(1, -(-n_chunks // MAX_BINS))
    c_bins = -(-n_chunks // bin_chunks)
    idx = np.arange(n_chunks)
    details["inter"] = _pool(inter, idx, np.broadcast_to(idx[None, :], inter.shape), c_bins, bin_chunks)
    centres = np.arange(c_bins) * bin_chunks + (bin_chunks - 1) / 2
    details["inter_times"] = centres * hop * frame_s
    return details


def asr_details(asr, maps: list, hypothesis, frames: int, offset: float = 0.0) -> dict:
    """2D attention maps and decoder cross-attention of one utterance, from the
    pass that decoded it (see :meth:`hubbub.pipeline.Pipeline.__call__` with ``details``).

    Args:
        asr: the :class:`~hubbub.models.whisper.WhisperASR` (its configuration
            and tokenizer are read, it is not run again).
        maps: the utterance's :class:`~hubbub.models.attention.TwoDMaps`, one per 2D
            block, batch axis of length 1 (only the first block is shown).
        hypothesis: its :class:`~hubbub.models.decoding.Hypothesis`, with
            ``cross_attention``.
        frames: its length in encoder frames (the rest of the batch's maps is padding).
        offset: its start in the recording (s); every time axis is shifted by it.

    Returns a dict::

        frame_shift, offset, text
        time_attention (T', T'), times (T',)    first 2D block, averaged over channels
        freq_attention (F', F'), freq_hz (F',)  idem; mel bands after subsampling
        cross_attention (U + 1, T')             last decoder layer, mean over heads
        tokens [U + 1 str]                      emitted pieces, the last one "</s>"
        words [(word, start, end)]              in the recording's seconds (ms, as the Result's words)
    """
    import librosa

    cfg = asr.config
    shift = asr.frame_shift
    details = {
        "frame_shift": shift,
        "offset": offset,
        "text": hypothesis.text,
        "words": [(w.word, round(offset + w.start, 3), round(offset + w.end, 3)) for w in hypothesis.words],
        "times": offset + np.arange(frames) * shift,
    }
    if maps:
        # the time-frequency block sees the log-mel itself, 2 frames an encoder frame: its time map is put on
        # the encoder's frames (rows averaged in pairs, columns summed in pairs: each row still sums to one)
        full = maps[0].time[0].mean(0)  # (2T, 2T)
        n = min(full.shape[-1] // 2, frames)
        pooled = full[: 2 * n, : 2 * n].reshape(n, 2, n, 2).mean(1).sum(-1)
        time_map = np.zeros((frames, frames), dtype=np.float32)
        time_map[:n, :n] = _numpy(pooled)  # (T, T)
        freq_map = _numpy(maps[0].freq[0].mean(0))  # (F', F')
        mel_hz = librosa.mel_frequencies(cfg.n_mels + 2, fmin=0.0, fmax=asr.sample_rate / 2, htk=False)[1:-1]
        details.update(time_attention=time_map, freq_attention=freq_map, freq_hz=mel_hz[: freq_map.shape[0]])
    if hypothesis.cross_attention is not None:
        tok = asr.tokenizer
        pieces = [tok.id_to_piece(t) if tok is not None else str(t) for t in hypothesis.tokens]
        details["cross_attention"] = _numpy(hypothesis.cross_attention[:, :frames])
        details["tokens"] = [*pieces, "</s>"]
    return details
