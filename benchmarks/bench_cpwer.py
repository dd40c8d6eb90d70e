"""cpWER of separate-then-transcribe on overlapped two-speaker mixtures, beside its baselines, in one run.

Usage:
    # full-length ("max") mixtures of test-other speakers at 8 and 16 kHz (references are whole utterances)
    hubbub data mix --librispeech ../shared/data/LibriSpeech/test-other --out data/test-other-2mix-max-8k \
        --n-mixtures 100 --sample-rate 8000 --mode max --seed 0
    hubbub data mix --librispeech ../shared/data/LibriSpeech/test-other --out data/test-other-2mix-max-16k \
        --n-mixtures 100 --sample-rate 16000 --mode max --seed 0
    python benchmarks/bench_cpwer.py --data data/test-other-2mix-max-8k data/test-other-2mix-max-16k \
        --threads 2 --out docs/notes/runs/cpwer-bench.md --json benchmarks/results/cpwer.json

Systems, each scored with cpWER (``hubbub.pipeline.metrics.cpwer``: every speaker's words concatenated
in time order, the speaker permutation with fewest errors):

* ``hubbub``: ``Pipeline.from_pretrained()`` on the mixture, what ``hubbub transcribe`` does;
* ``unseparated``: the same ASR on the mixture as one voice (``speakers=1``);
* ``oracle``: the same ASR on each true source (``speakers=1``), the ceiling separation could reach;
* ``whisper``: faster-whisper (``--whisper``, default Whisper base, int8) on the mixture, one stream;
* ``sep-whisper``: hubbub's separator, then faster-whisper on each separated voice;
* ``whisper-oracle``: faster-whisper on each true source, that ASR's ceiling.

The manifest's ``texts`` are the references (``hubbub data mix`` writes them).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import write_report
from bench_asr import FasterWhisper

log = logging.getLogger("bench_cpwer")


def load_set(folder: str, limit: int | None) -> list[dict]:
    base = Path(folder)
    manifest = base / "manifest.jsonl" if base.is_dir() else base
    records = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()][:limit]
    for rec in records:
        if "texts" not in rec:
            raise SystemExit(f"{manifest}: records need 'texts' (write the set with `hubbub data mix`)")
        rec["mixture"] = str(manifest.parent / rec["mixture"])
        rec["sources"] = [str(manifest.parent / s) for s in rec["sources"]]
    return records


def whisper_text(whisper, wav: torch.Tensor) -> list[str]:
    """faster-whisper's transcript of a 16 kHz mono waveform, greedy as in the ASR benchmark."""
    return [whisper(wav.numpy().astype(np.float32))]


def run_set(name: str, records: list[dict], systems: list[str], pipe, whisper) -> dict:
    from hubbub.pipeline.audio import load_audio, resample
    from hubbub.pipeline.metrics import cpwer

    out = {}
    for system in systems:
        errors = words = 0
        seconds = audio = 0.0
        for rec in records:
            t0 = time.perf_counter()
            if system == "hubbub":
                result = pipe(rec["mixture"])
                hyps = [[seg.text for seg in spk.segments] for spk in result.speakers]
            elif system == "unseparated":
                hyps = [[seg.text for seg in pipe(rec["mixture"], speakers=1).speakers[0].segments]]
            elif system == "oracle":
                hyps = [[seg.text for seg in pipe(src, speakers=1).speakers[0].segments] for src in rec["sources"]]
            elif system == "whisper":
                hyps = [whisper_text(whisper, load_audio(rec["mixture"], sample_rate=16000)[0])]
            elif system == "sep-whisper":
                sep = pipe.separate_file(rec["mixture"])
                hyps = [whisper_text(whisper, resample(v, sep.sample_rate, 16000)) for v in sep.sources]
            elif system == "whisper-oracle":
                hyps = [whisper_text(whisper, load_audio(src, sample_rate=16000)[0]) for src in rec["sources"]]
            else:
                raise SystemExit(f"unknown system {system!r}")
            seconds += time.perf_counter() - t0
            audio += rec["duration"]
            score = cpwer(rec["texts"], hyps)
            errors += score.errors
            words += score.ref_words
        out[system] = {"cpwer": errors / max(words, 1), "errors": errors, "words": words,
                       "rtf": seconds / audio if audio else float("nan"), "audio_s": audio, "mixtures": len(records)}
        log.info("%s / %s: cpWER %.1f%% (%d/%d), RTF %.3f", name, system, 100 * out[system]["cpwer"], errors, words,
                 out[system]["rtf"])
    return out


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", required=True, help="`hubbub data mix` folders (or their manifest.jsonl)")
    p.add_argument("--separator", default=None, help="separator folder (default: the embedded model)")
    p.add_argument("--asr", default=None, help="ASR folder (default: the embedded model)")
    p.add_argument("--systems", nargs="+", default=["hubbub", "unseparated", "oracle", "whisper"])
    p.add_argument("--whisper", default="whisper-base", help="faster-whisper's weights: whisper-base, whisper-tiny.en")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="first N mixtures of each set")
    p.add_argument("--out", default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from hubbub.pipeline import Pipeline

    pipe = Pipeline.from_pretrained(separator=args.separator, asr=args.asr)
    if pipe.asr is None:
        log.error("no ASR model: pass --asr or embed one")
        return 2
    wants_whisper = any("whisper" in s for s in args.systems)
    whisper = FasterWhisper(args.whisper, "int8", args.threads) if wants_whisper else None  # the ASR benchmark's
    results = {d: run_set(d, load_set(d, args.limit), args.systems, pipe, whisper) for d in args.data}
    cmd = "python benchmarks/bench_cpwer.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"`{cmd}` ({args.threads} threads)", "",
             "| mixtures | " + " | ".join(f"{s} cpWER | {s} RTF" for s in args.systems) + " |",
             "|---" * (1 + 2 * len(args.systems)) + "|"]
    for d, res in results.items():
        n = next(iter(res.values()))["mixtures"]
        lines.append(f"| {d} ({n}) | " + " | ".join(
            f"{100 * res[s]['cpwer']:.1f}% | {res[s]['rtf']:.3f}" for s in args.systems) + " |")
    write_report("\n".join(lines) + "\n", args.out, args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
