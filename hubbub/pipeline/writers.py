"""Writing outputs atomically: a temporary file in the target folder, then a
rename, so an interrupted run never leaves a half-written file behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

__all__ = ["atomic_dir", "atomic_path", "commit_dir", "temp_dir_for", "write_audio", "write_text"]


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
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def temp_dir_for(path: str | os.PathLike) -> Path:
    """A new empty temporary folder beside ``path``, to fill and then :func:`commit_dir`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part"))


def commit_dir(tmp: Path, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Move the finished folder ``tmp`` to ``path`` (replacing it only when ``overwrite``)."""
    path = Path(path)
    os.chmod(tmp, 0o777 & ~_umask())
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path}: exists (use --overwrite)")
        old = path.with_name(f".{path.name}.old.{os.getpid()}")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


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
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_audio(path: str | os.PathLike, wav: torch.Tensor | np.ndarray, sample_rate: int, subtype: str = "PCM_16"):
    """Write mono ``(T,)`` audio as WAV (16-bit by default), atomically."""
    data = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
    data = np.clip(data.astype(np.float32), -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, sample_rate, subtype=subtype, format="WAV")
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
