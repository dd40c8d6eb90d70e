"""Copy the training voices as 8 kHz FLAC into a folder small enough to travel to a GPU machine.

Usage:
    python scripts/make_carry.py --src ../shared/data/LibriSpeech/train-clean-100 --out .carry/train-clean-100-8k
    # then, on the GPU machine (the folder is git-ignored and carried with the run):
    hubbub train separator --config hubbub/recipes/configs/separator-default.yaml --resume \
        --data-dir .carry/train-clean-100-8k --device cuda --batch-size 16 --max-minutes 9

Keeps the LibriSpeech layout (speaker/chapter/utt.flac and the .trans.txt files), so every
reader of the project reads the copy as it reads the original. ``--max-minutes-per-speaker``
caps the few speakers with hours of speech (the one-utterance speakers are what matters for
speaker variety), which keeps the copy around 30 MB.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

import soundfile as sf

log = logging.getLogger("make_carry")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", default="../shared/data/LibriSpeech/train-clean-100")
    p.add_argument("--out", default=".carry/train-clean-100-8k")
    p.add_argument("--sample-rate", type=int, default=8000)
    p.add_argument("--max-minutes-per-speaker", type=float, default=3.0)
    args = p.parse_args(argv)

    from hubbub.pipeline.audio import AudioError, load_audio
    from hubbub.recipes.data import read_librispeech

    src, out = Path(args.src), Path(args.out)
    used: dict[str, float] = {}
    written = 0
    for utt in read_librispeech(src):
        if used.get(utt.speaker, 0.0) >= args.max_minutes_per_speaker * 60:
            continue
        rel = Path(utt.path).relative_to(src).with_suffix(".flac")
        target = out / rel
        if not target.exists():
            try:
                wav, _ = load_audio(utt.path, sample_rate=args.sample_rate)
            except AudioError as err:
                log.warning("skipping %s", err)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            sf.write(target, wav.numpy(), args.sample_rate, subtype="PCM_16")
            written += 1
        used[utt.speaker] = used.get(utt.speaker, 0.0) + sf.info(str(target)).duration
    for trans in src.rglob("*.trans.txt"):
        dest = out / trans.relative_to(src)
        if dest.parent.is_dir():
            shutil.copyfile(trans, dest)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20
    log.info("%d files written, %d speakers, %.1f min, %.1f MiB in %s", written, len(used),
             sum(used.values()) / 60, size, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
