"""Turning command-line inputs (files, folders, globs) into a list of files."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["AUDIO_EXTENSIONS", "InputList", "expand_inputs", "shard", "unique_stems"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


@dataclass
class InputList:
    """Files to process, plus the inputs that named nothing (with why)."""

    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def expand_inputs(inputs: list[str], extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> InputList:
    """Expand files, folders (recursively, by ``extensions``) and glob patterns.

    The result is de-duplicated by resolved path and keeps the order of first
    mention; folders are listed in sorted order.
    """
    exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
    result = InputList()
    seen: set[str] = set()

    def add(path: Path) -> None:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            result.files.append(path)

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in exts and not p.is_dir())
            if not found:
                result.problems.append(f"{item}: folder holds no {'/'.join(exts)} files")
            for p in found:
                add(p)
        elif path.exists() or path.is_symlink():
            add(path)
        elif glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            files = [m for m in matches if not m.is_dir() and m.suffix.lower() in exts]
            if not files:
                result.problems.append(f"{item}: pattern matches no audio files")
            for p in files:
                add(p)
        else:
            result.problems.append(f"{item}: no such file or directory")
    return result


def shard(files: list[Path], spec: str | None) -> list[Path]:
    """Keep shard ``I/N`` (1-based) of ``files``: every N-th file from the I-th."""
    if not spec:
        return files
    try:
        index, count = (int(x) for x in spec.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like I/N (e.g. 2/8), got {spec!r}") from None
    if not 1 <= index <= count:
        raise ValueError(f"--shard {spec}: I must be between 1 and N")
    return files[index - 1 :: count]


def unique_stems(files: list[Path]) -> list[str]:
    """Output names per file: the stem, made unique with ``-2``, ``-3``... when stems collide."""
    counts: dict[str, int] = {}
    names = []
    for f in files:
        stem = f.stem
        counts[stem] = counts.get(stem, 0) + 1
        names.append(stem if counts[stem] == 1 else f"{stem}-{counts[stem]}")
    return names
