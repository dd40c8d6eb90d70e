"""Where each separated voice speaks.

Energy-based detection on the separated streams, done jointly: a frame of
stream ``k`` is speech when it is loud enough in absolute terms *and* not far
below the loudest other stream on the same frame (a separator leaves a faint
copy of the other talker behind; that leakage must not become words). Decisions
are smoothed (hysteresis, short gaps closed, short bursts dropped), padded, and
long regions are cut at their quietest point so that each piece suits the ASR.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["RegionConfig", "file_levels", "frame_levels", "regions_from_levels", "speech_regions"]


@dataclass(frozen=True)
class RegionConfig:
    """Settings of :func:`speech_regions` (seconds and dB)."""

    frame: float = 0.025
    hop: float = 0.010
    floor_db: float = -45.0  # below the loudest stream's speech level: silence
    leak_db: float = 18.0  # this far below another stream on the same frame: leakage
    onset_db: float = 6.0  # hysteresis: a region starts this far above the floor
    min_speech: float = 0.25
    min_gap: float = 0.30
    pad: float = 0.10
    max_region: float = 15.0  # the default ASR is trained on utterances of at most 16 s


def _frame_db(streams: torch.Tensor, sample_rate: int, cfg: RegionConfig) -> torch.Tensor:
    """``(n, T) -> (n, frames)`` RMS level in dB."""
    win = max(1, int(cfg.frame * sample_rate))
    hop = max(1, int(cfg.hop * sample_rate))
    x = streams.float()
    if x.shape[-1] < win:
        x = F.pad(x, (0, win - x.shape[-1]))
    frames = x.unfold(-1, win, hop)
    return 10 * torch.log10(frames.pow(2).mean(-1) + 1e-10)


def _runs(mask: torch.Tensor) -> list[tuple[int, int]]:
    """Start/end (exclusive) frame indices of the True runs of a 1-D mask."""
    m = torch.cat([torch.tensor([False]), mask.bool(), torch.tensor([False])]).int()
    d = m[1:] - m[:-1]
    starts = (d == 1).nonzero().flatten().tolist()
    ends = (d == -1).nonzero().flatten().tolist()
    return list(zip(starts, ends))


def _split_long(start: int, end: int, level: torch.Tensor, max_frames: int) -> list[tuple[int, int]]:
    if end - start <= max_frames:
        return [(start, end)]
    lo, hi = start + max_frames // 2, start + max_frames
    cut = lo + int(torch.argmin(level[lo:hi]))
    return [(start, cut), *_split_long(cut, end, level, max_frames)]


def frame_levels(streams: torch.Tensor, sample_rate: int, cfg: RegionConfig | None = None) -> torch.Tensor:
    """Frame levels in dB, ``(n_src, T) -> (n_src, frames)`` (see :class:`RegionConfig`)."""
    return _frame_db(streams if streams.dim() == 2 else streams[None], sample_rate, cfg or RegionConfig())


def file_levels(
    paths: list, cfg: RegionConfig | None = None, block_seconds: float = 60.0
) -> tuple[torch.Tensor, float]:
    """Frame levels of one or more equally long audio files, read block by block.

    Memory holds one block of audio and the levels (100 frames per second).
    Returns ``(levels (n, frames), duration in seconds)``.
    """
    import soundfile as sf

    cfg = cfg or RegionConfig()
    files = [sf.SoundFile(str(p)) for p in paths]
    try:
        sr = files[0].samplerate
        hop = max(1, int(cfg.hop * sr))
        win = max(1, int(cfg.frame * sr))
        step = max(hop, int(block_seconds * sr) // hop * hop)  # whole frames per block
        total = min(f.frames for f in files)
        levels = []
        start = 0
        while start < total:
            blocks = []
            for f in files:
                f.seek(start)
                x = f.read(min(step + win - hop, total - start), dtype="float32", always_2d=True).mean(axis=1)
                blocks.append(torch.from_numpy(x))
            n = min(len(b) for b in blocks)
            db = _frame_db(torch.stack([b[:n] for b in blocks]), sr, cfg)
            keep = -(-min(step, total - start) // hop)  # frames that start inside this block
            levels.append(db[:, :keep])
            start += step
        return torch.cat(levels, dim=1), total / sr
    finally:
        for f in files:
            f.close()


def speech_regions(
    streams: torch.Tensor, sample_rate: int, cfg: RegionConfig | None = None
) -> list[list[tuple[float, float]]]:
    """Speech regions of each stream.

    Args:
        streams: ``(n_src, T)`` separated waveforms (or ``(T,)`` for one voice).
        sample_rate: their rate.

    Returns:
        For each stream, a list of ``(start, end)`` in seconds, in time order.
    """
    cfg = cfg or RegionConfig()
    if streams.dim() == 1:
        streams = streams[None]
    return regions_from_levels(_frame_db(streams, sample_rate, cfg), streams.shape[-1] / sample_rate, cfg)


def regions_from_levels(
    db: torch.Tensor, duration: float, cfg: RegionConfig | None = None
) -> list[list[tuple[float, float]]]:
    """Speech regions from frame levels ``(n_src, frames)`` of a ``duration``-second recording."""
    cfg = cfg or RegionConfig()
    n = db.shape[0]
    loud = db.max(dim=0).values
    reference = float(torch.quantile(loud, 0.95)) if loud.numel() else 0.0
    floor = reference + cfg.floor_db
    if n > 1:
        others = torch.stack([torch.cat([db[:k], db[k + 1 :]]).max(dim=0).values for k in range(n)])
    else:
        others = torch.full_like(db, -1e9)
    not_leak = db > others - cfg.leak_db
    hop = cfg.hop
    out: list[list[tuple[float, float]]] = []
    for k in range(n):
        weak = (db[k] > floor) & not_leak[k]
        strong = (db[k] > floor + cfg.onset_db) & not_leak[k]
        # hysteresis: keep weak runs that contain a strong frame
        runs = [(s, e) for s, e in _runs(weak) if bool(strong[s:e].any())]
        merged: list[list[int]] = []
        for s, e in runs:
            if merged and (s - merged[-1][1]) * hop < cfg.min_gap:
                merged[-1][1] = e
            else:
                merged.append([s, e])
        pieces = []
        for s, e in merged:
            if (e - s) * hop < cfg.min_speech:
                continue
            pieces.extend(_split_long(s, e, db[k], max(1, int(cfg.max_region / hop))))
        regions = []
        for s, e in pieces:
            start = max(0.0, s * hop - cfg.pad)
            end = min(duration, e * hop + cfg.frame + cfg.pad)
            if regions and start < regions[-1][1]:
                start = regions[-1][1]
            if end > start:
                regions.append((round(start, 3), round(end, 3)))
        out.append(regions)
    return out
