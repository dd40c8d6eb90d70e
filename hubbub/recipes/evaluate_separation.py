"""Score a separator on mixtures with known sources.

Usage:
    # mixtures of unseen test-other speakers (made with `hubbub data mix`)
    hubbub data mix --librispeech ../shared/data/LibriSpeech/test-other --out data/test-other-2mix-8k
    hubbub evaluate separation --data data/test-other-2mix-8k --csv results/test-other-2mix-8k.csv

    # the standard Libri2Mix results (8 kHz min test; clean, noisy) of a trained experiment (its best/)
    hubbub evaluate separation --data /data/Libri2Mix --split test --mode min --mixture mix_clean --model exp/sep
    hubbub evaluate separation --data /data/Libri2Mix --split test --mode min --mixture mix_both --model exp/sep
    # Libri3Mix (a root holding Libri3Mix/, or the Libri3Mix root itself), with a 3-speaker model
    hubbub evaluate separation --data /data --n-src 3 --split test --mixture mix_clean --model exp/sep3

    # a JSONL manifest ({"mix", "s1", "s2"} or {"mixture", "sources"} records)
    hubbub evaluate separation --data ../shared/data/speechbrain-samples/separation_manifest.jsonl

    # the same mixtures with real noise added at 10 dB SNR
    hubbub evaluate separation --data data/test-other-2mix-8k --noise-dir ../shared/data/noise --snr 10

Prints SI-SNRi and SDRi (means over mixtures, as the published LibriMix tables give them) and writes one
CSV row per mixture. A LibriMix folder is read at the model's rate (``wav8k`` for an 8 kHz model); without
``--split``/``--mode``/``--mixture``/``--n-src`` a folder holding a ``manifest.jsonl`` is read from that,
and other folders default to ``test``/``min``/``mix_clean`` (the log line says which part was scored).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hubbub.pipeline.defaults import DEFAULT_CHUNK_SECONDS, DEFAULT_OVERLAP_SECONDS

if TYPE_CHECKING:  # torch is imported where it is used, so that --help stays light
    import torch

__all__ = ["MixtureScore", "evaluate_separation", "load_mixtures", "main", "score_mixture"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MixtureScore:
    """Scores of one mixture (dB); ``*_i`` are improvements over the mixture."""

    id: str
    duration: float
    si_snr: float
    si_snri: float
    sdr: float
    sdri: float
    seconds: float  # processing time

    @property
    def rtf(self) -> float:
        return self.seconds / self.duration if self.duration else float("nan")


@dataclass(frozen=True)
class EvalItem:
    id: str
    mixture: str
    sources: tuple[str, ...]


def load_mixtures(data: str | Path, sample_rate: int = 8000, librimix: dict | None = None) -> list[EvalItem]:
    """Mixtures with their sources from a manifest, a folder with ``manifest.jsonl``, or a LibriMix-layout
    folder (read at ``sample_rate``); ``librimix`` (``split``, ``mode``, ``mixture``, ``n_src``) reads the
    LibriMix layout even where a manifest is."""
    from hubbub.recipes.librimix_reader import librimix_eval_set
    from hubbub.recipes.manifest import MANIFEST, read_manifest

    data = Path(data)
    if librimix is None and (data.is_file() or (data / MANIFEST).is_file()):
        items = read_manifest(data if data.is_file() else data / MANIFEST)
        for item in items:
            for f in (item.mixture, *item.sources):
                if not Path(f).is_file():
                    raise FileNotFoundError(f"{f}: not found")
        return [EvalItem(m.id, m.mixture, m.sources) for m in items]
    items = librimix_eval_set(data, sample_rate=sample_rate, **(librimix or {}))
    return [EvalItem(m.id, str(m.mixture), tuple(str(s) for s in m.sources)) for m in items]


def _sdr(refs: np.ndarray, ests: np.ndarray) -> np.ndarray:
    """BSS Eval SDR per source (best permutation), via fast_bss_eval."""
    import fast_bss_eval

    sdr, _, _, _ = fast_bss_eval.bss_eval_sources(refs.astype(np.float64), ests.astype(np.float64))
    return np.asarray(sdr)


def score_mixture(mix: torch.Tensor, sources: torch.Tensor, estimates: torch.Tensor) -> dict[str, float]:
    """SI-SNR, SDR and their improvements; ``sources``/``estimates`` are ``(n_src, T)``."""
    from hubbub.models.losses import best_permutation, si_snr

    est, _ = best_permutation(estimates, sources)
    s_est = si_snr(est, sources).mean().item()
    s_mix = si_snr(mix.expand_as(sources), sources).mean().item()
    refs = sources.numpy()
    d_est = float(_sdr(refs, estimates.numpy()).mean())
    d_mix = float(_sdr(refs, np.repeat(mix.numpy()[None], len(refs), 0)).mean())
    return {"si_snr": s_est, "si_snri": s_est - s_mix, "sdr": d_est, "sdri": d_est - d_mix}


def evaluate_separation(
    items: list[EvalItem],
    model,
    chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS,
    device: str = "cpu",
    noises: list[np.ndarray] | None = None,
    snr_db: float = 10.0,
    progress: bool = True,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
) -> list[MixtureScore]:
    """Separate each mixture with the one streaming separator that ``hubbub separate``
    and ``hubbub transcribe`` use (:func:`~hubbub.pipeline.separate.separate_waveform`,
    which only keeps the voices in memory instead of writing them) and score it."""
    import torch
    from tqdm.auto import tqdm

    from hubbub.pipeline.audio import load_audio
    from hubbub.pipeline.separate import separate_waveform
    from hubbub.recipes.data import add_noise

    scores = []
    for n, item in enumerate(tqdm(items, desc="evaluate", disable=not progress)):
        mix, sr = load_audio(item.mixture)
        sources = torch.stack([load_audio(s, sample_rate=sr)[0] for s in item.sources])
        length = min(mix.shape[-1], sources.shape[-1])
        mix, sources = mix[:length], sources[:, :length]
        if noises:
            mix = add_noise(mix, noises, snr_db, seed=n)
        t0 = time.perf_counter()
        est = separate_waveform(model, mix, sr, chunk_seconds, overlap_seconds, device)
        seconds = time.perf_counter() - t0
        if est.shape[0] != sources.shape[0]:
            raise ValueError(f"{item.id}: model gives {est.shape[0]} sources, data has {sources.shape[0]}")
        s = score_mixture(mix, sources, est)
        scores.append(MixtureScore(item.id, length / sr, s["si_snr"], s["si_snri"], s["sdr"], s["sdri"], seconds))
    return scores


def summarize(scores: list[MixtureScore]) -> dict[str, float]:
    def mean(key):
        return statistics.fmean(getattr(s, key) for s in scores)

    total = sum(s.duration for s in scores)
    return {
        "mixtures": len(scores),
        "si_snri": mean("si_snri"),
        "si_snri_median": statistics.median(s.si_snri for s in scores),
        "sdri": mean("sdri"),
        "si_snr": mean("si_snr"),
        "sdr": mean("sdr"),
        "audio_seconds": total,
        "rtf": sum(s.seconds for s in scores) / total if total else float("nan"),
    }


def write_csv(scores: list[MixtureScore], path: Path) -> None:
    from hubbub.pipeline.writers import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "duration", "si_snr", "si_snri", "sdr", "sdri", "seconds", "rtf"])
        for s in scores:
            w.writerow([s.id, f"{s.duration:.3f}", f"{s.si_snr:.3f}", f"{s.si_snri:.3f}", f"{s.sdr:.3f}",
                        f"{s.sdri:.3f}", f"{s.seconds:.3f}", f"{s.rtf:.4f}"])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hubbub evaluate separation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="manifest.jsonl, a folder holding one, or a LibriMix-layout folder")
    p.add_argument("--split", choices=["test", "dev", "train-100", "train-360"], default=None,
                   help="LibriMix split (default: test)")
    p.add_argument("--mode", choices=["min", "max"], default=None, help="LibriMix mode (default: min)")
    p.add_argument("--mixture", choices=["mix_clean", "mix_both", "mix_single"], default=None,
                   help="LibriMix mixture type (default: mix_clean); the targets are s1..sN (s1 for mix_single)")
    p.add_argument("--n-src", type=int, default=None, help="speakers: 3 reads Libri3Mix (default: the s* folders)")
    p.add_argument("--model", default=None,
                   help="separator: a model folder, a training experiment (its best/) or an embedded name "
                        "(default: separator-8k)")
    p.add_argument("--csv", default=None, help="per-mixture results CSV")
    p.add_argument("--json", default=None, help="write the summary as JSON")
    p.add_argument("--limit", type=int, default=None, help="only the first N mixtures")
    p.add_argument("--chunk-seconds", type=float, default=DEFAULT_CHUNK_SECONDS)
    p.add_argument("--window", default=None, metavar="global|local:W",
                   help="the separator's inter-chunk attention (default: as saved; 'local' is local:16)")
    p.add_argument("--overlap-seconds", type=float, default=DEFAULT_OVERLAP_SECONDS, help="overlap between windows")
    p.add_argument("--noise-dir", default=None, help="add real noise from this folder to each mixture")
    p.add_argument("--snr", type=float, default=10.0, help="SNR (dB) of the added noise")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch  # after parsing: --help stays light

    from hubbub.models.loading import resolve_model_dir
    from hubbub.pipeline.audio import AudioError
    from hubbub.pipeline.separate import DEFAULT_SEPARATOR, load_separator

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model_dir = resolve_model_dir(args.model or DEFAULT_SEPARATOR)
    except FileNotFoundError as err:
        log.error("--model %s", err)
        return 2
    try:
        model = load_separator(str(model_dir), device=args.device, window=args.window)
    except ValueError as err:
        log.error("%s", err)
        return 2
    part = {"split": args.split, "mode": args.mode, "mixture": args.mixture, "n_src": args.n_src}
    librimix = None
    if any(v is not None for v in part.values()):
        defaults = {"split": "test", "mode": "min", "mixture": "mix_clean", "n_src": None}
        librimix = {k: defaults[k] if v is None else v for k, v in part.items()}
    try:
        items = load_mixtures(args.data, model.config.sample_rate, librimix)[: args.limit]
    except (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError) as err:
        log.error("%s: cannot read evaluation data (%s)", args.data, err)
        return 2
    if not items:
        log.error("%s: no mixtures found", args.data)
        return 2
    if len(items[0].sources) != model.config.n_src:
        log.error("%s: %d sources a mixture, but the model %s separates %d", args.data, len(items[0].sources),
                  model_dir, model.config.n_src)
        return 2
    part = Path(items[0].mixture).parent  # the folder scored, relative to --data when inside it
    if part.is_relative_to(Path(args.data).resolve()):
        part = part.relative_to(Path(args.data).resolve())
    log.info("%s: %d mixtures from %s, model %s", args.data, len(items), part, model_dir)
    noises = []
    if args.noise_dir:
        from hubbub.recipes.data import load_noises

        noises = load_noises(args.noise_dir, load_audio_rate(items[0].mixture))
    try:
        scores = evaluate_separation(items, model, args.chunk_seconds or None, args.device, noises, args.snr,
                                     progress=not args.quiet, overlap_seconds=args.overlap_seconds)
    except (AudioError, ValueError) as err:
        log.error("%s", err)
        return 1
    summary = summarize(scores)
    if args.csv:
        write_csv(scores, Path(args.csv))
    if args.json:
        from hubbub.pipeline.writers import write_text

        write_text(args.json, json.dumps({"data": str(args.data), "part": str(part),
                                          "model": str(model_dir), "noise_snr": args.snr if noises else None,
                                          **summary}, indent=2) + "\n")
    log.info(
        "%s: %d mixtures, SI-SNRi %.2f dB (median %.2f), SDRi %.2f dB, RTF %.3f%s",
        args.data, summary["mixtures"], summary["si_snri"], summary["si_snri_median"], summary["sdri"],
        summary["rtf"], f", noise at {args.snr:g} dB SNR" if noises else "",
    )
    return 0


def load_audio_rate(path: str) -> int:
    from hubbub.pipeline.audio import probe_audio

    return probe_audio(path).sample_rate
