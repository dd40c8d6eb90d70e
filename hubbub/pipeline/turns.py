"""Where voices overlap, and what to read each stretch of speech from.

A conversation is mostly one voice at a time. The separator is needed only where
two voices overlap; elsewhere its output is the original voice with artefacts.
:func:`plan_pieces` cuts each voice's speech regions (from
:func:`~hubbub.pipeline.regions.regions_from_levels`) at the edges of overlaps:

* a stretch where this voice speaks alone is read from the **recording itself**
  (its own rate, full bandwidth, no separation artefacts);
* a stretch where another voice speaks too is read from the **separated voice**.

A cut piece is decoded with ``context`` seconds of audio on the cut side (but
never past its region, where this voice is silent), and keeps only the words
whose middle falls inside it, so a word on a boundary is kept exactly once
(:func:`keep_words`). Overlaps shorter than ``min_overlap`` and lone stretches
shorter than ``min_single`` do not cut a region: a short overlap is mostly the
padding of two turns that follow each other, and a short lone stretch between
two overlaps is not worth a decode of its own. By default no lone stretch is
short enough to be cut off (``min_single`` is infinite): a region with an
overlap is read whole from its separated voice, a region without one from the
recording, which measured better than cutting (see :class:`TurnConfig`).

The stretches read from the recording are decoded together, not piece by piece:
:func:`join_lone` joins the lone pieces of all voices that follow each other
within ``join_gap`` seconds into stretches of at most ``join_max`` seconds, each
decoded once, as the ASR alone would read the recording, and :func:`share_words`
gives each word to the piece it falls in. Where a separator splits one talker
across its outputs, the voices' regions alternate within one sentence; decoded
apart, each fragment loses its context and the cut words; decoded together, the
words are those of the recording and only who said them depends on the regions.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Piece", "TurnConfig", "drop_echoes", "join_lone", "keep_words", "merge_intervals", "overlaps",
           "plan_pieces", "share_words"]

MIXTURE = "mixture"
VOICE = "voice"


@dataclass(frozen=True)
class TurnConfig:
    """Settings of :func:`plan_pieces` (seconds)."""

    # 1.0: on conversations of training speakers (10 recordings, 0-40 %) 279 word errors against 280 at 0.5
    # (benchmarks/conversation-tuning-turns.md); a shorter overlap is mostly two turns' padding or a false
    # alarm of the overlap detector, and reading a lone voice's region from its separated stream costs words
    min_overlap: float = 1.0
    # a lone stretch of a region that an overlap cuts is read from the recording only if it is this
    # long. Default: never, so a region with an overlap is read whole from its separated voice. On
    # conversations of training speakers (8 recordings, 10-40 % overlap) cutting at overlaps (1.0 s)
    # read 22.0 % cpWER, whole regions 17.6 %: the cut edges lose and repeat words
    min_single: float = float("inf")
    context: float = 1.0
    # lone pieces (read from the recording) closer than ``join_gap`` are decoded as one stretch of at most
    # ``join_max`` seconds (:func:`join_lone`); a negative ``join_gap`` decodes each piece on its own.
    # Training speakers (10 recordings): 14.9 % cpWER joined (1 s, reading on) against 17.1 % apart
    # without reading on; 2 s joins the same as 1 s there
    join_gap: float = 1.0
    join_max: float = 15.0
    # a decoded span whose words end this many seconds before its end is decoded again from its last
    # word (the ASR stopped early); 0 turns this off
    read_on: float = 1.0


@dataclass(frozen=True)
class Piece:
    """A stretch of one voice's speech region and where to read it from.

    voice, region: the separated stream and the index of its region.
    start, end: the stretch whose words are kept.
    source: ``"mixture"`` (the recording) or ``"voice"`` (the separated stream).
    decode_start, decode_end: the audio decoded (the stretch with context on a cut side).
    """

    voice: int
    region: int
    start: float
    end: float
    source: str
    decode_start: float
    decode_end: float


def merge_intervals(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted union of ``(start, end)`` intervals."""
    out: list[list[float]] = []
    for s, e in sorted(intervals):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def _intersect(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if e > s:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def overlaps(regions: list[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    """Where two or more voices speak at once: ``regions[k]`` are voice ``k``'s ``(start, end)``."""
    found = []
    for k in range(len(regions)):
        others = merge_intervals([r for j, rs in enumerate(regions) if j != k for r in rs])
        found += _intersect(merge_intervals(regions[k]), others)
    return merge_intervals(found)


def _stretches(start: float, end: float, overlap: list[tuple[float, float]],
               cfg: TurnConfig) -> list[tuple[float, float, str]]:
    """``[start, end)`` cut into lone (``mixture``) and overlapped (``voice``) stretches."""
    over = [(s, e) for s, e in _intersect([(start, end)], overlap) if e - s >= cfg.min_overlap]
    if not over:
        return [(start, end, MIXTURE)]
    parts: list[list] = []
    t = start
    for s, e in over:
        if s > t:
            parts.append([t, s, MIXTURE])
        parts.append([s, e, VOICE])
        t = e
    if end > t:
        parts.append([t, end, MIXTURE])
    # a short lone stretch joins the overlapped stretch(es) next to it
    merged: list[list] = []
    for p in parts:
        if p[2] == MIXTURE and p[1] - p[0] < cfg.min_single:
            p[2] = VOICE
        if merged and merged[-1][2] == p[2]:
            merged[-1][1] = p[1]
        else:
            merged.append(p)
    return [(s, e, src) for s, e, src in merged]


def plan_pieces(regions: list[list[tuple[float, float]]], cfg: TurnConfig | None = None) -> list[Piece]:
    """What to decode for each voice's regions (see the module's docstring).

    Args:
        regions: per voice, its speech regions ``[(start, end)]`` in seconds.

    Returns:
        Pieces in voice, region and time order; a region that no overlap cuts is
        one piece read from the recording.
    """
    cfg = cfg or TurnConfig()
    overlap = overlaps(regions)
    pieces = []
    for k, voice_regions in enumerate(regions):
        for r, (start, end) in enumerate(voice_regions):
            for s, e, src in _stretches(start, end, overlap, cfg):
                a = s if s <= start else max(start, s - cfg.context)
                b = e if e >= end else min(end, e + cfg.context)
                pieces.append(Piece(k, r, s, e, src, a, b))
    return pieces


def keep_words(piece: Piece, words) -> list:
    """The words (with ``start``/``end`` in the recording's seconds) whose middle
    falls inside the piece: ``[start, end)``, open on a side that is not cut."""
    lo = -float("inf") if piece.start <= piece.decode_start else piece.start
    hi = float("inf") if piece.end >= piece.decode_end else piece.end
    return [w for w in words if lo <= (w.start + w.end) / 2 < hi]


def join_lone(pieces: list[Piece], cfg: TurnConfig | None = None) -> list[tuple[float, float, list[int]]]:
    """Stretches of the recording to decode once for the lone pieces (source ``mixture``)
    of every voice: pieces in time order whose gap is at most ``join_gap`` seconds join
    while the stretch stays within ``join_max`` seconds (a longer piece stands alone).

    Returns ``(decode_start, decode_end, indices into pieces)`` in time order; pieces
    read from a separated voice are left out.
    """
    cfg = cfg or TurnConfig()
    order = sorted((j for j, p in enumerate(pieces) if p.source == MIXTURE),
                   key=lambda j: (pieces[j].decode_start, pieces[j].decode_end))
    out: list[list] = []
    for j in order:
        p = pieces[j]
        if (out and cfg.join_gap >= 0 and p.decode_start - out[-1][1] <= cfg.join_gap
                and max(out[-1][1], p.decode_end) - out[-1][0] <= cfg.join_max):
            out[-1][1] = max(out[-1][1], p.decode_end)
            out[-1][2].append(j)
        else:
            out.append([p.decode_start, p.decode_end, [j]])
    return [(a, b, members) for a, b, members in out]


def share_words(pieces: list[Piece], words) -> list[list]:
    """The words decoded from one stretch of :func:`join_lone`, shared out to its ``pieces``:
    each word goes to the piece its middle falls in, or the nearest one (a pause between
    two regions), and is dropped where it lies past a cut side of that piece (the words
    of an overlap are read from the separated voices). Returns per piece, its words."""
    out: list[list] = [[] for _ in pieces]
    if not pieces:
        return out
    for w in words:
        mid = (w.start + w.end) / 2
        # distance to each piece (0 inside); among pieces that hold it, the one it lies deepest in
        best = min(range(len(pieces)), key=lambda j: (max(pieces[j].start - mid, mid - pieces[j].end, 0.0),
                                                     -min(mid - pieces[j].start, pieces[j].end - mid)))
        if keep_words(pieces[best], [w]):
            out[best].append(w)
    return out


def _norm(word: str) -> str:
    return "".join(c for c in word.lower() if c.isalnum())


def drop_echoes(words: list[list], levels: list[list[float]], window: float = 0.5) -> list[list[bool]]:
    """Which words are echoes: a separator leaves a faint copy of one voice in the
    other stream, and where both streams are decoded (an overlap) the copy comes
    out as the same words at the same time. Of two equal words (letters and digits,
    case-blind) of different voices whose middles are less than ``window`` seconds
    apart, the one of the quieter stream is the echo.

    Args:
        words: per voice, its words (``.word``, ``.start``, ``.end``).
        levels: per voice, the level (dB) of its stream over each of its words.

    Returns:
        Per voice, per word, True where the word is an echo.
    """
    import bisect

    echo = [[False] * len(ws) for ws in words]
    mids = [[(w.start + w.end) / 2 for w in ws] for ws in words]
    orders = [sorted(range(len(m)), key=m.__getitem__) for m in mids]
    for k, ws in enumerate(words):
        for j in range(k + 1, len(words)):
            sorted_mids = [mids[j][b] for b in orders[j]]
            for a, wa in enumerate(ws):
                name = _norm(wa.word)
                lo = bisect.bisect_right(sorted_mids, mids[k][a] - window)
                hi = bisect.bisect_left(sorted_mids, mids[k][a] + window)
                for b in (orders[j][i] for i in range(lo, hi)):
                    if name and _norm(words[j][b].word) == name:
                        if levels[k][a] < levels[j][b]:
                            echo[k][a] = True
                        else:
                            echo[j][b] = True
    return echo
