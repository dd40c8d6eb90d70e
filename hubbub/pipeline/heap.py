"""Keeping the C heap steady while decoding long recordings (glibc only; nothing elsewhere)."""

from __future__ import annotations

import os

__all__ = ["MMAP_THRESHOLD", "steady_heap", "trim_heap"]


def trim_heap() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``; nothing elsewhere).

    Decoder batches of ever different shapes leave freed blocks scattered through the
    heap; glibc keeps them (its mmap threshold rises with the largest block freed), so
    the resident memory of an hour-long recording grew by a gigabyte from its first
    minute to its last although hubbub held no more. Trimming after each batch, with
    :func:`steady_heap`, keeps it nearly flat (docs/notes/benchmarks-history.md, one-hour run).
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


#: glibc's mallopt parameter for the mmap threshold, and hubbub's setting of it (see :func:`steady_heap`)
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 << 20


def steady_heap() -> None:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD` (once per process; nothing elsewhere).

    By default glibc raises the threshold to the size of each large block freed (up to 32 MiB),
    so that decoder tensors of every size up to that come from a heap that fragments and grows
    with the length of a recording. Blocks of 4 MiB and more are then always mapped anew and
    given back when freed. Set from :meth:`Pipeline.transcribe_many`, i.e. by every entry point;
    ``MALLOC_MMAP_THRESHOLD_`` in the environment takes precedence.
    """
    global _HEAP_SET
    if _LIBC is None or _HEAP_SET or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    _LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    _HEAP_SET = True


_HEAP_SET = False


def _load_libc():
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        return libc
    except (OSError, AttributeError):  # not glibc (macOS, musl without it, Windows)
        return None


_LIBC = _load_libc()
