"""Audio front-end: read, check, downmix, resample and normalise recordings.

Every problem with an input is raised as :class:`AudioError`, whose message
names the file and says what is wrong in one line, so that a batch can report
it and go on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

__all__ = [
    "AudioError",
    "AudioInfo",
    "SilentAudio",
    "TruncatedAudio",
    "check_waveform",
    "copy_decodable",
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


class SilentAudio(AudioError):
    """Valid audio with nothing in it (digital silence): its right transcript is empty."""


class TruncatedAudio(AudioError):
    """A file that ends before its header says it should; ``decodable`` frames of ``declared`` can be read."""

    def __init__(self, path: str | os.PathLike | None, declared: int, decodable: int, sample_rate: int) -> None:
        self.declared, self.decodable = declared, decodable
        super().__init__(path, f"truncated: the header says {declared / sample_rate:.3f} s ({declared} samples) "
                               f"but the file ends after {decodable / sample_rate:.3f} s ({decodable})")


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says: rate, channels, frames, duration in seconds."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str
    #: the file ends before its header says (``frames`` is then what decodes)
    truncated: bool = False

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def probe_audio(path: str | os.PathLike, allow_truncated: bool = False) -> AudioInfo:
    """Read the header of ``path`` or raise :class:`AudioError`.

    A WAV or FLAC file that ends before its header says raises
    :class:`TruncatedAudio`, unless ``allow_truncated``: then ``frames`` counts
    what decodes and ``truncated`` is set.
    """
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
        with sf.SoundFile(str(p)) as f:
            info = AudioInfo(str(p), f.samplerate, f.channels, f.frames, f.format, f.subtype)
            declared = _declared_frames(p, f)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise AudioError(path, f"not a readable audio file ({_short(err)})") from None
    if info.sample_rate <= 0:
        raise AudioError(path, f"invalid sample rate {info.sample_rate}")
    if declared is not None:
        decodable = info.frames if info.format.startswith("WAV") else copy_decodable(p, None)
        if not allow_truncated:
            raise TruncatedAudio(path, declared, decodable, info.sample_rate)
        info = dataclasses.replace(info, frames=decodable, truncated=True)
    if info.frames <= 0:
        raise AudioError(path, "contains no audio samples")
    return info


def _declared_frames(path: Path, f: sf.SoundFile) -> int | None:
    """The frame count the header of a truncated WAV or FLAC file promises; None when complete (or unknown).

    libsndfile quietly shortens a WAV's length to the bytes present, so its
    ``data`` chunk size is read here; a FLAC's length is its STREAMINFO total,
    and a truncated one cannot be read at its last frame.
    """
    if f.format in ("WAV", "WAVEX"):
        declared = _wav_data_frames(path)
        return declared if declared is not None and declared > f.frames else None
    if f.format == "FLAC" and f.frames > 0:
        try:
            f.seek(f.frames - 1)
            complete = len(f.read(1, dtype="float32")) == 1
        except (sf.LibsndfileError, RuntimeError):  # the handle is unusable after this: the caller closes it
            complete = False
        return None if complete else f.frames
    return None


def _wav_data_frames(path: Path) -> int | None:
    """Frames a RIFF/WAVE file's ``data`` chunk declares; None where it declares none (streamed, RF64)."""
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = None
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                fmt = fh.read(size)
                if len(fmt) < 14:
                    return None
                block_align = struct.unpack("<H", fmt[12:14])[0]
                fh.seek(size % 2, 1)
            elif cid == b"data":
                if not block_align or size in (0, 0xFFFFFFFF):
                    return None
                return size // block_align
            else:
                fh.seek(size + size % 2, 1)


def copy_decodable(path: str | os.PathLike, dest: str | os.PathLike | None, block: int = 4096) -> int:
    """Write what decodes of ``path`` (e.g. a truncated file) to ``dest`` as a float WAV; returns the frames.

    With ``dest=None`` it only counts them.
    """
    count = 0
    with contextlib.ExitStack() as stack:
        f = stack.enter_context(sf.SoundFile(str(path)))
        out = None if dest is None else stack.enter_context(
            sf.SoundFile(str(dest), "w", samplerate=f.samplerate, channels=f.channels, subtype="FLOAT", format="WAV"))
        try:
            while True:
                data = f.read(block, dtype="float32", always_2d=True)
                if not len(data):
                    break
                if out is not None:
                    out.write(data)
                count += len(data)
        except (sf.LibsndfileError, RuntimeError):  # where a truncated file breaks off
            pass
    return count


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
        raise SilentAudio(path, "is silent (all samples are zero or below -90 dBFS)")


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
            raise SilentAudio(path, "is silent after downmixing to mono (channels cancel out)")
    if sample_rate is not None and sample_rate != sr:
        wav = resample(wav, sr, sample_rate)
        sr = sample_rate
    if normalize:
        wav, _ = normalize_peak(wav)
    return wav.contiguous(), sr
