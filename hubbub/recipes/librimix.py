"""LibriMix: read it, generate it from the official metadata, or build a LibriMix-layout test set.

Usage:
    # Libri2Mix from LibriSpeech + WHAM! and the official metadata (8 and 16 kHz, min and max, all splits found)
    hubbub data librimix --librispeech-dir /data/LibriSpeech --wham-dir /data/wham_noise \
        --metadata-dir /data/LibriMix/metadata/Libri2Mix --out /data/Libri2Mix

    # only the clean 8 kHz min test and dev sets (no WHAM! needed), skipping rows whose utterances are absent
    hubbub data librimix --librispeech-dir /data/LibriSpeech --metadata-dir ../shared/data/LibriMix-metadata/Libri2Mix \
        --out data/Libri2Mix --sample-rate 8000 --mode min --splits test dev --no-noise --skip-missing

    # 100 two-speaker test mixtures of unseen speakers from test-other, 8 kHz, min, with transcripts
    hubbub data mix --librispeech ../shared/data/LibriSpeech/test-other --out data/test-other-2mix-8k

    # the same with real noise at 10-15 dB SNR (adds noise/ and mix_both/; the manifest points at mix_both)
    hubbub data mix --librispeech ../shared/data/LibriSpeech/test-other --out data/test-other-2mix-noisy-8k \
        --noise-dir ../shared/data/noise --snr 10 15

Layout (as written by the official JorisCos/LibriMix scripts; ``<split>`` is train-100, train-360, dev or test)::

    <root>/wav8k|wav16k/min|max/<split>/{mix_clean,mix_both,mix_single,s1,s2,s3,noise}/<mixture_ID>.wav
    <root>/wav8k|wav16k/min|max/metadata/mixture_<split>_<mix_clean|mix_both|mix_single>.csv

Paths: the metadata CSVs hold absolute paths, like the official ones (so third-party LibriMix loaders read
them); ``manifest.jsonl`` (written by ``data mix``) holds paths relative to the manifest's folder, so the set
can be moved. Readers accept both: :func:`read_manifest` resolves relative paths against the manifest's
folder and :class:`LibriMixSource` finds files by the layout alone (the CSVs are not needed to read).

Audio is written as 16-bit PCM WAV (soundfile's default, as the official generator does).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from hubbub.pipeline.writers import write_audio, write_text

if TYPE_CHECKING:  # torch is imported where it is used, so that --help stays light
    import torch

__all__ = [
    "LibriMixSource",
    "MixtureItem",
    "MixtureRecord",
    "build_parser",
    "generate_librimix",
    "load_eval_set",
    "main",
    "make_test_mixtures",
    "read_manifest",
]

log = logging.getLogger(__name__)

#: LibriMix split folder -> LibriSpeech subset named in the official metadata file names
SPLITS = {"train-100": "train-clean-100", "train-360": "train-clean-360", "dev": "dev-clean", "test": "test-clean"}
MIXTURE_TYPES = ("mix_clean", "mix_both", "mix_single")
#: rate of LibriSpeech and WHAM! (the official generator assumes it)
SOURCE_RATE = 16000
MANIFEST = "manifest.jsonl"


# --------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class MixtureRecord:
    """One mixture of a LibriMix-layout folder: absolute paths of its files."""

    id: str
    mixture_path: str
    source_paths: tuple[str, ...]
    noise_path: str | None = None


@dataclass(frozen=True)
class MixtureItem:
    """One evaluation mixture: absolute paths, and transcripts of the sources when known.

    ``texts[k]`` and ``speakers[k]`` belong to ``sources[k]``; ``mixture`` is the signal to separate
    (``mix_both`` for noisy sets).
    """

    id: str
    mixture: str
    sources: tuple[str, ...]
    texts: tuple[str, ...] | None = None
    speakers: tuple[str, ...] | None = None
    sample_rate: int | None = None
    duration: float | None = None
    noise: str | None = None


def _split_names(split: str) -> list[str]:
    """Folder names a split name stands for (``train`` -> train-100 and train-360)."""
    aliases = {v: k for k, v in SPLITS.items()}
    split = aliases.get(split, split)
    if split == "train":
        return ["train-100", "train-360"]
    if split not in SPLITS:
        raise ValueError(f"unknown LibriMix split {split!r}; choose from train, {', '.join(SPLITS)}")
    return [split]


def _speakers_from_id(mix_id: str, n_src: int) -> tuple[str, ...] | None:
    """``<spk>-<chapter>-<utt>_<spk>-...`` -> speaker ids, or None when the id has another form."""
    parts = mix_id.split("_")
    if len(parts) != n_src or not all(p.count("-") == 2 for p in parts):
        return None
    return tuple(p.split("-")[0] for p in parts)


# --------------------------------------------------------------------------------------------- reading


def _count_sources(split_dir: Path) -> int:
    n = 0
    while (split_dir / f"s{n + 1}").is_dir():
        n += 1
    return n


def _wav_names(folder: Path) -> set[str]:
    return {e.name for e in os.scandir(folder) if e.name.endswith(".wav") and not e.name.startswith(".")}


def _find_split_dirs(
    root: Path, sample_rate: int, mode: str, split: str, mixture: str, n_src: int | None
) -> list[Path]:
    """The ``<split>`` folders of ``root`` (a LibriMix root, a ``wav*/<mode>`` folder or a split folder)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: LibriMix folder not found")
    if (root / mixture).is_dir() or (root / "s1").is_dir():
        if not (root / mixture).is_dir():
            raise FileNotFoundError(f"{root / mixture}: mixture folder not found")
        return [root]
    names = _split_names(split)
    candidates = [root]
    if n_src and (root / f"Libri{n_src}Mix").is_dir():
        root = root / f"Libri{n_src}Mix"
        candidates.append(root)
    wanted = root / f"wav{sample_rate // 1000}k" / mode
    others = sorted(p / mode for p in root.glob("wav*k") if p / mode != wanted)
    candidates += [wanted, *others]
    for mode_dir in candidates:
        found = [mode_dir / s for s in names if (mode_dir / s).is_dir()]
        if not found:
            continue
        if mode_dir in others:
            log.info("no %s; reading %s and resampling to %d Hz", wanted, mode_dir, sample_rate)
        for d in found:
            if not (d / mixture).is_dir():
                raise FileNotFoundError(f"{d / mixture}: mixture folder not found")
        return found
    tried = ", ".join(str(c / names[0]) for c in candidates)
    raise FileNotFoundError(f"{root}: no LibriMix {split!r} split found (looked for {tried})")


def _read_split(split_dir: Path, mixture: str, n_src: int) -> list[MixtureRecord]:
    """Records of one split folder, sorted by id; ids missing a source are dropped with a warning."""
    src_dirs = [split_dir / f"s{k + 1}" for k in range(n_src)]
    for d in src_dirs:
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: source folder not found")
    mix_names = _wav_names(split_dir / mixture)
    common = set(mix_names)
    for d in src_dirs:
        common &= _wav_names(d)
    noise_names = _wav_names(split_dir / "noise") if (split_dir / "noise").is_dir() else set()
    if len(common) < len(mix_names):
        log.warning("%s: %d mixtures lack a source file; skipped", split_dir, len(mix_names) - len(common))
    records = [
        MixtureRecord(
            name[:-4],
            str((split_dir / mixture / name).resolve()),
            tuple(str((d / name).resolve()) for d in src_dirs),
            str((split_dir / "noise" / name).resolve()) if name in noise_names else None,
        )
        for name in sorted(common)
    ]
    if not records:
        raise FileNotFoundError(f"{split_dir / mixture}: no mixtures with all {n_src} sources")
    return records


def _read_frames(path: str, start: int, frames: int) -> np.ndarray:
    """Mono float32 ``(frames',)`` from ``start`` (first channel); shorter at the end of the file."""
    data, _ = sf.read(path, start=start, frames=frames, dtype="float32", always_2d=True)
    return data[:, 0]


class LibriMixSource:
    """Training/evaluation batches from real LibriMix, with :class:`~hubbub.recipes.data.DynamicMixer`'s contract.

    Item ``index`` of epoch ``e`` is mixture ``perm_e[index % len]`` (a permutation seeded by ``(seed, e)``),
    cropped at random (RNG seeded by ``(seed, e, index)``); only the needed frames are read.

    Args:
        root: a Libri2Mix/Libri3Mix root (``wav8k/``, ``wav16k/``), a ``wav8k/min`` folder, or a split
            folder holding ``mix_clean/``, ``s1/``, ...
        sample_rate: rate of the returned audio; files at another rate are resampled (``wav<rate>k`` is
            preferred when present).
        n_src: number of sources (``s1..sN``); None counts the ``s*`` folders.
        mode: ``min`` or ``max``.
        split: ``train`` (train-100 and/or train-360, whichever exist), ``train-100``, ``train-360``, ``dev``
            or ``test``; ignored when ``root`` is a split folder.
        mixture: ``mix_clean``, ``mix_both`` or ``mix_single``; the targets are always ``s1..sN``.
        seed: base seed of the permutations and crops.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        sample_rate: int = 8000,
        n_src: int | None = 2,
        mode: str = "min",
        split: str = "train",
        mixture: str = "mix_clean",
        seed: int = 0,
    ) -> None:
        if mixture not in MIXTURE_TYPES:
            raise ValueError(f"unknown mixture type {mixture!r}; choose from {MIXTURE_TYPES}")
        self.sample_rate = sample_rate
        self.mode = mode
        self.mixture = mixture
        self.seed = seed
        self.split_dirs = _find_split_dirs(Path(root), sample_rate, mode, split, mixture, n_src)
        self.n_src = n_src or _count_sources(self.split_dirs[0])
        if self.n_src < 1:
            raise FileNotFoundError(f"{self.split_dirs[0] / 's1'}: source folder not found")
        self.records = [r for d in self.split_dirs for r in _read_split(d, mixture, self.n_src)]
        self._perm: tuple[int, np.ndarray] | None = None
        self._info: dict[str, tuple[int, int]] = {}
        log.info("LibriMix: %d mixtures from %s", len(self.records), ", ".join(map(str, self.split_dirs)))

    def __len__(self) -> int:
        return len(self.records)

    def items(self) -> Iterator[MixtureRecord]:
        """Every mixture, sorted by split then id."""
        yield from self.records

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.records)))
        return self._perm[1]

    def _frames_and_rate(self, path: str) -> tuple[int, int]:
        if path not in self._info:
            info = sf.info(path)
            self._info[path] = (info.frames, info.samplerate)
        return self._info[path]

    def item(self, epoch: int, index: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixture ``(length,)`` and sources ``(n_src, length)``, float32."""
        import torch

        rec = self.records[int(self._permutation(epoch)[index % len(self.records)])]
        rng = np.random.default_rng([self.seed, epoch, index])
        frames, file_sr = self._frames_and_rate(rec.mixture_path)
        need = length if file_sr == self.sample_rate else math.ceil(length * file_sr / self.sample_rate)
        start = int(rng.integers(0, frames - need + 1)) if frames > need else 0
        wavs = [_read_frames(p, start, need) for p in (rec.mixture_path, *rec.source_paths)]
        n = min(len(w) for w in wavs)
        stack = np.stack([w[:n] for w in wavs])  # (1 + n_src, n)
        if file_sr != self.sample_rate:
            from hubbub.pipeline.audio import resample

            stack = resample(stack, file_sr, self.sample_rate).numpy()
        out = np.zeros((stack.shape[0], length), dtype=np.float32)
        n = min(stack.shape[1], length)
        offset = int(rng.integers(0, length - n + 1)) if n < length else 0
        out[:, offset : offset + n] = stack[:, :n]
        return torch.from_numpy(out[0].copy()), torch.from_numpy(out[1:].copy())

    def batch(self, epoch: int, indices: Sequence[int], length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked mixtures ``(B, length)`` and sources ``(B, n_src, length)``."""
        import torch

        items = [self.item(epoch, i, length) for i in indices]
        return torch.stack([m for m, _ in items]), torch.stack([s for _, s in items])


def read_manifest(path: str | os.PathLike) -> list[MixtureItem]:
    """Items of a ``manifest.jsonl``; relative paths are resolved against the manifest's folder.

    One JSON object a line: ``{"id", "mixture", "sources": [...], "texts": [...] | null,
    "speakers": [...] | null, "sample_rate", "duration", "noise": path | null, "mix_clean": path}``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest not found")
    base = path.resolve().parent

    def resolve(p: str | None) -> str | None:
        return None if p is None else str(p if os.path.isabs(p) else base / p)

    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            texts, speakers = rec.get("texts"), rec.get("speakers")
            items.append(
                MixtureItem(
                    id=str(rec["id"]),
                    mixture=resolve(rec["mixture"]),
                    sources=tuple(resolve(p) for p in rec["sources"]),
                    texts=tuple(texts) if texts is not None else None,
                    speakers=tuple(str(s) for s in speakers) if speakers is not None else None,
                    sample_rate=rec.get("sample_rate"),
                    duration=rec.get("duration"),
                    noise=resolve(rec.get("noise")),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path}:{n}: bad manifest line ({type(err).__name__}: {err})") from None
    return items


def load_eval_set(
    path: str | os.PathLike,
    sample_rate: int = 8000,
    mode: str = "min",
    split: str = "test",
    mixture: str = "mix_clean",
) -> list[MixtureItem]:
    """An evaluation set from a ``manifest.jsonl``, a folder holding one, or a LibriMix-layout folder.

    For a LibriMix folder (root or split folder; ``sample_rate``/``mode``/``split``/``mixture`` pick the
    part) the texts are None and the speakers come from the ``<utt>_<utt>`` ids.
    """
    path = Path(path)
    if path.is_file():
        return read_manifest(path)
    if (path / MANIFEST).is_file():
        return read_manifest(path / MANIFEST)
    source = LibriMixSource(path, sample_rate=sample_rate, n_src=None, mode=mode, split=split, mixture=mixture)
    rate = source._frames_and_rate(source.records[0].mixture_path)[1]
    return [
        MixtureItem(r.id, r.mixture_path, r.source_paths, None, _speakers_from_id(r.id, source.n_src), rate, None,
                    r.noise_path)
        for r in source.items()
    ]


# --------------------------------------------------------------------------------------------- writing


def _csv_columns(mixtype: str, n_src: int) -> list[str]:
    """Columns of an official ``mixture_<split>_<mixtype>.csv``."""
    if mixtype == "mix_single":
        sources = ["source_1_path", "noise_path"]
    else:
        sources = [f"source_{k + 1}_path" for k in range(n_src)] + (["noise_path"] if mixtype == "mix_both" else [])
    return ["mixture_ID", "mixture_path", *sources, "length"]


def _write_mixture_csv(path: Path, columns: list[str], rows: list[dict], merge: bool = True) -> None:
    """Write (atomically) a mixture CSV; with ``merge``, rows already in the file are kept (new ones win)."""
    by_id: dict[str, dict] = {}
    if merge and path.is_file():
        with open(path, newline="", encoding="utf-8") as f:
            by_id = {r["mixture_ID"]: r for r in csv.DictReader(f)}
    by_id.update({r["mixture_ID"]: r for r in rows})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(by_id.values())
    write_text(path, buf.getvalue())


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


def _fit_lengths(wavs: list[np.ndarray], mode: str) -> list[np.ndarray]:
    """``min``: cut all to the shortest; ``max``: zero-pad all to the longest."""
    if mode == "min":
        n = min(len(w) for w in wavs)
        return [w[:n] for w in wavs]
    n = max(len(w) for w in wavs)
    return [np.pad(w, (0, n - len(w))) for w in wavs]


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


# ------------------------------------------------------------------------------ generation from metadata


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
        names = _split_names(split)
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


def _mixtures(sources: list[np.ndarray], noise: np.ndarray | None) -> dict[str, np.ndarray]:
    """``mix_clean`` (sum of sources), and with noise ``mix_both`` and ``mix_single`` (s1 + noise)."""
    out = {"mix_clean": np.sum(sources, axis=0)}
    if noise is not None:
        out["mix_both"] = out["mix_clean"] + noise
        out["mix_single"] = sources[0] + noise
    return out


def _csv_row(mixtype: str, mix_id: str, split_dir: Path, n_src: int, length: int) -> dict[str, object]:
    name = f"{mix_id}.wav"
    row: dict[str, object] = {"mixture_ID": mix_id, "mixture_path": str((split_dir / mixtype / name).resolve())}
    for k in range(1 if mixtype == "mix_single" else n_src):
        row[f"source_{k + 1}_path"] = str((split_dir / f"s{k + 1}" / name).resolve())
    if mixtype != "mix_clean":
        row["noise_path"] = str((split_dir / "noise" / name).resolve())
    row["length"] = length
    return row


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
        for row in tqdm(rows, desc=f"librimix {split}", unit="mix", disable=None):
            written += _generate_row(row, librispeech_dir, wham, out, split, sample_rates, modes, mixtypes,
                                     n_src, csv_rows)
        for (sr, mode, mixtype), entries in csv_rows.items():
            md = out / f"wav{sr // 1000}k" / mode / "metadata" / f"mixture_{split}_{mixtype}.csv"
            _write_mixture_csv(md, _csv_columns(mixtype, n_src), entries)
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
) -> int:
    """Write every file of one mixture (all rates and modes) unless all exist; 1 if anything was written."""
    name = f"{row.id}.wav"
    folders = [f"s{k + 1}" for k in range(n_src)] + (["noise"] if wham is not None else []) + mixtypes
    targets = {(sr, m): out / f"wav{sr // 1000}k" / m / split for sr in sample_rates for m in modes}
    todo = [k for k, d in targets.items() if not all((d / f / name).is_file() for f in folders)]
    wavs, rate = _read_row(row, librispeech_dir, wham) if todo else ([], SOURCE_RATE)
    for (sr, mode), split_dir in targets.items():
        if (sr, mode) in todo:
            fitted = _fit_lengths([_resample_np(w, rate, sr) for w in wavs], mode)
            sources, noise = fitted[:n_src], (fitted[n_src] if wham is not None else None)
            for k, src in enumerate(sources):
                write_audio(split_dir / f"s{k + 1}" / name, src, sr)
            if noise is not None:
                write_audio(split_dir / "noise" / name, noise, sr)
            for mixtype, mix in _mixtures(sources, noise).items():
                write_audio(split_dir / mixtype / name, mix, sr)
            length = len(sources[0])
        else:
            length = sf.info(str(split_dir / "mix_clean" / name)).frames
        for mixtype in mixtypes:
            csv_rows.setdefault((sr, mode, mixtype), []).append(_csv_row(mixtype, row.id, split_dir, n_src, length))
    return int(bool(todo))


# ------------------------------------------------------------------------------ test mixtures (data mix)


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
    from hubbub.recipes.data import rms_db

    levels = rng.uniform(*level_db, size=len(wavs))
    fitted = _fit_lengths(wavs, mode)
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
            for mixtype, mix in _mixtures(sources, noise).items():
                if mixtype in folders:
                    write_audio(split_dir / mixtype / name, mix, sample_rate)
            if noise is not None:
                write_audio(split_dir / "noise" / name, noise, sample_rate)
            length, written = len(sources[0]), written + 1
        for mixtype in csv_rows if noises else ["mix_clean"]:
            csv_rows[mixtype].append(_csv_row(mixtype, mix_id, split_dir, n_src, length))
        records.append(_manifest_record(out, split_dir, mix_id, chosen, bool(noises), sample_rate, length))
    md = out / f"wav{sample_rate // 1000}k" / mode / "metadata"
    for mixtype, rows in csv_rows.items():
        if rows:
            _write_mixture_csv(md / f"mixture_test_{mixtype}.csv", _csv_columns(mixtype, n_src), rows, merge=False)
    write_text(out / MANIFEST, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    untranscribed = sum(r["texts"] is None for r in records)
    if untranscribed:
        log.warning("%d mixtures have a source without a transcript (texts: null)", untranscribed)
    log.info("%s: %d mixtures (%d written, %d kept)", out / MANIFEST, len(records), written, len(records) - written)
    return read_manifest(out / MANIFEST)


def _manifest_record(
    out: Path, split_dir: Path, mix_id: str, chosen: tuple, noisy: bool, sample_rate: int, length: int
) -> dict:
    rel = split_dir.relative_to(out).as_posix()
    name = f"{mix_id}.wav"
    texts = [u.text for u in chosen]
    return {
        "id": mix_id,
        "mixture": f"{rel}/{'mix_both' if noisy else 'mix_clean'}/{name}",
        "sources": [f"{rel}/s{k + 1}/{name}" for k in range(len(chosen))],
        "speakers": [u.speaker for u in chosen],
        "texts": texts if all(t is not None for t in texts) else None,
        "sample_rate": sample_rate,
        "duration": round(length / sample_rate, 4),
        "noise": f"{rel}/noise/{name}" if noisy else None,
        "mix_clean": f"{rel}/mix_clean/{name}",
    }


# --------------------------------------------------------------------------------------------- command line


def build_parser(command: str) -> argparse.ArgumentParser:
    """The parser of ``hubbub data <command>`` (``mix`` or ``librimix``)."""
    if command == "librimix":
        p = argparse.ArgumentParser(prog="hubbub data librimix", description=generate_librimix.__doc__.split("\n")[0])
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
    p = argparse.ArgumentParser(prog="hubbub data mix", description=make_test_mixtures.__doc__.split("\n")[0])
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
    """``hubbub data mix|librimix ...``: ``argv[0]`` is the subcommand."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("mix", "librimix"):
        log.error("usage: hubbub data {mix,librimix} [--help]")
        return 2
    try:
        args = build_parser(argv[0]).parse_args(argv[1:])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        if argv[0] == "librimix":
            counts = generate_librimix(
                args.librispeech_dir, args.metadata_dir, args.out, wham_dir=args.wham_dir,
                sample_rates=args.sample_rate, modes=args.mode, n_src=args.n_src, splits=args.splits,
                skip_missing=args.skip_missing, no_noise=args.no_noise, limit=args.limit,
            )
            if not any(counts.values()):
                log.error("no mixture could be made (per split: %s)", counts)
                return 1
        else:
            make_test_mixtures(
                args.librispeech, args.out, n_src=args.n_src, n_mixtures=args.n_mixtures,
                sample_rate=args.sample_rate, mode=args.mode, seed=args.seed, noise_dir=args.noise_dir,
                snr_db=tuple(args.snr), hold_out=args.hold_out, held_out_only=args.held_out_only,
            )
    except (FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 1
    return 0
