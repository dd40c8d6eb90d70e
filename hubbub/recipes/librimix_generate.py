"""Generate LibriMix from the official metadata CSVs (``hubbub data librimix``), as the official
JorisCos/LibriMix scripts do, into the layout of :mod:`hubbub.recipes.librimix_layout`.

Usage:
    # Libri2Mix from LibriSpeech + WHAM! and the official metadata (8 and 16 kHz, min and max, all splits found)
    hubbub data librimix --librispeech-dir /data/LibriSpeech --wham-dir /data/wham_noise \
        --metadata-dir /data/LibriMix/metadata/Libri2Mix --out /data/Libri2Mix

    # only the clean 8 kHz min test and dev sets (no WHAM! needed), skipping rows whose utterances are absent
    hubbub data librimix --librispeech-dir /data/LibriSpeech --metadata-dir ../shared/data/LibriMix-metadata/Libri2Mix \
        --out data/Libri2Mix --sample-rate 8000 --mode min --splits test dev --no-noise --skip-missing
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from hubbub.pipeline.writers import write_audio
from hubbub.recipes.librimix_layout import (
    MIXTURE_TYPES,
    SOURCE_RATE,
    SPLITS,
    csv_columns,
    csv_row,
    fit_lengths,
    mix_sources,
    split_names,
    write_mixture_csv,
)

__all__ = ["build_parser", "generate_librimix", "main"]

log = logging.getLogger(__name__)


def _resample_np(wav: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Polyphase resampling as the official generator does (scipy), torchaudio when scipy is absent."""
    if orig_sr == new_sr:
        return wav
    try:
        from scipy.signal import resample_poly
    except ImportError:  # pragma: no cover
        from hubbub.pipeline.audio import resample

        return resample(wav, orig_sr, new_sr).numpy()
    g = math.gcd(orig_sr, new_sr)
    return resample_poly(wav, new_sr // g, orig_sr // g).astype(np.float32)



def _extend_noise(noise: np.ndarray, length: int, rate: int = SOURCE_RATE) -> np.ndarray:
    """Loop ``noise`` up to ``length`` with half-second Hann cross-fades (official ``extend_noise``)."""
    window = np.hanning(rate + 1)
    rise, fall = window[: len(window) // 2 + 1], window[len(window) // 2 :: -1]
    if len(noise) <= len(rise):  # too short to cross-fade: plain looping
        return np.tile(noise, length // max(len(noise), 1) + 1)[:length]
    out = noise
    while len(out) < length:
        tail = out[len(out) - len(fall) :] * fall + noise[: len(rise)] * rise
        out = np.concatenate([out[: len(out) - len(fall)], tail, noise[len(rise) :]])
    return out[:length]



@dataclass(frozen=True)
class _Row:
    """One row of an official ``libri<n>mix_<subset>.csv``."""

    id: str
    sources: tuple[str, ...]  # relative to the LibriSpeech root
    gains: tuple[float, ...]
    noise: str | None  # relative to the WHAM! root
    noise_gain: float


def _read_metadata(path: Path, n_src: int) -> list[_Row]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in [f"source_{n_src}_path", f"source_{n_src}_gain"] if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: not a Libri{n_src}Mix metadata file (no column {missing[0]})")
        return [
            _Row(
                r["mixture_ID"],
                tuple(r[f"source_{k + 1}_path"] for k in range(n_src)),
                tuple(float(r[f"source_{k + 1}_gain"]) for k in range(n_src)),
                r.get("noise_path") or None,
                float(r.get("noise_gain") or 1.0),
            )
            for r in reader
        ]


def _metadata_files(metadata_dir: Path, n_src: int, splits: Sequence[str] | None) -> dict[str, Path]:
    """Split -> official metadata CSV (``libri2mix_test-clean.csv`` for ``test``)."""
    if not metadata_dir.is_dir():
        raise FileNotFoundError(f"{metadata_dir}: metadata folder not found")
    if not list(metadata_dir.glob(f"libri{n_src}mix_*.csv")) and (metadata_dir / f"Libri{n_src}Mix").is_dir():
        metadata_dir = metadata_dir / f"Libri{n_src}Mix"
    files = {s: metadata_dir / f"libri{n_src}mix_{subset}.csv" for s, subset in SPLITS.items()}
    if splits is None:
        found = {s: p for s, p in files.items() if p.is_file()}
        if not found:
            raise FileNotFoundError(f"{metadata_dir}: no libri{n_src}mix_<subset>.csv metadata files")
        return found
    wanted = {}
    for split in splits:
        names = split_names(split)
        present = [s for s in names if files[s].is_file()]
        if not present:
            raise FileNotFoundError(f"{files[names[0]]}: metadata file not found")
        wanted.update({s: files[s] for s in present})
    return wanted


def _usable_rows(
    rows: list[_Row], librispeech_dir: Path, wham_dir: Path | None, skip_missing: bool, split: str
) -> list[_Row]:
    """Rows whose input files all exist; the others are skipped (``skip_missing``) or raise."""
    kept, skipped, first = [], 0, None
    for row in rows:
        paths = [librispeech_dir / s for s in row.sources]
        if wham_dir is not None:
            paths.append(wham_dir / (row.noise or ""))
        lost = next((p for p in paths if not p.is_file()), None)
        if lost is None:
            kept.append(row)
            continue
        if not skip_missing:
            what = "WHAM! noise" if wham_dir is not None and lost == paths[-1] else "LibriSpeech source"
            raise FileNotFoundError(
                f"{lost}: {what} of mixture {row.id} ({split}) not found; pass --skip-missing to skip such rows"
                + (" or --no-noise to make clean mixtures only" if what == "WHAM! noise" else "")
            )
        skipped += 1
        first = first or lost
    if skipped:
        log.warning("%s: skipped %d of %d mixtures whose input files are missing (first: %s)",
                    split, skipped, len(rows), first)
    return kept


def _read_row(row: _Row, librispeech_dir: Path, wham_dir: Path | None) -> tuple[list[np.ndarray], int]:
    """Gain-scaled sources (and the noise, last, when ``wham_dir``) at the files' rate."""
    wavs, rate, longest = [], SOURCE_RATE, 0
    for rel, gain in zip(row.sources, row.gains):
        wav, rate = sf.read(str(librispeech_dir / rel), dtype="float32", always_2d=True)
        wavs.append(wav[:, 0] * gain)
        longest = max(longest, len(wav))
    if wham_dir is not None:
        noise, noise_rate = sf.read(str(wham_dir / row.noise), dtype="float32", always_2d=True, stop=longest)
        if noise_rate != rate:
            raise ValueError(f"{wham_dir / row.noise}: noise at {noise_rate} Hz, sources at {rate} Hz")
        noise = _extend_noise(noise[:, 0], longest, rate) if len(noise) < longest else noise[:, 0]
        wavs.append(noise * row.noise_gain)
    return wavs, rate



def generate_librimix(
    librispeech_dir: str | os.PathLike,
    metadata_dir: str | os.PathLike,
    out: str | os.PathLike,
    wham_dir: str | os.PathLike | None = None,
    sample_rates: Sequence[int] = (8000, 16000),
    modes: Sequence[str] = ("min", "max"),
    n_src: int = 2,
    splits: Sequence[str] | None = None,
    skip_missing: bool = False,
    no_noise: bool = False,
    limit: int | None = None,
) -> dict[str, int]:
    """Write LibriMix under ``out`` (``out/wav8k/min/test/...``) from the official metadata CSVs.

    Per row: each LibriSpeech source times ``source_k_gain``, the WHAM! noise (first channel, looped with
    cross-fades when short) times ``noise_gain``; resampled to each rate; cut to the shortest source
    (``min``) or zero-padded to the longest (``max``). Files that exist are kept (resumable); every file is
    written to a temporary name and renamed.

    Returns:
        split -> number of mixtures now present for it (written or already there; the same for every
        rate and mode).
    """
    from tqdm import tqdm

    librispeech_dir, out = Path(librispeech_dir), Path(out)
    if not librispeech_dir.is_dir():
        raise FileNotFoundError(f"{librispeech_dir}: LibriSpeech folder not found")
    if no_noise:
        wham = None
    elif wham_dir is None:
        raise ValueError("--wham-dir is needed for noise, mix_both and mix_single; or pass --no-noise")
    else:
        wham = Path(wham_dir)
        if not wham.is_dir():
            raise FileNotFoundError(f"{wham}: WHAM! folder not found (pass --no-noise to make clean mixtures only)")
    mixtypes = ["mix_clean"] if wham is None else list(MIXTURE_TYPES)
    counts = {}
    for split, csv_path in _metadata_files(Path(metadata_dir), n_src, splits).items():
        rows = _usable_rows(_read_metadata(csv_path, n_src), librispeech_dir, wham, skip_missing, split)
        rows = rows[:limit] if limit is not None else rows
        counts[split] = len(rows)
        if not rows:
            log.warning("%s: no mixture of %s can be made from %s; nothing written", split, csv_path, librispeech_dir)
            continue
        log.info("%s: %d mixtures from %s, %s Hz, modes %s", split, len(rows), csv_path,
                 "/".join(map(str, sample_rates)), "/".join(modes))
        csv_rows: dict[tuple[int, str, str], list[dict]] = {}
        written = 0
        peaks: dict[str, float] = {}  # mixture id -> peak of a mixture written above full scale
        for row in tqdm(rows, desc=f"librimix {split}", unit="mix", disable=None):
            written += _generate_row(row, librispeech_dir, wham, out, split, sample_rates, modes, mixtypes,
                                     n_src, csv_rows, peaks)
        if peaks:
            worst = max(peaks, key=peaks.get)
            log.warning("%s: %d of %d mixtures clip (a mixture above full scale, cut at +-1 in the 16-bit WAV; "
                        "loudest %s at %.2f): their mix_both/mix_single is not the sum of its parts there", split,
                        len(peaks), len(rows), worst, peaks[worst])
        for (sr, mode, mixtype), entries in csv_rows.items():
            md = out / f"wav{sr // 1000}k" / mode / "metadata" / f"mixture_{split}_{mixtype}.csv"
            write_mixture_csv(md, csv_columns(mixtype, n_src), entries)
        log.info("%s: wrote %d mixtures, kept %d already there", split, written, len(rows) - written)
    return counts


def _generate_row(
    row: _Row,
    librispeech_dir: Path,
    wham: Path | None,
    out: Path,
    split: str,
    sample_rates: Sequence[int],
    modes: Sequence[str],
    mixtypes: list[str],
    n_src: int,
    csv_rows: dict[tuple[int, str, str], list[dict]],
    peaks: dict[str, float],
) -> int:
    """Write every file of one mixture (all rates and modes) unless all exist; 1 if anything was written.
    A mixture whose peak is above full scale (it clips in the WAV) is noted in ``peaks``."""
    name = f"{row.id}.wav"
    folders = [f"s{k + 1}" for k in range(n_src)] + (["noise"] if wham is not None else []) + mixtypes
    targets = {(sr, m): out / f"wav{sr // 1000}k" / m / split for sr in sample_rates for m in modes}
    todo = [k for k, d in targets.items() if not all((d / f / name).is_file() for f in folders)]
    wavs, rate = _read_row(row, librispeech_dir, wham) if todo else ([], SOURCE_RATE)
    for (sr, mode), split_dir in targets.items():
        if (sr, mode) in todo:
            fitted = fit_lengths([_resample_np(w, rate, sr) for w in wavs], mode)
            sources, noise = fitted[:n_src], (fitted[n_src] if wham is not None else None)
            for k, src in enumerate(sources):
                write_audio(split_dir / f"s{k + 1}" / name, src, sr)
            if noise is not None:
                write_audio(split_dir / "noise" / name, noise, sr)
            for mixtype, mix in mix_sources(sources, noise).items():
                write_audio(split_dir / mixtype / name, mix, sr)
                if (peak := float(np.abs(mix).max(initial=0.0))) > 1.0:
                    peaks[row.id] = max(peaks.get(row.id, 0.0), peak)
            length = len(sources[0])
        else:
            length = sf.info(str(split_dir / "mix_clean" / name)).frames
        for mixtype in mixtypes:
            csv_rows.setdefault((sr, mode, mixtype), []).append(csv_row(mixtype, row.id, split_dir, n_src, length))
    return int(bool(todo))



def build_parser() -> argparse.ArgumentParser:
    """The parser of ``hubbub data librimix``."""
    p = argparse.ArgumentParser(prog="hubbub data librimix", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--librispeech-dir", required=True, help="LibriSpeech root (holding test-clean/, ...)")
    p.add_argument("--metadata-dir", required=True, help="official metadata/Libri2Mix folder")
    p.add_argument("--wham-dir", help="wham_noise root (holding tt/, cv/, tr/)")
    p.add_argument("--out", required=True, help="the Libri<n>Mix root to write (wav8k/, wav16k/)")
    p.add_argument("--sample-rate", type=int, nargs="+", default=[8000, 16000])
    p.add_argument("--mode", nargs="+", choices=["min", "max"], default=["min", "max"])
    p.add_argument("--n-src", type=int, default=2)
    p.add_argument("--splits", nargs="+", choices=["train", *SPLITS], help="default: every split with metadata")
    p.add_argument("--skip-missing", action="store_true", help="skip rows whose input files are missing")
    p.add_argument("--no-noise", action="store_true", help="only s1..sN and mix_clean; WHAM! not needed")
    p.add_argument("--limit", type=int, help="at most this many mixtures per split (of the rows whose files exist)")
    return p


def main(argv: list[str] | None = None) -> int:
    """``hubbub data librimix ...``."""
    args = build_parser().parse_args(argv)
    try:
        counts = generate_librimix(
            args.librispeech_dir, args.metadata_dir, args.out, wham_dir=args.wham_dir,
            sample_rates=args.sample_rate, modes=args.mode, n_src=args.n_src, splits=args.splits,
            skip_missing=args.skip_missing, no_noise=args.no_noise, limit=args.limit,
        )
    except (FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 1
    if not any(counts.values()):
        log.error("no mixture could be made (per split: %s)", counts)
        return 1
    return 0
