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
two overlaps is not worth a decode of its own; nor does an overlap where the overlapped-speech
detector heard mostly one voice (``min_evidence``). By default no lone stretch is
short enough to be cut off (``min_single`` is infinite): a region with an
overlap is read whole from its separated voice, a region without one from the
recording, which measured better than cutting (see :class:`TurnConfig`).

The stretches read from the recording are decoded together, not piece by piece:
:func:`recording_stretches` decodes the recording's own speech regions (found from its
levels, as the ASR alone reads it: ``--no-separation``) that hold a lone piece, so that
where one voice speaks the words are those of the ASR alone, and :func:`share_words`
gives each word to the piece it falls in, dropping those that lie in a stretch read
from a separated voice (their words come from there). Where a separator splits one
talker across its outputs, the voices' regions alternate within one sentence: each
sentence then goes wholly to the voice that holds most of its words
(``TurnConfig.attribute``). Speech of the recording that no voice's region holds (the
separator put that talker in a stream found to be leakage) becomes a region of the stream
loudest there (:func:`unheld`), so that it is read, and labelled by the speaker clustering,
rather than lost. (:func:`join_lone`, the older way, decodes stretches that join the lone
pieces themselves.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["Piece", "TurnConfig", "drop_echoes", "join_lone", "keep_words", "merge_intervals", "overlaps",
           "plan_pieces", "recording_stretches", "share_words", "unheld"]

MIXTURE = "mixture"
VOICE = "voice"


@dataclass(frozen=True)
class TurnConfig:
    """Settings of :func:`plan_pieces` (seconds)."""

    # a shorter overlap is mostly two turns' padding or a false alarm of the overlap detector, and reading a
    # lone voice's region from its separated stream costs words. 1.5: on 48 conversations of training
    # speakers, cpWER (ORC-WER) at 0 / 10 / 20 / 30 / 40 %: 28.7 (8.7) / 38.4 (22.9) / 45.4 (30.2) / 51.9 (40.0)
    # / 42.1 (34.5) %, 40.3 % in all, against 28.2 (8.2) / 41.4 (25.2) / 46.6 (31.4) / 51.2 (39.7) / 42.1
    # (34.6) %, 40.9 % at 1.0 (docs/notes/runs/conversation-tuning-unfinished.md); 1.0 had won over 0.5 on 10
    # of them by 279 word errors against 280 (docs/notes/runs/conversation-tuning-turns.md)
    min_overlap: float = 1.5
    # an overlap is read from the separated voices only if the overlap detector's mean probability of two
    # voices over it (``plan_pieces``' ``probability``) is at least this; elsewhere it is a stretch where one
    # voice was heard, and the recording is read. A false overlap inside a long turn otherwise sends the
    # whole turn through the separator. 0 reads every overlap apart. 48 conversations of training speakers,
    # cpWER (ORC-WER) at 0 / 10 / 20 / 30 / 40 %: 0.35: 28.2 (8.2) / 42.5 (26.6) / 48.8 (31.4) / 51.2 (39.7) /
    # 44.7 (33.6) %, 42.0 % in all; 0.3: 41.9 % in all, 8.8 % ORC-WER at 0 %; 0: 31.9 (9.8) / 46.4 (26.5) /
    # 49.1 (34.1) / 49.5 (38.8) / 44.3 (33.0) %, 43.2 % in all (docs/notes/runs/conversation-tuning-evidence.md)
    min_evidence: float = 0.35
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
    # what the lone pieces are decoded in: "recording", the recording's own speech regions (found from its
    # levels as for the ASR alone, :func:`recording_stretches`), so that where one voice speaks the words
    # are those of the ASR alone; "joined", stretches of the lone pieces themselves (:func:`join_lone`)
    lone_stretches: str = "recording"
    # who said the words of a stretch of the recording: "sentence", each sentence (words up to one that ends
    # in . ? or !) wholly to the voice that holds most of its words, since a separator may split one talker
    # across its outputs within a sentence (the words after the last sentence end of a stretch are one more
    # sentence: 40.9 % cpWER in all against 41.3 % when each of them went its own way,
    # docs/notes/runs/conversation-tuning-unfinished.md); "word", each word to the voice piece it lies in.
    # 48 conversations of training speakers (0-40 %, 2 and 3 talkers, and monologues), ORC-WER at 0 / 10 /
    # 20 / 30 / 40 %: recording + sentence 9.8 / 26.5 / 34.1 / 38.8 / 33.0 %, joined + word (before)
    # 12.6 / 27.1 / 38.9 / 39.8 / 36.1 %, DER 19.0 against 19.9 %; cpWER 43.2 against 42.6 % (one 3-talker
    # recording's count went from 3 speakers to 2: +183 errors) (docs/notes/runs/conversation-tuning-lone.md)
    attribute: str = "sentence"
    # stretches of the recording's own speech regions that no voice's region holds for at least this many
    # seconds (the separator put a talker in a stream found to be leakage, or a quiet talker under the
    # other) become regions of the stream loudest there (:func:`unheld`), so that their words are read and
    # labelled by the speaker clustering rather than lost; ``inf`` turns this off. 48 conversations of
    # training speakers: 41.3 % cpWER in all against 42.0 % without, DER 18.1 against 18.3 %
    # (docs/notes/runs/conversation-tuning-unheld.md)
    min_unheld: float = 1.0
    # a decoded span whose words end this many seconds before its end is decoded again from its last
    # word (the ASR stopped early); 0 turns this off
    read_on: float = 1.0

    def __post_init__(self) -> None:
        if self.lone_stretches not in ("recording", "joined"):
            raise ValueError(f"lone_stretches must be 'recording' or 'joined', not {self.lone_stretches!r}")
        if self.attribute not in ("sentence", "word"):
            raise ValueError(f"attribute must be 'sentence' or 'word', not {self.attribute!r}")


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


def plan_pieces(regions: list[list[tuple[float, float]]], cfg: TurnConfig | None = None,
                probability=None, hop: float = 0.01) -> list[Piece]:
    """What to decode for each voice's regions (see the module's docstring).

    Args:
        regions: per voice, its speech regions ``[(start, end)]`` in seconds.
        probability: ``(frames,)`` an overlap detector's probability of two or more voices
            per ``hop``-second frame, or None; overlaps where its mean is below
            ``cfg.min_evidence`` are read from the recording.

    Returns:
        Pieces in voice, region and time order; a region that no overlap cuts is
        one piece read from the recording.
    """
    cfg = cfg or TurnConfig()
    overlap = overlaps(regions)
    if probability is not None and cfg.min_evidence > 0:
        overlap = [(s, e) for s, e in overlap if _mean(probability, s, e, hop) >= cfg.min_evidence]
    pieces = []
    for k, voice_regions in enumerate(regions):
        for r, (start, end) in enumerate(voice_regions):
            for s, e, src in _stretches(start, end, overlap, cfg):
                a = s if s <= start else max(start, s - cfg.context)
                b = e if e >= end else min(end, e + cfg.context)
                pieces.append(Piece(k, r, s, e, src, a, b))
    return pieces


def _mean(values, start: float, end: float, hop: float) -> float:
    """Mean of the ``hop``-second frames of ``values`` that start in ``[start, end)`` (at least one)."""
    n = len(values)
    a = min(max(0, int(start / hop)), max(n - 1, 0))
    b = min(n, max(a + 1, int(end / hop)))
    if not n:
        return 0.0
    part = values[a:b]
    return float(part.mean()) if hasattr(part, "mean") else sum(float(v) for v in part) / (b - a)


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


def unheld(regions: list[list[tuple[float, float]]], recording: list[tuple[float, float]],
           cfg: TurnConfig | None = None) -> list[tuple[float, float]]:
    """The stretches of the recording's own speech ``recording`` (``[(start, end)]``, as the
    ASR alone reads it) that no voice's ``regions`` hold, those of at least ``cfg.min_unheld``
    seconds, in time order."""
    cfg = cfg or TurnConfig()
    held = merge_intervals([r for voice in regions for r in voice])
    out = []
    for start, end in merge_intervals(recording):
        t = start
        for s, e in held:
            if e <= t or s >= end:
                continue
            if s > t:
                out.append((t, s))
            t = max(t, e)
        if end > t:
            out.append((t, end))
    return [(s, e) for s, e in out if e - s >= cfg.min_unheld]


def recording_stretches(pieces: list[Piece], regions: list[tuple[float, float]],
                        cfg: TurnConfig | None = None) -> list[tuple[float, float, list[int]]]:
    """Stretches of the recording to decode for the lone pieces (source ``mixture``): the
    recording's own speech ``regions`` (``[(start, end)]``, as the ASR alone reads it) that
    hold some of a lone piece, each decoded whole, so that where one voice speaks the words
    are the ASR alone's and only who said them depends on the separated voices. A piece
    across two regions is a member of both; lone pieces that no region holds are decoded
    in :func:`join_lone`'s stretches.

    Returns ``(decode_start, decode_end, indices into pieces)`` in time order.
    """
    lone = [j for j, p in enumerate(pieces) if p.source == MIXTURE]
    out, held = [], set()
    for start, end in sorted(regions):
        members = [j for j in lone if min(end, pieces[j].end) > max(start, pieces[j].start)]
        if members:
            out.append((start, end, members))
            held |= set(members)
    # the held pieces marked as not lone, so that join_lone's indices stay those of ``pieces``
    rest = [p if j not in held else replace(p, source=VOICE) for j, p in enumerate(pieces)]
    out += join_lone(rest, cfg)
    return sorted(out, key=lambda s: (s[0], s[1]))


def share_words(pieces: list[Piece], words, others: list[tuple[float, float]] = (),
                by_sentence: bool = False) -> list[list]:
    """The words decoded from one stretch of the recording, shared out to its lone ``pieces``:
    each word goes to the piece its middle lies deepest in, or the nearest one (a pause
    between two regions), and is dropped where it lies past a cut side of that piece. A word
    that lies deeper in one of ``others`` (``(start, end)`` of the stretches read from the
    separated voices) than in any piece is dropped too: its words are read from there.
    ``by_sentence``: then each sentence (:func:`_sentences`) goes wholly to the voice whose
    pieces hold most of its words (a tie: the voice that speaks first), each word to that
    voice's piece nearest to it. Returns per piece, its words."""
    out: list[list] = [[] for _ in pieces]
    if not pieces:
        return out

    def depth(s: float, e: float, t: float) -> float:
        return min(t - s, e - t)

    def nearest(w, among) -> int:
        mid = (w.start + w.end) / 2
        # distance to each piece (0 inside); among pieces that hold it, the one it lies deepest in
        return min(among, key=lambda j: (max(pieces[j].start - mid, mid - pieces[j].end, 0.0),
                                         -depth(pieces[j].start, pieces[j].end, mid)))

    owner: list[int | None] = []
    for w in words:
        mid = (w.start + w.end) / 2
        best = nearest(w, range(len(pieces)))
        inside = depth(pieces[best].start, pieces[best].end, mid)
        dropped = any(depth(s, e, mid) > max(inside, 0.0) for s, e in others)
        owner.append(None if dropped or not keep_words(pieces[best], [w]) else best)
    if by_sentence:
        for group in _sentences(words):
            kept = [n for n in group if owner[n] is not None]
            votes: dict[int, int] = {}
            for n in kept:
                votes[pieces[owner[n]].voice] = votes.get(pieces[owner[n]].voice, 0) + 1
            if len(votes) < 2:
                continue
            voice = max(votes, key=lambda v: (votes[v], -min(pieces[owner[n]].start for n in kept
                                                                if pieces[owner[n]].voice == v)))
            mine = [j for j in range(len(pieces)) if pieces[j].voice == voice]
            for n in kept:
                if pieces[owner[n]].voice != voice:
                    j = nearest(words[n], mine)
                    owner[n] = j if keep_words(pieces[j], [words[n]]) else None
    for w, j in zip(words, owner):
        if j is not None:
            out[j].append(w)
    return out


def _sentences(words) -> list[list[int]]:
    """Indices of ``words`` grouped into sentences: each ends with a word that ends in ``.``,
    ``?`` or ``!`` (closing quotes aside), and words after the last such end are one more
    (unfinished) sentence; words without any punctuation at all (an ASR that writes none):
    one group per word."""
    ends = [w.word.rstrip("\"')]»”’").endswith((".", "?", "!")) for w in words]
    if not any(c in ".,?!;:" for w in words for c in w.word):
        return [[n] for n in range(len(words))]
    out, cur = [], []
    for n, end in enumerate(ends):
        cur.append(n)
        if end:
            out.append(cur)
            cur = []
    return out + ([cur] if cur else [])


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
