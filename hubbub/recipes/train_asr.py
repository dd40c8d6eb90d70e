"""Fine-tune a Whisper model (the ASR of every hubbub pipeline).

Usage:
    # Whisper base adapted to the separator's output: a time-frequency block (zero residual at start:
    # exactly Whisper) trained on separated voices of training speakers and on clean ones
    hubbub data mix --librispeech ../shared/data/LibriSpeech/train-clean-100 --out data/train-2mix-max-8k \\
        --n-mixtures 600 --mode max --hold-out 12 --seed 1
    hubbub data separated --mixtures data/train-2mix-max-8k --out data/train-separated-8k
    hubbub data mix --librispeech ../shared/data/LibriSpeech/train-clean-100 --out data/dev-2mix-max-8k \\
        --n-mixtures 40 --mode max --hold-out 12 --held-out-only --seed 1
    hubbub data separated --mixtures data/dev-2mix-max-8k --out data/dev-separated-8k --min-si-snr -100
    hubbub train asr --config hubbub/recipes/configs/asr-whisper-separated.yaml --threads 2

    # resume after an interruption, or train on for a longer budget
    hubbub train asr --config hubbub/recipes/configs/asr-whisper-separated.yaml --resume --max-minutes 240

    # all of Whisper base on LibriSpeech 960 h, on GPUs, 4 processes
    torchrun --nproc_per_node 4 -m hubbub train asr \\
        --config hubbub/recipes/configs/asr-whisper-librispeech-960h.yaml --device cuda

    # your own data (a JSONL manifest of {"audio", "text"}), from a Whisper you imported
    hubbub models import /models/faster-whisper-small -o models/whisper-small
    hubbub train asr --config hubbub/recipes/configs/asr-whisper-separated.yaml --init-from models/whisper-small \\
        --exp-dir exp/asr-calls --train-data "[manifest:data/my-calls/train.jsonl]" --train-weights "[1.0]"

    # any config key can be overridden: --batch-size 16 --lr 5e-4 --trainable "[tf., encoder.layers.5.]"

Corpora are ``kind:path`` specs (``librispeech:``, ``manifest:``, ``fsdd-train:``, ``fsdd-test:``; see
:mod:`hubbub.recipes.asr_data`) with per-corpus ``train_weights``. Validation is greedy-decoding WER on
``val_data`` plus ``val_speakers`` speakers held out of each LibriSpeech training corpus; the model with
the lowest WER is exported to ``EXP_DIR/best`` (config.json, model.safetensors, the tokenizer, README.md; an
``EXP_DIR/NOTES.md`` of your own is appended to that model card), and with ``trainable`` set, the
parameters that learned alone to ``EXP_DIR/best/adapter``. The model is a Whisper model
(:mod:`hubbub.recipes.asr_task`); any other ``init_from`` is refused.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from typing import TYPE_CHECKING

from hubbub.recipes.asr_task import AsrData, AsrTask, AsrTrainConfig, load_for_training
from hubbub.recipes.config import build_configs, load_yaml, recipe_parser

if TYPE_CHECKING:  # torch and the model are imported where they run: --help imports neither
    from hubbub.models.whisper import WhisperASR

__all__ = ["AsrData", "AsrTask", "AsrTrainConfig", "build_parser", "fit", "main", "prepare", "train"]

log = logging.getLogger(__name__)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    return recipe_parser("hubbub train asr", __doc__, AsrTrainConfig, None, parser)


def prepare(cfg: AsrTrainConfig) -> tuple[WhisperASR, AsrTask]:
    """Read the data, load the Whisper model (refusing any other) and build the task."""
    data = AsrData(cfg)
    model = load_for_training(cfg)
    return model, AsrTask(cfg, data, model)


def train(cfg: AsrTrainConfig, resume: bool = False) -> dict:
    """Build the model and task from the config and run the loop."""
    return fit(cfg, *prepare(cfg), resume=resume)


def fit(cfg: AsrTrainConfig, model: WhisperASR, task: AsrTask, resume: bool = False) -> dict:
    """Run the shared training loop on a prepared model and task."""
    from hubbub.recipes.trainer import Trainer

    full = {"train": dataclasses.asdict(cfg), "model": dataclasses.asdict(model.config)}
    return Trainer(cfg, model, task, full_config=full).fit(resume=resume)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg, _ = build_configs(args, AsrTrainConfig, None, load_yaml(args.config))
        model, task = prepare(cfg)
    except (FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 2
    summary = fit(cfg, model, task, resume=args.resume)
    log.info("done: step %d, best validation WER %s", summary["step"], summary["best"])
    return 0
