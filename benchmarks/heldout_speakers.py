"""A LibriSpeech-layout folder of the speakers that the separator's recipes hold out of training (the 12 of
``hubbub.recipes.data.split_speakers`` per corpus): conversations of voices the separator never heard, for
tuning the reading of conversations without test-other.

From train-clean-100 the held-out speakers have one utterance each (2 turns per recording); from
speechocean762 each has about a minute of short sentences, joined here into utterances of ``--join`` seconds
or more (0.25 s of silence between sentences), so that a recording can hold many turns; its digit strings
are left out (Whisper writes them as numbers, which no normaliser reads back digit by digit).

Usage:
    python benchmarks/heldout_speakers.py --librispeech ../shared/data/LibriSpeech/train-clean-100 \
        --out data/heldout-ls
    hubbub data conversation --librispeech data/heldout-ls --out data/heldout-conv2-16k --n-speakers 2 \
        --n-recordings 6 --turns 2 --overlap-ratios 0 10 20 --sample-rate 16000

    python benchmarks/heldout_speakers.py --speechocean762 ../shared/data/speechocean762 --out data/heldout-so
    hubbub data conversation --librispeech data/heldout-so --out data/heldout-so-conv2-16k --n-speakers 2 \
        --n-recordings 4 --sample-rate 16000

    python benchmarks/bench_conversation.py --data data/heldout-so-conv2-16k --threads 2 \
        --systems whisper-reading asr-alone
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

log = logging.getLogger("heldout_speakers")

SAMPLE_RATE = 16000
PAUSE_S = 0.25
DIGITS = {"ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"}


def _joined(utts, join_s: float):
    """Consecutive utterances of one speaker (id order) joined into runs of ``join_s`` seconds or more:
    ``[(audio, text)]``."""
    import numpy as np

    from hubbub.pipeline.audio import AudioError, load_audio

    runs, wavs, texts = [], [], []
    pause = np.zeros(int(PAUSE_S * SAMPLE_RATE), dtype=np.float32)
    for u in utts:
        if not set((u.text or "").split()) - DIGITS:
            continue
        try:
            wav = load_audio(u.path, sample_rate=SAMPLE_RATE)[0].numpy()
        except AudioError as err:
            log.warning("skipping %s", err)
            continue
        wavs += [wav, pause]
        texts.append((u.text or "").strip())
        if sum(len(w) for w in wavs) >= join_s * SAMPLE_RATE:
            runs.append((np.concatenate(wavs[:-1]), " ".join(t for t in texts if t)))
            wavs, texts = [], []
    if wavs and sum(len(w) for w in wavs) >= 0.5 * join_s * SAMPLE_RATE:
        runs.append((np.concatenate(wavs[:-1]), " ".join(t for t in texts if t)))
    return runs


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--librispeech", help="a LibriSpeech-layout training folder")
    src.add_argument("--speechocean762", help="a speechocean762-layout folder")
    p.add_argument("--out", required=True)
    p.add_argument("--n-held-out", type=int, default=12, help="as the separator recipes' validation speakers")
    p.add_argument("--join", type=float, default=8.0, help="speechocean762: seconds per joined utterance")
    args = p.parse_args(argv)
    from hubbub.recipes.data import read_librispeech, read_speechocean762, split_speakers

    out = Path(args.out)
    if args.librispeech:
        root = Path(args.librispeech)
        _, held = split_speakers(read_librispeech(root), args.n_held_out)
        for speaker in sorted({u.speaker for u in held}):
            shutil.copytree(root / speaker, out / speaker, dirs_exist_ok=True)
        log.info("%s: %d utterances of %d speakers", out, len(held), len({u.speaker for u in held}))
        return 0
    import soundfile as sf

    _, held = split_speakers(read_speechocean762(args.speechocean762), args.n_held_out)
    n = 0
    for speaker in sorted({u.speaker for u in held}):
        spk = speaker.removeprefix("so").lstrip("0") or "0"
        folder = out / spk / "1"
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for i, (wav, text) in enumerate(_joined([u for u in held if u.speaker == speaker], args.join)):
            utt = f"{spk}-1-{i:04d}"
            sf.write(folder / f"{utt}.flac", wav, SAMPLE_RATE)
            lines.append(f"{utt} {text}")
        (folder / f"{spk}-1.trans.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        n += len(lines)
    log.info("%s: %d joined utterances of %d speakers", out, n, len({u.speaker for u in held}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
