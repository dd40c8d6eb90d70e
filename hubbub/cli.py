"""``hubbub separate`` and ``hubbub transcribe``: the batch commands.

Usage:
    hubbub separate mix.wav -o out/                 # out/mix/spk1.wav, out/mix/spk2.wav
    hubbub separate recordings/ "more/*.flac" -o out/ --window local --chunk-seconds 60
    hubbub separate corpus/ -o out/ --shard 3/8     # machine 3 of 8 takes every 8th file
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

__all__ = ["build_parser", "main", "run_separate"]

log = logging.getLogger("hubbub.cli")

#: inter-chunk attention window (in chunks) used by ``--window local``
LOCAL_INTER_WINDOW = 16


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="audio files, folders or glob patterns")
    p.add_argument("-o", "--output-dir", default=".", help="where to write outputs (default: .)")
    p.add_argument("--ext", nargs="+", default=["wav", "flac", "ogg", "mp3"], help="extensions searched in folders")
    p.add_argument("--model", default=None, help="separator folder or embedded name (default: separator-8k)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--window", choices=["global", "local"], default="global",
                   help="inter-chunk attention: global, or local for very long windows (linear memory)")
    p.add_argument("--chunk-seconds", type=float, default=30.0,
                   help="separate long recordings in windows of this length (0: one pass)")
    p.add_argument("--overlap-seconds", type=float, default=2.0, help="overlap between windows")
    p.add_argument("--max-seconds", type=float, default=None, help="refuse inputs longer than this")
    p.add_argument("--shard", default=None, metavar="I/N", help="process only shard I of N (1-based)")
    p.add_argument("--overwrite", action="store_true", help="redo inputs whose outputs exist")
    p.add_argument("--quiet", action="store_true", help="no progress bar, errors only")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hubbub", description="separate and transcribe overlapping speech")
    sub = parser.add_subparsers(dest="command", required=True)
    sep = sub.add_parser("separate", help="write OUT/<stem>/spkN.wav for each input",
                         description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common_args(sep)
    return parser


def run_separate(args: argparse.Namespace) -> int:
    """The ``separate`` command; returns the exit code."""
    import torch
    from tqdm.auto import tqdm

    from hubbub.pipeline.audio import AudioError
    from hubbub.pipeline.inputs import expand_inputs, shard, unique_stems
    from hubbub.pipeline.separate import load_separator, separate_file
    from hubbub.pipeline.writers import atomic_dir, write_audio

    if args.threads:
        torch.set_num_threads(args.threads)
    found = expand_inputs(args.inputs, tuple(args.ext))
    for problem in found.problems:
        log.error(problem)
    try:
        files = shard(found.files, args.shard)
    except ValueError as err:
        log.error("%s", err)
        return 2
    out_dir = Path(args.output_dir)
    names = unique_stems(files)
    model = None
    done = skipped = 0
    failed = len(found.problems)
    t0 = time.monotonic()
    bar = tqdm(list(zip(files, names)), desc="separate", unit="file", disable=args.quiet, file=sys.stderr)
    for path, name in bar:
        target = out_dir / name
        if target.is_dir() and any(target.glob("spk*.wav")) and not args.overwrite:
            skipped += 1
            log.debug("%s: outputs exist, skipped", path)
            continue
        try:
            if model is None:
                model = load_separator(args.model, device=args.device)
                model.set_inter_window(LOCAL_INTER_WINDOW if args.window == "local" else None)
            result = separate_file(
                path, model, chunk_seconds=args.chunk_seconds or None, overlap_seconds=args.overlap_seconds,
                device=args.device, max_seconds=args.max_seconds,
            )
            with atomic_dir(target, overwrite=True) as tmp:
                for k, source in enumerate(result.sources, start=1):
                    write_audio(tmp / f"spk{k}.wav", source, result.sample_rate)
            done += 1
        except AudioError as err:
            failed += 1
            log.error("%s", err)
        except (OSError, RuntimeError, ValueError) as err:
            failed += 1
            log.error("%s: %s", path, err)
    elapsed = time.monotonic() - t0
    log.log(logging.WARNING if failed else logging.INFO,
            "separated %d, skipped %d (outputs exist), failed %d in %.1f s -> %s",
            done, skipped, failed, elapsed, out_dir)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    pkg_logger = logging.getLogger("hubbub")
    old_level = pkg_logger.level
    if getattr(args, "quiet", False):
        pkg_logger.setLevel(logging.ERROR)
    try:
        if args.command == "separate":
            return run_separate(args)
        return 2
    finally:
        pkg_logger.setLevel(old_level)
