"""Read a conversation as Whisper reads it, then add what only separation hears (``reading="whisper"``).

1. The recording is read whole by Whisper's long-form transcription
   (:func:`~hubbub.models.whisper_longform.transcribe_long`): its words, with times.
2. Who speaks when comes from the separated streams: each word goes to the stream that is loudest
   over the word (the dominant voice where two overlap).
3. Where a stream speaks for a while and the reading has no word (Whisper skips a sentence now and
   then, mostly where a window ends or a talker changes), the recording is read again there and the
   words go to that stream.
4. Each stream's words become pieces, split at short pauses, sentence ends and after 6 s (so that each
   is one talker's), and the pieces are clustered into persons.
5. Where two persons speak at once (their segments meet), each person's voice file is read
   around the overlap; the voice that is not dominant gets the words its file reads inside the
   overlap, which the recording's reading mostly lacks.

Functions here are pure (words, levels and regions in, words out), so the rule is tested without models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hubbub.models.whisper_longform import SENTENCE_END
from hubbub.pipeline.result import Segment, Word

__all__ = ["ReadingConfig", "assign_words", "dominant_stream", "inside", "overlaps", "pieces_of", "segments_of",
           "take_overlap_words", "unread"]


@dataclass(frozen=True)
class ReadingConfig:
    """How the whole-recording reading is shared out.

    min_overlap: seconds two streams' regions must share to be read apart.
    context: seconds of a separated stream read on each side of an overlap.
    pause: a pause this long (s) between a speaker's words starts a new segment.
    turn_pause: a pause this long (s) in a stream, or a sentence end, starts a new piece for the speaker
        clustering (:func:`pieces_of`).
    longest_piece: a piece longer than this (s) is split at its longest pause.
    min_unread: a stream's speech this long (s) with no word of the reading is read again from the
        recording (0: never).

    Each default and the measurement behind it: docs/benchmarks.md, "The whole-recording reading's settings".
    """

    min_overlap: float = 0.5
    context: float = 1.0
    pause: float = 1.0
    turn_pause: float = 0.3
    longest_piece: float = 6.0
    min_unread: float = 1.0


def dominant_stream(start: float, end: float, levels: torch.Tensor, hop: float) -> int:
    """The stream whose power (``levels``: ``(n, frames)`` dB, ``hop`` s per frame) is largest over [start, end]."""
    a = min(int(start / hop), levels.shape[1] - 1)
    b = max(a + 1, min(int(end / hop) + 1, levels.shape[1]))
    power = torch.pow(10.0, levels[:, a:b].double() / 10).sum(1)
    return int(power.argmax())


def assign_words(segments: list[list[Word]], levels: torch.Tensor, hop: float, min_run: int = 3) -> list[list[int]]:
    """The stream of each word of each reading segment (Whisper's segments are mostly one talker's
    sentence): the stream that is loudest over most of the segment's words, except for runs of at
    least ``min_run`` consecutive words where another stream is loudest (a change of talker)."""
    out = []
    for words in segments:
        loudest = [dominant_stream(w.start, w.end, levels, hop) for w in words]
        held: dict[int, float] = {}
        for w, k in zip(words, loudest):
            held[k] = held.get(k, 0.0) + max(w.end - w.start, 1e-3)
        major = max(held, key=held.get) if held else 0
        labels = [major] * len(words)
        i = 0
        while i < len(words):
            j = i
            while j < len(words) and loudest[j] == loudest[i]:
                j += 1
            if loudest[i] != major and j - i >= min_run:
                labels[i:j] = [loudest[i]] * (j - i)
            i = j
        out.append(labels)
    return out


def overlaps(found: list[list[tuple[float, float]]], min_overlap: float) -> list[tuple[float, float]]:
    """Stretches where two or more streams' speech regions meet, at least ``min_overlap`` s long, in time order."""
    out = []
    for i in range(len(found)):
        for j in range(i + 1, len(found)):
            for a0, a1 in found[i]:
                for b0, b1 in found[j]:
                    s, e = max(a0, b0), min(a1, b1)
                    if e - s >= min_overlap:
                        out.append((s, e))
    out.sort()
    merged: list[tuple[float, float]] = []
    for s, e in out:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def inside(w: Word, span: tuple[float, float]) -> bool:
    """Whether the middle of ``w`` lies in ``span`` (seconds)."""
    mid = (w.start + w.end) / 2
    return span[0] <= mid <= span[1]


def take_overlap_words(own: list[list[Word]], apart: dict[int, list[Word]], span: tuple[float, float],
                       dominant: int, near: float = 0.6) -> list[list[Word]]:
    """In the overlap ``span``, every stream but the ``dominant`` one takes the words its separated
    stream read there (``apart[k]``) in place of those the recording's reading gave it; the dominant
    voice keeps the recording's words, less those that another voice's stream read within ``near``
    seconds (the recording's reading hears both voices)."""
    out = [list(ws) for ws in own]
    taken: list[Word] = []
    for k, words in apart.items():
        if k == dominant:
            continue
        theirs = [w for w in words if inside(w, span)]
        taken += theirs
        kept = [w for w in out[k] if not inside(w, span)]
        out[k] = sorted(kept + theirs, key=lambda w: (w.start, w.end))
    # the recording's reading also heard the other voice there: its words are not the dominant voice's
    out[dominant] = [w for w in out[dominant]
                     if not (inside(w, span) and any(_same(w, t, near) for t in taken))]
    return out


def _same(a: Word, b: Word, near: float) -> bool:
    """The same word (letters only, any case) within ``near`` seconds."""
    def key(w: Word) -> str:
        return "".join(c for c in w.word.lower() if c.isalnum())

    return key(a) == key(b) and abs(a.start - b.start) <= near


def unread(found: list[list[tuple[float, float]]], words: list[Word], min_seconds: float,
           margin: float = 0.2) -> list[tuple[int, float, float]]:
    """``(stream, start, end)`` of every stretch of at least ``min_seconds`` inside a stream's speech
    regions (``found``) that no word (of any stream, widened by ``margin`` s) covers, in time order."""
    if min_seconds <= 0:
        return []
    held = sorted((w.start - margin, w.end + margin) for w in words)
    out = []
    for k, regions in enumerate(found):
        for a, b in regions:
            t = a
            for s, e in held:
                if e <= t or s >= b:
                    continue
                if s - t >= min_seconds:
                    out.append((k, t, s))
                t = max(t, e)
            if b - t >= min_seconds:
                out.append((k, t, b))
    return sorted(out, key=lambda x: (x[1], x[0]))


def segments_of(words: list[Word], pause: float) -> list[Segment]:
    """A stream's words as segments, a new one after each pause of ``pause`` s or more."""
    out: list[Segment] = []
    group: list[Word] = []
    for w in sorted(words, key=lambda w: (w.start, w.end)):
        if group and w.start - group[-1].end >= pause:
            out.append(_segment(group))
            group = []
        group.append(w)
    if group:
        out.append(_segment(group))
    return out


def pieces_of(words: list[Word], pause: float, longest: float = 6.0) -> list[Segment]:
    """A stream's words as the pieces the speaker clustering labels: split at each pause of ``pause``
    s or more and after each sentence end (Whisper punctuates), and a piece longer than ``longest`` s
    at its longest pause until none is. One talker's turn is one or more pieces, so a person's
    embedding is seldom taken over two talkers who follow each other closely in one stream (turns
    0.1-1 s apart: a segment split only at 1-s pauses held 4 turns of 2 people)."""
    out: list[Segment] = []
    group: list[Word] = []
    for w in sorted(words, key=lambda w: (w.start, w.end)):
        if group and (w.start - group[-1].end >= pause or group[-1].word.rstrip().endswith(tuple(SENTENCE_END))):
            out += _shorter(group, longest)
            group = []
        group.append(w)
    if group:
        out += _shorter(group, longest)
    return out


def _shorter(words: list[Word], longest: float) -> list[Segment]:
    """``words`` as one segment, or split at the longest pause until every part lasts ``longest`` s or less."""
    if len(words) < 2 or words[-1].end - words[0].start <= longest:
        return [_segment(words)]
    cut = max(range(1, len(words)), key=lambda i: (words[i].start - words[i - 1].end, -abs(2 * i - len(words))))
    return _shorter(words[:cut], longest) + _shorter(words[cut:], longest)


def _segment(words: list[Word]) -> Segment:
    return Segment(words[0].start, max(w.end for w in words), " ".join(w.word for w in words), tuple(words))
