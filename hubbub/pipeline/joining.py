"""Joining what the ``turns`` reading decoded: pieces into regions, stretches shared out among their
pieces, speech no voice holds given to the loudest stream, echoes of another voice dropped."""

from __future__ import annotations

import torch

from hubbub.pipeline.result import Segment
from hubbub.pipeline.turns import Piece, drop_echoes, keep_words, share_words

__all__ = ["claim_unheld", "drop_voice_echoes", "join_pieces", "share_spans"]


def join_pieces(owners, pieces, segments, voices) -> list[tuple[tuple[int, int], Segment]]:
    """One Segment per voice region from its decoded pieces: a region decoded whole keeps
    its transcript; a cut one joins the words each piece keeps (:func:`~hubbub.pipeline.turns.keep_words`)."""
    groups: dict[tuple[int, int, int], list[int]] = {}
    for j, ((i, k), piece) in enumerate(zip(owners, pieces)):
        groups.setdefault((i, k, piece.region), []).append(j)
    out = []
    for (i, k, r), members in groups.items():
        if len(members) == 1:
            seg = segments[members[0]]
            if seg is not None:
                out.append(((i, k), seg))
            continue
        words = [w for j in members if segments[j] is not None for w in keep_words(pieces[j], segments[j].words)]
        if words:
            start, end = voices[i][3][k][r]
            out.append(((i, k), Segment(start, end, " ".join(w.word for w in words), tuple(words))))
    return out


def claim_unheld(found: list[list[tuple[float, float]]], stretches: list[tuple[float, float]],
                  levels: torch.Tensor, hop: float) -> list[list[tuple[float, float]]]:
    """The voice regions with each of ``stretches`` (speech of the recording that no voice
    holds, :func:`~hubbub.pipeline.turns.unheld`) added to the stream loudest over it
    (``levels``: ``(voices, frames)`` dB per ``hop`` seconds)."""
    out = [list(regions) for regions in found]
    for start, end in stretches:
        a = min(int(start / hop), levels.shape[1] - 1)
        power = torch.pow(10.0, levels[:, a : max(a + 1, int(end / hop))] / 10).sum(dim=1)
        out[int(power.argmax())].append((start, end))
    return [sorted(regions) for regions in out]


def share_spans(decoded: list[tuple], members: list[list[int]], pieces: list[Piece],
                 others: list[list[tuple[float, float]]] | None = None, by_sentence: bool = False) -> list[tuple]:
    """Per piece, its ``(Segment or None, details or None)`` from the decoded spans: a span
    of one piece is that piece's; a stretch of the recording that holds several lone pieces
    (:func:`~hubbub.pipeline.turns.recording_stretches`, :func:`~hubbub.pipeline.turns.join_lone`)
    is shared out word by word (:func:`~hubbub.pipeline.turns.share_words`; ``others[n]``: the
    stretches of span ``n``'s recording read from the separated voices), each piece keeping the
    stretch's details; a piece in two stretches gets the words of both; ``by_sentence``: a
    sentence's words go to one voice (:func:`~hubbub.pipeline.turns.share_words`), and a
    piece's segment stretches to hold its words."""
    out: list[tuple] = [(None, None)] * len(pieces)
    words: dict[int, list] = {}
    spans_of: dict[int, int] = {}
    for idx in members:
        for j in idx:
            spans_of[j] = spans_of.get(j, 0) + 1
    for n, ((seg, info), idx) in enumerate(zip(decoded, members)):
        if len(idx) == 1 and spans_of[idx[0]] == 1 and not (others and others[n]):
            out[idx[0]] = (seg, info)
            continue
        if seg is not None and not seg.words:  # no word timings to share by: the longest piece has it all
            out[max(idx, key=lambda j: pieces[j].end - pieces[j].start)] = (seg, info)
            continue
        shared = share_words([pieces[j] for j in idx], seg.words if seg is not None else (),
                             others[n] if others else (), by_sentence)
        for j, got in zip(idx, shared):
            words.setdefault(j, []).extend(got)
            out[j] = (None, out[j][1] if out[j][1] is not None else info)
    for j, got in words.items():
        piece = pieces[j]
        got = sorted({(w.start, w.end, w.word): w for w in got}.values(), key=lambda w: (w.start, w.end))
        if got:
            start, end = min(piece.start, got[0].start), max(piece.end, max(w.end for w in got))
            out[j] = (Segment(start, end, " ".join(w.word for w in got), tuple(got)), out[j][1])
    return out


def drop_voice_echoes(segments: dict, item: int, n_voices: int, levels: torch.Tensor, hop: float) -> None:
    """Remove from one recording's segments the words that echo another voice's
    (:func:`~hubbub.pipeline.turns.drop_echoes`), judged by the streams' frame ``levels``
    (dB, ``(n_voices, frames)`` every ``hop`` seconds); segments left without words go."""
    if n_voices < 2:
        return
    voices = [segments.get((item, k), []) for k in range(n_voices)]
    words = [[w for seg in segs for w in seg.words] for segs in voices]

    def level(k: int, w) -> float:
        a = min(int(w.start / hop), levels.shape[1] - 1)
        b = max(a + 1, min(int(w.end / hop) + 1, levels.shape[1]))
        return float(10 * torch.log10(torch.pow(10.0, levels[k, a:b] / 10).mean()))

    echo = drop_echoes(words, [[level(k, w) for w in ws] for k, ws in enumerate(words)])
    for k, segs in enumerate(voices):
        flags = iter(echo[k])
        kept = []
        for seg in segs:
            mine = [next(flags) for _ in seg.words]
            if not any(mine):
                kept.append(seg)
                continue
            words_left = tuple(w for w, e in zip(seg.words, mine) if not e)
            if words_left:
                kept.append(Segment(seg.start, seg.end, " ".join(w.word for w in words_left), words_left))
        if (item, k) in segments:
            segments[(item, k)] = kept
