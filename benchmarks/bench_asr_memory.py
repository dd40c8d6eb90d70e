"""Memory and time of the ASR encoder on one long single-speaker recording, global against local attention.

Usage:
    python benchmarks/bench_asr_memory.py --minutes 1 2 5 10 --window 64 --threads 2 \
        --out docs/notes/runs/asr-memory-bench.md

The recording is LibriSpeech test-other utterances (``--data``; the bundled TTS examples without it)
concatenated to the length asked, at the model's rate. Each (length, attention) pair runs in a fresh
process: the embedded ASR (or ``--asr``) encodes the whole recording in one pass (filterbank, 2D attention,
transformer encoder) and CTC-greedy-decodes it; the process reports its peak resident memory (VmHWM).
``local`` switches the same weights to a ``--window``-frame band (``load_asr(..., window="local:W")``).
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

log = logging.getLogger("bench_asr_memory")
ROOT = Path(__file__).resolve().parents[1]


def recording(minutes: float, sample_rate: int, data: Path):
    """``minutes`` of concatenated utterances as a float32 tensor."""
    import torch

    from hubbub.pipeline.audio import load_audio

    files = sorted(data.rglob("*.flac")) if data.is_dir() else []
    files = files or sorted((ROOT / "hubbub" / "demo" / "examples").glob("*.flac"))
    need, pieces, have, i = int(minutes * 60 * sample_rate), [], 0, 0
    while have < need:
        wav, _ = load_audio(files[i % len(files)], sample_rate=sample_rate)
        pieces.append(wav[: need - have])
        have += pieces[-1].shape[-1]
        i += 1
    return torch.cat(pieces)


def child(args: argparse.Namespace) -> int:
    import torch

    from hubbub.models.decoding import inference
    from hubbub.pipeline.pipeline import load_asr

    torch.set_num_threads(args.threads)
    model = load_asr(args.asr, window=f"local:{args.window}" if args.attention[0] == "local" else "global")
    wav = recording(args.minutes[0], model.sample_rate, Path(args.data))
    base = vm_hwm_mb()
    t0 = time.perf_counter()
    with inference(model):
        memory, _, _ = model.encode(wav[None])
        best = model.ctc_log_probs(memory)[0].argmax(-1)
    ids = torch.unique_consecutive(best)
    words = len(model.tokenizer.decode([int(i) for i in ids if i != model.tokenizer.blank_id]).split())
    wall = time.perf_counter() - t0
    print(json.dumps({"wall_s": wall, "peak_rss_mb": vm_hwm_mb(), "before_mb": base, "frames": memory.shape[1],
                      "words": words}))
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, nargs="+", default=[1, 2, 5, 10])
    p.add_argument("--window", type=int, default=64, help="local window, encoder frames (40 ms each)")
    p.add_argument("--attention", nargs="+", choices=["global", "local"], default=["global", "local"])
    p.add_argument("--asr", default=None, help="ASR folder (default: the embedded model)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", default="../shared/data/LibriSpeech/test-other")
    p.add_argument("--out", default=None, help="write the Markdown table here too")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    rows = []
    for minutes in args.minutes:
        for attention in args.attention:
            cmd = [sys.executable, __file__, "--child", "--minutes", str(minutes), "--window", str(args.window),
                   "--threads", str(args.threads), "--data", args.data, "--attention", attention]
            if args.asr:
                cmd += ["--asr", args.asr]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if proc.returncode != 0:
                log.error("%g min %s failed:\n%s", minutes, attention, proc.stderr[-2000:])
                return 1
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append((minutes, attention, res["frames"], res["wall_s"], res["peak_rss_mb"], res["before_mb"]))
            log.info("%g min %s: %d frames, %.1f s, peak RSS %.0f MiB (%.0f before encoding)", *rows[-1])
    cmdline = "python benchmarks/bench_asr_memory.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"`{cmdline}` ({args.threads} threads, local window {args.window} frames)", "",
             "| recording | encoder attention | encoder frames | wall time (s) | peak RSS (MiB) | RSS before (MiB) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {m:g} min | {a} | {f} | {w:.1f} | {rss:.0f} | {b:.0f} |" for m, a, f, w, rss, b in rows]
    write_report("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
