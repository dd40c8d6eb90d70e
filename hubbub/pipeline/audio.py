"""Audio front-end: read, check, downmix, resample and normalise recordings.

Every problem with an input is raised as :class:`AudioError`, whose message
names the file and says what is wrong in one line, so that a batch can report
it and go on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

__all__ = [
    "AudioError",
    "AudioInfo",
    "check_waveform",
    "load_audio",
    "normalize_peak",
    "probe_audio",
    "resample",
]

#: below this peak amplitude a recording counts as silent (about -90 dBFS)
SILENCE_PEAK = 3e-5


class AudioError(ValueError):
    """An input that cannot be used; ``str(err)`` is ``"<file>: <problem>"``."""

    def __init__(self, path: str | os.PathLike | None, problem: str) -> None:
        self.path = str(path) if path is not None else "<array>"
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says: rate, channels, frames, duration in seconds."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def probe_audio(path: str | os.PathLike) -> AudioInfo:
    """Read the header of ``path`` or raise :class:`AudioError`."""
    p = Path(path)
    if not p.exists():
        raise AudioError(path, "no such file")
    if p.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if not os.access(p, os.R_OK):
        raise AudioError(path, "permission denied")
    if p.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        info = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise AudioError(path, f"not a readable audio file ({_short(err)})") from None
    if info.frames <= 0:
        raise AudioError(path, "contains no audio samples")
    if info.samplerate <= 0:
        raise AudioError(path, f"invalid sample rate {info.samplerate}")
    return AudioInfo(str(p), info.samplerate, info.channels, info.frames, info.format, info.subtype)


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text.split(": ", 1)[-1] if text.startswith("Error opening") else text


def resample(wav: torch.Tensor | np.ndarray, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Band-limited resampling along the last axis (torchaudio)."""
    import torchaudio.functional as AF

    wav = torch.as_tensor(wav, dtype=torch.float32)
    if orig_sr == new_sr:
        return wav
    return AF.resample(wav, orig_sr, new_sr)


def normalize_peak(wav: torch.Tensor, peak: float = 0.9) -> tuple[torch.Tensor, float]:
    """Scale so the absolute peak is ``peak``; returns the waveform and the gain."""
    top = float(wav.abs().max()) if wav.numel() else 0.0
    if top <= 0:
        return wav, 1.0
    gain = peak / top
    return wav * gain, gain


def check_waveform(
    wav: torch.Tensor,
    sample_rate: int,
    path: str | os.PathLike | None = None,
    min_seconds: float = 0.0,
    max_seconds: float | None = None,
) -> None:
    """Raise :class:`AudioError` for empty, too short/long, NaN/Inf or silent audio."""
    n = wav.shape[-1]
    if n == 0:
        raise AudioError(path, "contains no audio samples")
    seconds = n / sample_rate
    if seconds < min_seconds:
        raise AudioError(path, f"too short: {seconds:.3f} s (at least {min_seconds:g} s needed)")
    if max_seconds is not None and seconds > max_seconds:
        raise AudioError(path, f"too long: {seconds:.1f} s (limit {max_seconds:g} s)")
    if not bool(torch.isfinite(wav).all()):
        bad = int((~torch.isfinite(wav)).sum())
        raise AudioError(path, f"contains {bad} NaN or infinite sample(s)")
    if float(wav.abs().max()) < SILENCE_PEAK:
        raise AudioError(path, "is silent (all samples are zero or below -90 dBFS)")


def load_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    mono: bool = True,
    min_seconds: float = 0.0,
    max_seconds: float | None = None,
    normalize: bool = False,
) -> tuple[torch.Tensor, int]:
    """Read ``path`` as float32, check it, downmix, resample.

    Args:
        path: WAV, FLAC, OGG or MP3 (what libsndfile reads).
        sample_rate: resample to this rate; None keeps the file's rate.
        mono: average the channels into one; else return ``(C, T)``.
        min_seconds, max_seconds: duration limits (of the file as read).
        normalize: scale to a peak of 0.9 (peak-safe; never clips).

    Returns:
        ``(wav, sr)``: ``wav`` is ``(T,)`` when mono, else ``(C, T)``.
    """
    info = probe_audio(path)
    if max_seconds is not None and info.duration > max_seconds:
        raise AudioError(path, f"too long: {info.duration:.1f} s (limit {max_seconds:g} s)")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise AudioError(path, f"cannot decode audio ({_short(err)})") from None
    except MemoryError:
        raise AudioError(path, "too large to load into memory") from None
    wav = torch.from_numpy(np.ascontiguousarray(data.T))  # (C, T)
    if wav.shape[-1] == 0:
        raise AudioError(path, "contains no audio samples (truncated?)")
    check_waveform(wav, sr, path, min_seconds=min_seconds, max_seconds=max_seconds)
    if mono:
        wav = wav.mean(dim=0)
        if float(wav.abs().max()) < SILENCE_PEAK:
            raise AudioError(path, "is silent after downmixing to mono (channels cancel out)")
    if sample_rate is not None and sample_rate != sr:
        wav = resample(wav, sr, sample_rate)
        sr = sample_rate
    if normalize:
        wav, _ = normalize_peak(wav)
    return wav.contiguous(), sr
