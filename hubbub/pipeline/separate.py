"""Separation of recordings of any length.

Short inputs go through the separator in one pass. Long inputs are cut into
overlapping windows; each window is separated, its outputs are put in the same
speaker order as the previous window's (the permutation that best matches the
overlap), brought to the same level on the overlap, and cross-faded in. Memory
depends on the window, not on the length of the recording.
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hubbub.models.hub import pretrained_dir
from hubbub.models.separator import Separator
from hubbub.pipeline.audio import AudioError, check_waveform, load_audio, resample

__all__ = [
    "DEFAULT_SEPARATOR",
    "SeparationResult",
    "align_to_previous",
    "load_separator",
    "separate_file",
    "separate_long",
    "separate_to_files",
    "separate_waveform",
]

log = logging.getLogger(__name__)

DEFAULT_SEPARATOR = "separator-8k"
#: windows longer than this (seconds) are split by default
DEFAULT_CHUNK_SECONDS = 30.0
DEFAULT_OVERLAP_SECONDS = 2.0
#: shorter inputs are refused
MIN_SECONDS = 0.05


@dataclass
class SeparationResult:
    """Separated sources of one recording.

    sources: ``(n_src, T)`` at ``sample_rate`` (the input's rate).
    """

    path: str | None
    sample_rate: int
    sources: torch.Tensor

    @property
    def duration(self) -> float:
        return self.sources.shape[-1] / self.sample_rate


def load_separator(name_or_path: str | os.PathLike | None = None, device: str = "cpu") -> Separator:
    """The embedded default (None), an embedded name, or a saved model folder."""
    name = name_or_path or DEFAULT_SEPARATOR
    path = Path(name)
    if not (path / "config.json").is_file():
        path = pretrained_dir(str(name))
    model = Separator.from_pretrained(path, device=device)
    log.debug("separator %s: %s", path, model.config)
    return model


def align_to_previous(prev_tail: torch.Tensor, head: torch.Tensor) -> tuple[list[int], torch.Tensor]:
    """Best speaker order and gains for a window, judged on the overlap.

    Args:
        prev_tail: ``(n_src, O)`` the previous window's output on the overlap.
        head: ``(n_src, O)`` this window's output on the same samples.

    Returns:
        ``(perm, gains)``: ``head[perm[k]] * gains[k]`` continues ``prev_tail[k]``.
    """
    n = prev_tail.shape[0]
    p = prev_tail.double()
    h = head.double()
    dots = p @ h.T  # (prev k, head j)
    norms = p.norm(dim=-1)[:, None] * h.norm(dim=-1)[None, :] + 1e-9
    corr = dots / norms
    perm = max(itertools.permutations(range(n)), key=lambda q: sum(float(corr[k, q[k]]) for k in range(n)))
    gains = []
    for k, j in enumerate(perm):
        energy = float(h[j].pow(2).sum())
        g = float(dots[k, j]) / energy if energy > 1e-12 else 1.0
        gains.append(min(max(g, 0.1), 10.0) if g > 0 else 1.0)  # least squares, kept sane
    return list(perm), torch.tensor(gains, dtype=head.dtype)


@torch.inference_mode()
def separate_long(
    model: Separator,
    wav: torch.Tensor,
    chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
    device: str | torch.device = "cpu",
    progress=None,
) -> torch.Tensor:
    """Separate ``(T,)`` at the model's rate into ``(n_src, T)``, window by window.

    ``chunk_seconds=None`` separates in one pass whatever the length.
    ``progress`` is called with (done, total) samples after each window.
    """
    sr = model.sample_rate
    total = wav.shape[-1]
    if chunk_seconds is None or total <= int(chunk_seconds * sr):
        out = model(wav.to(device)[None])[0].cpu()
        if progress:
            progress(total, total)
        return out
    chunk = int(chunk_seconds * sr)
    overlap = min(int(overlap_seconds * sr), chunk // 2)
    if overlap <= 0:
        raise ValueError("overlap_seconds must be > 0 for windowed separation")
    step = chunk - overlap
    out = torch.zeros(model.n_src, total)
    fade_in = torch.linspace(0.0, 1.0, overlap + 2)[1:-1]
    start = 0
    while True:
        end = min(start + chunk, total)
        est = model(wav[start:end].to(device)[None])[0].cpu()
        if start == 0:
            out[:, :end] = est
        else:
            o = min(overlap, end - start)
            perm, gains = align_to_previous(out[:, start : start + o], est[:, :o])
            est = est[perm] * gains[:, None]
            ramp = fade_in if o == overlap else torch.linspace(0.0, 1.0, o + 2)[1:-1]
            out[:, start : start + o] = out[:, start : start + o] * (1 - ramp) + est[:, :o] * ramp
            out[:, start + o : end] = est[:, o:]
        if progress:
            progress(end, total)
        if end >= total:
            break
        start += step
        if total - start <= overlap:  # the rest is already covered
            break
    return out


def separate_waveform(
    model: Separator,
    wav: torch.Tensor | np.ndarray,
    sample_rate: int,
    chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
    device: str | torch.device = "cpu",
    progress=None,
) -> torch.Tensor:
    """Separate a mono waveform at any rate: ``(T,) -> (n_src, T)`` at the same rate.

    The input is resampled to the model's rate and the sources back to
    ``sample_rate``; each source is scaled to a peak of at most 0.99.
    """
    wav = torch.as_tensor(wav, dtype=torch.float32)
    if wav.dim() != 1:
        raise ValueError(f"expected a mono waveform (T,), got shape {tuple(wav.shape)}")
    check_waveform(wav, sample_rate)
    x = resample(wav, sample_rate, model.sample_rate)
    scale = float(x.abs().max())
    est = separate_long(model, x / scale, chunk_seconds, overlap_seconds, device, progress) * scale
    est = resample(est, model.sample_rate, sample_rate)[..., : wav.shape[-1]]
    if est.shape[-1] < wav.shape[-1]:
        est = torch.nn.functional.pad(est, (0, wav.shape[-1] - est.shape[-1]))
    peaks = est.abs().amax(dim=-1, keepdim=True).clamp_min(1e-9)
    return est * torch.clamp(0.99 / peaks, max=1.0)


def separate_file(
    path: str | os.PathLike,
    model: Separator | None = None,
    chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
    device: str | torch.device = "cpu",
    max_seconds: float | None = None,
    progress=None,
) -> SeparationResult:
    """Read ``path`` and separate it; sources come back at the file's rate."""
    model = model or load_separator(device=str(device))
    wav, sr = load_audio(path, min_seconds=MIN_SECONDS, max_seconds=max_seconds)
    try:
        sources = separate_waveform(model, wav, sr, chunk_seconds, overlap_seconds, device, progress)
    except AudioError as err:
        raise AudioError(path, err.problem) from None
    return SeparationResult(str(path), sr, sources)


def _scan(path: str | os.PathLike, block: int) -> None:
    """Read the file once, block by block: raise AudioError for NaN/Inf or all-silent audio."""
    import soundfile as sf

    from hubbub.pipeline.audio import SILENCE_PEAK, SilentAudio

    peak = 0.0
    with sf.SoundFile(str(path)) as f:
        while True:
            data = f.read(block, dtype="float32", always_2d=True)
            if not len(data):
                break
            if not np.isfinite(data).all():
                raise AudioError(path, f"contains NaN or infinite samples (near {f.tell() / f.samplerate:.1f} s)")
            peak = max(peak, float(np.abs(data.mean(axis=1)).max()))
    if peak < SILENCE_PEAK:
        raise SilentAudio(path, "is silent (all samples are zero or below -90 dBFS)")


@torch.inference_mode()
def separate_to_files(
    model: Separator,
    path: str | os.PathLike,
    out_paths: list[str | os.PathLike],
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
    device: str | torch.device = "cpu",
    max_seconds: float | None = None,
    progress=None,
) -> int:
    """Separate a file of any length into one WAV per speaker, streaming.

    Windows of ``chunk_seconds`` are read from disk, separated, put in the
    previous window's speaker order, cross-faded on the overlap and written out
    at the file's rate, so memory depends on the window, never on the length of
    the recording. Returns the file's sample rate.
    """
    import soundfile as sf

    from hubbub.pipeline.audio import probe_audio

    info = probe_audio(path)
    if max_seconds is not None and info.duration > max_seconds:
        raise AudioError(path, f"too long: {info.duration:.1f} s (limit {max_seconds:g} s)")
    if info.duration < MIN_SECONDS:
        raise AudioError(path, f"too short: {info.duration:.3f} s (at least {MIN_SECONDS:g} s needed)")
    if len(out_paths) != model.n_src:
        raise ValueError(f"{len(out_paths)} output paths for a {model.n_src}-speaker model")
    sr = info.sample_rate
    chunk = max(int(chunk_seconds * sr), 1)
    overlap = min(int(overlap_seconds * sr), chunk // 2)
    _scan(path, chunk)
    ramp = torch.linspace(0.0, 1.0, overlap + 2)[1:-1]
    outs = [sf.SoundFile(str(p), "w", samplerate=sr, channels=1, subtype="PCM_16", format="WAV") for p in out_paths]
    try:
        with sf.SoundFile(str(path)) as f:
            tail: torch.Tensor | None = None
            start = 0
            while start < info.frames:
                f.seek(start)
                block = torch.from_numpy(f.read(chunk, dtype="float32", always_2d=True).mean(axis=1))
                n = block.shape[0]
                if n == 0:
                    break
                x = resample(block, sr, model.sample_rate)
                scale = float(x.abs().max())
                if scale > 0:
                    est = model(x.to(device)[None] / scale)[0].cpu() * scale
                else:
                    est = torch.zeros(model.n_src, x.shape[0])
                est = resample(est, model.sample_rate, sr)[..., :n]
                est = torch.nn.functional.pad(est, (0, n - est.shape[-1]))
                if tail is not None:
                    o = min(tail.shape[-1], n)
                    perm, gains = align_to_previous(tail[:, :o], est[:, :o])
                    est = est[perm] * gains[:, None]
                    r = ramp[:o] if o == overlap else torch.linspace(0.0, 1.0, o + 2)[1:-1]
                    est[:, :o] = tail[:, :o] * (1 - r) + est[:, :o] * r
                last = start + n >= info.frames
                keep = n if last else n - overlap
                for k, out in enumerate(outs):
                    out.write(est[k, :keep].clamp(-0.999, 0.999).numpy())
                tail = None if last else est[:, keep:].clone()
                if progress:
                    progress(min(start + n, info.frames), info.frames)
                if last:
                    break
                start += chunk - overlap
    finally:
        for out in outs:
            out.close()
    return sr
