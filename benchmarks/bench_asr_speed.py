"""Speed and peak memory of hubbub's default ASR against faster-whisper on the same files, in one run.

Usage:
    pip install -e ".[bench]"
    # 20 test-other utterances, greedy, 2 threads; each system in a fresh process (its own peak memory)
    python benchmarks/bench_asr_speed.py --data ../shared/data/LibriSpeech/test-other --limit 20 --threads 2 \
        --systems hubbub hubbub-fp32 hubbub-int8 fw-base-int8 --out docs/notes/runs/asr-speed-bench.md

Each system loads its model, decodes one warm-up utterance, then every file once; RTF = decoding
seconds / audio seconds (loading excluded), peak memory = the process's VmHWM at the end (model,
activations and the audio of one file). Systems are the names of ``bench_asr.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from _common import vm_hwm_mb, write_report

log = logging.getLogger("bench_asr_speed")


def measure(system: str, data: str, limit: int | None, threads: int, asr: str | None) -> dict:
    """Run in a child process: load ``system``, decode the files, report RTF and peak memory."""
    import torch
    from bench_asr import build_system, load_examples

    from hubbub.pipeline.audio import load_audio

    torch.set_num_threads(threads)
    examples = load_examples([data], limit)[data]
    t0 = time.perf_counter()
    model = build_system(system, asr, threads)
    load_s = time.perf_counter() - t0
    wavs = [load_audio(ex.audio, sample_rate=model.rate)[0].numpy() for ex in examples]
    model(wavs[0])  # warm-up
    seconds = audio = 0.0
    for wav in wavs:
        t = time.perf_counter()
        model(wav)
        seconds += time.perf_counter() - t
        audio += len(wav) / model.rate
    return {"system": system, "files": len(wavs), "audio_s": audio, "rtf": seconds / audio, "load_s": load_s,
            "peak_mb": vm_hwm_mb()}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a corpus as `hubbub evaluate asr` reads it")
    p.add_argument("--systems", nargs="+", default=["hubbub", "fw-base-int8"])
    p.add_argument("--asr", default=None, help="hubbub ASR (default: the default model)")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        sys.stdout.write(json.dumps(measure(args.child, args.data, args.limit, args.threads, args.asr)) + "\n")
        return 0
    rows = []
    for system in args.systems:
        cmd = [sys.executable, str(Path(__file__)), "--data", args.data, "--limit", str(args.limit), "--threads",
               str(args.threads), "--child", system] + (["--asr", args.asr] if args.asr else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            log.error("%s failed: %s", system, out.stderr.strip().splitlines()[-1:] or out.returncode)
            return 1
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        log.info("%s: RTF %.3f, peak %.0f MiB", system, rows[-1]["rtf"], rows[-1]["peak_mb"])
    cmdline = "python benchmarks/bench_asr_speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"`{cmdline}`", "", "| system | files | audio (s) | RTF | peak memory (MiB) | load (s) |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['system']} | {r['files']} | {r['audio_s']:.0f} | {r['rtf']:.3f} | {r['peak_mb']:.0f} | "
              f"{r['load_s']:.1f} |" for r in rows]
    write_report("\n".join(lines) + "\n", args.out, args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
