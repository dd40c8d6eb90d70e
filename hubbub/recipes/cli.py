"""``hubbub train|evaluate|data``: the recipe commands.

Usage:
    hubbub train separator --config hubbub/recipes/configs/separator-default.yaml [--resume]
    hubbub train asr --config hubbub/recipes/configs/asr-whisper-separated.yaml [--resume]
    hubbub train overlap --config hubbub/recipes/configs/overlap-default.yaml [--resume]
    hubbub evaluate separation --data data/test-other-2mix-8k [--model DIR] [--csv results.csv]
    hubbub evaluate separation --data /data/Libri2Mix --split test --mode min --mixture mix_both --model exp/sep
    hubbub evaluate asr --data ../shared/data/LibriSpeech/test-other [--model DIR]
    hubbub data mix --librispeech ../shared/data/LibriSpeech/test-other --out data/test-other-2mix-8k
    hubbub data librimix --librispeech-dir /data/LibriSpeech --wham-dir /data/wham_noise \
        --metadata-dir /data/LibriMix/metadata --out /data/Libri2Mix
    hubbub data conversation --librispeech ../shared/data/LibriSpeech/test-other --out data/test-other-conv2-16k
    hubbub data synth --out data/synth-8k --jobs 2
    hubbub data separated --mixtures data/train-2mix-max-8k --out data/train-separated-8k
    hubbub data voices --out data/voices-8k --corpus librispeech:../shared/data/LibriSpeech/train-clean-100 \
        --corpus speechocean762:../shared/data/speechocean762
    hubbub models import /models/faster-whisper-small -o models/whisper-small
"""

from __future__ import annotations

import importlib
import os
import sys

# (group, name) -> module with main(argv)
COMMANDS = {
    ("train", "separator"): "hubbub.recipes.train_separator",
    ("train", "asr"): "hubbub.recipes.train_asr",
    ("train", "overlap"): "hubbub.recipes.train_overlap",
    ("evaluate", "separation"): "hubbub.recipes.evaluate_separation",
    ("evaluate", "asr"): "hubbub.recipes.evaluate_asr",
    ("data", "mix"): "hubbub.recipes.librispeech_mixtures",
    ("data", "librimix"): "hubbub.recipes.librimix_generate",
    ("data", "conversation"): "hubbub.recipes.conversation",
    ("data", "synth"): "hubbub.recipes.synth",
    ("data", "separated"): "hubbub.recipes.separated_voices",
    ("data", "voices"): "hubbub.recipes.prepare_voices",
    ("models", "import"): "hubbub.recipes.import_model",
}

#: one line per target, for ``hubbub <group> --help``
HELP = {
    ("train", "separator"): "train the dual-path attention separator (dynamic mixing or LibriMix), resumable",
    ("train", "asr"): "fine-tune a Whisper ASR (LibriSpeech, manifests, TTS corpora, separated voices), resumable",
    ("train", "overlap"): "train the overlapped-speech detector (voices per frame) on conversation clips",
    ("evaluate", "separation"): "SI-SNRi / SDRi of a separator on mixtures with known sources",
    ("evaluate", "asr"): "word error rate of an ASR model on transcribed recordings",
    ("data", "mix"): "build evaluation mixtures from a LibriSpeech folder",
    ("data", "librimix"): "generate the official LibriMix from its metadata",
    ("data", "conversation"): "LibriCSS-like recordings of 2-3 people taking turns, 0-40 % overlap, with RTTMs",
    ("data", "synth"): "render text with the offline Debian TTS voices into an ASR corpus",
    ("data", "separated"): "separated voices of training mixtures, with their transcripts, as ASR data",
    ("data", "voices"): "the separator's voice pool decoded once at the training rate (for a GPU node)",
    ("models", "import"): "a Whisper checkpoint (CTranslate2, OpenAI, Hugging Face) into a hubbub model folder",
}


def usage(group: str) -> str:
    """``hubbub <group> --help``: the targets of a group, one line each."""
    names = sorted(n for g, n in COMMANDS if g == group)
    lines = "".join(f"  {n:<11} {HELP.get((group, n), '')}\n" for n in names)
    return (f"usage: hubbub {group} {{{','.join(names)}}} [<args>]\n\n{group} targets:\n{lines}\n"
            f"'hubbub {group} <target> --help' describes a target.\n")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    group = argv[0] if argv else ""
    names = sorted(n for g, n in COMMANDS if g == group)
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        (sys.stdout if len(argv) >= 2 else sys.stderr).write(usage(group))
        return 0 if len(argv) >= 2 else 2
    key = (group, argv[1])
    if key not in COMMANDS:
        sys.stderr.write(f"hubbub {group}: unknown {group} target {argv[1]!r}; choose from {names}\n")
        return 2
    if group == "train" and int(os.environ.get("WORLD_SIZE", "1")) > 1:  # under torchrun: rank 0 logs, with [rank N]
        from hubbub.recipes.trainer import rank_logging

        rank_logging(int(os.environ.get("RANK", "0")))
    return importlib.import_module(COMMANDS[key]).main(argv[2:])
