"""Separation of recordings of any length: one streaming separator for every caller.

:func:`separate_stream` is the only code that runs the separator over a recording.
``hubbub separate``, ``hubbub transcribe``, the Python API, the demo and
``hubbub evaluate separation`` all go through it, so a benchmark measures what
users get. It reads the recording window by window (``chunk_seconds`` long,
``overlap_seconds`` shared with the previous window), separates each window,
puts its outputs in the previous window's speaker order (the permutation that
best matches the overlap), cross-fades them in, and yields finished blocks:
memory depends on the window, never on the length of the recording.

Level rule (the same everywhere): each voice comes out at its level in the
mixture, i.e. scaled by the least-squares projection of the mixture window on
it (a separator trained with SI-SNR is blind to scale). On the way to disk or
memory the voices are scaled down together, never clipped, when one of them
would exceed :data:`PEAK`.

Sinks: :func:`separate_to_files` (float WAVs, one per voice) and
:func:`separate_waveform` (a tensor, for waveforms in memory).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hubbub.models.hub import pretrained_dir
from hubbub.models.separator import LOCAL_INTER_WINDOW, Separator
from hubbub.pipeline.audio import AudioError, _short, check_waveform, resample
from hubbub.pipeline.defaults import DEFAULT_CHUNK_SECONDS, DEFAULT_OVERLAP_SECONDS, DEFAULT_SEPARATOR, PEAK

__all__ = [
    "DEFAULT_SEPARATOR",
    "LOCAL_INTER_WINDOW",
    "PEAK",
    "SeparationResult",
    "align_to_previous",
    "load_separator",
    "separate_file",
    "separate_stream",
    "separate_to_files",
    "separate_waveform",
    "with_config",
]

log = logging.getLogger(__name__)

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


def load_separator(
    name_or_path: str | os.PathLike | None = None, device: str = "cpu", window: str | int | None = None
) -> Separator:
    """The embedded default (None), an embedded name, or a saved model folder.

    ``window``: the inter-chunk attention, ``"global"``, ``"local"``
    (:data:`LOCAL_INTER_WINDOW` chunks) or ``"local:W"``; None keeps the saved one.
    It becomes part of the model's configuration (and of what it saves).
    """
    from hubbub.models.attention import parse_window

    name = name_or_path or DEFAULT_SEPARATOR
    path = Path(name)
    if not (path / "config.json").is_file():
        path = pretrained_dir(str(name))
    changes = {} if window is None else {"inter_window": parse_window(window, LOCAL_INTER_WINDOW)}
    model = Separator.from_pretrained(path, device=device, **changes)
    log.debug("separator %s: %s", path, model.config)
    return model


def with_config(model: Separator, **changes) -> Separator:
    """A new separator with the same weights (shared, not copied) and a changed
    configuration, e.g. ``with_config(model, inter_window=8)``: the setting is
    the model's own, and it saves truthfully."""
    import dataclasses

    new = Separator(dataclasses.replace(model.config, **changes))
    new.load_state_dict(model.state_dict(), assign=True)
    return new.to(next(model.parameters()).device).eval()


def align_to_previous(prev_tail: torch.Tensor, head: torch.Tensor) -> list[int]:
    """Speaker order of a window, judged on the overlap with the previous one.

    Args:
        prev_tail: ``(n_src, O)`` the previous window's output on the overlap.
        head: ``(n_src, O)`` this window's output on the same samples.

    Returns:
        ``perm``: ``head[perm[k]]`` continues ``prev_tail[k]``.
    """
    n = prev_tail.shape[0]
    p = prev_tail.double()
    h = head.double()
    corr = (p @ h.T) / (p.norm(dim=-1)[:, None] * h.norm(dim=-1)[None, :] + 1e-9)  # (prev k, head j)
    return list(max(itertools.permutations(range(n)), key=lambda q: sum(float(corr[k, q[k]]) for k in range(n))))


def _at_mixture_level(est: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """Scale each source ``(n_src, T)`` by the projection of ``mix (T,)`` on it."""
    e = est.double()
    energy = e.pow(2).sum(-1)
    gains = torch.where(energy > 1e-12, (e @ mix.double()) / energy.clamp_min(1e-12), torch.zeros_like(energy))
    return (e * gains[:, None]).to(est.dtype)


@torch.inference_mode()
def separate_stream(
    model,
    read: Callable[[int, int], torch.Tensor],
    frames: int,
    sample_rate: int,
    chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
    device: str | torch.device = "cpu",
    progress=None,
    details: Callable | None = None,
) -> Iterator[torch.Tensor]:
    """Separate a recording window by window, yielding ``(n_src, n)`` blocks in order.

    Args:
        model: a :class:`~hubbub.models.separator.Separator` (or anything with
            ``sample_rate``, ``n_src`` and ``model(x (1, T)) -> (1, n_src, T)``).
        read: ``read(start, n)`` returns up to ``n`` mono samples ``(n,)`` from
            sample ``start`` at ``sample_rate``.
        frames: length of the recording in samples.
        chunk_seconds: window length; None or 0: one window whatever the length.
        details: called once, ``details(model, x, output)``, with the first
            window at the model's rate (``x``, scaled to a peak of 1) and its
            :class:`~hubbub.models.separator.SeparatorOutput` (masks and attention
            weights), computed in the same forward pass that separates it.

    The blocks put together are ``(n_src, frames)`` at ``sample_rate``, each voice
    at its level in the mixture (see the module's docstring); no peak limit yet.
    """
    chunk = frames if not chunk_seconds else max(int(chunk_seconds * sample_rate), 1)
    overlap = min(int(overlap_seconds * sample_rate), chunk // 2) if chunk < frames else 0
    if chunk < frames and overlap <= 0:
        raise ValueError("overlap_seconds must be > 0 for windowed separation")
    ramp = torch.linspace(0.0, 1.0, overlap + 2)[1:-1]
    tail: torch.Tensor | None = None
    start = 0
    while start < frames:
        block = read(start, min(chunk, frames - start)).float()
        n = block.shape[0]
        if n == 0:
            break
        x = resample(block, sample_rate, model.sample_rate)
        scale = float(x.abs().max())
        if scale > 0:
            x = (x / scale).to(device)[None]
            if details is not None and start == 0:
                out = model(x, return_details=True)
                details(model, x[0], out)
                est = out.sources[0].cpu()
            else:
                est = model(x)[0].cpu()
            est = resample(est * scale, model.sample_rate, sample_rate)[..., :n]
            est = torch.nn.functional.pad(est, (0, n - est.shape[-1]))
            est = _at_mixture_level(est, block)
        else:
            est = torch.zeros(model.n_src, n)
        if tail is not None:
            o = min(tail.shape[-1], n)
            est = est[align_to_previous(tail[:, :o], est[:, :o])]
            r = ramp[:o] if o == overlap else torch.linspace(0.0, 1.0, o + 2)[1:-1]
            est[:, :o] = tail[:, :o] * (1 - r) + est[:, :o] * r
        last = start + n >= frames
        keep = n if last else n - overlap
        yield est[:, :keep]
        tail = None if last else est[:, keep:].clone()
        if progress:
            progress(min(start + n, frames), frames)
        start += n if last else chunk - overlap


def _peak_gain(peak: float) -> float:
    return PEAK / peak if peak > PEAK else 1.0


def separate_waveform(
    model,
    wav: torch.Tensor | np.ndarray,
    sample_rate: int,
    chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
    device: str | torch.device = "cpu",
    progress=None,
) -> torch.Tensor:
    """:func:`separate_stream` over a mono waveform in memory: ``(T,) -> (n_src, T)`` at the same rate."""
    wav = torch.as_tensor(wav, dtype=torch.float32)
    if wav.dim() != 1:
        raise ValueError(f"expected a mono waveform (T,), got shape {tuple(wav.shape)}")
    check_waveform(wav, sample_rate)
    blocks = list(separate_stream(model, lambda a, n: wav[a : a + n], wav.shape[-1], sample_rate, chunk_seconds,
                                  overlap_seconds, device, progress))
    est = torch.cat(blocks, dim=-1)
    return est * _peak_gain(float(est.abs().max()))


def separate_file(
    path: str | os.PathLike,
    model: Separator | None = None,
    chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
    device: str | torch.device = "cpu",
    max_seconds: float | None = None,
    progress=None,
) -> SeparationResult:
    """Separate a file into voices in memory (the same stream as :func:`separate_to_files`,
    read back); sources come back at the file's rate."""
    import tempfile

    import soundfile as sf

    model = model or load_separator(device=str(device))
    with tempfile.TemporaryDirectory(prefix="hubbub-") as tmp:
        outs = [Path(tmp) / f"spk{k}.wav" for k in range(1, model.n_src + 1)]
        sr = separate_to_files(model, path, outs, chunk_seconds, overlap_seconds, device, max_seconds, progress)
        sources = torch.stack([torch.from_numpy(sf.read(str(o), dtype="float32")[0]) for o in outs])
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


def _rescale_files(paths: list, gain: float, block: int) -> None:
    """Multiply float WAVs by ``gain`` in place, block by block."""
    import soundfile as sf

    for p in paths:
        with sf.SoundFile(str(p), "r+") as f:
            pos = 0
            while pos < f.frames:
                f.seek(pos)
                data = f.read(block, dtype="float32")
                f.seek(pos)
                f.write(data * gain)
                pos += len(data)


def separate_to_files(
    model,
    path: str | os.PathLike,
    out_paths: list[str | os.PathLike],
    chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
    device: str | torch.device = "cpu",
    max_seconds: float | None = None,
    progress=None,
    details: Callable | None = None,
) -> int:
    """Separate a file of any length into one WAV per voice, streaming (:func:`separate_stream`).

    The voices are written as 32-bit float WAVs at the file's rate, so nothing is
    quantised or clipped; when one would peak above :data:`PEAK` all are scaled
    down together afterwards. Returns the file's sample rate.
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
    block = int((chunk_seconds or DEFAULT_CHUNK_SECONDS) * sr)
    peak = 0.0
    outs = []
    try:
        _scan(path, block)
        outs = [sf.SoundFile(str(p), "w", samplerate=sr, channels=1, subtype="FLOAT", format="WAV") for p in out_paths]
        with sf.SoundFile(str(path)) as f:

            def read(start: int, n: int) -> torch.Tensor:
                f.seek(start)
                return torch.from_numpy(f.read(n, dtype="float32", always_2d=True).mean(axis=1))

            for est in separate_stream(model, read, info.frames, sr, chunk_seconds, overlap_seconds, device,
                                       progress, details):
                peak = max(peak, float(est.abs().max()) if est.numel() else 0.0)
                for k, out in enumerate(outs):
                    out.write(est[k].numpy())
    except sf.LibsndfileError as err:  # a file that stops decoding part of the way
        raise AudioError(path, f"cannot be decoded to the end ({_short(err)})") from None
    finally:
        for out in outs:
            out.close()
    if peak > PEAK:
        _rescale_files(out_paths, _peak_gain(peak), block)
    return sr
