"""Conversations (people taking turns, 0-40 % overlapped speech): speaker-attributed cpWER and DER
per overlap ratio, hubbub's two ways of reading the voices beside the single-stream systems, in one run.

Usage:
    hubbub data conversation --librispeech ../shared/data/LibriSpeech/test-other \
        --out data/test-other-conv2-16k --n-speakers 2 --n-recordings 10 --sample-rate 16000
    hubbub data conversation --librispeech ../shared/data/LibriSpeech/test-other \
        --out data/test-other-conv3-16k --n-speakers 3 --n-recordings 6 --sample-rate 16000
    python benchmarks/bench_conversation.py --data data/test-other-conv2-16k --threads 2 \
        --out docs/notes/runs/conversation2-bench.md --json benchmarks/results/conversation2.json
    python benchmarks/bench_conversation.py --data data/test-other-conv3-16k --threads 2 \
        --out docs/notes/runs/conversation3-bench.md --json benchmarks/results/conversation3.json

Systems (``--systems``):

* ``whisper-reading``: the same models, ``Pipeline(reading="whisper")``: the recording read whole by
  Whisper's long-form transcription, each word given to the dominant separated voice, overlaps read
  from the separated voices (:mod:`hubbub.pipeline.reading`);
* ``overlap-aware``: ``Pipeline.from_pretrained()``, what ``hubbub transcribe`` does by default: the
  recording itself where one voice speaks, the separated voices where voices overlap, speakers
  labelled by voice;
* ``separate-everywhere``: the same models, every voice read from its separated stream
  (``hubbub transcribe --separate-everywhere``);
* ``overlap-aware-no-detector``: overlap-aware, where the separated streams alone say where voices
  overlap (``hubbub transcribe --overlap-detector none``);
* ``asr-alone``: the same ASR on the unseparated recording read whole by Whisper's long-form transcription,
  one stream (``--no-separation --reading whisper``);
* ``faster-whisper``: faster-whisper on the same Whisper weights (``--whisper``, int8), long-form
  transcription of the unseparated recording (timestamps on, greedy, no VAD), one stream;
* ``faster-whisper-labelled``: the WhisperX way: faster-whisper's words (word timestamps on), each given to
  the person of hubbub's default reading whose segments hold most of the word (the nearest segment when
  none does): Whisper's words with hubbub's who-speaks-when.

Scores: cpWER by meeteval (``cp_word_error_rate``; every speaker's words in time order, texts
normalised with hubbub's normaliser first); ORC-WER by meeteval (``orc_word_error_rate``: every
reference utterance is scored against the hypothesis stream that fits it best, so speaker labels do
not count: the fair measure of the words of a single-stream system, which cpWER charges for putting
two people in one stream; exact up to 2 hypothesis streams, meeteval's greedy assignment beyond, whose
exact search needs memory that grows as the product of the streams' lengths); DER by pyannote.metrics
(``DiarizationErrorRate``,
overlapped speech scored, a 0.5-s collar in pyannote's sense, i.e. +-0.25 s around reference
boundaries as in NIST md-eval) against the set's RTTMs, from each system's timed segments. Each
score is summed over the recordings of a ratio (errors over reference words; DER components over
reference speech). RTF is wall time over audio time, 2 threads.
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

log = logging.getLogger("bench_conversation")

SYSTEMS = ["whisper-reading", "overlap-aware", "separate-everywhere", "overlap-aware-no-detector", "asr-alone",
           "faster-whisper", "faster-whisper-labelled"]


def load_set(folder: str, limit: int | None) -> list[dict]:
    """The records of a ``hubbub data conversation`` folder, ``limit`` per overlap ratio."""
    base = Path(folder)
    records = [json.loads(line) for line in (base / "manifest.jsonl").read_text().splitlines() if line.strip()]
    kept, count = [], {}
    for rec in records:
        count[rec["overlap_ratio"]] = count.get(rec["overlap_ratio"], 0) + 1
        if limit is None or count[rec["overlap_ratio"]] <= limit:
            rec["mixture"] = str(base / rec["mixture"])
            kept.append(rec)
    return kept


class LongWhisper:
    """faster-whisper's long-form transcription (timestamps on, greedy, no VAD, no fallback):
    ``wav -> [(start, end, text)]``."""

    def __init__(self, model: str, compute_type: str, threads: int) -> None:
        from bench_asr import ct2_folder
        from faster_whisper import WhisperModel

        self.model = WhisperModel(ct2_folder(model), device="cpu", compute_type=compute_type, cpu_threads=threads)

    def __call__(self, wav: np.ndarray, words: bool = False) -> list[tuple[float, float, str]]:
        """The segments, or with ``words`` the words, as ``(start, end, text)``."""
        segments, _ = self.model.transcribe(wav.astype(np.float32), language="en", beam_size=1, temperature=0.0,
                                            condition_on_previous_text=False, vad_filter=False,
                                            word_timestamps=words)
        if words:
            return [(w.start, w.end, w.word.strip()) for s in segments for w in (s.words or [])]
        return [(s.start, s.end, s.text.strip()) for s in segments]


def label_words(words: list[tuple[float, float, str]], people: list[list[tuple[float, float, str]]]):
    """Each ``(start, end, word)`` to the person (``people``: per person, its timed segments) whose segments
    hold most of it, the nearest segment's person when none holds any: per person, its words."""
    out: list[list[tuple[float, float, str]]] = [[] for _ in people] or [[]]
    for a, b, w in words:
        best, key = 0, None
        for k, segs in enumerate(people):
            held = sum(max(0.0, min(b, e) - max(a, s)) for s, e, _ in segs)
            gap = min((max(s - b, a - e, 0.0) for s, e, _ in segs), default=float("inf"))
            score = (held, -gap)
            if key is None or score > key:
                best, key = k, score
        out[best].append((a, b, w))
    return out


def _hubbub_streams(result) -> list[list[tuple[float, float, str]]]:
    return [[(seg.start, seg.end, seg.text) for seg in spk.segments] for spk in result.speakers]


_SEEN: dict = {}


def transcribe(system: str, rec: dict, pipes: dict, whisper) -> list[list[tuple[float, float, str]]]:
    """Per hypothesis speaker, its ``(start, end, text)`` segments (hubbub's readings kept for the
    labelled faster-whisper; its time then counts only faster-whisper's reading)."""
    if (system, rec["id"]) in _SEEN:
        return _SEEN[system, rec["id"]]
    out = _transcribe(system, rec, pipes, whisper)
    if system == "whisper-reading":
        _SEEN[system, rec["id"]] = out
    return out


def _transcribe(system: str, rec: dict, pipes: dict, whisper) -> list[list[tuple[float, float, str]]]:
    if system == "overlap-aware":
        return _hubbub_streams(pipes["overlap-aware"](rec["mixture"]))
    if system in ("separate-everywhere", "overlap-aware-no-detector", "whisper-reading"):
        return _hubbub_streams(pipes[system](rec["mixture"]))
    if system == "asr-alone":
        return _hubbub_streams(pipes["whisper-reading"](rec["mixture"], speakers=1))
    if system == "faster-whisper":
        from hubbub.pipeline.audio import load_audio

        return [whisper(load_audio(rec["mixture"], sample_rate=16000)[0].numpy())]
    if system == "faster-whisper-labelled":
        from hubbub.pipeline.audio import load_audio

        words = whisper(load_audio(rec["mixture"], sample_rate=16000)[0].numpy(), words=True)
        return label_words(words, transcribe("whisper-reading", rec, pipes, whisper))
    raise SystemExit(f"unknown system {system!r}")


def score(rec: dict, hyp: list[list[tuple[float, float, str]]], der_metric) -> dict:
    """cpWER counts (meeteval) and DER components (pyannote.metrics) of one recording."""
    from meeteval.wer import greedy_orc_word_error_rate, orc_word_error_rate
    from meeteval.wer.wer.cp import cp_word_error_rate
    from pyannote.core import Annotation, Segment

    from hubbub.models.text import normalize_text

    def stream(texts) -> str:
        return " ".join(t for t in (normalize_text(x) for x in texts) if t)

    refs = [stream(texts) for texts in rec["texts"]]
    hyps = [stream(text for _, _, text in sorted(segs)) for segs in hyp] or [""]
    cp = cp_word_error_rate(refs, hyps)
    # speaker-agnostic: each reference utterance goes to the hypothesis stream that fits it best
    utterances = [t for t in (normalize_text(x["text"]) for x in sorted(rec["turns"], key=lambda t: t["start"])) if t]
    # the exact ORC search holds a table over every hypothesis stream at once (memory grows as the product
    # of their lengths: 4 streams of a 3-speaker recording took 22 GB); past 2 streams meeteval's greedy one
    orc = (orc_word_error_rate if len(hyps) <= 2 else greedy_orc_word_error_rate)(utterances, hyps)
    reference, hypothesis = Annotation(uri=rec["id"]), Annotation(uri=rec["id"])
    for k, t in enumerate(rec["turns"]):
        reference[Segment(t["start"], t["end"]), k] = t["speaker"]
    for s, segs in enumerate(hyp):
        for k, (a, b, _) in enumerate(segs):
            if b > a:
                hypothesis[Segment(a, b), (s, k)] = f"spk{s + 1}"
    der = der_metric(reference, hypothesis, detailed=True)
    return {"errors": cp.errors, "words": cp.length, "orc_errors": orc.errors, "speakers": len(hyp),
            "der": {k: der[k] for k in ("missed detection", "false alarm", "confusion", "total")}}


def run(records: list[dict], systems: list[str], pipes: dict, whisper) -> dict:
    from pyannote.metrics.diarization import DiarizationErrorRate

    metric = DiarizationErrorRate(collar=0.5, skip_overlap=False)
    out: dict = {}
    for system in systems:
        for rec in records:
            t0 = time.perf_counter()
            hyp = transcribe(system, rec, pipes, whisper)
            seconds = time.perf_counter() - t0
            one = score(rec, hyp, metric)
            row = out.setdefault(system, {}).setdefault(str(rec["overlap_ratio"]), {
                "errors": 0, "words": 0, "orc_errors": 0, "seconds": 0.0, "audio_s": 0.0, "recordings": 0,
                "speakers_found": [],
                "missed": 0.0, "false_alarm": 0.0, "confusion": 0.0, "ref_speech": 0.0})
            row["errors"] += one["errors"]
            row["orc_errors"] += one["orc_errors"]
            row["words"] += one["words"]
            row["seconds"] += seconds
            row["audio_s"] += rec["duration"]
            row["recordings"] += 1
            row["speakers_found"].append(one["speakers"])
            row["missed"] += one["der"]["missed detection"]
            row["false_alarm"] += one["der"]["false alarm"]
            row["confusion"] += one["der"]["confusion"]
            row["ref_speech"] += one["der"]["total"]
            log.info("%s %s: %d/%d word errors, %d speakers, DER %.1f%%, %.1f s", system, rec["id"], one["errors"],
                     one["words"], one["speakers"], 100 * (one["der"]["missed detection"] + one["der"]["false alarm"]
                                                           + one["der"]["confusion"]) / max(one["der"]["total"], 1e-9),
                     seconds)
        for row in out[system].values():
            row["cpwer"] = row["errors"] / max(row["words"], 1)
            row["orcwer"] = row["orc_errors"] / max(row["words"], 1)
            row["der"] = (row["missed"] + row["false_alarm"] + row["confusion"]) / max(row["ref_speech"], 1e-9)
            row["rtf"] = row["seconds"] / row["audio_s"]
    return out


def reading_config(fields: list[str]):
    """A :class:`~hubbub.pipeline.reading.ReadingConfig` from ``FIELD=VALUE`` strings (numbers and true/false)."""
    from hubbub.pipeline.reading import ReadingConfig

    values = {}
    for item in fields:
        key, _, value = item.partition("=")
        flag = {"true": True, "false": False}.get(value.lower())
        values[key.replace("-", "_")] = float(value) if flag is None else flag
    return ReadingConfig(**values)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a `hubbub data conversation` folder")
    p.add_argument("--systems", nargs="+", default=SYSTEMS, choices=SYSTEMS)
    p.add_argument("--separator", default=None, help="separator folder (default: the embedded model)")
    p.add_argument("--asr", default=None, help="ASR (default: hubbub's default)")
    p.add_argument("--overlap-detector", default=None, help="overlap detector (default: the embedded one; none)")
    p.add_argument("--whisper", default="whisper-base", help="faster-whisper's weights: whisper-base, whisper-tiny.en")
    p.add_argument("--reading-config", nargs="+", default=[], metavar="FIELD=VALUE",
                   help="ReadingConfig fields of whisper-reading (the tuning runs): min_unread=0")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="first N recordings of each ratio")
    p.add_argument("--out", default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from hubbub.pipeline import Pipeline

    aware = Pipeline.from_pretrained(separator=args.separator, asr=args.asr, overlap_detector=args.overlap_detector)
    pipes = {"overlap-aware": aware,
             "separate-everywhere": aware.replace(overlap_aware=False),
             "overlap-aware-no-detector": aware.replace(overlap_detector="none"),
             "whisper-reading": aware.replace(reading="whisper", reading_config=reading_config(args.reading_config))}
    whisper = (LongWhisper(args.whisper, "int8", args.threads)
               if {"faster-whisper", "faster-whisper-labelled"} & set(args.systems) else None)
    records = load_set(args.data, args.limit)
    results = run(records, args.systems, pipes, whisper)
    cmd = "python benchmarks/bench_conversation.py " + " ".join(argv if argv is not None else sys.argv[1:])
    ratios = sorted({str(r["overlap_ratio"]) for r in records}, key=float)
    n_spk = len(records[0]["speakers"]) if records else 0
    lines = [f"`{cmd}` ({args.threads} threads; {n_spk} speakers per recording)", "",
             "cpWER (meeteval) per overlap ratio, recordings per ratio in brackets:", "",
             "| system | " + " | ".join(f"{float(r):g} % ({results[args.systems[0]][r]['recordings']})"
                                       for r in ratios) + " | RTF |",
             "|---" * (len(ratios) + 2) + "|"]
    for s in args.systems:
        rtf = sum(v["seconds"] for v in results[s].values()) / sum(v["audio_s"] for v in results[s].values())
        lines.append(f"| {s} | " + " | ".join(f"{100 * results[s][r]['cpwer']:.1f}%" for r in ratios)
                     + f" | {rtf:.3f} |")
    lines += ["", "ORC-WER (meeteval, speakers ignored: each reference utterance is scored against the "
              "hypothesis stream that fits it best), the words alone:", "",
              "| system | " + " | ".join(f"{float(r):g} %" for r in ratios) + " |", "|---" * (len(ratios) + 1) + "|"]
    for s in args.systems:
        lines.append(f"| {s} | " + " | ".join(f"{100 * results[s][r]['orcwer']:.1f}%" for r in ratios) + " |")
    lines += ["", "DER (pyannote.metrics, overlap scored, +-0.25 s collar): missed + false alarm + confusion; "
              "speakers found per recording (mean):", "",
              "| system | " + " | ".join(f"{float(r):g} %" for r in ratios) + " |", "|---" * (len(ratios) + 1) + "|"]
    for s in args.systems:
        cells = []
        for r in ratios:
            v = results[s][r]
            miss, fa, conf = (100 * v[k] / v["ref_speech"] for k in ("missed", "false_alarm", "confusion"))
            cells.append(f"{100 * v['der']:.1f}% ({miss:.1f} + {fa:.1f} + {conf:.1f}; "
                         f"{np.mean(v['speakers_found']):.1f} spk)")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    write_report("\n".join(lines) + "\n", args.out, args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
