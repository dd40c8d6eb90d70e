"""Writing outputs atomically: a temporary file in the target folder, then a
rename, so an interrupted run never leaves a half-written file behind.

Temporaries are named ``.<name>.<random>.part`` beside their target. Those not
yet renamed are listed, so that a command stopped by a signal removes them
(:func:`remove_partial`), and a later run sweeps what a killed one left
(:func:`sweep_partial`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = [
    "atomic_dir",
    "atomic_path",
    "commit_dir",
    "pending_partial",
    "remove_partial",
    "sweep_partial",
    "temp_dir_for",
    "write_audio",
    "write_text",
]

#: temporaries made by this process and not yet renamed or removed
_partial: set[Path] = set()
_partial_lock = threading.Lock()
#: ``.<core>.<8 random>.part`` (mkstemp/mkdtemp names) or ``.<core>.old.<pid>``
_LEFTOVER = re.compile(r"\.(?P<core>.+)\.(?:[a-z0-9_]{8}\.part|(?P<old>old)\.\d+)")


def _track(path: Path) -> Path:
    with _partial_lock:
        _partial.add(path)
    return path


def _untrack(path: Path) -> None:
    with _partial_lock:
        _partial.discard(path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    _untrack(path)


def pending_partial() -> list[Path]:
    """The temporaries of this process not yet renamed or removed (a snapshot)."""
    with _partial_lock:
        return sorted(_partial)


def remove_partial(paths: list[Path] | None = None) -> list[Path]:
    """Remove temporaries of this process still waiting for their rename (all, or those of ``paths``)."""
    with _partial_lock:
        left = sorted(_partial if paths is None else _partial & {Path(p) for p in paths})
    for path in left:
        _remove(path)
    return left


def sweep_partial(out_dir: str | os.PathLike, names: list[str], suffixes: tuple[str, ...] = ()) -> list[Path]:
    """Remove what an interrupted run left in ``out_dir`` for outputs named ``names``.

    That is ``.<name>.<random>.part`` (a folder being filled), ``.<name>.<suffix>.<random>.part``
    (a file ``<name>.<suffix>`` being written) and ``.<name>.old.<pid>`` (a replaced folder);
    returns what was removed.
    """
    out_dir = Path(out_dir)
    if not names or not out_dir.is_dir():
        return []
    wanted = set(names)
    removed = []
    for entry in out_dir.iterdir():
        m = _LEFTOVER.fullmatch(entry.name)
        if not m or entry in _partial:
            continue
        core = m.group("core")
        head, _, suffix = core.rpartition(".")
        if core in wanted or (m.group("old") is None and head in wanted and suffix in suffixes):
            _remove(entry)
            removed.append(entry)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it to ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    tmp = _track(Path(tmp))
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        _untrack(tmp)
    except BaseException:
        _remove(tmp)
        raise


def temp_dir_for(path: str | os.PathLike) -> Path:
    """A new empty temporary folder beside ``path``, to fill and then :func:`commit_dir`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _track(Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")))


def commit_dir(tmp: Path, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Move the finished folder ``tmp`` to ``path`` (replacing it only when ``overwrite``)."""
    path = Path(path)
    os.chmod(tmp, 0o777 & ~_umask())
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path}: exists (use --overwrite)")
        old = _track(path.with_name(f".{path.name}.old.{os.getpid()}"))
        os.replace(path, old)
        os.replace(tmp, path)
        _untrack(tmp)
        _remove(old)
    else:
        os.replace(tmp, path)
        _untrack(tmp)


@contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False):
    """Yield a temporary folder beside ``path``; move it to ``path`` on success.

    An existing ``path`` is replaced only when ``overwrite`` is set.
    """
    tmp = temp_dir_for(path)
    try:
        yield tmp
        commit_dir(tmp, path, overwrite)
    except BaseException:
        _remove(tmp)
        raise


def write_audio(path: str | os.PathLike, wav, sample_rate: int, subtype: str = "PCM_16"):
    """Write mono ``(T,)`` audio (a tensor or an array) as WAV (16-bit by default), atomically."""
    data = wav.detach().cpu().numpy() if hasattr(wav, "detach") else np.asarray(wav)
    data = np.clip(data.astype(np.float32), -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, sample_rate, subtype=subtype, format="WAV")
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
