"""The ASR recipe's configuration, data and task (what :mod:`hubbub.recipes.train_asr` runs and
:mod:`hubbub.recipes.whisper_finetune` extends), below both so that neither imports the other."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hubbub.models.configs import ASRConfig
from hubbub.models.tokenizer import (
    PAD_ID,
    TOKENIZER_JSON,
    UNK_ID,
    CharTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    load_tokenizer,
)
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
    read_sentences,
)
from hubbub.recipes.config import LoopConfig

if TYPE_CHECKING:  # torch and the model are imported where they run: --help imports neither
    import torch

    from hubbub.models.asr import SpeechTransformer

__all__ = ["AsrData", "AsrTask", "AsrTrainConfig", "build_tokenizer", "card_tables", "write_model_card"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AsrTrainConfig(LoopConfig):
    """Training keys of the ASR recipe (the loop's keys plus data, tokenizer and augmentation)."""

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
    tokenizer_dir: str | None = None  # an existing tokenizer folder; else char, or sentencepiece trained here
    tokenizer_text: tuple[str, ...] = ()  # extra text files for sentencepiece (utt_id<TAB>TEXT or lines)
    spm_model_type: str = "unigram"
    init_from: str | None = None  # a pretrained ASR folder, or whisper-base / whisper-tiny.en (tokenizer kept)
    # a Whisper init_from only (hubbub.recipes.whisper_finetune):
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

    def texts(self) -> list[str]:
        """Every training transcript (for the tokenizer)."""
        return [e.text for corpus in self.train for e in corpus]


def build_tokenizer(cfg: AsrTrainConfig, model_cfg: ASRConfig, texts: list[str]) -> Tokenizer:
    """``tokenizer_dir`` if set; else characters, or sentencepiece trained on ``texts`` +
    ``tokenizer_text`` into ``EXP_DIR/tokenizer`` (reused when it is there)."""
    from hubbub.pipeline.writers import atomic_dir

    if cfg.tokenizer_dir:
        return load_tokenizer(cfg.tokenizer_dir)
    if model_cfg.tokenizer == "char":
        return CharTokenizer()
    directory = Path(cfg.exp_dir) / "tokenizer"
    if (directory / TOKENIZER_JSON).is_file():
        log.info("tokenizer: reusing %s", directory)
        return load_tokenizer(directory)
    extra = [text for path in cfg.tokenizer_text for _, text in read_sentences(path)]
    with atomic_dir(directory) as tmp:
        SentencePieceTokenizer.train([*texts, *extra], tmp, vocab_size=model_cfg.vocab_size,
                                     model_type=cfg.spm_model_type)
    tok = load_tokenizer(directory)
    log.info("tokenizer: sentencepiece %s, %d tokens, trained on %d sentences -> %s", cfg.spm_model_type,
             tok.vocab_size, len(texts) + len(extra), directory)
    return tok


class AsrTask:
    """Mixed-corpus length-bucketed batches, the joint CTC/attention loss, greedy WER validation."""

    def __init__(self, cfg: AsrTrainConfig, data: AsrData, model: SpeechTransformer) -> None:
        from hubbub.recipes.data import load_noises

        if model.tokenizer is None:
            raise ValueError("the model has no tokenizer")
        self.cfg = cfg
        self.data = data
        self.tokenizer = model.tokenizer
        self.sample_rate = sr = model.config.sample_rate
        self.batches = AsrBatches(data.train, cfg.train_weights or None, cfg.batch_size, cfg.seed, cfg.buckets,
                                  cfg.max_batch_seconds)
        noise_prob = cfg.noise_prob if cfg.noise_dir else 0.0
        self.augmentation = None
        if noise_prob > 0 or cfg.speed_prob > 0:
            self.augmentation = AugmentConfig(speed_prob=cfg.speed_prob, speed=cfg.speed_range,
                                              noise_prob=noise_prob, snr_db=cfg.snr_db)
        self.noises = load_noises(cfg.noise_dir, sr) if noise_prob > 0 else []
        self.val, self.val_wavs = load_waveforms(data.val, sr)

    def batch(self, epoch: int, indices: list[int], step: int):
        import torch

        number = indices[0] // max(len(indices), 1)
        examples = self.batches.examples(epoch, number)
        rng = np.random.default_rng([self.cfg.seed, epoch, number, 1])
        kept, wavs = load_waveforms(examples, self.sample_rate, rng, self.augmentation, self.noises)
        if not kept:
            raise RuntimeError(f"epoch {epoch} batch {number}: no readable audio in {[e.audio for e in examples]}")
        wav, lengths = pad_batch(wavs)
        tokens, token_lengths = pad_batch(
            [torch.tensor(self.encode(e.text), dtype=torch.long) for e in kept], self.pad_id
        )
        return wav, lengths, tokens, token_lengths

    pad_id = PAD_ID

    def encode(self, text: str) -> list[int]:
        """A transcript's training targets."""
        return self.tokenizer.encode(text) or [UNK_ID]

    def corpus_wers(self, refs: list[str], hyps: list[str]) -> dict[str, float]:
        """WER per validation corpus, ``{"wer_<label>": ...}``."""
        from hubbub.pipeline.metrics import wer

        out = {}
        for spec, label in self.data.labels.items():
            idx = [i for i, e in enumerate(self.val) if e.corpus == spec]
            out[f"wer_{label}"] = wer([refs[i] for i in idx], [hyps[i] for i in idx]).wer
        return out

    def loss(self, model, batch) -> torch.Tensor:
        device = next(model.parameters()).device
        return model(*(t.to(device) for t in batch))["loss"]

    def transcribe(
        self, model: SpeechTransformer, wavs: list[torch.Tensor], max_tokens: list[int], ctc: bool = False
    ) -> list[str]:
        """Greedy transcripts of ``wavs`` (batched by length; at most ``max_tokens[i]`` tokens each), from
        the attention decoder or, with ``ctc``, the CTC head's best path."""
        from hubbub.models.decoding import decode

        device = next(model.parameters()).device

        def run(chunk: list[int], wav: torch.Tensor, lengths: torch.Tensor) -> list:
            return decode(model, wav.to(device), lengths.to(device), ctc_weight=1.0 if ctc else 0.0,
                          max_len=None if ctc else max(max_tokens[i] for i in chunk), word_timestamps=False)

        return self.by_length(wavs, run)

    def by_length(self, wavs: list[torch.Tensor], run) -> list[str]:
        """``run(indices, wav, lengths)`` on batches of ``wavs`` of similar length; the texts in order."""
        order = sorted(range(len(wavs)), key=lambda i: -len(wavs[i]))
        hyps = [""] * len(wavs)
        for start in range(0, len(order), self.cfg.val_batch_size):
            chunk = order[start : start + self.cfg.val_batch_size]
            wav, lengths = pad_batch([wavs[i] for i in chunk])
            for i, h in zip(chunk, run(chunk, wav, lengths)):
                hyps[i] = h.text
        return hyps

    def hypotheses(self, model, refs: list[str]) -> list[str]:
        """Greedy transcripts of the validation utterances."""
        # an untrained decoder rarely stops: twice the reference length is enough to score it
        return self.transcribe(model, self.val_wavs, [2 * len(self.tokenizer.encode(r)) + 10 for r in refs])

    def validate(self, model) -> dict[str, float]:
        from hubbub.pipeline.metrics import wer

        if not self.val:
            return {"score": float("nan"), "wer": float("nan")}
        refs = [e.text for e in self.val]
        hyps = self.hypotheses(model, refs)
        total = wer(refs, hyps).wer
        metrics = {"score": total, "wer": total, **self.corpus_wers(refs, hyps)}
        if getattr(model.config, "ctc_weight", 0) > 0:  # the CTC head alone: it reads before the decoder attends
            metrics["wer_ctc"] = wer(refs, self.transcribe(model, self.val_wavs, [], ctc=True)).wer
            metrics["score"] = min(total, metrics["wer_ctc"])  # the model is exported with the better decoder
        for i in range(min(2, len(refs))):
            log.info("  ref: %s\n  hyp: %s", refs[i], hyps[i])
        return metrics

    def export(self, model, directory: Path, info: dict) -> None:
        # greedy decoding by default with whichever of the attention decoder and the CTC head validated better
        decoder = "ctc" if info.get("wer_ctc", float("inf")) < info["wer"] else "attention"
        model.save_pretrained(directory, extra={"decoder": decoder,
                                                "training": {**info, "recipe": "hubbub train asr"}})
        write_model_card(directory, model, self.cfg, self.data, info)


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


def write_model_card(directory: Path, model: SpeechTransformer, cfg: AsrTrainConfig, data: AsrData,
                     info: dict) -> None:
    """A README.md stating the data, steps, wall time and validation WER."""
    from hubbub.recipes.trainer import write_card

    mc = model.config
    n_params = sum(p.numel() for p in model.parameters())
    rows, per_corpus = card_tables(cfg, data, info)
    val_wer = f"{100 * info['wer']:.1f} %" + (f" ({per_corpus})" if per_corpus else "")
    ctc_row = f"\n| validation WER, CTC best path | {100 * info['wer_ctc']:.1f} % |" if "wer_ctc" in info else ""
    if "wer_ctc" in info:
        better = "the CTC best path" if info["wer_ctc"] < info["wer"] else "the attention decoder"
        ctc_row += f"\n| greedy decoding by default | {better} (`decoder` in config.json) |"
    aug = []
    if cfg.speed_prob:
        aug.append(f"speed {cfg.speed_range[0]}-{cfg.speed_range[1]} (p={cfg.speed_prob})")
    if cfg.noise_prob and cfg.noise_dir:
        aug.append(f"real noise from `{cfg.noise_dir}` at {cfg.snr_db[0]:g}-{cfg.snr_db[1]:g} dB (p={cfg.noise_prob})")
    text = f"""# hubbub ASR ({mc.sample_rate // 1000} kHz, {mc.tokenizer} {mc.vocab_size})

Speech-Transformer with joint CTC/attention training (CTC weight {mc.ctc_weight}): {mc.n_mels} log-mel,
{mc.twod_blocks} 2D-attention block(s) of {mc.twod_channels} channels, {mc.enc_layers} encoder and
{mc.dec_layers} decoder layers, d_model {mc.d_model}, {n_params / 1e6:.2f} M parameters.

| training corpus | weight | utterances | audio |
|---|---|---|---|
{rows}

| | |
|---|---|
| augmentation | SpecAugment{"; " + "; ".join(aug) if aug else ""} |
| steps | {info["step"]} (batch {cfg.batch_size}, utterances {cfg.min_seconds}-{cfg.max_seconds} s) |
| wall time | {info["wall_minutes"]} min |
| validation WER (attention greedy, {len(data.val)} utterances) | {val_wer} |{ctc_row}

Validation: {", ".join(f"`{s}`" for s in data.labels) or "none"}
({cfg.val_speakers} speakers of each LibriSpeech training corpus held out, never trained on).
Test WERs are in `docs/results.md` of the hubbub repository (`hubbub evaluate asr`).
Reproduce: `hubbub train asr --config hubbub/recipes/configs/asr-default.yaml`.
"""
    write_card(directory, text, cfg.exp_dir)
