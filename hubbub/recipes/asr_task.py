"""The ASR recipe's configuration, data and task (what :mod:`hubbub.recipes.train_asr` runs): fine-tuning
an imported Whisper model (``model_type`` ``hubbub-whisper``) given as ``init_from``.

The model is trained with its own tokenizer and task prompt: teacher-forced cross-entropy of the transcript
(sentence case, as Whisper writes) followed by end of text, on log-mel inputs padded as decoding pads them
(``input_padding``). ``tf_channels`` adds the time-frequency block; ``trainable`` names the parameters that
learn (prefixes of their names: ``tf.`` is the block, ``encoder.layers.5.`` the top encoder layer); the rest
stay frozen. Validation is greedy-decoding WER (hubbub's normaliser), as ``hubbub evaluate asr`` decodes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hubbub.recipes.asr_data import (
    AsrBatches,
    AsrExample,
    AugmentConfig,
    even_subset,
    filter_examples,
    load_corpus,
    load_waveforms,
    pad_batch,
    parse_spec,
)
from hubbub.recipes.config import LoopConfig

if TYPE_CHECKING:  # torch and the model are imported where they run: --help imports neither
    import torch

    from hubbub.models.whisper import WhisperASR

__all__ = ["AsrData", "AsrTask", "AsrTrainConfig", "card_tables", "load_for_training", "whisper_text",
           "write_model_card"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AsrTrainConfig(LoopConfig):
    """Training keys of the ASR recipe (the loop's keys plus the Whisper model, data and augmentation)."""

    exp_dir: str = "exp/asr"
    train_data: tuple[str, ...] = ("librispeech:../shared/data/LibriSpeech/train-clean-100",)
    train_weights: tuple[float, ...] = ()  # one per train_data entry; empty: equal shares
    val_data: tuple[str, ...] = ()
    val_speakers: int = 12  # held out of each LibriSpeech training corpus, never trained on
    val_items: int = 48  # at most this many validation utterances of each corpus (an even spread)
    val_batch_size: int = 8
    min_seconds: float = 0.2
    max_seconds: float = 20.0
    buckets: int = 10  # duration buckets of the batch sampler
    max_batch_seconds: float | None = None  # cap on batch_size x longest utterance
    val_max_seconds: float = 20.0  # validation utterances up to this long (independent of a training curriculum)
    noise_dir: str | None = None
    noise_prob: float = 0.0
    snr_db: tuple[float, float] = (5.0, 25.0)
    speed_prob: float = 0.0
    speed_range: tuple[float, float] = (0.9, 1.1)
    init_from: str = "whisper-base"  # a Whisper model: an installed name (whisper-base), or a hubbub model folder
    tf_channels: int = 0  # add a time-frequency block of this many channels (zero residual at start)
    trainable: tuple[str, ...] = ()  # name prefixes of the parameters that learn (tf., encoder.layers.5.); (): all
    input_padding: float | None = 10.0  # seconds of zero log-mel after the speech, as decoding pads
    higher_is_better: bool = False  # the validation score is the WER


def _label(specs: list[str]) -> dict[str, str]:
    """Short, unique metric names for corpus specs: their kind (``fsdd-test``, ``manifest_2``...)."""
    out, seen = {}, {}
    for spec in specs:
        kind = parse_spec(spec)[0]
        seen[kind] = seen.get(kind, 0) + 1
        out[spec] = kind if seen[kind] == 1 else f"{kind}_{seen[kind]}"
    return out


class AsrData:
    """The training corpora (filtered by duration) and the validation utterances."""

    def __init__(self, cfg: AsrTrainConfig) -> None:
        from hubbub.recipes.data import split_speakers

        if cfg.train_weights and len(cfg.train_weights) != len(cfg.train_data):
            raise ValueError(f"{len(cfg.train_weights)} train_weights for {len(cfg.train_data)} train_data entries")
        self.cfg = cfg
        self.train: list[list[AsrExample]] = []
        val: list[AsrExample] = []
        for spec in cfg.train_data:
            examples = load_corpus(spec)
            if parse_spec(spec)[0] == "librispeech" and cfg.val_speakers:
                examples, held = split_speakers(examples, cfg.val_speakers)
                val.extend(held)
            kept = filter_examples(examples, cfg.min_seconds, cfg.max_seconds)
            log.info("train %s: %d utterances, %.1f h (%d outside %g-%g s left out)", spec, len(kept),
                     sum(e.duration for e in kept) / 3600, len(examples) - len(kept), cfg.min_seconds,
                     cfg.max_seconds)
            self.train.append(kept)
        for spec in cfg.val_data:
            val.extend(load_corpus(spec))
        val = filter_examples(val, cfg.min_seconds, cfg.val_max_seconds)
        corpora = list(dict.fromkeys(e.corpus for e in val))
        self.val = [e for c in corpora for e in even_subset([e for e in val if e.corpus == c], cfg.val_items)]
        self.labels = _label(corpora)
        log.info("validation: %d utterances (%s)", len(self.val),
                 ", ".join(f"{lab} {sum(e.corpus == s for e in self.val)}" for s, lab in self.labels.items()))


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
    from hubbub.models.loading import load_model, model_type, resolve_model_dir
    from hubbub.models.whisper import WhisperASR

    kind = model_type(resolve_model_dir(cfg.init_from))
    if kind != WhisperASR.model_type:
        raise ValueError(f"init_from {cfg.init_from}: a {kind or 'unknown'} model; hubbub train asr fine-tunes Whisper "
                         "models only (the from-scratch Speech-Transformer recipe is at commit 91b3d3e)")
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


class AsrTask:
    """Mixed-corpus length-bucketed batches (Whisper's tokens of the sentence-case transcript), the
    teacher-forced loss, greedy WER validation decoded as the pipeline decodes, and the export."""

    pad_id = 0  # padding positions are never scored

    def __init__(self, cfg: AsrTrainConfig, data: AsrData, model: WhisperASR) -> None:
        from hubbub.recipes.data import load_noises

        if model.tokenizer is None:
            raise ValueError("the model has no tokenizer")
        self.cfg = cfg
        self.data = data
        self.tokenizer = model.tokenizer
        self.sample_rate = sr = model.sample_rate
        self.batches = AsrBatches(data.train, cfg.train_weights or None, cfg.batch_size, cfg.seed, cfg.buckets,
                                  cfg.max_batch_seconds)
        noise_prob = cfg.noise_prob if cfg.noise_dir else 0.0
        self.augmentation = None
        if noise_prob > 0 or cfg.speed_prob > 0:
            self.augmentation = AugmentConfig(speed_prob=cfg.speed_prob, speed=cfg.speed_range,
                                              noise_prob=noise_prob, snr_db=cfg.snr_db)
        self.noises = load_noises(cfg.noise_dir, sr) if noise_prob > 0 else []
        self.val, self.val_wavs = load_waveforms(data.val, sr)
        self.max_tokens = model.config.n_text_ctx - len(model.config.prompt)  # the decoder reads the prompt too

    def batch(self, epoch: int, indices: list[int], step: int):
        import torch

        number = indices[0] // max(len(indices), 1)
        examples = self.batches.examples(epoch, number)
        rng = np.random.default_rng([self.cfg.seed, epoch, number, 1])
        kept, wavs = load_waveforms(examples, self.sample_rate, rng, self.augmentation, self.noises)
        if not kept:
            raise RuntimeError(f"epoch {epoch} batch {number}: no readable audio in {[e.audio for e in examples]}")
        targets = [self.encode(e.text) for e in kept]
        fits = [i for i, ids in enumerate(targets) if len(ids) <= self.max_tokens]
        if len(fits) < len(kept):  # longer than the decoder's context: left out, never cut short
            log.warning("epoch %d batch %d: %d transcript(s) over the model's %d text tokens left out: %s", epoch,
                        number, len(kept) - len(fits), self.max_tokens,
                        ", ".join(kept[i].id for i in range(len(kept)) if i not in fits))
            if not fits:
                raise RuntimeError(f"epoch {epoch} batch {number}: every transcript is longer than the model reads")
        wav, lengths = pad_batch([wavs[i] for i in fits])
        tokens, token_lengths = pad_batch([torch.tensor(targets[i], dtype=torch.long) for i in fits], self.pad_id)
        return wav, lengths, tokens, token_lengths

    def encode(self, text: str) -> list[int]:
        """A transcript's training targets: Whisper's tokens of its sentence-case text."""
        return self.tokenizer.encode(whisper_text(text))

    def loss(self, model, batch) -> torch.Tensor:
        device = next(model.parameters()).device
        wav, lengths, tokens, token_lengths = (t.to(device) for t in batch)
        return model(wav, lengths, tokens, token_lengths, input_padding=self.cfg.input_padding)["loss"]

    def corpus_wers(self, refs: list[str], hyps: list[str]) -> dict[str, float]:
        """WER per validation corpus, ``{"wer_<label>": ...}``."""
        from hubbub.pipeline.metrics import wer

        out = {}
        for spec, label in self.data.labels.items():
            idx = [i for i, e in enumerate(self.val) if e.corpus == spec]
            out[f"wer_{label}"] = wer([refs[i] for i in idx], [hyps[i] for i in idx]).wer
        return out

    def transcribe(self, model: WhisperASR, wavs: list[torch.Tensor]) -> list[str]:
        """Greedy transcripts of ``wavs`` in order, batched by length, decoded as the pipeline decodes."""
        from hubbub.models.decoding import DecodingOptions, decode

        options = DecodingOptions(word_timestamps=False, input_padding=self.cfg.input_padding)
        device = next(model.parameters()).device
        order = sorted(range(len(wavs)), key=lambda i: -len(wavs[i]))
        hyps = [""] * len(wavs)
        for start in range(0, len(order), self.cfg.val_batch_size):
            chunk = order[start : start + self.cfg.val_batch_size]
            wav, lengths = pad_batch([wavs[i] for i in chunk])
            for i, h in zip(chunk, decode(model, wav.to(device), lengths.to(device), options)):
                hyps[i] = h.text
        return hyps

    def validate(self, model) -> dict[str, float]:
        from hubbub.pipeline.metrics import wer

        if not self.val:
            return {"score": float("nan"), "wer": float("nan")}
        refs = [e.text for e in self.val]
        hyps = self.transcribe(model, self.val_wavs)
        total = wer(refs, hyps).wer
        for i in range(min(2, len(refs))):
            log.info("  ref: %s\n  hyp: %s", refs[i], hyps[i])
        return {"score": total, "wer": total, **self.corpus_wers(refs, hyps)}

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

def card_tables(cfg: AsrTrainConfig, data: AsrData, info: dict) -> tuple[str, str]:
    """A model card's training-corpus table rows and its per-corpus validation WERs."""
    weights = list(cfg.train_weights) or [1.0] * len(cfg.train_data)
    rows = "\n".join(
        f"| `{spec}` | {w:g} | {len(c)} | {sum(e.duration for e in c) / 3600:.1f} h |"
        for spec, w, c in zip(cfg.train_data, weights, data.train)
    )
    per_corpus = ", ".join(f"{lab} {100 * info[f'wer_{lab}']:.1f} %" for lab in data.labels.values()
                           if f"wer_{lab}" in info)
    return rows, per_corpus


def write_model_card(directory: Path, model: WhisperASR, cfg: AsrTrainConfig, data: AsrData, info: dict) -> None:
    """A README.md naming the source weights and their licence, the data, steps and validation WER."""
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

Test WERs are in `docs/results.md` of the hubbub repository (`hubbub evaluate asr`).
Reproduce: see the Usage of `hubbub/recipes/train_asr.py`. With `trainable` set, `adapter/`
holds only the parameters that learned; it loads over `{cfg.init_from}` (`--asr PATH/adapter`).
"""
    write_card(directory, text, cfg.exp_dir)
