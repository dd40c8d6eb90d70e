"""The LibriMix folder layout and its mixture CSVs: what the reader, the generator and ``data mix`` share.

Layout (as written by the official JorisCos/LibriMix scripts; ``<split>`` is train-100, train-360, dev or test)::

    <root>/wav8k|wav16k/min|max/<split>/{mix_clean,mix_both,mix_single,s1,s2,s3,noise}/<mixture_ID>.wav
    <root>/wav8k|wav16k/min|max/metadata/mixture_<split>_<mix_clean|mix_both|mix_single>.csv

The metadata CSVs hold absolute paths, like the official ones (so third-party LibriMix loaders read them);
the reader finds files by the layout alone (the CSVs are not needed to read). Audio is written as 16-bit
PCM WAV (soundfile's default, as the official generator does).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from hubbub.pipeline.writers import write_text

__all__ = [
    "MIXTURE_TYPES",
    "SOURCE_RATE",
    "SPLITS",
    "csv_columns",
    "csv_row",
    "fit_lengths",
    "mix_sources",
    "speakers_from_id",
    "split_names",
    "write_mixture_csv",
]

#: LibriMix split folder -> LibriSpeech subset named in the official metadata file names
SPLITS = {"train-100": "train-clean-100", "train-360": "train-clean-360", "dev": "dev-clean", "test": "test-clean"}
MIXTURE_TYPES = ("mix_clean", "mix_both", "mix_single")
#: rate of LibriSpeech and WHAM! (the official generator assumes it)
SOURCE_RATE = 16000


def split_names(split: str) -> list[str]:
    """Folder names a split name stands for (``train`` -> train-100 and train-360; ``test-clean`` -> test)."""
    aliases = {v: k for k, v in SPLITS.items()}
    split = aliases.get(split, split)
    if split == "train":
        return ["train-100", "train-360"]
    if split not in SPLITS:
        raise ValueError(f"unknown LibriMix split {split!r}; choose from train, {', '.join(SPLITS)}")
    return [split]


def speakers_from_id(mix_id: str, n_src: int) -> tuple[str, ...] | None:
    """``<spk>-<chapter>-<utt>_<spk>-...`` -> speaker ids, or None when the id has another form."""
    parts = mix_id.split("_")
    if len(parts) != n_src or not all(p.count("-") == 2 for p in parts):
        return None
    return tuple(p.split("-")[0] for p in parts)


def csv_columns(mixtype: str, n_src: int) -> list[str]:
    """Columns of an official ``mixture_<split>_<mixtype>.csv``."""
    if mixtype == "mix_single":
        sources = ["source_1_path", "noise_path"]
    else:
        sources = [f"source_{k + 1}_path" for k in range(n_src)] + (["noise_path"] if mixtype == "mix_both" else [])
    return ["mixture_ID", "mixture_path", *sources, "length"]


def csv_row(mixtype: str, mix_id: str, split_dir: Path, n_src: int, length: int) -> dict[str, object]:
    """One row of a ``mixture_<split>_<mixtype>.csv`` (absolute paths)."""
    name = f"{mix_id}.wav"
    row: dict[str, object] = {"mixture_ID": mix_id, "mixture_path": str((split_dir / mixtype / name).resolve())}
    for k in range(1 if mixtype == "mix_single" else n_src):
        row[f"source_{k + 1}_path"] = str((split_dir / f"s{k + 1}" / name).resolve())
    if mixtype != "mix_clean":
        row["noise_path"] = str((split_dir / "noise" / name).resolve())
    row["length"] = length
    return row


def write_mixture_csv(path: Path, columns: list[str], rows: list[dict], merge: bool = True) -> None:
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


def fit_lengths(wavs: list[np.ndarray], mode: str) -> list[np.ndarray]:
    """``min``: cut all to the shortest; ``max``: zero-pad all to the longest."""
    if mode == "min":
        n = min(len(w) for w in wavs)
        return [w[:n] for w in wavs]
    n = max(len(w) for w in wavs)
    return [np.pad(w, (0, n - len(w))) for w in wavs]


def mix_sources(sources: list[np.ndarray], noise: np.ndarray | None) -> dict[str, np.ndarray]:
    """``mix_clean`` (sum of sources), and with noise ``mix_both`` and ``mix_single`` (s1 + noise)."""
    out = {"mix_clean": np.sum(sources, axis=0)}
    if noise is not None:
        out["mix_both"] = out["mix_clean"] + noise
        out["mix_single"] = sources[0] + noise
    return out
