"""A LibriSpeech-layout folder of the speakers that the separator's recipes hold out of training (the 12 of
``hubbub.recipes.data.split_speakers``): conversations of voices the separator never heard, for tuning the
reading of conversations without test-other.

Usage:
    python benchmarks/heldout_speakers.py --librispeech ../shared/data/LibriSpeech/train-clean-100 \
        --out data/heldout-ls
    hubbub data conversation --librispeech data/heldout-ls --out data/heldout-conv2-16k --n-speakers 2 \
        --n-recordings 6 --turns 2 --overlap-ratios 0 10 20 --sample-rate 16000
    python benchmarks/bench_conversation.py --data data/heldout-conv2-16k --threads 1 \
        --systems whisper-reading --reading-config min_unread=0
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

log = logging.getLogger("heldout_speakers")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--librispeech", required=True, help="a LibriSpeech-layout training folder")
    p.add_argument("--out", required=True)
    p.add_argument("--n-held-out", type=int, default=12, help="as the separator recipes' validation speakers")
    args = p.parse_args(argv)
    from hubbub.recipes.data import read_librispeech, split_speakers

    root = Path(args.librispeech)
    _, held = split_speakers(read_librispeech(root), args.n_held_out)
    out = Path(args.out)
    for speaker in sorted({u.speaker for u in held}):
        shutil.copytree(root / speaker, out / speaker, dirs_exist_ok=True)
    log.info("%s: %d utterances of %d speakers", out, len(held), len({u.speaker for u in held}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
