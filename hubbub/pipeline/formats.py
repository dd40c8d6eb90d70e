"""Transcript formats of ``hubbub transcribe -f txt,srt,vtt,tsv,json,rttm|all``.

The text formats follow Whisper's command line (``whisper/utils.py``): SRT
times ``HH:MM:SS,mmm`` with 1-based cue numbers, VTT after a ``WEBVTT`` line
with ``MM:SS.mmm`` times (hours only when needed), TSV with integer
milliseconds. Every line or cue is prefixed with its speaker, ``[spk1]: ``.
Cues are all speakers' segments in time order (:meth:`Result.segments`), so
they may overlap: that is two people talking at once. RTTM is NIST's
diarization format, one ``SPEAKER`` line per segment.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from hubbub.pipeline.result import Result
from hubbub.pipeline.writers import write_text

__all__ = ["FORMATS", "format_timestamp", "parse_formats", "render", "write_outputs"]

FORMATS = ("txt", "srt", "vtt", "tsv", "json", "rttm")

_NO_SPACE = re.compile(r"\s+")


def format_timestamp(seconds: float, always_include_hours: bool = False, decimal_marker: str = ".") -> str:
    """``seconds`` as ``[HH:]MM:SS<marker>mmm``, rounded to the millisecond (as Whisper's)."""
    milliseconds = round(seconds * 1000.0)
    if milliseconds < 0:
        raise ValueError(f"non-negative timestamp expected, got {seconds}")
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    secs, milliseconds = divmod(milliseconds, 1_000)
    hours_marker = f"{hours:02d}:" if always_include_hours or hours > 0 else ""
    return f"{hours_marker}{minutes:02d}:{secs:02d}{decimal_marker}{milliseconds:03d}"


def parse_formats(spec: str) -> list[str]:
    """``"all"`` or a comma list (``"srt,json"``) -> format names, in order, without repeats."""
    names = [n.strip().lower() for n in spec.split(",") if n.strip()]
    if not names:
        raise ValueError(f"no output format given; choose from {', '.join(FORMATS)} or all")
    if "all" in names:
        return list(FORMATS)
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise ValueError(f"unknown output format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)} or all")
    return list(dict.fromkeys(names))


def _cues(result: Result) -> list[tuple[float, float, str]]:
    """``(start, end, "[spk]: text")`` for every segment in time order; text on one line."""
    return [(seg.start, seg.end, f"[{spk}]: {' '.join(seg.text.split())}") for spk, seg in result.segments()]


def _txt(result: Result) -> str:
    return "".join(f"{text}\n" for _, _, text in _cues(result))


def _srt(result: Result) -> str:
    def ts(t: float) -> str:
        return format_timestamp(t, always_include_hours=True, decimal_marker=",")

    return "".join(
        f"{i}\n{ts(start)} --> {ts(end)}\n{text.replace('-->', '->')}\n\n"
        for i, (start, end, text) in enumerate(_cues(result), start=1)
    )


def _vtt(result: Result) -> str:
    cues = "".join(
        f"{format_timestamp(start)} --> {format_timestamp(end)}\n{text.replace('-->', '->')}\n\n"
        for start, end, text in _cues(result)
    )
    return "WEBVTT\n\n" + cues


def _tsv(result: Result) -> str:
    rows = "".join(
        f"{round(1000 * start)}\t{round(1000 * end)}\t{text.replace(chr(9), ' ')}\n"
        for start, end, text in _cues(result)
    )
    return "start\tend\ttext\n" + rows


def _json(result: Result, words: bool = False) -> str:
    return json.dumps(result.to_dict(words=words), indent=2, ensure_ascii=False) + "\n"


def _field(name: str) -> str:
    """An RTTM field: one token, no whitespace."""
    return _NO_SPACE.sub("_", name.strip()) or "<NA>"


def _rttm(result: Result, file_id: str | None = None) -> str:
    if file_id is None:
        file_id = Path(result.audio).stem if result.audio else "audio"
    fid = _field(file_id)
    return "".join(
        f"SPEAKER {fid} 1 {seg.start:.3f} {max(seg.end - seg.start, 0.0):.3f} <NA> <NA> {_field(spk)} <NA> <NA>\n"
        for spk, seg in result.segments()
    )


def render(result: Result, fmt: str, *, words: bool = False, file_id: str | None = None) -> str:
    """``result`` as the text of one format.

    ``words`` adds word timings to JSON; ``file_id`` names the recording in
    RTTM (default: the stem of ``result.audio``).
    """
    if fmt == "txt":
        return _txt(result)
    if fmt == "srt":
        return _srt(result)
    if fmt == "vtt":
        return _vtt(result)
    if fmt == "tsv":
        return _tsv(result)
    if fmt == "json":
        return _json(result, words=words)
    if fmt == "rttm":
        return _rttm(result, file_id=file_id)
    raise ValueError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}")


def write_outputs(
    result: Result, out_dir: str | os.PathLike, stem: str, formats: list[str] | tuple[str, ...], *, words: bool = False
) -> list[Path]:
    """Write ``out_dir/<stem>.<fmt>`` for each format, each file atomically; return the paths.

    A failure leaves the files already written in place and no partial file
    for the one that failed.
    """
    paths = []
    for fmt in formats:
        text = render(result, fmt, words=words, file_id=stem)
        paths.append(write_text(Path(out_dir) / f"{stem}.{fmt}", text))
    return paths
