"""The whole-recording reading (``reading="whisper"``) of one recording: Whisper's long-form words
(:func:`~hubbub.models.whisper_longform.transcribe_long`) given to the separated streams, the overlaps
read from the separated streams, and the streams' words given to the persons heard (the rules are
:mod:`hubbub.pipeline.reading`)."""

from __future__ import annotations

from pathlib import Path

import torch

from hubbub.models.whisper import WhisperASR
from hubbub.models.whisper_longform import transcribe_long
from hubbub.pipeline.audio import load_audio
from hubbub.pipeline.reading import (
    ReadingConfig,
    assign_words,
    dominant_stream,
    overlaps,
    segments_of,
    take_overlap_words,
    unread,
)
from hubbub.pipeline.result import SpeakerResult, Word

__all__ = ["read_whole"]


def read_whole(pipe, path, outs: list[Path], sr: int, duration: float, levels: torch.Tensor,
               found: list[list[tuple[float, float]]], item: int, separate: bool,
               progress=None) -> list[SpeakerResult]:
    """``reading="whisper"`` for one recording of ``pipe`` (a :class:`~hubbub.pipeline.pipeline.Pipeline`,
    whose ASR, settings, person labelling and span decoding it uses): the people heard, each with its
    words (:mod:`~hubbub.pipeline.reading`).

    1. The recording is read whole; each word goes to the separated stream that is loudest over it
       (``levels``: the streams' levels, ``(n, frames)``).
    2. Where two streams' speech regions (``found``, per stream: what the separator and the overlap
       detector hear) meet, every stream is read around the overlap; the dominant one keeps the
       recording's words there, the others take their own stream's words. This is where the
       recording's reading misses a voice, so it is done before anyone has words there.
    3. A stream's speech of ``min_unread`` seconds or more that no word covers (Whisper skipped it) is
       read again from the recording, its words that stream's.
    4. The streams' words become segments (split at pauses and at the reading's own segments, so
       that none spans two sentences), clustered into persons by the speaker encoder as in
       ``reading="turns"``, each person with a voice file.
    """
    if not isinstance(pipe.asr, WhisperASR):
        raise ValueError("reading='whisper' needs a Whisper ASR model")
    cfg = pipe.reading_config or ReadingConfig()
    wav, _ = load_audio(path, sample_rate=pipe.asr.sample_rate)
    read = [list(seg.words) for seg in transcribe_long(pipe.asr, wav, pipe.long_form, progress)]
    hop = pipe.regions.hop
    streams: list[list[Word]] = [[] for _ in outs]
    for words, labels in zip(read, assign_words(read, levels, hop)):  # words to streams
        for w, k in zip(words, labels):
            streams[k].append(w)
    n = len(outs)
    spans: list[tuple[float, float]] = []
    if separate and n > 1:
        spans = overlaps(found, cfg.min_overlap)
        reads = [(outs[k], sr, max(0.0, a - cfg.context), min(duration, b + cfg.context))
                 for a, b in spans for k in range(n)]
        decoded = pipe._decode_once(reads) if reads else []
        for m, span in enumerate(spans):
            apart = {k: list(decoded[m * n + k][0].words) if decoded[m * n + k][0] else [] for k in range(n)}
            streams = take_overlap_words(streams, apart, span,
                                         dominant_stream(*span, levels, hop) if cfg.dominant_keeps else None)
    if separate:  # speech the separated streams hear and the reading skipped: read again from the recording
        gaps = unread(found, [w for ws in streams for w in ws], cfg.min_unread)
        decoded = pipe._decode_once([(path, sr, max(0.0, a - cfg.context), min(duration, b + cfg.context))
                                     for _, a, b in gaps]) if gaps else []
        for (k, a, b), (seg, _) in zip(gaps, decoded):
            streams[k] = sorted(streams[k] + [w for w in (seg.words if seg else ()) if _inside(w, (a, b))],
                                key=lambda w: (w.start, w.end))
    sentence = {id(w): n for n, ws in enumerate(read) for w in ws}  # the reading's segment of each word

    def unit(w: Word) -> int:
        return sentence.get(id(w), -1)  # words read again (overlaps, skipped speech): split at pauses only

    grouped = [segments_of(ws, cfg.pause, unit) for ws in streams]
    mixed = {(item, k, g.start, g.end) for k, gs in enumerate(grouped) for g in gs
             if any(_meets(g, span) for span in spans)}
    persons = pipe._speakers(path, outs, sr, grouped, mixed, item, separate)
    return [SpeakerResult(p.id, None, segments_of([w for g in p.segments for w in g.words], cfg.pause, unit),
                          p.audio) for p in persons]


def _inside(w: Word, span: tuple[float, float]) -> bool:
    return span[0] <= (w.start + w.end) / 2 <= span[1]


def _meets(seg, span: tuple[float, float]) -> bool:
    return seg.start < span[1] and seg.end > span[0]
