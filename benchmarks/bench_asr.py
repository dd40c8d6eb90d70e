"""Word error rate and speed of hubbub's ASR beside pocketsphinx and faster-whisper, in one run.

Usage:
    pip install -e ".[bench]"      # pocketsphinx, faster-whisper
    # the port is exact: hubbub's imported Whisper base against faster-whisper on the same weights, greedy,
    # both float32, 60 test-other utterances; --same-text reports the share of identical transcripts
    python benchmarks/bench_asr.py --data ../shared/data/LibriSpeech/test-other --limit 60 --asr whisper-base \
        --systems hubbub-full fw-base-float32 --same-text hubbub-full fw-base-float32 --threads 1
    # LibriSpeech test-other (real speech, unseen speakers) and FSDD test digits (index 0-4)
    python benchmarks/bench_asr.py --data ../shared/data/LibriSpeech/test-other \
        fsdd-test:../shared/data/fsdd/recordings --threads 2 --out docs/notes/runs/asr-bench.md
    # held-out TTS voices (the synth test split) with a given hubbub model
    python benchmarks/bench_asr.py --data data/synth-8k/test.jsonl --systems hubbub fw-base-int8 --beam-size 5

Every system hears the same audio: hubbub at its model's rate, pocketsphinx and Whisper at
16 kHz (resampled from the file). References and hypotheses go through the one text normaliser,
``hubbub.models.text.normalize_text`` (upper case, letters and apostrophes, numbers spelled out); WER is
jiwer's. RTF = processing seconds per second of audio, with ``--threads`` CPU threads.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np
import torch
from _common import write_report

log = logging.getLogger("bench_asr")


class HubbubASR:
    """hubbub's ASR through :func:`hubbub.models.decoding.decode` with the given
    :class:`~hubbub.models.decoding.DecodingOptions` fields. ``precision``: the Whisper decoder's linear layers
    (``hubbub transcribe --asr-precision``)."""

    def __init__(self, path: str | None, name: str = "hubbub", precision: str = "float16",
                 encoder_window: int | None = None, **options) -> None:
        from hubbub.models.decoding import DecodingOptions
        from hubbub.pipeline.loaders import load_asr

        self.model = load_asr(path, window=f"local:{encoder_window}" if encoder_window else None,
                              precision=precision)
        self.rate = self.model.sample_rate
        self.name = name
        self.options = DecodingOptions(word_timestamps=False, **options)

    def __call__(self, wav: np.ndarray) -> str:
        from hubbub.models.decoding import decode

        return decode(self.model, torch.from_numpy(wav), options=self.options)[0].text


class PocketSphinx:
    name = "pocketsphinx"
    rate = 16000

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self.decoder = Decoder(loglevel="FATAL")

    def __call__(self, wav: np.ndarray) -> str:
        pcm = (np.clip(wav, -1, 1) * 32767).astype(np.int16).tobytes()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


def ct2_folder(name: str) -> str:
    """A CTranslate2 folder of an installed Whisper package (``whisper-base``: its two parts joined, once)."""
    import shutil
    import tempfile
    from pathlib import Path

    from hubbub.models.whisper_import import KNOWN_WHISPER, _package_dir

    source = KNOWN_WHISPER[name]
    files = _package_dir(source.files[0]) / source.files[1]
    if len(source.parts) == 1:
        return str(files)
    out = Path(tempfile.gettempdir()) / f"hubbub-bench-ct2-{name}"
    if not (out / "model.bin").is_file():
        out.mkdir(parents=True, exist_ok=True)
        for f in files.iterdir():
            if not f.name.startswith("model.bin"):
                shutil.copyfile(f, out / f.name)
        with open(out / "model.bin.tmp", "wb") as dst:
            for module, rel in source.parts:
                with open(_package_dir(module) / rel, "rb") as src:
                    shutil.copyfileobj(src, dst)
        (out / "model.bin.tmp").rename(out / "model.bin")
    return str(out)


class FasterWhisper:
    """faster-whisper (CTranslate2) on the same weights, transcribing without timestamps, greedy unless
    ``beam_size``, no temperature fallback, no VAD, no conditioning on earlier text: the search hubbub runs."""

    rate = 16000

    def __init__(self, model: str, compute_type: str, threads: int, beam_size: int = 1) -> None:
        from faster_whisper import WhisperModel

        self.name = f"fw-{model.removeprefix('whisper-')}-{compute_type}"
        self.model = WhisperModel(ct2_folder(model), device="cpu", compute_type=compute_type, cpu_threads=threads)
        self.beam_size = beam_size

    def __call__(self, wav: np.ndarray) -> str:
        segments, _ = self.model.transcribe(
            wav.astype(np.float32), language="en", beam_size=self.beam_size, temperature=0.0,
            condition_on_previous_text=False, without_timestamps=True, vad_filter=False, no_speech_threshold=None,
        )
        return " ".join(s.text.strip() for s in segments)


def build_system(name: str, asr: str | None, threads: int, beam_size: int = 1,
                 input_padding: float | None = None, encoder_window: int = 64):
    """One system by its name (see ``--systems``): a callable ``wav -> text`` with ``name`` and ``rate``."""
    if name.startswith("fw-"):
        model, compute = name[3:].rsplit("-", 1)
        return FasterWhisper(f"whisper-{model}", compute, threads, beam_size)
    if name == "pocketsphinx":
        return PocketSphinx()
    search = {"beam_size": beam_size}
    if input_padding is not None:
        search["input_padding"] = input_padding
    variants = {"hubbub": {}, "hubbub-int8": {"precision": "int8"},
                "hubbub-fp32": {"precision": "float32"}, "hubbub-full": {"input_padding": None},
                "hubbub-local": {"encoder_window": encoder_window}}
    if name not in variants:
        raise SystemExit(f"unknown system {name!r}")
    return HubbubASR(asr, name=name, **{**search, **variants[name]})


def load_examples(specs: list[str], limit: int | None):
    from hubbub.recipes.asr_data import even_subset, load_corpus

    sets = {}
    for spec in specs:
        examples = even_subset(load_corpus(spec), limit)
        sets[spec] = examples
        log.info("%s: %d utterances", spec, len(examples))
    return sets


def run(systems, sets) -> tuple[dict, dict]:
    """``(scores, transcripts)`` keyed by ``(corpus, system)``."""
    from hubbub.pipeline.audio import load_audio
    from hubbub.pipeline.metrics import wer

    results, texts = {}, {}
    for spec, examples in sets.items():
        for system in systems:
            refs, hyps, seconds, audio = [], [], 0.0, 0.0
            texts[(spec, system.name)] = hyps
            for ex in examples:
                wav, sr = load_audio(ex.audio, sample_rate=system.rate)
                t0 = time.perf_counter()
                hyps.append(system(wav.numpy()))
                seconds += time.perf_counter() - t0
                audio += wav.shape[-1] / sr
                refs.append(ex.text)
            score = wer(refs, hyps)
            results[(spec, system.name)] = {"wer": score.wer, "errors": score.errors, "words": score.ref_words,
                                            "rtf": seconds / audio if audio else float("nan"), "audio_s": audio}
            log.info("%s / %s: WER %.1f%%, RTF %.3f", spec, system.name, 100 * score.wer,
                     results[(spec, system.name)]["rtf"])
    return results, texts


def same_text(texts: dict, spec: str, a: str, b: str) -> float:
    """Share of utterances whose normalised transcripts by systems ``a`` and ``b`` are identical."""
    from hubbub.models.text import normalize_text

    pairs = list(zip(texts[(spec, a)], texts[(spec, b)]))
    return sum(normalize_text(x) == normalize_text(y) for x, y in pairs) / max(1, len(pairs))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", required=True, help="corpora as `hubbub evaluate asr` reads them")
    p.add_argument("--asr", default=None, help="hubbub ASR folder (default: the embedded model)")
    p.add_argument("--systems", nargs="+", default=["hubbub", "pocketsphinx", "fw-base-int8"],
                   help="hubbub (its model's default decoding; a Whisper decoder's linear layers with float16 "
                        "weights), hubbub-fp32 (those in float32), hubbub-int8 (those in int8), "
                        "hubbub-full (30-s encoder input), pocketsphinx, fw-MODEL-COMPUTE (faster-whisper, MODEL "
                        "base or tiny.en, COMPUTE int8 or float32, e.g. fw-base-float32)")
    p.add_argument("--encoder-window", type=int, default=64,
                   help="hubbub-local: the Whisper encoder's local attention window, in 20-ms frames")
    p.add_argument("--same-text", nargs=2, metavar=("A", "B"), default=None,
                   help="also report the share of utterances that systems A and B transcribe identically")
    p.add_argument("--input-padding", type=float, default=None,
                   help="hubbub Whisper: seconds of padding after the speech in the encoder input (default: "
                        "DecodingOptions's)")
    p.add_argument("--beam-size", type=int, default=1, help="hubbub's decoding (default: greedy)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="N utterances of each corpus, spread evenly over it")
    p.add_argument("--out", default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    systems = []
    for name in args.systems:
        try:
            systems.append(build_system(name, args.asr, args.threads, args.beam_size,
                                        args.input_padding, args.encoder_window))
        except (ImportError, FileNotFoundError) as err:
            log.error("%s unavailable: %s", name, err)
            return 2
    results, texts = run(systems, load_examples(args.data, args.limit))
    cmd = "python benchmarks/bench_asr.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"`{cmd}` ({args.threads} threads)", "", "| corpus | " + " | ".join(
        f"{s.name} WER | {s.name} RTF" for s in systems) + " |", "|---" * (1 + 2 * len(systems)) + "|"]
    for spec in args.data:
        cells = [f"{100 * results[(spec, s.name)]['wer']:.1f}% | {results[(spec, s.name)]['rtf']:.3f}"
                 for s in systems]
        lines.append(f"| {spec} | " + " | ".join(cells) + " |")
    if args.same_text:
        a, b = args.same_text
        lines += [""] + [f"Identical transcripts, {a} vs {b}, {spec}: {100 * same_text(texts, spec, a, b):.1f}%"
                         for spec in args.data]
    write_report("\n".join(lines) + "\n", args.out, args.json, {f"{k[0]}|{k[1]}": v for k, v in results.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
