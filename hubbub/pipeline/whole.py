"""The whole-recording reading (``reading="whisper"``) of one recording: Whisper's long-form words
(:func:`~hubbub.models.whisper_longform.transcribe_long`) given to the separated streams and the persons
heard, what it skipped read again, the overlaps read from the persons' voice files (the rules are
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
    inside,
    overlaps,
    pieces_of,
    segments_of,
    take_overlap_words,
    unread,
)
from hubbub.pipeline.regions import file_levels
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
    2. A stream's speech (``found``: its speech regions) of ``min_unread`` seconds or more that no word
       covers (Whisper skipped it) is read again from the recording, its words that stream's.
    3. The streams' words become pieces (:func:`~hubbub.pipeline.reading.pieces_of`: split at short
       pauses, sentence ends and after 6 s), clustered into persons by the speaker encoder as in
       ``reading="turns"``, each person with a voice file.
    4. Where two persons' segments meet, their voice files are read around the overlap and the quieter
       one takes its words from there.
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
    if separate:  # speech the separated streams hear and the reading skipped: read again from the recording
        gaps = unread(found, [w for ws in streams for w in ws], cfg.min_unread)
        decoded = pipe._decode_once([(path, sr, max(0.0, a - cfg.context), min(duration, b + cfg.context))
                                     for _, a, b in gaps]) if gaps else []
        for (k, a, b), (seg, _) in zip(gaps, decoded):
            streams[k] = sorted(streams[k] + [w for w in (seg.words if seg else ()) if inside(w, (a, b))],
                                key=lambda w: (w.start, w.end))
    pieces = [pieces_of(ws, cfg.turn_pause, cfg.longest_piece) for ws in streams]  # each one talker's
    persons = pipe._speakers(path, outs, sr, pieces, set(), item, separate)
    own = [[w for g in p.segments for w in g.words] for p in persons]
    files = [Path(p.audio) for p in persons]
    n = len(persons)
    if separate and n > 1:
        levels = file_levels(files, pipe.regions)[0]
        spans = overlaps([[(g.start, g.end) for g in p.segments] for p in persons], cfg.min_overlap)
        reads = [(files[k], sr, max(0.0, a - cfg.context), min(duration, b + cfg.context))
                 for a, b in spans for k in range(n)]
        decoded = pipe._decode_once(reads) if reads else []
        for m, span in enumerate(spans):
            apart = {k: list(decoded[m * n + k][0].words) if decoded[m * n + k][0] else [] for k in range(n)}
            own = take_overlap_words(own, apart, span, dominant_stream(*span, levels, hop))
    return [SpeakerResult(p.id, None, segments_of(ws, cfg.pause), p.audio) for p, ws in zip(persons, own)]

