"""Train the Speech-Transformer ASR.

Usage:
    # the offline default model (8 kHz): LibriSpeech train-clean-100 + TTS renderings + FSDD digits
    hubbub data synth --out data/synth-8k --jobs 2
    hubbub train asr --config hubbub/recipes/configs/asr-default.yaml

    # resume after an interruption, or train on for a longer budget
    hubbub train asr --config hubbub/recipes/configs/asr-default.yaml --resume --max-minutes 240

    # LibriSpeech 100 h / 960 h on GPUs, 4 processes
    torchrun --nproc_per_node 4 -m hubbub train asr --config hubbub/recipes/configs/asr-librispeech-960h.yaml \
        --device cuda

    # Whisper's weights adapted to separated voices: see hubbub/recipes/whisper_finetune.py
    hubbub train asr --config hubbub/recipes/configs/asr-whisper-separated.yaml

    # fine-tune a trained model (its tokenizer is kept) on other data
    hubbub train asr --config hubbub/recipes/configs/asr-default.yaml --init-from checkpoints/asr-default/best \
        --exp-dir exp/asr-finetune --train-data "[manifest:data/my-calls/train.jsonl]"

    # any config key can be overridden: --batch-size 16 --lr 5e-4 --model-d-model 256 --model-tokenizer char

Corpora are ``kind:path`` specs (``librispeech:``, ``manifest:``, ``fsdd-train:``, ``fsdd-test:``; see
:mod:`hubbub.recipes.asr_data`) with per-corpus ``train_weights``. Validation is greedy-decoding WER on
``val_data`` plus ``val_speakers`` speakers held out of each LibriSpeech training corpus; the model with
the lowest WER is exported to ``EXP_DIR/best`` (config.json, model.safetensors, the tokenizer, README.md; an
``EXP_DIR/NOTES.md`` of your own is appended to that model card).
The sentencepiece tokenizer is trained once on the training transcripts (and ``tokenizer_text``) and kept
in ``EXP_DIR/tokenizer``, so a resumed run uses the same pieces.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from typing import TYPE_CHECKING

from hubbub.models.configs import ASRConfig
from hubbub.recipes.asr_task import AsrData, AsrTask, AsrTrainConfig, build_tokenizer
from hubbub.recipes.config import build_configs, load_yaml, recipe_parser
from hubbub.recipes.whisper_finetune import WhisperTask, load_for_training

if TYPE_CHECKING:  # torch and the model are imported where they run: --help imports neither
    from hubbub.models.asr import SpeechTransformer

__all__ = ["AsrData", "AsrTask", "AsrTrainConfig", "build_parser", "build_tokenizer", "fit", "main", "prepare",
           "train"]

log = logging.getLogger(__name__)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    return recipe_parser("hubbub train asr", __doc__, AsrTrainConfig, ASRConfig, parser)


def _is_whisper(name_or_path: str) -> bool:
    from hubbub.models.loading import model_type, resolve_model_dir

    return model_type(resolve_model_dir(name_or_path)) == "hubbub-whisper"


def prepare(cfg: AsrTrainConfig, model_cfg: ASRConfig) -> tuple[SpeechTransformer, AsrTask]:
    """Read the data, build (or load) the tokenizer and the model, and the task."""
    import torch

    from hubbub.models.asr import SpeechTransformer

    data = AsrData(cfg)
    if cfg.init_from and _is_whisper(cfg.init_from):
        model = load_for_training(cfg)
        return model, WhisperTask(cfg, data, model)
    if cfg.init_from:
        model = SpeechTransformer.from_pretrained(cfg.init_from)
        if model.tokenizer is None:
            raise ValueError(f"{cfg.init_from}: the model has no tokenizer")
        model.train()
    else:
        tok = build_tokenizer(cfg, model_cfg, data.texts())
        if (tok.kind, tok.vocab_size) != (model_cfg.tokenizer, model_cfg.vocab_size):
            log.info("model: tokenizer %s with %d tokens (config said %s, %d)", tok.kind, tok.vocab_size,
                     model_cfg.tokenizer, model_cfg.vocab_size)
            model_cfg = dataclasses.replace(model_cfg, tokenizer=tok.kind, vocab_size=tok.vocab_size)
        torch.manual_seed(cfg.seed)
        model = SpeechTransformer(model_cfg, tok)
    return model, AsrTask(cfg, data, model)


def train(cfg: AsrTrainConfig, model_cfg: ASRConfig, resume: bool = False) -> dict:
    """Build the model and task from configs and run the loop."""
    return fit(cfg, *prepare(cfg, model_cfg), resume=resume)


def fit(cfg: AsrTrainConfig, model: SpeechTransformer, task: AsrTask, resume: bool = False) -> dict:
    """Run the shared training loop on a prepared model and task."""
    from hubbub.recipes.trainer import Trainer

    full = {"train": dataclasses.asdict(cfg), "model": dataclasses.asdict(model.config)}
    return Trainer(cfg, model, task, full_config=full).fit(resume=resume)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg, model_cfg = build_configs(args, AsrTrainConfig, ASRConfig, load_yaml(args.config))
    try:
        model, task = prepare(cfg, model_cfg)
    except (FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 2
    summary = fit(cfg, model, task, resume=args.resume)
    log.info("done: step %d, best validation WER %s", summary["step"], summary["best"])
    return 0
