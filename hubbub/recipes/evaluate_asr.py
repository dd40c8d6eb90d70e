"""Score an ASR model: word error rate on transcribed recordings.

Usage:
    # LibriSpeech test-other (speakers never trained on), resampled to the model's rate
    hubbub evaluate asr --data ../shared/data/LibriSpeech/test-other \
        --csv results/asr-test-other.csv --json results/asr-test-other.json

    # the held-out TTS voices, the FSDD test digits, any {"audio", "text"} JSONL manifest; plain Whisper base
    hubbub evaluate asr --data data/synth-8k/test.jsonl --model whisper-base
    hubbub evaluate asr --data fsdd-test:../shared/data/fsdd/recordings
    hubbub evaluate asr --data ../shared/data/speechbrain-samples/asr_manifest.jsonl --model DIR

    # Whisper's beam search instead of greedy decoding; the first 20 utterances only
    hubbub evaluate asr --data ../shared/data/LibriSpeech/test-other --beam-size 5 --limit 20

``--data`` is a LibriSpeech-layout folder, a JSONL manifest, or any ``kind:path`` corpus spec of
:mod:`hubbub.recipes.asr_data`. Without ``--model`` the pipeline's default ASR (``whisper-base-separated``) is used.

One text normaliser, for references and hypotheses alike: ``hubbub.models.text.normalize_text``
(Unicode NFKC, uppercase, punctuation and hyphens to spaces, apostrophes inside words kept, numbers
spelled out in words with num2words, whitespace collapsed); the edit distance is jiwer's
(``hubbub.pipeline.metrics.wer``). The WER is the corpus WER: all errors over all reference words.
Per-utterance ``seconds`` is decoding time (features, encoder, decoder), and the real-time factor is
their sum over the audio duration.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["UtteranceScore", "build_parser", "evaluate_asr", "main", "summarize", "write_csv"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UtteranceScore:
    """The transcript of one utterance and its word errors against the reference."""

    id: str
    duration: float
    ref: str
    hyp: str
    errors: int
    ref_words: int
    seconds: float  # decoding time


def evaluate_asr(examples, model, options=None, batch_size: int = 1, device: str = "cpu",
                 progress: bool = True) -> list[UtteranceScore]:
    """Transcribe each example (resampled to the model's rate) and count its word errors.

    ``options``: a :class:`~hubbub.models.decoding.DecodingOptions` (default: greedy). With
    ``batch_size > 1`` utterances of similar length are decoded together and a batch's
    time is shared among them by duration.
    """
    import torch
    from tqdm.auto import tqdm

    from hubbub.models.decoding import DecodingOptions, decode
    from hubbub.pipeline.metrics import wer
    from hubbub.recipes.asr_data import load_waveforms, pad_batch

    options = dataclasses.replace(options or DecodingOptions(), word_timestamps=False)
    order = sorted(range(len(examples)), key=lambda i: -examples[i].duration) if batch_size > 1 else \
        list(range(len(examples)))
    results: dict[int, UtteranceScore] = {}
    bar = tqdm(total=len(examples), desc="evaluate", disable=not progress)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        kept, wavs = load_waveforms([examples[i] for i in chunk], model.sample_rate)
        bar.update(len(chunk))
        if not kept:
            continue
        loaded = {id(e) for e in kept}
        chunk = [i for i in chunk if id(examples[i]) in loaded]
        wav, lengths = pad_batch(wavs)
        wav, lengths = wav.to(device), lengths.to(device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            hyps = decode(model, wav, lengths, options)
        seconds = time.perf_counter() - t0
        total = sum(len(w) for w in wavs)
        for i, ex, w, h in zip(chunk, kept, wavs, hyps):
            r = wer(ex.text, h.text)
            results[i] = UtteranceScore(
                ex.id, len(w) / model.sample_rate, ex.text, h.text, r.errors, r.ref_words, seconds * len(w) / total
            )
    bar.close()
    return [results[i] for i in sorted(results)]


def summarize(scores: list[UtteranceScore]) -> dict:
    """Corpus WER (with its error counts), audio duration and real-time factor."""
    from hubbub.pipeline.metrics import wer

    total = wer([s.ref for s in scores], [s.hyp for s in scores])
    audio = sum(s.duration for s in scores)
    return {
        "utterances": len(scores),
        "wer": total.wer,
        "errors": total.errors,
        "substitutions": total.substitutions,
        "deletions": total.deletions,
        "insertions": total.insertions,
        "ref_words": total.ref_words,
        "audio_seconds": audio,
        "rtf": sum(s.seconds for s in scores) / audio if audio else float("nan"),
    }


def write_csv(scores: list[UtteranceScore], path: Path) -> None:
    from hubbub.pipeline.writers import atomic_path

    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "duration", "ref", "hyp", "errors", "ref_words", "seconds"])
        for s in scores:
            w.writerow([s.id, f"{s.duration:.3f}", s.ref, s.hyp, s.errors, s.ref_words, f"{s.seconds:.3f}"])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hubbub evaluate asr", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="LibriSpeech-layout folder, JSONL manifest or kind:path corpus spec")
    p.add_argument("--model", default=None,
                   help="ASR model folder, embedded name or installed Whisper name (default: the pipeline's ASR)")
    p.add_argument("--beam-size", type=int, default=1, help="1: greedy; more: Whisper's beam search")
    p.add_argument("--batch-size", type=int, default=1, help="utterances decoded together")
    p.add_argument("--csv", default=None, help="per-utterance results CSV")
    p.add_argument("--json", default=None, help="write the summary as JSON")
    p.add_argument("--limit", type=int, default=None, help="only the first N utterances")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch  # after parsing: --help stays light

    from hubbub.models.decoding import DecodingOptions
    from hubbub.pipeline.loaders import DEFAULT_ASR, load_asr
    from hubbub.recipes.asr_data import load_corpus

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        examples = sorted(load_corpus(args.data), key=lambda e: e.id)[: args.limit]
    except (FileNotFoundError, ValueError, OSError) as err:
        log.error("%s: cannot read evaluation data (%s)", args.data, err)
        return 2
    if not examples:
        log.error("%s: no transcribed utterances found", args.data)
        return 2
    try:
        model = load_asr(args.model, device=args.device)
    except FileNotFoundError as err:
        hint = "" if args.model else f" (there is no embedded {DEFAULT_ASR!r} model yet: pass --model DIR, " \
            "a folder written by `hubbub train asr`)"
        log.error("cannot load the ASR model: %s%s", err, hint)
        return 2
    if model.tokenizer is None:
        log.error("%s: the model has no tokenizer", args.model)
        return 2
    try:
        options = DecodingOptions(beam_size=args.beam_size)
    except ValueError as err:
        log.error("%s", err)
        return 2
    scores = evaluate_asr(examples, model, options, max(1, args.batch_size), args.device, progress=not args.quiet)
    if not scores:
        log.error("%s: no utterance could be read", args.data)
        return 1
    summary = summarize(scores)
    if args.csv:
        write_csv(scores, Path(args.csv))
    if args.json:
        from hubbub.pipeline.writers import write_text

        write_text(args.json, json.dumps({"data": str(args.data), "model": args.model or DEFAULT_ASR,
                                          "beam_size": args.beam_size, **summary}, indent=2) + "\n")
    log.info("%s: %d utterances (%.1f min), WER %.2f %% (%d sub, %d del, %d ins / %d words), RTF %.3f%s",
             args.data, summary["utterances"], summary["audio_seconds"] / 60, 100 * summary["wer"],
             summary["substitutions"], summary["deletions"], summary["insertions"], summary["ref_words"],
             summary["rtf"], f", beam {args.beam_size}" if args.beam_size > 1 else "")
    return 0
