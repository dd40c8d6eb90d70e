"""``hubbub separate`` and ``hubbub transcribe``: the batch commands.

Usage:
    hubbub separate mix.wav -o out/                 # out/mix/spk1.wav, out/mix/spk2.wav
    hubbub separate recordings/ "more/*.flac" -o out/ --window local:16 --chunk-seconds 60
    hubbub separate corpus/ -o out/ --shard 3/8     # machine 3 of 8 takes every 8th file
    hubbub transcribe meeting.wav -o out/ -f srt,json   # out/meeting.srt, out/meeting.json, out/meeting/spkN.wav
    hubbub transcribe interview.flac --no-separation -f txt # one voice: no separation
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path

from hubbub.pipeline.defaults import DEFAULT_CHUNK_SECONDS, DEFAULT_OVERLAP_SECONDS

__all__ = ["build_parser", "main", "run_separate", "run_transcribe"]

log = logging.getLogger("hubbub.cli")

SEPARATE_HELP = """Separate the voices of each input into OUT/<stem>/spk1.wav, spk2.wav, ... at the input's rate.

examples:
  hubbub separate mix.wav -o out/                 # out/mix/spk1.wav, out/mix/spk2.wav
  hubbub separate recordings/ "more/*.flac" -o out/ --window local --chunk-seconds 60
  hubbub separate corpus/ -o out/ --shard 3/8     # machine 3 of 8 takes every 8th file
"""

TRANSCRIBE_HELP = """Separate each input, find where each voice speaks and transcribe it: OUT/<stem>.<fmt>
(lines prefixed [spk1]:, [spk2]: ...) and the voices in OUT/<stem>/spkN.wav.

examples:
  hubbub transcribe meeting.wav -o out/ -f srt,json   # out/meeting.srt, out/meeting.json, out/meeting/spkN.wav
  hubbub transcribe interview.flac --no-separation -f txt # one voice: no separation
"""

AFTER_HELP = """Inputs whose outputs exist are skipped (unless --overwrite); outputs are written atomically;
a bad input gets one line naming it and the rest go on; the exit status is 1 if any input failed.
A file of digital silence gives an empty result; a truncated WAV or FLAC is an error unless --allow-truncated.
"""

def _common_args(p: argparse.ArgumentParser) -> None:
    from hubbub.pipeline.inputs import AUDIO_EXTENSIONS

    p.add_argument("inputs", nargs="+", help="audio files, folders or glob patterns")
    p.add_argument("-o", "--output-dir", default=".", help="where to write outputs (default: .)")
    p.add_argument("--ext", nargs="+", default=[e.lstrip(".") for e in AUDIO_EXTENSIONS],
                   help="extensions searched in folders")
    p.add_argument("--model", default=None,
                   help="separator: a model folder, a training experiment (its best/) or an embedded name "
                        "(default: separator-8k)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--window", default=None, metavar="global|local:W",
                   help="the separator's inter-chunk attention: global, or local over W chunks (linear memory "
                        "for very long windows; 'local' is local:16); default: as the model was saved")
    p.add_argument("--chunk-seconds", type=float, default=DEFAULT_CHUNK_SECONDS,
                   help=f"separate long recordings in windows of this length (0: one pass; default: "
                        f"{DEFAULT_CHUNK_SECONDS:g})")
    p.add_argument("--overlap-seconds", type=float, default=DEFAULT_OVERLAP_SECONDS,
                   help=f"overlap between windows (default: {DEFAULT_OVERLAP_SECONDS:g})")
    p.add_argument("--max-seconds", type=float, default=None, help="refuse inputs longer than this")
    p.add_argument("--shard", default=None, metavar="I/N", help="process only shard I of N (1-based)")
    p.add_argument("--overwrite", action="store_true", help="redo inputs whose outputs exist")
    p.add_argument("--allow-truncated", action="store_true",
                   help="use what decodes of a file that ends before its header says (default: an error)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, errors only")
    p.add_argument("-v", "--verbose", action="store_true", help="debug log lines")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hubbub", description="separate and transcribe overlapping speech")
    sub = parser.add_subparsers(dest="command", required=True)
    sep = sub.add_parser("separate", help="write OUT/<stem>/spkN.wav for each input", description=SEPARATE_HELP,
                         epilog=AFTER_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common_args(sep)
    tr = sub.add_parser("transcribe", help="who said what and when: OUT/<stem>.<fmt> and OUT/<stem>/spkN.wav",
                        description=TRANSCRIBE_HELP, epilog=AFTER_HELP,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    _common_args(tr)
    tr.add_argument("-f", "--output-format", default="txt,srt,json",
                    help="comma list of txt,srt,vtt,tsv,json,rttm, or all (default: txt,srt,json)")
    tr.add_argument("--asr", default=None,
                    help="whisper-base-separated, whisper-base, whisper-tiny.en or a "
                         "model folder (default: whisper-base-separated, Whisper base with its time-frequency "
                         "block adapted to separated voices)")
    tr.add_argument("--asr-window", default=None, metavar="global|local:W",
                    help="the ASR encoder's time attention: global, or local over W encoder frames "
                         "(default: as the model was saved)")
    tr.add_argument("--asr-precision", choices=("float16", "float32", "int8"), default="float16",
                    help="weights of a Whisper decoder's linear layers on a CPU: float16 (exact for Whisper's "
                         "released weights, computed in float32), float32, or int8 (faster again at about the same "
                         "WER, but a region's words then depend a little on the other regions decoded in its "
                         "batch) (default: float16)")
    streams = tr.add_mutually_exclusive_group()
    streams.add_argument("--streams", type=int, default=None, metavar="N",
                         help="voices the separator splits each recording into (default: the separator's count); "
                              "1 reads the recording as one voice, with no separation")
    streams.add_argument("--no-separation", dest="streams", action="store_const", const=1,
                         help="read the recording as one voice, with no separation (--streams 1)")
    streams.add_argument("--speakers", dest="old_speakers", type=int, default=None,
                         help=argparse.SUPPRESS)  # the old name of --streams, still accepted with a warning
    where = tr.add_mutually_exclusive_group()
    where.add_argument("--overlap-aware", dest="overlap_aware", action="store_true", default=True,
                       help="read each voice from the recording itself where it speaks alone and from its separated "
                            "stream only where voices overlap (default)")
    where.add_argument("--separate-everywhere", dest="overlap_aware", action="store_false",
                       help="read every voice from its separated stream throughout")
    tr.add_argument("--reading", choices=("turns", "whisper"), default="turns",
                    help="turns (default): each voice's speech regions decoded and joined; whisper: the recording "
                         "read whole by Whisper's long-form transcription, each word given to the loudest voice, "
                         "overlaps read from the separated voices, speech it skipped read again")
    tr.add_argument("--overlap-detector", default=None, metavar="NAME|PATH|none",
                    help="the overlapped-speech detector run on the recording: two voices are read at once only "
                         "where it hears two (default: the embedded overlap-8k; none: wherever two separated "
                         "streams have sound)")
    tr.add_argument("--num-speakers", type=int, default=None,
                    help="the number of people in each recording, when known (default: found by clustering)")
    tr.add_argument("--no-speaker-labels", action="store_true",
                    help="one speaker per separated stream: skip labelling persons by voice")
    tr.add_argument("--beam-size", type=int, default=1,
                    help="1: greedy; more: Whisper's beam search")
    tr.add_argument("--batch-size", type=int, default=8,
                    help="inputs transcribed together: their speech regions share ASR batches (default: 8)")
    tr.add_argument("--word-timestamps", action="store_true", help="add word timings to the JSON output")
    return parser


def _run_batch(args: argparse.Namespace, verb: str, outputs, process, group_size: int = 1,
               suffixes: tuple[str, ...] = ()) -> int:
    """Shared batch loop: expand inputs, skip finished ones, check the rest, process, report.

    ``outputs(out_dir, name)`` lists the paths an input produces (all must exist
    to skip it); ``process(group, out_dir, progress)`` does a list of ``(path, name)``
    (at most ``group_size``), calling ``progress(done, total)`` in seconds of the
    group's audio, and returns, for each, None or the error that stopped it.
    Every input is checked (found, readable, its duration) before any model
    loads, so a bad one is reported at once. What a killed run left for these
    inputs (``.<name>[.<suffix>].<random>.part``) is removed first. The progress
    bar counts seconds of audio across the batch, with an ETA; log lines go
    through it, each on its own line.
    """
    from hubbub.pipeline.audio import AudioError, TruncatedAudio, probe_audio
    from hubbub.pipeline.inputs import expand_inputs, shard, unique_stems
    from hubbub.pipeline.writers import sweep_partial

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
    for stale in sweep_partial(out_dir, names, (*suffixes, INPUT_COPY)):
        log.info("removed %s, left by an interrupted run", stale)
    counts = {"done": 0, "skipped": 0, "failed": len(found.problems)}
    t0 = time.monotonic()

    def report(path: Path, err: Exception) -> None:
        hint = " (--allow-truncated keeps what decodes)" if isinstance(err, TruncatedAudio) else ""
        log.error("%s%s", err if isinstance(err, AudioError) else f"{path}: {err}", hint)

    todo: list[tuple[Path, str, float]] = []
    for path, name in zip(files, names):
        expected = outputs(out_dir, name)
        if expected and all(p.exists() for p in expected) and not args.overwrite:
            counts["skipped"] += 1
            log.debug("%s: outputs exist, skipped", path)
            continue
        try:
            seconds = probe_audio(path, allow_truncated=args.allow_truncated).duration
        except (AudioError, OSError) as err:
            counts["failed"] += 1
            report(path, err)
            continue
        todo.append((path, name, seconds))
    if todo:
        _process_all(args, verb, todo, process, group_size, out_dir, counts, report)
    failed = counts["failed"]
    log.log(logging.WARNING if failed else logging.INFO,
            "%s %d, skipped %d (outputs exist), failed %d in %.1f s -> %s",
            {"separate": "separated", "transcribe": "transcribed"}[verb], counts["done"], counts["skipped"], failed,
            time.monotonic() - t0, out_dir)
    return 1 if failed else 0


def _process_all(args: argparse.Namespace, verb: str, todo: list[tuple[Path, str, float]], process,
                 group_size: int, out_dir: Path, counts: dict, report) -> None:
    """Process the checked inputs ``(path, name, seconds)`` in groups, under a progress bar in seconds
    of audio (off with ``-q`` and when stderr is not a terminal)."""
    import torch
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    if args.threads:
        torch.set_num_threads(args.threads)
    quiet = args.quiet or not log.isEnabledFor(logging.INFO)
    total = sum(seconds for *_, seconds in todo)
    with logging_redirect_tqdm(), tqdm(total=round(total, 1), desc=verb, unit="s", unit_scale=False,
                                       disable=True if quiet else None, file=sys.stderr,
                                       bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s of audio "
                                                  "[{elapsed}<{remaining}]") as bar:
        base = 0.0
        for k in range(0, len(todo), group_size):
            group = todo[k : k + group_size]

            def progress(done: float, _total: float, base: float = base) -> None:
                bar.update(max(0.0, round(base + done, 1) - bar.n))

            for (path, _, _), err in zip(group, process([(p, n) for p, n, _ in group], out_dir, progress)):
                if err is None:
                    counts["done"] += 1
                else:
                    counts["failed"] += 1
                    report(path, err)
            base += sum(seconds for *_, seconds in group)
            progress(0.0, 0.0)


#: ``.<stem>.input.<random>.part``: where what decodes of a truncated input is copied (``--allow-truncated``)
INPUT_COPY = "input"


def _readable(path: Path, out_dir: Path, name: str, allow_truncated: bool) -> Path:
    """The file to process for ``path``: itself, or (``allow_truncated``) a copy of what decodes of it.

    Raises :class:`~hubbub.pipeline.audio.TruncatedAudio` for a truncated file
    unless ``allow_truncated``; the copy lives in a temporary folder beside the
    outputs, removed with the other temporaries.
    """
    from hubbub.pipeline.audio import copy_decodable, probe_audio
    from hubbub.pipeline.writers import temp_dir_for

    info = probe_audio(path, allow_truncated=allow_truncated)
    if not info.truncated:
        return path
    log.warning("%s: truncated: using the first %.3f s that decode (--allow-truncated)", path, info.duration)
    copy = temp_dir_for(out_dir / f"{name}.{INPUT_COPY}") / f"{name}.wav"
    copy_decodable(path, copy)
    return copy


def _drop_copy(used: Path, path: Path) -> None:
    """Remove the copy :func:`_readable` made, if it made one."""
    if used != path:
        from hubbub.pipeline.writers import remove_partial

        remove_partial([used.parent])


def _one_by_one(process_one):
    """A ``process(group, out_dir, progress)`` for :func:`_run_batch` from a function
    ``process_one(path, out_dir, name, progress)`` that does one input (``progress(done, total)``
    in that input's samples)."""
    from hubbub.pipeline.audio import AudioError, probe_audio

    def process(group, out_dir: Path, progress) -> list[Exception | None]:
        errors: list[Exception | None] = []
        base = 0.0
        for path, name in group:
            try:
                seconds = probe_audio(path, allow_truncated=True).duration
            except (AudioError, OSError):
                seconds = 0.0
            try:
                process_one(path, out_dir, name,
                            lambda a, b, base=base, s=seconds: progress(base + s * a / max(b, 1), 0.0))
                errors.append(None)
            except (AudioError, OSError, RuntimeError, ValueError) as err:
                errors.append(err)
            base += seconds
        return errors

    return process


def _silent_voices(path: Path, outs: list[Path], block: int = 1 << 20) -> None:
    """The voices of digital silence: silent WAVs as long as ``path``, at its rate."""
    import numpy as np
    import soundfile as sf

    from hubbub.pipeline.audio import probe_audio

    info = probe_audio(path)
    zeros = np.zeros(min(block, info.frames), dtype=np.float32)
    for out in outs:
        with sf.SoundFile(str(out), "w", samplerate=info.sample_rate, channels=1, subtype="PCM_16",
                          format="WAV") as f:
            for start in range(0, info.frames, block):
                f.write(zeros[: min(block, info.frames - start)])


def _check_windows(args: argparse.Namespace) -> None:
    """Raise ValueError for a misspelt ``--window`` / ``--asr-window`` before any work."""
    from hubbub.models.attention import parse_window
    from hubbub.models.separator import LOCAL_INTER_WINDOW

    parse_window(args.window, LOCAL_INTER_WINDOW)
    parse_window(getattr(args, "asr_window", None))


def run_separate(args: argparse.Namespace) -> int:
    """The ``separate`` command; returns the exit code.

    Files are streamed window by window (see
    :func:`~hubbub.pipeline.separate.separate_to_files`): memory does not grow
    with the length of a recording. Digital silence gives silent voices.
    """
    from hubbub.pipeline.audio import SilentAudio
    from hubbub.pipeline.separate import load_separator, separate_to_files
    from hubbub.pipeline.writers import atomic_dir

    state: dict = {}

    def process(path: Path, out_dir: Path, name: str, progress) -> None:
        if "model" not in state:
            state["model"] = load_separator(args.model, device=args.device, window=args.window)
        model = state["model"]
        used = _readable(path, out_dir, name, args.allow_truncated)
        try:
            with atomic_dir(out_dir / name, overwrite=True) as tmp:
                outs = [tmp / f"spk{k}.wav" for k in range(1, model.n_src + 1)]
                try:
                    separate_to_files(model, used, outs, args.chunk_seconds or None, args.overlap_seconds,
                                      args.device, args.max_seconds, progress)
                except SilentAudio:
                    log.info("%s: digital silence: its voices are silent", path)
                    _silent_voices(used, outs)
        finally:
            _drop_copy(used, path)

    def outputs(out_dir: Path, name: str) -> list[Path]:
        target = out_dir / name
        return sorted(target.glob("spk*.wav")) if target.is_dir() else [target / "spk1.wav"]

    try:
        _check_windows(args)
    except ValueError as err:
        log.error("%s", err)
        return 2
    return _run_batch(args, "separate", outputs, _one_by_one(process))


def run_transcribe(args: argparse.Namespace) -> int:
    """The ``transcribe`` command; returns the exit code.

    Digital silence gives the pipeline's empty result: no speakers, empty transcripts.
    """
    from hubbub.models.decoding import DecodingOptions
    from hubbub.pipeline.audio import AudioError
    from hubbub.pipeline.config import PipelineConfig
    from hubbub.pipeline.formats import parse_formats, write_outputs
    from hubbub.pipeline.pipeline import Pipeline
    from hubbub.pipeline.speakers import ClusterConfig

    try:
        formats = parse_formats(args.output_format)
        _check_windows(args)
        config = PipelineConfig(
            separator=args.model, asr=args.asr, overlap_detector=args.overlap_detector, separate=args.streams != 1,
            label_speakers=not args.no_speaker_labels, window=args.window, asr_window=args.asr_window,
            precision=args.asr_precision, device=args.device, chunk_seconds=args.chunk_seconds or None,
            overlap_seconds=args.overlap_seconds, decoding=DecodingOptions(beam_size=args.beam_size),
            overlap_aware=args.overlap_aware, clustering=ClusterConfig(num_speakers=args.num_speakers),
            max_seconds=args.max_seconds, reading=args.reading)
    except ValueError as err:
        log.error("%s", err)
        return 2
    state: dict = {}

    def pipeline() -> Pipeline:
        if "pipe" not in state:
            state["pipe"] = Pipeline.from_pretrained(config)
        return state["pipe"]

    def process(group: list[tuple[Path, str]], out_dir: Path, progress) -> list[Exception | None]:
        """Transcribe a group of inputs together (their speech regions share ASR batches)."""
        from hubbub.pipeline.writers import commit_dir, remove_partial, temp_dir_for

        errors: list[Exception | None] = [None] * len(group)
        used: dict[int, Path] = {}
        for i, (path, name) in enumerate(group):
            try:
                used[i] = _readable(path, out_dir, name, args.allow_truncated)
            except (AudioError, OSError) as err:
                errors[i] = err
        tmps = {i: temp_dir_for(out_dir / group[i][1]) for i in used}
        try:
            try:
                results = pipeline().transcribe_many([(used[i], tmps[i]) for i in used], speakers=args.streams,
                                                     progress=progress)
            except ValueError as err:  # a setting that fits no input (--streams 3 with a 2-voice separator)
                results = [err] * len(used)
            for i, result in zip(used, results):
                path, name = group[i]
                if isinstance(result, Exception):
                    errors[i] = result
                    continue
                try:
                    target = out_dir / name
                    if result.speakers:  # digital silence has none, and no voices to keep
                        commit_dir(tmps[i], target, overwrite=True)
                    for speaker in result.speakers:
                        speaker.audio = str(target / Path(speaker.audio).name)
                    result.audio = str(path)
                    write_outputs(result, out_dir, name, formats, words=args.word_timestamps)
                except OSError as err:
                    errors[i] = err
        finally:
            remove_partial([*tmps.values(), *(used[i].parent for i in used if used[i] != group[i][0])])
        return errors

    def outputs(out_dir: Path, name: str) -> list[Path]:
        return [out_dir / f"{name}.{fmt}" for fmt in formats]

    return _run_batch(args, "transcribe", outputs, process, group_size=max(1, args.batch_size), suffixes=tuple(formats))


class Interrupted(BaseException):
    """SIGTERM arrived: unwinds like Ctrl+C, so that every temporary is removed on the way out."""


#: the temporaries that existed when a stop signal arrived (they are removed while the stack unwinds)
_AT_STOP: list[Path] = []


@contextlib.contextmanager
def _terminate_cleanly():
    """SIGTERM raises :class:`Interrupted` and SIGINT KeyboardInterrupt while a command runs (in the main
    thread only), each first noting the temporaries then in progress, so that the message can count them."""
    from hubbub.pipeline.writers import pending_partial

    def handler(signum, frame):
        _AT_STOP[:] = pending_partial()
        raise Interrupted(signum) if signum == signal.SIGTERM else KeyboardInterrupt

    try:
        old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _AT_STOP.clear()
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    pkg_logger = logging.getLogger("hubbub")
    old_level = pkg_logger.level
    if args.quiet:
        pkg_logger.setLevel(logging.ERROR)
    elif args.verbose:
        pkg_logger.setLevel(logging.DEBUG)
    try:
        if getattr(args, "old_speakers", None) is not None:
            log.warning("--speakers is now --streams (the separator's voices; --num-speakers is the people "
                        "in the recording): read as --streams %d", args.old_speakers)
            args.streams = args.old_speakers
        if args.model is not None and not (args.command == "transcribe" and args.streams == 1):
            from hubbub.models.loading import resolve_model_dir

            try:  # a bad --model is one line, before any input is read
                args.model = str(resolve_model_dir(args.model))
            except FileNotFoundError as err:
                log.error("--model %s", err)
                return 2
        with _terminate_cleanly():
            if args.command == "separate":
                return run_separate(args)
            return run_transcribe(args)
    except (KeyboardInterrupt, Interrupted) as stop:
        from hubbub.pipeline.writers import remove_partial

        removed = set(_AT_STOP) | set(remove_partial())  # most went while the stack unwound
        sig = signal.SIGTERM if isinstance(stop, Interrupted) else signal.SIGINT
        log.error("interrupted by %s: finished outputs are kept, %d partial one(s) removed; run the same command "
                  "again to go on", sig.name, len(removed))
        return 128 + sig
    finally:
        pkg_logger.setLevel(old_level)
