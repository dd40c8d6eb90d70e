"""Read LibriMix: training crops and evaluation sets from a LibriMix-layout folder (see
:mod:`hubbub.recipes.librimix_layout`), by split, mode and mixture type.

Usage (Python)::

    from hubbub.recipes.librimix_reader import LibriMixSource, load_eval_set

    train = LibriMixSource("/data/Libri2Mix", split="train-360", mode="min", mixture="mix_clean")
    mix, sources = train.batch(epoch=0, indices=[0, 1, 2, 3], length=32000)  # (4, T), (4, 2, T)
    dev = LibriMixSource("/data/Libri2Mix", split="dev", mixture="mix_both")
    mix, sources = dev.read(0)                                               # whole mixture 0
    test = load_eval_set("/data/Libri2Mix", split="test", mode="min", mixture="mix_both")
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from hubbub.recipes.librimix_layout import MIXTURE_TYPES, speakers_from_id, split_names
from hubbub.recipes.manifest import MANIFEST, MixtureItem, read_manifest

__all__ = ["LibriMixSource", "MixtureRecord", "librimix_eval_set", "load_eval_set"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MixtureRecord:
    """One mixture of a LibriMix-layout folder: absolute paths of its files."""

    id: str
    mixture_path: str
    source_paths: tuple[str, ...]
    noise_path: str | None = None


def _count_sources(split_dir: Path) -> int:
    n = 0
    while (split_dir / f"s{n + 1}").is_dir():
        n += 1
    return n


def _wav_names(folder: Path) -> set[str]:
    return {e.name for e in os.scandir(folder) if e.name.endswith(".wav") and not e.name.startswith(".")}


def _find_split_dirs(
    root: Path, sample_rate: int, mode: str, split: str | Sequence[str], mixture: str, n_src: int | None
) -> list[Path]:
    """The ``<split>`` folders of ``root`` (a LibriMix root, a ``wav*/<mode>`` folder or a split folder).

    Every split named is needed, except that ``train`` stands for whichever of train-100 and train-360
    exist."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: LibriMix folder not found")
    if (root / mixture).is_dir() or (root / "s1").is_dir():
        if not (root / mixture).is_dir():
            raise FileNotFoundError(f"{root / mixture}: mixture folder not found")
        return [root]
    splits = [split] if isinstance(split, str) else list(split)
    names = [n for s in splits for n in split_names(s)]
    required = {n for s in splits if s != "train" for n in split_names(s)}
    split = "+".join(splits)
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
        lacking = [mode_dir / s for s in names if s in required and not (mode_dir / s).is_dir()]
        if lacking:
            raise FileNotFoundError(f"{lacking[0]}: LibriMix split folder not found")
        if mode_dir in others:
            log.info("no %s; reading %s and resampling to %d Hz", wanted, mode_dir, sample_rate)
        for d in found:
            if not (d / mixture).is_dir():
                raise FileNotFoundError(f"{d / mixture}: mixture folder not found")
        return found
    tried = ", ".join(str(c / names[0]) for c in candidates)
    raise FileNotFoundError(f"{root}: no LibriMix {split!r} split found (looked for {tried})")


def _read_split(split_dir: Path, mixture: str, n_src: int) -> list[MixtureRecord]:
    """Records of one split folder, sorted by id; ids missing a source are dropped with a warning.
    ``mix_single`` mixtures (s1 + noise) have one source, s1, whatever ``n_src``."""
    src_dirs = [split_dir / f"s{k + 1}" for k in range(1 if mixture == "mix_single" else n_src)]
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
        split: ``train-100``, ``train-360``, ``dev`` or ``test``, or a list of them (each must exist);
            ``train`` is train-100 and/or train-360, whichever exist; ignored when ``root`` is a split folder.
        mixture: ``mix_clean``, ``mix_both`` (the targets are ``s1..sN``) or ``mix_single`` (speech
            enhancement: the target is ``s1``, and ``n_src`` is 1).
        seed: base seed of the permutations and crops.
        hold_out: leave the last ``hold_out`` mixtures (in id order) out of this source ...
        held_out: ... or keep only them (a stand-in validation set when ``dev`` is not there).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        sample_rate: int = 8000,
        n_src: int | None = 2,
        mode: str = "min",
        split: str | Sequence[str] = "train",
        mixture: str = "mix_clean",
        seed: int = 0,
        hold_out: int = 0,
        held_out: bool = False,
    ) -> None:
        if mixture not in MIXTURE_TYPES:
            raise ValueError(f"unknown mixture type {mixture!r}; choose from {MIXTURE_TYPES}")
        self.sample_rate = sample_rate
        self.mode = mode
        self.mixture = mixture
        self.seed = seed
        self.split_dirs = _find_split_dirs(Path(root), sample_rate, mode, split, mixture, n_src)
        self.n_src = 1 if mixture == "mix_single" else n_src or _count_sources(self.split_dirs[0])
        if n_src and self.n_src != n_src:
            raise ValueError(f"{mixture} has one source (s1 + noise: speech enhancement), not {n_src}")
        if self.n_src < 1:
            raise FileNotFoundError(f"{self.split_dirs[0] / 's1'}: source folder not found")
        records = [r for d in self.split_dirs for r in _read_split(d, mixture, self.n_src)]
        if hold_out:
            if not 0 < hold_out < len(records):
                raise ValueError(f"cannot hold out {hold_out} of {len(records)} mixtures")
            records = records[-hold_out:] if held_out else records[:-hold_out]
        self.records = records
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
        items = [self.item(epoch, i, length) for i in indices]
        return torch.stack([m for m, _ in items]), torch.stack([s for _, s in items])

    def read(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole of mixture ``records[index]``: ``(T,)`` and sources ``(n_src, T)``, float32."""
        rec = self.records[index]
        wavs = [sf.read(p, dtype="float32", always_2d=True)[0][:, 0] for p in (rec.mixture_path, *rec.source_paths)]
        n = min(len(w) for w in wavs)
        stack = torch.from_numpy(np.stack([w[:n] for w in wavs]))
        file_sr = self._frames_and_rate(rec.mixture_path)[1]
        if file_sr != self.sample_rate:
            from hubbub.pipeline.audio import resample

            stack = resample(stack, file_sr, self.sample_rate)
        return stack[0], stack[1:]


def load_eval_set(path: str | os.PathLike, **part) -> list[MixtureItem]:
    """An evaluation set from a ``manifest.jsonl``, a folder holding one, or a LibriMix-layout folder
    (``part``: the keywords of :func:`librimix_eval_set`)."""
    path = Path(path)
    if path.is_file():
        return read_manifest(path)
    if (path / MANIFEST).is_file():
        return read_manifest(path / MANIFEST)
    return librimix_eval_set(path, **part)


def librimix_eval_set(
    root: str | os.PathLike,
    sample_rate: int = 8000,
    mode: str = "min",
    split: str = "test",
    mixture: str = "mix_clean",
    n_src: int | None = None,
) -> list[MixtureItem]:
    """The mixtures of one part of a LibriMix-layout folder (a root, ``Libri<n>Mix`` under it with
    ``n_src``, a ``wav8k/min`` folder or a split folder): ``wav<sample_rate/1000>k/<mode>/<split>/<mixture>``
    (another rate's folder when that one is absent). Texts are None; speakers come from the
    ``<utt>_<utt>`` ids."""
    source = LibriMixSource(root, sample_rate=sample_rate, n_src=n_src, mode=mode, split=split, mixture=mixture)
    rate = source._frames_and_rate(source.records[0].mixture_path)[1]
    return [
        MixtureItem(r.id, r.mixture_path, r.source_paths, None, speakers_from_id(r.id, source.n_src), rate, None,
                    r.noise_path)
        for r in source.items()
    ]

