"""Prepare the separator's voice pool once: every utterance of the named corpora decoded, resampled and
written as 16-bit FLAC at the training rate, with one ``voices.tsv`` per corpus, so that a training
machine (a GPU node) reads small files without decoding Opus or resampling on the fly.

Usage:
    # the pool of separator-pool.yaml from ../shared/data (62 s on 2 busy cores, 239 MB)
    hubbub data voices --out data/voices-8k \
        --corpus librispeech:../shared/data/LibriSpeech/train-clean-100 \
        --corpus speechocean762:../shared/data/speechocean762

    # then train on it, on a CUDA device, within a wall-clock budget
    hubbub train separator --config hubbub/recipes/configs/separator-gpu.yaml --device cuda --max-minutes 60

Layout::

    <out>/<kind>/<speaker>/<utt_id>.flac     mono, --sample-rate (default 8000)
    <out>/<kind>/voices.tsv                  id<TAB>speaker<TAB>path (relative)<TAB>text

``voice_corpora: [prepared:<out>/librispeech, prepared:<out>/speechocean762]`` names them in a recipe
(:func:`hubbub.recipes.data.read_prepared`); each keeps its speakers and its validation split. A rerun
skips the files already written (resumable) and rewrites the tables.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

__all__ = ["build_parser", "main", "prepare"]

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hubbub data voices", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", action="append", required=True, metavar="KIND:PATH",
                   help="a voice corpus (librispeech:DIR or speechocean762:DIR); repeat for several")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--sample-rate", type=int, default=8000, help="the training rate (default: 8000)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    return p


def _write(job: tuple[str, str, int]) -> tuple[str, str] | None:
    """Decode, resample and write one utterance; returns ``(source, problem)``, or None."""
    import soundfile as sf
    import torch

    from hubbub.pipeline.audio import AudioError, load_audio, resample

    src, dst, rate = job
    if Path(dst).is_file():
        return None
    torch.set_num_threads(1)
    try:
        wav, sr = load_audio(src)
        wav = resample(wav, sr, rate).clamp(-1.0, 1.0)
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        part = dst + ".part"
        sf.write(part, wav.numpy(), rate, subtype="PCM_16", format="FLAC")
        os.replace(part, dst)
    except (AudioError, OSError, RuntimeError, ValueError) as err:
        return src, str(err)
    return None


def prepare(corpora: list[str], out: str | os.PathLike, sample_rate: int = 8000, jobs: int = 1) -> dict[str, int]:
    """Write each ``kind:path`` corpus under ``out/<kind>``; returns the utterances written per kind."""
    from hubbub.recipes.data import read_voices

    out = Path(out)
    counts = {}
    for spec in corpora:
        kind, sep, root = spec.partition(":")
        if not sep:
            raise ValueError(f"{spec!r}: expected KIND:PATH")
        utts = read_voices(kind, root)
        folder = out / kind
        rows, todo = [], []
        for u in utts:
            rel = f"{u.speaker}/{u.id}.flac"
            rows.append((u, rel))
            todo.append((u.path, str(folder / rel), sample_rate))
        with ProcessPoolExecutor(max(1, jobs)) as pool:
            errors = [e for e in pool.map(_write, todo, chunksize=16) if e]
        for src, problem in errors:
            log.error("%s: %s", src, problem)
        bad = {src for src, _ in errors}
        table = folder / "voices.tsv"
        with open(str(table) + ".part", "w", encoding="utf-8") as f:
            for u, rel in rows:
                if u.path not in bad:
                    text = (u.text or "").replace("\t", " ").replace("\n", " ")
                    f.write(f"{u.id}\t{u.speaker}\t{rel}\t{text}\n")
        os.replace(str(table) + ".part", table)
        counts[kind] = len(rows) - len(bad)
        log.info("%s: %d utterances of %d speakers in %s", kind, counts[kind], len({u.speaker for u in utts}),
                 folder)
    return counts


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        prepare(args.corpus, args.out, args.sample_rate, args.jobs)
    except (FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 1
    return 0
