"""New voices from the ones we have: length-keeping waveform augmentations for the separator's mixer
(and the speed perturbation and synthetic room shared with the ASR recipe).

Every function takes a mono waveform and returns one of the same length (``speed_perturb`` excepted:
it changes the length by design) and draws nothing itself: the caller passes the values, so a mixture
stays a pure function of its seed.

* :func:`speed_perturb`: play faster or slower by resampling (pitch, formants and tempo move together);
* :func:`shift_voice`: vocal-tract-length perturbation: resample (pitch and formants move), then stretch
  the time axis back with a phase vocoder (``librosa.effects.pitch_shift``), so only the voice changes;
* :func:`equalise`: a random spectral tilt (dB per octave around 1 kHz) plus a few smooth peaks and dips,
  applied as a zero-phase gain curve on the spectrum (a different microphone or vocal effort);
* :func:`reverberate`: a synthetic room (direct path plus an exponentially decaying noise tail).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["equalise", "reverberate", "shift_voice", "speed_perturb", "fit_length"]


def fit_length(wav: np.ndarray, length: int) -> np.ndarray:
    """Cut or zero-pad ``wav`` to ``length`` samples (float32)."""
    return np.pad(wav, (0, max(0, length - len(wav))))[:length].astype(np.float32)


def speed_perturb(wav: torch.Tensor, sample_rate: int, factor: float) -> tuple[torch.Tensor, float]:
    """Play ``factor`` times faster (pitch moves with it) by resampling; the output is
    ``1 / factor`` as long. Returns the waveform and the factor used (rates are
    rounded to 50 Hz, which keeps the resampling kernel small)."""
    from hubbub.pipeline.audio import resample

    source_rate = max(50, round(sample_rate * factor / 50) * 50)
    if source_rate == sample_rate:
        return wav, 1.0
    return resample(wav, source_rate, sample_rate), source_rate / sample_rate


def shift_voice(wav: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    """Pitch and formants ``semitones`` up (or down), tempo and length kept: ``(T,) -> (T,)``."""
    import librosa

    if abs(semitones) < 1e-3 or len(wav) < 64:
        return wav.astype(np.float32)
    out = librosa.effects.pitch_shift(wav.astype(np.float32), sr=sample_rate, n_steps=semitones,
                                      n_fft=512 if sample_rate <= 8000 else 1024)
    return fit_length(out, len(wav))


def equalise(wav: np.ndarray, sample_rate: int, tilt_db_per_octave: float,
             peaks: list[tuple[float, float, float]] = ()) -> np.ndarray:
    """A zero-phase gain curve on the spectrum: a tilt of ``tilt_db_per_octave`` around 1 kHz plus
    Gaussian bumps ``(centre Hz, gain dB, width octaves)`` on a log-frequency axis; the RMS is kept.
    ``(T,) -> (T,)``."""
    n = len(wav)
    if n == 0:
        return wav.astype(np.float32)
    spec = np.fft.rfft(wav.astype(np.float64))
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    octaves = np.log2(np.maximum(freqs, 50.0) / 1000.0)
    gain_db = tilt_db_per_octave * octaves
    for centre, gain, width in peaks:
        gain_db = gain_db + gain * np.exp(-0.5 * ((octaves - np.log2(centre / 1000.0)) / width) ** 2)
    out = np.fft.irfft(spec * 10 ** (gain_db / 20), n=n)
    rms_in, rms_out = np.sqrt(np.mean(wav.astype(np.float64) ** 2)), np.sqrt(np.mean(out**2))
    return (out * (rms_in / rms_out if rms_out > 0 else 1.0)).astype(np.float32)


def reverberate(wav: torch.Tensor, sample_rate: int, rt60: float, drr_db: float,
                rng: np.random.Generator) -> torch.Tensor:
    """Convolve with a synthetic room response: a direct path and an exponentially
    decaying noise tail (-60 dB after ``rt60`` s) ``drr_db`` below it; the RMS is kept."""
    import torch
    import torchaudio.functional as AF

    n = max(2, int(rt60 * sample_rate))
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.908 * t / rt60)
    tail[: max(1, int(0.002 * sample_rate))] = 0.0  # first reflections after ~2 ms
    tail *= 10 ** (-drr_db / 20) / (np.sqrt(np.sum(tail**2)) + 1e-12)
    tail[0] = 1.0
    out = AF.fftconvolve(wav, torch.from_numpy(tail.astype(np.float32)))[: wav.shape[-1]]
    return out * (wav.pow(2).mean() / (out.pow(2).mean() + 1e-12)).sqrt()
