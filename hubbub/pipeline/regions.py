"""Where each separated voice speaks.

Energy-based detection on the separated streams, done jointly: a frame of
stream ``k`` is speech when it is loud enough in absolute terms *and* not far
below the loudest other stream on the same frame (a separator leaves a faint
copy of the other talker behind; that leakage must not become words). A stream
whose sound is only a part of another stream's voice (same phases in every
time-frequency bin where both have energy: :func:`phase_agreement`) is
leakage as a whole and yields no speaker; the same test over ``smooth`` seconds
at a time (``local_same_voice``, off by default) finds the stretches where a
separator has split one voice across its outputs (the quieter part is leakage
there, not a second talker). With an overlapped-speech detector run on the
recording itself (:func:`file_overlap`, :class:`~hubbub.models.overlap.OverlapDetector`),
two streams may speak at once only where it hears two voices: elsewhere only the
stream that dominates there speaks, so a lone voice that the separator split
reads as one voice whatever the split. Decisions
are smoothed (hysteresis, short gaps closed, short bursts dropped), padded, and
long regions are cut at their quietest point so that each piece suits the ASR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "RegionConfig",
    "file_levels",
    "file_overlap",
    "leakage_streams",
    "phase_agreement",
    "regions_from_levels",
    "speech_regions",
]


@dataclass(frozen=True)
class RegionConfig:
    """Settings of :func:`speech_regions` (seconds and dB)."""

    frame: float = 0.025
    hop: float = 0.010
    floor_db: float = -45.0  # below the loudest stream's speech level: silence
    # leakage: this far below another stream, levels power-averaged over ``smooth`` seconds (0: frame by
    # frame), and the frame-wise same-voice test below: tuned together on conversations of training speakers
    # by the pipeline's cpWER (docs/notes/runs/conversation-tuning-cpwer.md): 15 dB over 1 s with the test at
    # 0.85 gave 40.9 % against 46.1 % for 12 dB over 0.5 s without it; but 0.85 also merges the two voices
    # of a fully overlapped mixture that the separator splits poorly (bundled two-talkers-2: phase agreement
    # 0.89), so the defaults stay 12 dB / 0.5 s with the test off until one setting serves both
    leak_db: float = 12.0
    smooth: float = 0.5
    onset_db: float = 6.0  # hysteresis: a region starts this far above the floor
    min_speech: float = 0.25
    min_gap: float = 0.30
    pad: float = 0.10
    max_region: float = 15.0  # the default ASR is trained on utterances of at most 16 s
    # two streams whose time-frequency phases agree this much (power-weighted cosine, 1: identical)
    # are parts of one voice: the quieter is leakage and yields no speaker. With the default separator
    # on test-other: 72 of 100 single utterances give one speaker; 14 of 100 two-talker mixtures give
    # one too, all of them mixtures it failed to separate (their mean SI-SNRi 0.5 dB against 5.9 dB)
    same_voice: float = 0.93
    # the same test, frame by frame (32-ms frames summed over ``smooth`` seconds): where two streams agree
    # this much, one voice is split across them and the quieter is leakage there. A separator far from
    # perfect (5-6 dB) splits a lone talker on unseen speakers; 1.0 turns the test off
    local_same_voice: float = 1.0  # conversations of training speakers: 0.85 (see above)
    # with an overlap detector: frames where its probability of two or more voices is below this hold one
    # voice, the stream that dominates there (levels power-averaged over ``dominance_smooth`` seconds);
    # each detected overlap is widened by ``overlap_pad`` at both ends
    # 0.3: tuned on conversations of training speakers (cpWER 38.8 % against 41.1 % at 0.5 and 42.2 %
    # separating everywhere; docs/notes/runs/conversation-tuning-overlap.md)
    overlap_threshold: float = 0.3
    overlap_pad: float = 0.2
    dominance_smooth: float = 1.0


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


class _Agreement:
    """Running sums of :func:`phase_agreement` over blocks of ``(n, T)`` streams."""

    def __init__(self, n: int, sample_rate: int, hop: int | None = None) -> None:
        self.n_fft = 1 << round(math.log2(0.032 * sample_rate))
        self.window = torch.hann_window(self.n_fft)
        self.num = torch.zeros(n, n, dtype=torch.float64)
        self.den = torch.zeros(n, n, dtype=torch.float64)
        self.energy = torch.zeros(n, dtype=torch.float64)
        self.hop = hop  # level frames (samples): also keep the sums per level frame
        self.frames: list[torch.Tensor] = []  # per block: (2, n, n, level frames) numerator and denominator

    def add(self, x: torch.Tensor, n_frames: int = 0) -> None:
        """Add a block of ``(n, T)`` streams; ``n_frames``: its level frames (with ``hop``)."""
        x = x.float()
        n = x.shape[0]
        self.energy += x.double().pow(2).sum(-1)
        per = torch.zeros(2, n, n, n_frames) if self.hop else None
        if x.shape[-1] >= self.n_fft:
            stft_hop = self.n_fft // 4
            spec = torch.stft(x, self.n_fft, stft_hop, window=self.window, center=False, return_complex=True)
            mag = spec.abs()
            if per is not None:  # the level frame each STFT frame's centre falls in
                centre = torch.arange(spec.shape[-1]) * stft_hop + self.n_fft // 2
                index = (centre // self.hop).clamp(max=n_frames - 1)
            for k in range(n):
                for j in range(k + 1, n):
                    w = torch.minimum(mag[k], mag[j]).pow(2)
                    cos = (spec[k] * spec[j].conj()).real / (mag[k] * mag[j] + 1e-12)
                    num, den = (w * cos).sum(0), w.sum(0)  # per STFT frame
                    self.num[k, j] += float(num.sum())
                    self.den[k, j] += float(den.sum())
                    if per is not None:
                        per[0, k, j].index_add_(0, index, num)
                        per[1, k, j].index_add_(0, index, den)
        if per is not None:
            self.frames.append(per)

    def per_frame(self) -> torch.Tensor:
        """``(2, n, n, frames)``: the sums of each level frame (pairs ``k < j``)."""
        if not self.frames:  # nothing was read
            n = self.num.shape[0]
            return torch.zeros(2, n, n, 0)
        return torch.cat(self.frames, dim=-1)

    def result(self) -> torch.Tensor:
        out = torch.where(self.den > 0, self.num / self.den.clamp_min(1e-30), torch.zeros_like(self.num))
        out = out + out.T
        return out.fill_diagonal_(1.0).float()


def phase_agreement(streams: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """``(n, T) -> (n, n)``: for each pair of streams, the cosine of their phase
    difference in each time-frequency bin (32 ms frames), averaged with the weight
    of the weaker one's power there. Parts of one voice (what a separator makes of
    a single talker) agree almost everywhere (near 1); different talkers do not."""
    acc = _Agreement(streams.shape[0], sample_rate)
    acc.add(streams)
    return acc.result()


def leakage_streams(agreement: torch.Tensor, energy: torch.Tensor, cfg: RegionConfig | None = None) -> list[bool]:
    """Which streams are leakage: of two streams that agree (:func:`phase_agreement`
    at least ``cfg.same_voice``), the one with less energy."""
    cfg = cfg or RegionConfig()
    n = agreement.shape[0]
    leak = [False] * n
    for k in range(n):
        for j in range(n):
            if j != k and float(agreement[k, j]) >= cfg.same_voice and float(energy[k]) < float(energy[j]):
                leak[k] = True
    return leak


def file_levels(
    paths: list, cfg: RegionConfig | None = None, block_seconds: float = 60.0
) -> tuple[torch.Tensor, float, list[bool]]:
    """Frame levels of one or more equally long audio files, read block by block,
    and which of them are leakage (:func:`leakage_streams`).

    Memory holds one block of audio and the levels (100 frames per second).
    Returns ``(levels (n, frames), duration in seconds, leakage per file,
    agreement (2, n, n, frames))``: the last holds, per frame, the sums of
    :func:`phase_agreement` for each pair of files, for :func:`regions_from_levels`.
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
        agreement = _Agreement(len(files), sr, hop)
        levels = []
        start = 0
        while start < total:
            blocks = []
            for f in files:
                f.seek(start)
                x = f.read(min(step + win - hop, total - start), dtype="float32", always_2d=True).mean(axis=1)
                blocks.append(torch.from_numpy(x))
            n = min(len(b) for b in blocks)
            x = torch.stack([b[:n] for b in blocks])
            db = _frame_db(x, sr, cfg)
            keep = -(-min(step, total - start) // hop)  # frames that start inside this block
            keep = min(keep, db.shape[-1])
            agreement.add(x[:, : min(n, step)], keep)
            levels.append(db[:, :keep])
            start += step
        leak = leakage_streams(agreement.result(), agreement.energy, cfg)
        return torch.cat(levels, dim=1), total / sr, leak, agreement.per_frame()
    finally:
        for f in files:
            f.close()


def file_overlap(path, detector, n_frames: int, hop: float, block_seconds: float = 60.0,
                 context_seconds: float = 2.0) -> torch.Tensor:
    """``(n_frames,)``: the probability of two or more voices in each ``hop``-second frame of an
    audio file (frame ``i`` starting at ``i * hop``), from ``detector``
    (:meth:`~hubbub.models.overlap.OverlapDetector.overlap_probability`), read block by block
    with ``context_seconds`` of audio at each side: memory holds one block."""
    import soundfile as sf

    out = torch.zeros(n_frames)
    step = detector.config.hop_ms / 1000  # seconds per detector frame
    with sf.SoundFile(str(path)) as f:
        sr = f.samplerate
        block, context = int(block_seconds * sr), int(context_seconds * sr)
        for start in range(0, f.frames, block):
            a = max(0, start - context)
            f.seek(a)
            x = f.read(min(block, f.frames - start) + (start - a) + context, dtype="float32", always_2d=True)
            prob = detector.overlap_probability(torch.from_numpy(x.mean(axis=1)), sr)
            first = int(round(start / sr / hop))
            last = min(n_frames, int(round(min(start + block, f.frames) / sr / hop)))
            if last <= first:
                continue
            # the detector's frame j is centred on a + j * step; a level frame's centre is i * hop + hop / 2
            centre = (torch.arange(first, last) + 0.5) * hop - a / sr
            index = (centre / step).round().long().clamp(0, prob.numel() - 1)
            out[first:last] = prob[index]
    return out


def speech_regions(
    streams: torch.Tensor, sample_rate: int, cfg: RegionConfig | None = None, overlap: torch.Tensor | None = None
) -> list[list[tuple[float, float]]]:
    """Speech regions of each stream.

    Args:
        streams: ``(n_src, T)`` separated waveforms (or ``(T,)`` for one voice).
        sample_rate: their rate.
        overlap: ``(frames,)`` probability of two or more voices per ``cfg.hop`` frame
            (see :func:`regions_from_levels`), or None.

    Returns:
        For each stream, a list of ``(start, end)`` in seconds, in time order.
    """
    cfg = cfg or RegionConfig()
    if streams.dim() == 1:
        streams = streams[None]
    db = _frame_db(streams, sample_rate, cfg)
    acc = _Agreement(streams.shape[0], sample_rate, max(1, int(cfg.hop * sample_rate)))
    acc.add(streams, db.shape[-1])
    leak = leakage_streams(acc.result(), acc.energy, cfg)
    return regions_from_levels(db, streams.shape[-1] / sample_rate, cfg, leak, acc.per_frame(), overlap)


def _summed(x: torch.Tensor, frames: int) -> torch.Tensor:
    """``(..., F)`` per-frame sums, summed over ``frames`` centred frames (at least one)."""
    width = max(1, frames) | 1
    flat = x.reshape(-1, 1, x.shape[-1])
    out = F.avg_pool1d(flat, width, stride=1, padding=width // 2, count_include_pad=True) * width
    return out.reshape(x.shape)


def _smoothed(db: torch.Tensor, frames: int) -> torch.Tensor:
    """``(n, F)`` levels in dB, power-averaged over ``frames`` centred frames (1 or less: as is)."""
    if frames <= 1:
        return db
    power = torch.pow(10.0, db / 10)[:, None]
    avg = F.avg_pool1d(power, frames | 1, stride=1, padding=(frames | 1) // 2, count_include_pad=False)
    return 10 * torch.log10(avg[:, 0] + 1e-10)


def regions_from_levels(
    db: torch.Tensor, duration: float, cfg: RegionConfig | None = None, leakage: list[bool] | None = None,
    agreement: torch.Tensor | None = None, overlap: torch.Tensor | None = None,
) -> list[list[tuple[float, float]]]:
    """Speech regions from frame levels ``(n_src, frames)`` of a ``duration``-second
    recording; streams marked in ``leakage`` have none. ``agreement``: the per-frame
    sums of :func:`file_levels`; where two streams agree (``cfg.local_same_voice``),
    the quieter one is leakage. ``overlap``: ``(frames,)`` probability of two or more
    voices (:func:`file_overlap`); where it is below ``cfg.overlap_threshold`` only the
    dominant stream speaks."""
    cfg = cfg or RegionConfig()
    n = db.shape[0]
    loud = db.max(dim=0).values
    reference = float(torch.quantile(loud, 0.95)) if loud.numel() else 0.0
    floor = reference + cfg.floor_db

    def others_of(x: torch.Tensor) -> torch.Tensor:
        if n == 1:
            return torch.full_like(x, -1e9)
        return torch.stack([torch.cat([x[:k], x[k + 1 :]]).max(dim=0).values for k in range(n)])

    level = _smoothed(db, int(round(cfg.smooth / cfg.hop)))
    not_leak = level > others_of(level) - cfg.leak_db
    if agreement is not None and cfg.local_same_voice < 1.0 and agreement.shape[-1]:
        sums = _summed(agreement[:, :, :, : db.shape[-1]], int(round(cfg.smooth / cfg.hop)))
        same = sums[0] >= cfg.local_same_voice * sums[1].clamp_min(1e-12)  # (n, n, frames), pairs k < j
        power = torch.pow(10.0, db / 10)
        for k in range(n):
            for j in range(k + 1, n):
                for s, e in _runs(same[k, j]):  # one voice in both: the quieter over the stretch is leakage
                    quieter = k if float(power[k, s:e].sum()) < float(power[j, s:e].sum()) else j
                    not_leak[quieter, s:e] = False
    if overlap is not None and n > 1:
        frames = db.shape[-1]
        both = F.pad(overlap[:frames].float(), (0, max(0, frames - overlap.shape[-1])))
        both = both >= cfg.overlap_threshold
        pad = int(round(cfg.overlap_pad / cfg.hop))
        if pad > 0:
            both = F.max_pool1d(both.float()[None, None], 2 * pad + 1, stride=1, padding=pad)[0, 0] > 0
        dominant = _smoothed(db, int(round(cfg.dominance_smooth / cfg.hop))).argmax(dim=0)
        alone = torch.arange(n)[:, None] == dominant[None]
        not_leak = not_leak & (both[None] | alone)
    hop = cfg.hop
    out: list[list[tuple[float, float]]] = []
    for k in range(n):
        if leakage is not None and leakage[k]:
            out.append([])
            continue
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

