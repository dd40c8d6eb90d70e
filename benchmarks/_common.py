"""Helpers shared by the benchmark scripts (run as ``python benchmarks/<script>.py``, so this folder is on
``sys.path``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def vm_hwm_mb() -> float:
    """Peak resident memory of this process so far, MiB (VmHWM; ru_maxrss where /proc is missing)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_report(text: str, out: str | None = None, json_path: str | None = None, data=None) -> None:
    """Print a Markdown report, and write it (and ``data`` as JSON) where asked."""
    sys.stdout.write(text)
    if out:
        Path(out).write_text(text)
    if json_path:
        Path(json_path).write_text(json.dumps(data, indent=2))
