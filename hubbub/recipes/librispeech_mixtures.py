"""Mixture sets made from a LibriSpeech-layout folder (``hubbub data mix``), written in the LibriMix
layout (:mod:`hubbub.recipes.librimix_layout`) with a ``manifest.jsonl`` (:mod:`hubbub.recipes.manifest`).

Usage:
    # 100 two-speaker test mixtures of unseen speakers from test-other, 8 kHz, min, with transcripts
    hubbub data mix --librispeech ../shared/data/LibriSpeech/test-other --out data/test-other-2mix-8k

    # the same with real noise at 10-15 dB SNR (adds noise/ and mix_both/; the manifest points at mix_both)
    hubbub data mix --librispeech ../shared/data/LibriSpeech/test-other --out data/test-other-2mix-noisy-8k \
        --noise-dir ../shared/data/noise --snr 10 15
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from hubbub.pipeline.writers import write_audio, write_text
from hubbub.recipes.librimix_layout import csv_columns, csv_row, fit_lengths, mix_sources, write_mixture_csv
from hubbub.recipes.manifest import MANIFEST, MixtureItem, manifest_record, read_manifest

__all__ = ["build_parser", "main", "make_test_mixtures"]

log = logging.getLogger(__name__)


def _pick_mixtures(utts: list, n_src: int, n_mixtures: int, seed: int) -> list[tuple]:
    """``n_mixtures`` distinct tuples of utterances of different speakers; mixture ``i`` depends on
    ``(seed, i)`` and the earlier picks only (a smaller count gives a prefix)."""
    by_spk: dict[str, list] = {}
    for u in utts:
        by_spk.setdefault(u.speaker, []).append(u)
    speakers = sorted(by_spk)
    if len(speakers) < n_src:
        raise ValueError(f"need utterances of at least {n_src} speakers, found {len(speakers)}")
    picks, seen = [], set()
    for i in range(n_mixtures):
        rng = np.random.default_rng([seed, i])
        for _ in range(100):
            chosen = tuple(by_spk[speakers[k]][rng.integers(len(by_spk[speakers[k]]))]
                           for k in rng.choice(len(speakers), size=n_src, replace=False))
            key = frozenset(u.id for u in chosen)
            if key not in seen:
                seen.add(key)
                picks.append((i, chosen))
                break
        else:
            log.warning("only %d distinct mixtures can be drawn; stopping there", len(picks))
            break
    return picks


def _fit_noise(rng: np.random.Generator, noise: np.ndarray, length: int) -> np.ndarray:
    """A random ``length``-sample stretch of ``noise``, looped when it is shorter."""
    if len(noise) < length:
        noise = np.tile(noise, length // len(noise) + 1)
    start = int(rng.integers(0, len(noise) - length + 1))
    return noise[start : start + length]


def _render_mixture(
    rng: np.random.Generator,
    wavs: list[np.ndarray],
    mode: str,
    level_db: tuple[float, float],
    noises: list[np.ndarray],
    snr_db: tuple[float, float],
    peak: float = 0.9,
) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Sources set to random levels, cut/padded, noise at a random SNR; all scaled if a mix peaks > ``peak``."""
    from hubbub.recipes.data import rms_db  # here: `hubbub data mix --help` stays light (no torch)

    levels = rng.uniform(*level_db, size=len(wavs))
    fitted = fit_lengths(wavs, mode)
    sources = [w * 10 ** ((lvl - rms_db(w)) / 20) for w, lvl in zip(fitted, levels)]
    clean = np.sum(sources, axis=0)
    noise = None
    if noises:
        raw = _fit_noise(rng, noises[int(rng.integers(len(noises)))], len(clean))
        snr = rng.uniform(*snr_db)
        noise = raw * 10 ** ((rms_db(clean) - snr - rms_db(raw)) / 20)
    top = max(np.abs(clean).max(), np.abs(clean + noise).max() if noise is not None else 0.0)
    if top > peak:
        sources = [s * (peak / top) for s in sources]
        noise = noise * (peak / top) if noise is not None else None
    return [s.astype(np.float32) for s in sources], (noise.astype(np.float32) if noise is not None else None)


def make_test_mixtures(
    librispeech: str | os.PathLike,
    out: str | os.PathLike,
    n_src: int = 2,
    n_mixtures: int = 100,
    sample_rate: int = 8000,
    mode: str = "min",
    seed: int = 0,
    noise_dir: str | os.PathLike | None = None,
    snr_db: tuple[float, float] = (10.0, 15.0),
    level_db: tuple[float, float] = (-33.0, -25.0),
    hold_out: int = 0,
    held_out_only: bool = False,
) -> list[MixtureItem]:
    """A deterministic LibriMix-layout set of ``n_src``-speaker mixtures from a LibriSpeech-layout folder.

    Each mixture joins utterances of different speakers (drawn with ``seed``); each source is set to a
    random level uniform in ``level_db`` dBFS RMS (measured on the part that is mixed) -- an
    approximation of LibriMix's LUFS normalisation, not the same gains; ``min`` cuts all to the shortest
    source, ``max`` zero-pads to the longest. With ``noise_dir`` a random stretch of one of its files is
    added at an SNR uniform in ``snr_db`` (re the clean mixture). If a mixture would peak above 0.9, the
    sources and the noise are scaled down together, so the sources still sum to the mixture.

    Writes ``<out>/wav<sr/1000>k/<mode>/test/{mix_clean,s1..sN[,noise,mix_both]}/<utt1>_<utt2>.wav``,
    ``<out>/wav<sr/1000>k/<mode>/metadata/mixture_test_mix_clean.csv`` (``_mix_both`` too, with noise;
    absolute paths) and ``<out>/manifest.jsonl`` (paths relative to ``out``; see :func:`read_manifest`).
    Existing audio files are kept. ``hold_out`` leaves out the speakers that the training recipes hold
    out for validation (:func:`~hubbub.recipes.data.split_speakers` with the same count), for a set
    made of training speech; with ``held_out_only`` the set is made of those speakers only (a
    development set).

    Returns:
        the items of the manifest.
    """
    from tqdm import tqdm

    from hubbub.pipeline.audio import load_audio
    from hubbub.recipes.data import load_noises, read_librispeech, split_speakers

    out = Path(out)
    utts = read_librispeech(librispeech)
    if hold_out:
        train, held = split_speakers(utts, hold_out)
        utts = held if held_out_only else train
    picks = _pick_mixtures(utts, n_src, n_mixtures, seed)
    noises = load_noises(noise_dir, sample_rate) if noise_dir else []
    if noise_dir and not noises:
        raise FileNotFoundError(f"{noise_dir}: no readable noise files")
    split_dir = out / f"wav{sample_rate // 1000}k" / mode / "test"
    folders = [f"s{k + 1}" for k in range(n_src)] + ["mix_clean"] + (["noise", "mix_both"] if noises else [])
    records, csv_rows = [], {"mix_clean": [], "mix_both": []}
    written = 0
    for i, chosen in tqdm(picks, desc="data mix", unit="mix", disable=None):
        mix_id = "_".join(u.id for u in chosen)
        name = f"{mix_id}.wav"
        if all((split_dir / f / name).is_file() for f in folders):
            length = sf.info(str(split_dir / "mix_clean" / name)).frames
        else:
            rng = np.random.default_rng([seed, i, 1])
            wavs = [load_audio(u.path, sample_rate=sample_rate)[0].numpy() for u in chosen]
            sources, noise = _render_mixture(rng, wavs, mode, level_db, noises, snr_db)
            for k, src in enumerate(sources):
                write_audio(split_dir / f"s{k + 1}" / name, src, sample_rate)
            for mixtype, mix in mix_sources(sources, noise).items():
                if mixtype in folders:
                    write_audio(split_dir / mixtype / name, mix, sample_rate)
            if noise is not None:
                write_audio(split_dir / "noise" / name, noise, sample_rate)
            length, written = len(sources[0]), written + 1
        for mixtype in csv_rows if noises else ["mix_clean"]:
            csv_rows[mixtype].append(csv_row(mixtype, mix_id, split_dir, n_src, length))
        records.append(manifest_record(out, split_dir, mix_id, chosen, bool(noises), sample_rate, length))
    md = out / f"wav{sample_rate // 1000}k" / mode / "metadata"
    for mixtype, rows in csv_rows.items():
        if rows:
            write_mixture_csv(md / f"mixture_test_{mixtype}.csv", csv_columns(mixtype, n_src), rows, merge=False)
    write_text(out / MANIFEST, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    untranscribed = sum(r["texts"] is None for r in records)
    if untranscribed:
        log.warning("%d mixtures have a source without a transcript (texts: null)", untranscribed)
    log.info("%s: %d mixtures (%d written, %d kept)", out / MANIFEST, len(records), written, len(records) - written)
    return read_manifest(out / MANIFEST)



def build_parser() -> argparse.ArgumentParser:
    """The parser of ``hubbub data mix``."""
    p = argparse.ArgumentParser(prog="hubbub data mix", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--librispeech", required=True, help="a LibriSpeech-layout folder (e.g. .../test-other)")
    p.add_argument("--out", required=True)
    p.add_argument("--n-src", type=int, default=2)
    p.add_argument("--n-mixtures", type=int, default=100)
    p.add_argument("--sample-rate", type=int, default=8000)
    p.add_argument("--mode", choices=["min", "max"], default="min")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise-dir", help="folder of noise recordings: adds noise/ and mix_both/")
    p.add_argument("--snr", type=float, nargs=2, default=[10.0, 15.0], metavar=("LOW", "HIGH"))
    p.add_argument("--hold-out", type=int, default=0, metavar="N",
                   help="leave out the N speakers the training recipes validate on (their val_speakers)")
    p.add_argument("--held-out-only", action="store_true", help="with --hold-out: only those N speakers")
    return p


def main(argv: list[str] | None = None) -> int:
    """``hubbub data mix ...``."""
    args = build_parser().parse_args(argv)
    try:
        make_test_mixtures(
            args.librispeech, args.out, n_src=args.n_src, n_mixtures=args.n_mixtures,
            sample_rate=args.sample_rate, mode=args.mode, seed=args.seed, noise_dir=args.noise_dir,
            snr_db=tuple(args.snr), hold_out=args.hold_out, held_out_only=args.held_out_only,
        )
    except (FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 1
    return 0
