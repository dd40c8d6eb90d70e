"""Long recordings through ``hubbub separate`` or ``hubbub transcribe``: wall time, real-time factor, peak RSS.

Usage:
    # 1, 10 and 60 minutes of 8 kHz two-speaker speech, 2 CPU threads
    python benchmarks/bench_long.py --minutes 1 10 60 --threads 2 --out docs/notes/runs/long-bench.md
    # the same end to end: separation, speech regions, ASR, every output format
    python benchmarks/bench_long.py --command transcribe --minutes 10 60 --threads 2 \
        --out docs/notes/runs/long-transcribe-bench.md

The recording is made by concatenating the mixtures of an evaluation set
(``hubbub data mix`` output, default ``data/test-other-2mix-8k``) or, without one,
the bundled TTS examples, until it is long enough. Each length runs in a fresh
process that reports its own peak resident memory (VmHWM), so a flat column
means memory does not grow with length.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
from _common import vm_hwm_mb, write_report

log = logging.getLogger("bench_long")
ROOT = Path(__file__).resolve().parents[1]


def make_recording(path: Path, minutes: float, sample_rate: int, data: Path) -> None:
    """Write ``minutes`` of concatenated mixtures to ``path`` block by block."""
    sources = sorted((data / "wav8k" / "min" / "test" / "mix_clean").glob("*.wav")) if data.is_dir() else []
    if not sources:
        sources = sorted((ROOT / "hubbub" / "demo" / "examples").glob("*.flac"))
    need = int(minutes * 60 * sample_rate)
    written = 0
    with sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=1, subtype="PCM_16") as out:
        i = 0
        while written < need:
            x, sr = sf.read(sources[i % len(sources)], dtype="float32")
            if sr != sample_rate:
                import librosa

                x = librosa.resample(x, orig_sr=sr, target_sr=sample_rate)
            x = x[: need - written]
            out.write(x)
            written += len(x)
            i += 1


def child(args: argparse.Namespace) -> int:
    import torch

    from hubbub.cli import main as cli_main

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    extra = ["-f", "all"] if args.command == "transcribe" else []
    code = cli_main([args.command, args.input, "-o", args.output, "--quiet", "--overwrite", "--window", args.window,
                     *extra])
    wall = time.perf_counter() - t0
    words = segments = None
    if args.command == "transcribe" and code == 0:  # what came out: the transcript of every voice
        speakers = json.loads((Path(args.output) / f"{Path(args.input).stem}.json").read_text())["speakers"]
        segments = sum(len(s["segments"]) for s in speakers)
        words = sum(len(s["text"].split()) for s in speakers)
    print(json.dumps({"code": code, "wall_s": wall, "peak_rss_mb": vm_hwm_mb(), "segments": segments, "words": words}))
    return code


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--command", choices=["separate", "transcribe"], default="separate")
    p.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    p.add_argument("--sample-rate", type=int, default=8000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--window", choices=["global", "local"], default="global")
    p.add_argument("--data", default="data/test-other-2mix-8k")
    p.add_argument("--out", default=None, help="write the Markdown table here too")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            wav = Path(tmp) / f"long-{minutes:g}min.wav"
            make_recording(wav, minutes, args.sample_rate, Path(args.data))
            cmd = [sys.executable, __file__, "--child", "--input", str(wav), "--output", str(Path(tmp) / "out"),
                   "--threads", str(args.threads), "--window", args.window, "--command", args.command]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if proc.returncode != 0:
                log.error("%g min failed:\n%s", minutes, proc.stderr[-2000:])
                return 1
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append((minutes, res["wall_s"], res["wall_s"] / (minutes * 60), res["peak_rss_mb"],
                         res.get("segments"), res.get("words")))
            log.info("%g min: %.1f s wall, RTF %.3f, peak RSS %.0f MiB", *rows[-1][:4])
            wav.unlink()
    cmdline = "python benchmarks/bench_long.py " + " ".join(argv if argv is not None else sys.argv[1:])
    setup = f"hubbub {args.command}, {args.sample_rate} Hz, {args.threads} threads, {args.window} inter-chunk attention"
    text_cols = args.command == "transcribe"
    lines = [f"`{cmdline}` ({setup})", "",
             "| recording | wall time (s) | real-time factor | peak RSS (MiB) |"
             + (" segments | words transcribed |" if text_cols else ""),
             "|---|---|---|---|" + ("---|---|" if text_cols else "")]
    lines += [f"| {m:g} min | {w:.1f} | {r:.3f} | {rss:.0f} |" + (f" {seg:,} | {n:,} |" if text_cols else "")
              for m, w, r, rss, seg, n in rows]
    write_report("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
