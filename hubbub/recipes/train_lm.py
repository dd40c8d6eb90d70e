"""``hubbub train lm``: a word n-gram language model for an ASR model's CTC beam search.

Usage:
    # the embedded default: a 3-gram of the LibriSpeech train-clean-100 transcripts, leaving out the
    # sentences of the validation speakers and of the held-out TTS test split, weights tuned on those speakers
    hubbub train lm --asr hubbub/models/pretrained/asr-8k \\
        --text ../shared/data/text/librispeech-train-clean-100.tsv \\
        --hold-out-librispeech ../shared/data/LibriSpeech/train-clean-100 --val-speakers 12 --exclude-every 50 \\
        --tune librispeech:../shared/data/LibriSpeech/train-clean-100
    # any text, fixed weights
    hubbub train lm --asr checkpoints/asr-default/best --text my-sentences.txt --lm-weight 1.0 --word-score 1.0

Writes ``<asr>/lm/`` (see :mod:`hubbub.models.lm`): ``lm.arpa.gz``, an interpolated modified
Kneser-Ney model (Chen and Goodman, 1998) estimated here in ARPA backoff form (the lower orders
use continuation counts, as KenLM's ``lmplz`` does; no pruning), ``lexicon.txt``, the ASR
tokenizer's spelling of every word, and ``lm.json``. With ``--tune``, every ``lm_weight`` x
``word_score`` of the grid is scored on those corpora (for a LibriSpeech folder, only its
``--val-speakers`` held-out speakers) and the lowest WER is kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import logging
import math
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
DEFAULT_TEXT = "../shared/data/text/librispeech-train-clean-100.tsv"
LM_WEIGHTS = (0.5, 0.75, 1.0, 1.5)
WORD_SCORES = (0.0, 1.0, 2.0)


# ------------------------------------------------------------------------------------------- estimation


def _discounts(counts: Iterable[int]) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts ``D1, D2, D3+`` from the count-of-counts (Chen and Goodman)."""
    n = Counter(min(c, 4) for c in counts)
    n1, n2, n3, n4 = (max(n[k], 1) for k in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2)
    # a tiny corpus can give a discount of 0 (no mass for unseen words): keep at least a tenth of k
    return tuple(max(0.1 * k, min(k - (k + 1) * y * nk1 / nk, k)) for k, nk, nk1 in ((1, n1, n2), (2, n2, n3),
                                                                                      (3, n3, n4)))


def kneser_ney(
    sentences: Iterable[Sequence[str]], order: int = 3, min_count: int = 1
) -> list[dict[tuple[str, ...], tuple[float, float]]]:
    """Interpolated modified Kneser-Ney estimates of every seen n-gram.

    ``min_count`` > 1 prunes: n-grams of two or more words seen fewer times are left to the backoff
    (a listed n-gram's prefix and suffix were seen at least as often, so they stay listed too).
    Returns, per order ``n = 1..order`` (index ``n - 1``), ``ngram -> (log10 p, log10 backoff)``:
    the ARPA backoff form, where an unseen ``w`` after context ``h`` gets ``backoff(h) * p(w | h[1:])``,
    with ``backoff(h) = (1 - sum of p(w | h) over the listed w) / (1 - sum of p(w | h[1:]) over them)``
    so that every distribution sums to one. ``<unk>`` gets the uniform share of the unigram
    distribution's held-back mass.
    """
    if order < 1:
        raise ValueError(f"order must be at least 1, got {order}")
    raw = [Counter() for _ in range(order)]  # raw[n-1]: counts of n-grams
    for words in sentences:
        toks = [BOS, *words, EOS]
        for n in range(1, order + 1):
            for i in range(len(toks) - n + 1):
                raw[n - 1][tuple(toks[i : i + n])] += 1
    if not raw[0]:
        raise ValueError("no text to estimate a language model from")
    # adjusted counts: raw at the top order and for n-grams that start a sentence, else the number of
    # distinct words seen before it (continuation counts)
    adjusted = [Counter() for _ in range(order)]
    adjusted[-1] = raw[-1]
    for n in range(order - 1, 0, -1):
        for gram in raw[n]:
            adjusted[n - 1][gram[1:]] += 1
        for gram, c in raw[n - 1].items():
            if gram[0] == BOS:
                adjusted[n - 1][gram] = c
    adjusted[0].pop((BOS,), None)
    vocab = len(adjusted[0]) + 1  # + <unk>
    probs: list[dict[tuple[str, ...], float]] = []
    for n in range(1, order + 1):
        counts = adjusted[n - 1]
        d = _discounts(counts.values())
        totals: dict[tuple[str, ...], float] = defaultdict(float)
        held: dict[tuple[str, ...], float] = defaultdict(float)
        for gram, c in counts.items():
            totals[gram[:-1]] += c
            held[gram[:-1]] += d[min(c, 3) - 1]
        p = {}
        for gram, c in counts.items():
            if n > 1 and raw[n - 1][gram] < min_count:
                continue
            h = gram[:-1]
            lower = probs[-1][gram[1:]] if n > 1 else 1.0 / vocab
            p[gram] = (c - d[min(c, 3) - 1]) / totals[h] + held[h] / totals[h] * lower
        if n == 1:
            p[(UNK,)] = held[()] / totals[()] / vocab
        probs.append(p)
    # backoff weights from what is listed (exact normalisation, pruned or not)
    listed: dict[tuple[str, ...], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for n in range(2, order + 1):
        for gram, pr in probs[n - 1].items():
            sums = listed[gram[:-1]]
            sums[0] += pr
            sums[1] += probs[n - 2][gram[1:]]
    out = []
    for n in range(1, order + 1):
        table = {}
        for gram, pr in probs[n - 1].items():
            sums = listed.get(gram) if n < order else None
            bo = max(1.0 - sums[0], 0.0) / max(1.0 - sums[1], 1e-12) if sums else 1.0
            table[gram] = (math.log10(pr), _log10(bo))
        if n == 1:
            sums = listed.get((BOS,))
            bo = max(1.0 - sums[0], 0.0) / max(1.0 - sums[1], 1e-12) if sums else 1.0
            table[(BOS,)] = (-99.0, _log10(bo))
        out.append(table)
    return out


def _log10(x: float) -> float:
    return math.log10(x) if x > 0 else -99.0


def write_arpa(tables: list[dict[tuple[str, ...], tuple[float, float]]], path: str | os.PathLike) -> None:
    """Write :func:`kneser_ney`'s tables as a gzipped ARPA file (KenLM's tab-separated layout)."""
    from hubbub.pipeline.writers import atomic_path

    order = len(tables)
    with atomic_path(path) as tmp, gzip.open(tmp, "wt", encoding="utf-8") as f:
        f.write("\\data\\\n")
        for n, table in enumerate(tables, 1):
            f.write(f"ngram {n}={len(table)}\n")
        for n, table in enumerate(tables, 1):
            f.write(f"\n\\{n}-grams:\n")
            for gram in sorted(table):
                lp, bo = table[gram]
                f.write(f"{lp:.5f}\t{' '.join(gram)}" + (f"\t{bo:.5f}\n" if n < order else "\n"))
        f.write("\n\\end\\\n")


# ---------------------------------------------------------------------------------------------- data


def lm_sentences(text: str | os.PathLike, exclude_every: int = 0, exclude_speakers: set[str] | None = None,
                 limit: int | None = None) -> tuple[list[list[str]], int]:
    """Normalised word lists of a text file (``id<TAB>text`` or plain lines) and how many were left out:
    every ``exclude_every``-th (the ``hubbub data synth`` test split's sentences) and those whose
    LibriSpeech id names a speaker of ``exclude_speakers``."""
    from hubbub.models.tokenizer import normalize_text
    from hubbub.recipes.asr_data import read_sentences

    kept, left_out = [], 0
    for index, (utt, sentence) in enumerate(read_sentences(text, limit)):
        if (exclude_every and index % exclude_every == exclude_every - 1) or \
                (exclude_speakers and utt.split("-")[0] in exclude_speakers):
            left_out += 1
            continue
        words = normalize_text(sentence).split()
        if words:
            kept.append(words)
    return kept, left_out


def _held_out_speakers(librispeech: str | None, n: int) -> set[str]:
    if not librispeech or not n:
        return set()
    from hubbub.recipes.data import read_librispeech, split_speakers

    return {u.speaker for u in split_speakers(read_librispeech(librispeech), n)[1]}


def _tuning_set(specs: Sequence[str], val_speakers: int, limit: int | None):
    """``(audio path, text)`` of the corpora to tune on: for a LibriSpeech folder, its held-out speakers."""
    from hubbub.recipes.asr_data import load_corpus, parse_spec
    from hubbub.recipes.data import split_speakers

    items = []
    for spec in specs:
        examples = load_corpus(spec)
        if parse_spec(spec)[0] == "librispeech" and val_speakers:
            examples = split_speakers(examples, val_speakers)[1]
        items += [(e.audio, e.text) for e in examples[:limit]]
    return items


def tune(model, items, lm_weights=LM_WEIGHTS, word_scores=WORD_SCORES) -> tuple[dict, list[dict]]:
    """WER of every ``lm_weight`` x ``word_score`` on ``items``; returns the best settings and all rows."""
    from hubbub.models.decoding import decode, inference
    from hubbub.pipeline.audio import load_audio
    from hubbub.pipeline.metrics import wer

    log_probs, refs, greedy = [], [], []
    with inference(model):
        for path, text in items:
            wav, _ = load_audio(path, sample_rate=model.sample_rate)
            memory, lengths, _ = model.encode(wav[None])
            log_probs.append(model.ctc_log_probs(memory)[0, : int(lengths[0])])
            refs.append(text)
            greedy.append(decode(model, wav[None], ctc_weight=1.0, lm=False, word_timestamps=False)[0].text)
    rows = [{"lm_weight": None, "word_score": None, "wer": wer(refs, greedy).wer}]
    log.info("greedy CTC: WER %.1f%%", 100 * rows[0]["wer"])
    for lm_weight in lm_weights:
        for word_score in word_scores:
            lm = model.lm.with_config(lm_weight=lm_weight, word_score=word_score)
            hyps = [model.tokenizer.decode(lm.search(lp)[0]) for lp in log_probs]
            rows.append({"lm_weight": lm_weight, "word_score": word_score, "wer": wer(refs, hyps).wer})
            log.info("lm_weight %.2f word_score %.1f: WER %.1f%%", lm_weight, word_score, 100 * rows[-1]["wer"])
    best = min(rows[1:], key=lambda r: r["wer"])
    return {"lm_weight": best["lm_weight"], "word_score": best["word_score"]}, rows


# ------------------------------------------------------------------------------------------ command line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hubbub train lm", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--asr", required=True, help="ASR model folder: lm/ is written into it, its tokenizer spells")
    p.add_argument("--text", default=DEFAULT_TEXT, help="id<TAB>text lines or one sentence a line")
    p.add_argument("--order", type=int, default=3)
    p.add_argument("--min-count", type=int, default=2,
                   help="n-grams of 2+ words seen fewer times are pruned (1: keep all)")
    p.add_argument("--limit", type=int, help="the first N sentences only")
    p.add_argument("--exclude-every", type=int, default=0, metavar="K",
                   help="leave out every K-th sentence (`hubbub data synth --test-every K`'s test sentences)")
    p.add_argument("--hold-out-librispeech", metavar="DIR",
                   help="leave out the sentences of this LibriSpeech folder's --val-speakers held-out speakers")
    p.add_argument("--val-speakers", type=int, default=12)
    p.add_argument("--lm-weight", type=float, default=1.0)
    p.add_argument("--word-score", type=float, default=1.0)
    p.add_argument("--beam-size", type=int, default=50)
    p.add_argument("--tune", nargs="+", metavar="SPEC",
                   help="corpora (asr recipe specs) to pick --lm-weight and --word-score on")
    p.add_argument("--tune-limit", type=int, default=48, help="utterances per tuning corpus")
    p.add_argument("--threads", type=int, default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    """``hubbub train lm --asr DIR ...``."""
    args = build_parser().parse_args(argv)  # before the model imports: --help stays light
    from hubbub.models.asr import SpeechTransformer
    from hubbub.models.lm import ARPA, LEXICON, LM_DIR, LM_JSON, LMConfig, NgramLM, write_lexicon

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        model = SpeechTransformer.from_pretrained(args.asr)
        if model.tokenizer is None:
            raise ValueError(f"{args.asr}: the model has no tokenizer")
        held = _held_out_speakers(args.hold_out_librispeech, args.val_speakers)
        sentences, left_out = lm_sentences(args.text, args.exclude_every, held, args.limit)
        log.info("%s: %d sentences, %d left out", args.text, len(sentences), left_out)
        tables = kneser_ney(sentences, args.order, args.min_count)
    except (FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 1
    out = Path(args.asr) / LM_DIR
    out.mkdir(parents=True, exist_ok=True)
    write_arpa(tables, out / ARPA)
    words = sorted(g[0] for g in tables[0] if g[0] not in (BOS, EOS, UNK))
    spelled = write_lexicon(words, model.tokenizer, out / LEXICON)
    config = LMConfig(lm_weight=args.lm_weight, word_score=args.word_score, beam_size=args.beam_size)
    meta = {"search": dataclasses.asdict(config), "order": args.order, "min_count": args.min_count,
            "text": str(args.text),
            "sentences": len(sentences), "left_out": left_out, "exclude_every": args.exclude_every,
            "held_out_speakers": sorted(held), "ngrams": [len(t) for t in tables], "lexicon_words": spelled}
    (out / LM_JSON).write_text(json.dumps(meta, indent=2) + "\n")
    log.info("%s: %s n-grams, %d words in the lexicon", out / ARPA, meta["ngrams"], spelled)
    if args.tune:
        model.lm = NgramLM(out, model.tokenizer)
        best, rows = tune(model, _tuning_set(args.tune, args.val_speakers, args.tune_limit))
        meta["search"].update(best)
        meta["tuning"] = {"corpora": args.tune, "limit": args.tune_limit, "rows": rows}
        (out / LM_JSON).write_text(json.dumps(meta, indent=2) + "\n")
        log.info("kept lm_weight %.2f, word_score %.1f", best["lm_weight"], best["word_score"])
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(main())
