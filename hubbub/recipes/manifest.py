"""``manifest.jsonl``: the evaluation-set format written by ``hubbub data mix``, and its one reader.

One JSON object a line: ``{"id", "mixture", "sources": [...], "texts": [...] | null,
"speakers": [...] | null, "sample_rate", "duration", "noise": path | null, "mix_clean": path}``.
Paths are relative to the manifest's folder, so the set can be moved; absolute paths are read too.
SpeechBrain's separation manifests (``{"mix", "s1", "s2", ...}``, paths under a data root of theirs)
are read as well: a path that is not there is looked for by its file name's stem beside the manifest.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MANIFEST", "MixtureItem", "find_audio", "manifest_record", "read_manifest"]

MANIFEST = "manifest.jsonl"


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


def read_manifest(path: str | os.PathLike) -> list[MixtureItem]:
    """Items of a ``manifest.jsonl``; relative paths are resolved against the manifest's folder."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest not found")
    base = path.resolve().parent

    def resolve(p: str | None) -> str | None:
        if p is None:
            return None
        full = Path(p if os.path.isabs(p) else base / p)
        return str(full if full.is_file() else _by_stem(full, base) or full)

    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if "mixture" not in rec and "mix" in rec:  # SpeechBrain-style {"mix", "s1", "s2", ...}
                rec = {"id": rec.get("id", Path(rec["mix"]).stem or str(n)), "mixture": rec["mix"],
                       "sources": [rec[k] for k in sorted((k for k in rec if k[:1] == "s" and k[1:].isdigit()),
                                                          key=lambda k: int(k[1:]))]}
            texts, speakers = rec.get("texts"), rec.get("speakers")
            items.append(
                MixtureItem(
                    id=str(rec.get("id") or Path(rec["mixture"]).stem or n),
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


def _by_stem(path: Path, base: Path) -> Path | None:
    """An audio file named like ``path`` (any extension) under ``base``, or None."""
    from hubbub.pipeline.inputs import AUDIO_EXTENSIONS

    for candidate in sorted(base.rglob(path.stem + ".*")):
        if candidate.suffix.lower() in AUDIO_EXTENSIONS:
            return candidate
    return None


def find_audio(path: str, base: Path) -> Path:
    """A manifest's audio path: as written, relative to the manifest's folder ``base``, or by its
    stem under ``base`` (any audio extension); FileNotFoundError when none is there."""
    for candidate in (Path(path), base / path):
        if candidate.is_file():
            return candidate
    found = _by_stem(Path(path), base)
    if found is None:
        raise FileNotFoundError(f"{path}: not found (also looked under {base})")
    return found


def manifest_record(
    out: Path, split_dir: Path, mix_id: str, chosen: tuple, noisy: bool, sample_rate: int, length: int
) -> dict:
    """The manifest line of mixture ``mix_id`` of ``split_dir`` (paths relative to ``out``); ``chosen``
    holds its source utterances (``.speaker``, ``.text``)."""
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
