"""Conversation test sets (``hubbub data conversation``): LibriCSS-like recordings of people taking
turns, with a chosen share of overlapped speech, from a LibriSpeech-layout folder.

Usage:
    # 2 speakers, 10 recordings per overlap ratio (0, 10, 20, 30 and 40 %), 16 kHz, from unseen speakers
    hubbub data conversation --librispeech ../shared/data/LibriSpeech/test-other \
        --out data/test-other-conv2-16k --n-speakers 2 --sample-rate 16000

    # 3 speakers (at most two at once), 8 kHz
    hubbub data conversation --librispeech ../shared/data/LibriSpeech/test-other \
        --out data/test-other-conv3-8k --n-speakers 3 --sample-rate 8000

    # a development set of training speakers (for tuning; never tune on test-other)
    hubbub data conversation --librispeech ../shared/data/LibriSpeech/train-clean-100 \
        --out data/train-conv2-16k --n-speakers 2 --n-recordings 8

    # monologues (one speaker's turns joined by silences): does the speaker clustering split a talker?
    hubbub data conversation --librispeech ../shared/data/LibriSpeech/train-clean-100 \
        --out data/dev-conv1-16k --n-speakers 1 --n-recordings 8 --overlap-ratios 0 --seed 7

A recording is ``--turns`` whole utterances, each of one speaker, no speaker twice in a row, every
speaker at least once. Consecutive turns are joined by a short silence (uniform in ``--silence``)
at 0 % overlap, and otherwise by an overlap: the next turn starts before the current one ends. The
overlap ratio is, as in LibriCSS, the time where two voices speak at once over the time where any
voice speaks, measured on the utterances' spans; the builder places the turns so that it is the
ratio asked for (to 1 ms). No two overlaps touch, so at most two people speak at once. For one
seed, recording ``i`` holds the same utterances at every ratio; only the placement changes.

Writes, per ratio ``RR`` (percent):

* ``<out>/overlap<RR>/<id>.wav``: the recording (the sum of the turns, each at a random level);
* ``<out>/overlap<RR>/<id>.rttm``: who speaks when (one line per turn);
* ``<out>/manifest.jsonl``: one record per recording: ``id``, ``mixture``, ``rttm`` (relative to
  ``out``), ``overlap_ratio`` (the target, percent), ``measured_overlap`` (fraction), ``speakers``,
  ``texts`` (per speaker, the texts of its turns in time order), ``turns`` (``speaker``, ``utt``,
  ``start``, ``end``, ``text``), ``sample_rate``, ``duration``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = ["Turn", "build_parser", "main", "make_conversations", "overlap_ratio", "place_turns"]

log = logging.getLogger(__name__)

#: an overlap takes at most this share of either of the two turns it joins
MAX_OVERLAP_SHARE = 0.45


@dataclass(frozen=True)
class Turn:
    """One utterance placed in a recording (seconds)."""

    speaker: str
    utt: str
    start: float
    end: float
    text: str | None = None


def overlap_ratio(turns: list[Turn]) -> float:
    """Time where two or more turns overlap, over the time covered by any turn."""
    edges = sorted([(t.start, 1) for t in turns] + [(t.end, -1) for t in turns])
    active, last, any_time, two_time = 0, 0.0, 0.0, 0.0
    for time, step in edges:
        if active >= 1:
            any_time += time - last
        if active >= 2:
            two_time += time - last
        active, last = active + step, time
    return two_time / any_time if any_time > 0 else 0.0


def _overlaps_for(durations: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray | None:
    """Overlaps ``(len(durations) - 1,)`` between consecutive turns whose sum ``O`` gives
    ``O / (sum(durations) - O) = ratio``, spread at random, each at most
    ``MAX_OVERLAP_SHARE`` of both turns it joins (so no two overlaps touch); None if they cannot fit."""
    total = ratio * durations.sum() / (1 + ratio)
    caps = MAX_OVERLAP_SHARE * np.minimum(durations[:-1], durations[1:])
    if total > caps.sum():
        return None
    weights = rng.dirichlet(np.full(len(caps), 2.0))
    out = np.zeros(len(caps))
    left, free = total, np.ones(len(caps), dtype=bool)
    while left > 1e-9:  # water-filling: what a capped transition cannot take goes to the others
        share = weights * free
        share = share / share.sum() * left
        room = caps - out
        take = np.minimum(share, room)
        out += take
        left -= take.sum()
        free &= out < caps - 1e-9
    return out


def place_turns(durations: list[float], ratio: float, silence: tuple[float, float],
                rng: np.random.Generator) -> list[tuple[float, float]] | None:
    """Start and end of each turn, in order: silences between turns at ``ratio`` 0, overlaps that
    make the overlap ratio ``ratio`` otherwise (None when the turns are too short for it)."""
    d = np.asarray(durations, dtype=float)
    if ratio > 0:
        shifts = _overlaps_for(d, ratio, rng)
        if shifts is None:
            return None
        shifts = -shifts
    else:
        shifts = rng.uniform(*silence, size=len(d) - 1)
    spans, t = [], float(rng.uniform(*silence))
    for k, dur in enumerate(d):
        spans.append((t, t + dur))
        if k < len(shifts):
            t = t + dur + shifts[k]
    return spans


def _speaker_order(n_speakers: int, n_turns: int, rng: np.random.Generator) -> list[int]:
    """``n_turns`` speaker indices: no one twice in a row (but a monologue's), everyone at least once."""
    if n_speakers == 1:
        return [0] * n_turns
    while True:
        order = [int(rng.integers(n_speakers))]
        for _ in range(n_turns - 1):
            order.append(int(rng.choice([s for s in range(n_speakers) if s != order[-1]])))
        if len(set(order)) == n_speakers:
            return order


def _pick_turns(by_spk: dict[str, list], n_speakers: int, n_turns: int, rng: np.random.Generator) -> list | None:
    """The utterances of one recording, in turn order (each used once), from speakers with enough
    utterances for their turns; None if too few speakers have enough."""
    order = _speaker_order(n_speakers, n_turns, rng)
    need = sorted(range(n_speakers), key=lambda k: -order.count(k))  # the busiest slot chooses first
    chosen: dict[int, str] = {}
    for k in need:
        pool = [s for s in sorted(by_spk) if len(by_spk[s]) >= order.count(k) and s not in chosen.values()]
        if not pool:
            return None
        chosen[k] = pool[int(rng.integers(len(pool)))]
    pools = {k: list(rng.permutation(len(by_spk[chosen[k]]))) for k in chosen}
    return [by_spk[chosen[k]][pools[k].pop()] for k in order]


def make_conversations(
    librispeech: str | os.PathLike,
    out: str | os.PathLike,
    n_speakers: int = 2,
    n_recordings: int = 10,
    n_turns: int | None = None,
    ratios: tuple[float, ...] = (0, 10, 20, 30, 40),
    sample_rate: int = 16000,
    silence: tuple[float, float] = (0.1, 1.0),
    level_db: tuple[float, float] = (-33.0, -25.0),
    seed: int = 0,
) -> list[dict]:
    """Build the conversation set described in the module docstring; returns the manifest records.

    ``n_turns`` defaults to ``3 * n_speakers``; ``ratios`` are percent. Existing recordings are
    rewritten (the set is deterministic for ``seed``).
    """
    from tqdm import tqdm

    from hubbub.pipeline.audio import load_audio
    from hubbub.pipeline.formats import render
    from hubbub.pipeline.result import Result, Segment, SpeakerResult
    from hubbub.pipeline.writers import write_audio, write_text
    from hubbub.recipes.data import read_librispeech, rms_db

    if n_speakers < 1:
        raise ValueError("a recording needs at least 1 speaker")
    if n_speakers == 1 and any(r != 0 for r in ratios):
        raise ValueError("one speaker's turns cannot overlap: a monologue takes --overlap-ratios 0")
    n_turns = n_turns or 3 * n_speakers
    if n_turns < n_speakers:
        raise ValueError(f"{n_turns} turns cannot hold {n_speakers} speakers")
    out = Path(out)
    by_spk: dict[str, list] = {}
    for u in read_librispeech(librispeech):
        if u.text is not None:
            by_spk.setdefault(u.speaker, []).append(u)
    if len(by_spk) < n_speakers:
        raise ValueError(f"{librispeech}: need transcribed utterances of {n_speakers} speakers, found {len(by_spk)}")
    cache: dict[str, np.ndarray] = {}

    def audio(u) -> np.ndarray:
        if u.id not in cache:
            cache[u.id] = load_audio(u.path, sample_rate=sample_rate)[0].numpy()
        return cache[u.id]

    records = []
    for i in tqdm(range(n_recordings), desc="data conversation", unit="rec", disable=None):
        for attempt in range(200):
            rng = np.random.default_rng([seed, i, attempt])
            utts = _pick_turns(by_spk, n_speakers, n_turns, rng)
            if utts is None:
                continue
            durations = [len(audio(u)) / sample_rate for u in utts]
            layouts = {r: place_turns(durations, r / 100, silence, np.random.default_rng([seed, i, attempt, int(r)]))
                       for r in ratios}
            if all(v is not None for v in layouts.values()):
                break
        else:
            raise ValueError(f"{librispeech}: could not draw recording {i} ({n_turns} turns of {n_speakers} speakers)")
        gains = [10 ** ((float(g) - rms_db(audio(u))) / 20)
                 for g, u in zip(rng.uniform(*level_db, size=len(utts)), utts)]
        for r, spans in layouts.items():
            rec_id = f"conv{n_speakers}-{i:03d}-ov{int(r):02d}"
            length = int(round(spans[-1][1] * sample_rate)) + int(silence[0] * sample_rate)
            length = max(length, max(int(round(s * sample_rate)) + len(audio(u)) for (s, _), u in zip(spans, utts)))
            mix = np.zeros(length, dtype=np.float64)
            turns = []
            for (s, _), u, g in zip(spans, utts, gains):
                a = int(round(s * sample_rate))
                wav = audio(u)
                mix[a : a + len(wav)] += g * wav
                turns.append(Turn(u.speaker, u.id, round(a / sample_rate, 4), round((a + len(wav)) / sample_rate, 4),
                                  u.text))
            peak = float(np.abs(mix).max())
            if peak > 0.9:
                mix *= 0.9 / peak
            folder = out / f"overlap{int(r):02d}"
            write_audio(folder / f"{rec_id}.wav", mix.astype(np.float32), sample_rate)
            speakers = list(dict.fromkeys(t.speaker for t in turns))
            ref = Result(None, length / sample_rate, sample_rate, {}, [
                SpeakerResult(s, None, [Segment(t.start, t.end, t.text or "") for t in turns if t.speaker == s])
                for s in speakers])
            write_text(folder / f"{rec_id}.rttm", render(ref, "rttm", file_id=rec_id))
            records.append({
                "id": rec_id,
                "mixture": f"{folder.name}/{rec_id}.wav",
                "rttm": f"{folder.name}/{rec_id}.rttm",
                "overlap_ratio": r,
                "measured_overlap": round(overlap_ratio(turns), 5),
                "speakers": speakers,
                "texts": [[t.text for t in turns if t.speaker == s] for s in speakers],
                "turns": [asdict(t) for t in turns],
                "sample_rate": sample_rate,
                "duration": round(length / sample_rate, 4),
            })
    write_text(out / "manifest.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    log.info("%s: %d recordings (%d per ratio, ratios %s %%)", out / "manifest.jsonl", len(records), n_recordings,
             ", ".join(f"{r:g}" for r in ratios))
    return records


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``hubbub data conversation``."""
    p = argparse.ArgumentParser(prog="hubbub data conversation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--librispeech", required=True, help="a LibriSpeech-layout folder (e.g. .../test-other)")
    p.add_argument("--out", required=True)
    p.add_argument("--n-speakers", type=int, default=2, help="1 makes monologues (with --overlap-ratios 0)")
    p.add_argument("--n-recordings", type=int, default=10, help="recordings per overlap ratio")
    p.add_argument("--turns", type=int, default=None, help="turns per recording (default: 3 per speaker)")
    p.add_argument("--overlap-ratios", type=float, nargs="+", default=[0, 10, 20, 30, 40], metavar="PERCENT")
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--silence", type=float, nargs=2, default=[0.1, 1.0], metavar=("LOW", "HIGH"),
                   help="seconds of silence between turns at 0 %% overlap (and before the first)")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    """``hubbub data conversation ...``."""
    args = build_parser().parse_args(argv)
    if any(not 0 <= r < 100 for r in args.overlap_ratios):
        log.error("--overlap-ratios: percentages in [0, 100)")
        return 2
    try:
        make_conversations(args.librispeech, args.out, n_speakers=args.n_speakers, n_recordings=args.n_recordings,
                           n_turns=args.turns, ratios=tuple(args.overlap_ratios), sample_rate=args.sample_rate,
                           silence=tuple(args.silence), seed=args.seed)
    except (FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 1
    return 0
