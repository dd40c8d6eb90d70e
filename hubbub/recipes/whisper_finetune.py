"""Fine-tuning an imported Whisper model with ``hubbub train asr --init-from whisper-base``.

Usage:
    # separated voices of training speakers (the 12 validation speakers held out), and of the held-out ones
    hubbub data mix --librispeech ../shared/data/LibriSpeech/train-clean-100 --out data/train-2mix-max-8k \\
        --n-mixtures 600 --mode max --hold-out 12 --seed 1
    hubbub data separated --mixtures data/train-2mix-max-8k --out data/train-separated-8k
    hubbub data mix --librispeech ../shared/data/LibriSpeech/train-clean-100 --out data/dev-2mix-max-8k \\
        --n-mixtures 40 --mode max --hold-out 12 --held-out-only --seed 1
    hubbub data separated --mixtures data/dev-2mix-max-8k --out data/dev-separated-8k --min-si-snr -100
    # the time-frequency block (zero residual at start: exactly Whisper) trained on them and on clean voices
    hubbub train asr --config hubbub/recipes/configs/asr-whisper-separated.yaml --threads 2

A Whisper model (``model_type`` ``hubbub-whisper``) given as ``init_from`` is trained with its own
tokenizer and task prompt: teacher-forced cross-entropy of the transcript (sentence case, as Whisper
writes) followed by end of text, on log-mel inputs padded as decoding pads them (``input_padding``).
``tf_channels`` adds the time-frequency block; ``trainable`` names the parameters that learn (prefixes
of their names: ``tf.`` is the block, ``encoder.layers.5.`` the top encoder layer); the rest stay
frozen. Validation is greedy-decoding WER (hubbub's normaliser), as ``hubbub evaluate asr`` decodes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from hubbub.recipes.asr_task import AsrTask

if TYPE_CHECKING:
    import torch

    from hubbub.models.whisper import WhisperASR
    from hubbub.recipes.asr_task import AsrData, AsrTrainConfig  # noqa: F401

__all__ = ["WhisperTask", "load_for_training", "whisper_text"]

log = logging.getLogger(__name__)


def whisper_text(text: str) -> str:
    """A transcript as Whisper writes one: a leading space, sentence case (LibriSpeech is upper case)."""
    text = " ".join(text.split())
    if text.isupper() or not any(c.isupper() for c in text):
        text = text.lower()
        text = text[:1].upper() + text[1:]
        text = " ".join("I" if w == "i" else ("I" + w[1:] if w.startswith("i'") else w) for w in text.split())
    return " " + text


def load_for_training(cfg: AsrTrainConfig) -> WhisperASR:
    """``cfg.init_from`` with a time-frequency block of ``cfg.tf_channels`` (if not 0), in training mode,
    with only the parameters named by ``cfg.trainable`` learning."""
    from hubbub.models.loading import load_model

    overrides = {"tf_channels": cfg.tf_channels} if cfg.tf_channels else {}
    model = load_model(cfg.init_from, **overrides)
    if model.tokenizer is None:
        raise ValueError(f"{cfg.init_from}: the model has no tokenizer.json")
    names = [name for name, _ in model.named_parameters()]
    if cfg.trainable and not any(n.startswith(t) for n in names for t in cfg.trainable):
        raise ValueError(f"trainable {list(cfg.trainable)}: no parameter of {cfg.init_from} starts with these")
    learning = 0
    for name, p in model.named_parameters():
        p.requires_grad_(not cfg.trainable or any(name.startswith(t) for t in cfg.trainable))
        learning += p.numel() if p.requires_grad else 0
    log.info("model: %s (%.1f M parameters, %.3f M learning: %s)", cfg.init_from,
             sum(p.numel() for p in model.parameters()) / 1e6, learning / 1e6, ", ".join(cfg.trainable) or "all")
    return model.train()


class WhisperTask(AsrTask):
    """The ASR recipe's batches (16 kHz, Whisper's tokens of the sentence-case transcript), the
    teacher-forced loss, greedy WER as the pipeline decodes."""

    pad_id = 0  # padding positions are never scored

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(whisper_text(text))

    def loss(self, model, batch) -> torch.Tensor:
        device = next(model.parameters()).device
        wav, lengths, tokens, token_lengths = (t.to(device) for t in batch)
        return model(wav, lengths, tokens, token_lengths, input_padding=self.cfg.input_padding)["loss"]

    def transcribe(self, model: WhisperASR, wavs: list[torch.Tensor]) -> list[str]:
        """Greedy transcripts (batched by length), decoded as the pipeline decodes."""
        from hubbub.models.decoding import DecodingOptions
        from hubbub.models.whisper_decoding import whisper_decode

        options = DecodingOptions(word_timestamps=False, input_padding=self.cfg.input_padding)
        device = next(model.parameters()).device
        return self.by_length(wavs, lambda _, wav, lengths: whisper_decode(model, wav.to(device), lengths, options))

    def hypotheses(self, model, refs: list[str]) -> list[str]:
        return self.transcribe(model, self.val_wavs)

    def export(self, model, directory: Path, info: dict) -> None:
        """The whole model in ``directory``; with ``trainable`` set, also ``directory/adapter``: only the
        parameters that learned, laid over ``init_from`` when loaded (kilobytes, not Whisper's 290 MB)."""
        from hubbub.models.loading import resolve_model_dir

        training = {"training": {**info, "recipe": "hubbub train asr", "init_from": str(self.cfg.init_from),
                                 "trainable": list(self.cfg.trainable)}}
        model.save_pretrained(directory, extra=training)
        write_model_card(directory, model, self.cfg, self.data, info)
        if self.cfg.trainable:
            base = type(model).load_config(resolve_model_dir(self.cfg.init_from))
            model.save_adapter(directory / "adapter", self.cfg.init_from, base, tuple(self.cfg.trainable), training)
            write_model_card(directory / "adapter", model, self.cfg, self.data, info)


def write_model_card(directory: Path, model: WhisperASR, cfg: AsrTrainConfig, data: AsrData, info: dict) -> None:
    """A README.md naming the source weights and their licence, the data, steps and validation WER."""
    from hubbub.recipes.asr_task import card_tables
    from hubbub.recipes.trainer import write_card

    rows, per_corpus = card_tables(cfg, data, info)
    learning = sum(p.numel() for p in model.parameters() if p.requires_grad)
    text = f"""# hubbub Whisper, fine-tuned from `{cfg.init_from}`

OpenAI Whisper (MIT licence) in hubbub's Speech-Transformer, with a time-frequency block of
{model.config.tf_channels} channels ahead of the encoder. Parameters that learned:
{", ".join(f"`{t}`" for t in cfg.trainable) or "all"} ({learning / 1e6:.3f} M); the rest are Whisper's.

| training corpus | weight | utterances | audio |
|---|---|---|---|
{rows}

| | |
|---|---|
| steps | {info["step"]} (batch {cfg.batch_size}, lr {cfg.lr:g}) |
| wall time | {info["wall_minutes"]} min |
| validation WER (greedy, {len(data.val)} utterances) | {100 * info["wer"]:.1f} % ({per_corpus}) |

Reproduce: see the Usage of `hubbub/recipes/whisper_finetune.py`. With `trainable` set, `adapter/`
holds only the parameters that learned; it loads over `{cfg.init_from}` (`--asr PATH/adapter`).
"""
    write_card(directory, text, cfg.exp_dir)
