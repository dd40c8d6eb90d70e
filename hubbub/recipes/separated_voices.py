"""``hubbub data separated``: an ASR training set of separated voices, each with its source's transcript.

Usage:
    hubbub data mix --librispeech ../shared/data/LibriSpeech/train-clean-100 --out data/train-2mix-max-8k \\
        --n-mixtures 1500 --mode max --hold-out 12 --seed 1
    hubbub data separated --mixtures data/train-2mix-max-8k --out data/train-separated-8k
    hubbub train asr --config hubbub/recipes/configs/asr-whisper-separated.yaml \\
        --train-data "[librispeech:..., manifest:data/train-separated-8k/manifest.jsonl, ...]"

An ASR trained on clean voices meets, behind the separator, voices with the separator's artefacts and
the other talker's leakage. This command runs the separator the way ``hubbub transcribe`` does
(:meth:`~hubbub.pipeline.Pipeline.separate_file`) on every mixture of a ``hubbub data mix`` set, gives
each separated voice the transcript of the true source it matches (the SI-SNR permutation) and writes
``<out>/<mixture id>_s<k>.flac`` plus ``<out>/manifest.jsonl`` (``{"id", "audio", "text", "speaker",
"duration", "si_snr"}``), which ``hubbub train asr`` reads as ``manifest:<out>/manifest.jsonl``.
Voices whose SI-SNR against their source is below ``--min-si-snr`` dB are left out: their transcript
is no longer what they hold. A rerun skips the mixtures listed in ``<out>/mixtures.done``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
DONE = "mixtures.done"  # ids of the mixtures already separated


def separate_for_asr(
    mixtures: str | os.PathLike,
    out: str | os.PathLike,
    separator: str | os.PathLike | None = None,
    min_si_snr: float = 0.0,
    limit: int | None = None,
) -> list[dict]:
    """Separate a ``hubbub data mix`` set into transcribed voices; returns the manifest's records."""
    import torch
    from tqdm import tqdm

    from hubbub.models.losses import best_permutation, si_snr
    from hubbub.pipeline import Pipeline
    from hubbub.pipeline.audio import AudioError, load_audio
    from hubbub.pipeline.writers import write_audio, write_text
    from hubbub.recipes.manifest import read_manifest

    out = Path(out)
    source = Path(mixtures) / MANIFEST if Path(mixtures).is_dir() else Path(mixtures)
    items = [it for it in read_manifest(source) if it.texts is not None][:limit]
    if not items:
        raise ValueError(f"{mixtures}: no transcribed mixtures (make them with `hubbub data mix`)")
    manifest, done_file = out / MANIFEST, out / DONE
    records = {}
    if manifest.is_file():
        records = {r["id"]: r for r in map(json.loads, manifest.read_text().splitlines())}
    done = set(done_file.read_text().split()) if done_file.is_file() else set()
    pipe = Pipeline.from_pretrained(separator=separator, transcribe=False, label_speakers=False)
    kept = left_out = 0
    for item in tqdm([it for it in items if it.id not in done], desc="data separated", unit="mix", disable=None):
        try:
            sep = pipe.separate_file(item.mixture)
            refs = [load_audio(s, sample_rate=sep.sample_rate)[0] for s in item.sources]
        except AudioError as err:
            log.warning("skipping %s", err)
            continue
        n = min(sep.sources.shape[-1], *(r.shape[-1] for r in refs))
        refs = torch.stack([r[:n] for r in refs])
        _, perm = best_permutation(sep.sources[:, :n], refs)
        for k, (text, speaker) in enumerate(zip(item.texts, item.speakers or [None] * len(item.texts))):
            score = float(si_snr(sep.sources[perm[k], :n], refs[k]))
            if score < min_si_snr:
                left_out += 1
                continue
            name = f"{item.id}_s{k + 1}.flac"
            write_audio(out / name, sep.sources[perm[k]], sep.sample_rate)
            records[name[:-5]] = {"id": name[:-5], "audio": name, "text": text, "speaker": speaker,
                                  "duration": round(sep.sources.shape[-1] / sep.sample_rate, 4),
                                  "si_snr": round(score, 2)}
            kept += 1
        write_text(manifest, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records.values()))
        with open(done_file, "a", encoding="utf-8") as f:  # after the manifest: a killed run redoes one mixture
            f.write(item.id + "\n")
    log.info("%s: %d voices (%d new, %d below %.1f dB left out)", manifest, len(records), kept, left_out,
             min_si_snr)
    return list(records.values())


def main(argv: list[str] | None = None) -> int:
    """``hubbub data separated --mixtures DIR --out DIR``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "separated":
        argv = argv[1:]
    p = argparse.ArgumentParser(prog="hubbub data separated", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mixtures", required=True, help="a `hubbub data mix` folder (or its manifest.jsonl)")
    p.add_argument("--out", required=True)
    p.add_argument("--separator", help="separator folder or embedded name (default: the embedded model)")
    p.add_argument("--min-si-snr", type=float, default=0.0, help="leave out voices below this SI-SNR (dB)")
    p.add_argument("--limit", type=int, help="the first N mixtures only")
    p.add_argument("--threads", type=int, default=None)
    try:
        args = p.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        separate_for_asr(args.mixtures, args.out, args.separator, args.min_si_snr, args.limit)
    except (FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
