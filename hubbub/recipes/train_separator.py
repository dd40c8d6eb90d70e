"""Train the attention separator.

Usage:
    # the offline default model (dynamic mixing of LibriSpeech train-clean-100 voices, 8 kHz)
    hubbub train separator --config hubbub/recipes/configs/separator-default.yaml

    # resume after an interruption, or train on for a longer budget
    hubbub train separator --config hubbub/recipes/configs/separator-default.yaml --resume --max-minutes 120

    # real Libri2Mix (8 kHz, min, mix_clean) on GPUs, 4 processes: trains on train-360, validates on dev
    torchrun --nproc_per_node 4 -m hubbub train separator \
        --config hubbub/recipes/configs/separator-libri2mix-8k.yaml --librimix-dir /data/Libri2Mix --device cuda

    # the noisy task (mix_both) on train-100 and train-360; validation is on dev/mix_both too
    hubbub train separator --config hubbub/recipes/configs/separator-libri2mix-8k.yaml \
        --librimix-dir /data/Libri2Mix --librimix-mixture mix_both --librimix-train-splits "[train-100, train-360]"

    # any config key can be overridden: --batch-size 8 --lr 5e-4 --model-d-model 96 --model-n-src 3

    # (--batch-size is per process: under torchrun a step sees batch_size x nproc mixtures)
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hubbub.models.configs import SeparatorConfig
from hubbub.recipes.config import LoopConfig, build_configs, load_yaml, recipe_parser

if TYPE_CHECKING:  # torch and the model are imported where they run: --help imports neither
    import torch

    from hubbub.models.separator import Separator

__all__ = ["SeparatorTask", "SeparatorTrainConfig", "build_parser", "describe_model", "main", "prepare", "train"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeparatorTrainConfig(LoopConfig):
    """Training keys of the separator recipe (the loop's keys plus data)."""

    exp_dir: str = "exp/separator"
    architecture: str = "dualpath"  # a name in hubbub.models.separator.ARCHITECTURES
    data_dir: str = "../shared/data/LibriSpeech/train-clean-100"  # LibriSpeech layout, dynamic mixing
    librimix_dir: str | None = None  # a Libri2Mix/Libri3Mix root: train on its mixtures instead (data_dir unused)
    librimix_mode: str = "min"
    librimix_mixture: str = "mix_clean"  # or mix_both; validation uses the same type
    librimix_train_splits: tuple[str, ...] = ("train-360",)  # train-100, train-360 or both
    librimix_val_split: str = "dev"  # LibriMix validation: whole mixtures of this split
    librimix_val_hold_out: int = 0  # N > 0: validate on the last N training mixtures instead (a dev stand-in)
    noise_dir: str | None = None
    noise_prob: float = 0.0
    single_speaker_prob: float = 0.0  # dynamic mixing: this share of mixtures holds one talker (the rest silent)
    voice_corpora: tuple[str, ...] = ()  # dynamic mixing: more voices, "kind:path" (a kind of data.VOICE_READERS)
    voice_weights: tuple[float, ...] = ()  # a corpus's share of sources: data_dir first, then voice_corpora (equal)
    # new voices (hubbub.recipes.data.VoiceAugment): each training source, with its probability
    speed_prob: float = 0.0  # played faster or slower ...
    speed_range: tuple[float, float] = (0.9, 1.1)  # ... by a factor in this range (pitch moves with it)
    shift_prob: float = 0.0  # pitch and formants shifted, tempo kept ...
    shift_semitones: tuple[float, float] = (-3.0, 3.0)  # ... by this many semitones
    eq_prob: float = 0.0  # random spectral tilt and peaks ...
    tilt_db: tuple[float, float] = (-3.0, 3.0)  # ... tilt (dB per octave) ...
    peak_db: tuple[float, float] = (-6.0, 6.0)  # ... and two peaks/dips of this gain
    reverb_prob: float = 0.0  # a synthetic room (the target is the reverberant source) ...
    rt60: tuple[float, float] = (0.15, 0.6)  # ... of this reverberation time (s)
    val_speakers: int = 12  # dynamic mixing: held out of each corpus, never trained on
    val_mixtures: int = 48  # LibriMix: 0 = the whole validation split
    val_seconds: float = 4.0  # dynamic mixing only: LibriMix validates on whole mixtures
    segment_seconds_start: float = 1.5  # curriculum: segment length grows ...
    segment_seconds: float = 3.0  # ... to this over `curriculum_steps`
    curriculum_steps: int = 4000
    init_from: str | None = None  # a pretrained folder to start from


class SeparatorTask:
    """Dynamic mixing (or LibriMix) batches, PIT SI-SNR loss, SI-SNRi validation."""

    def __init__(self, cfg: SeparatorTrainConfig, model_cfg: SeparatorConfig, command: str | None = None) -> None:
        self.cfg = cfg
        self.model_cfg = model_cfg
        self.command = command
        self.val_source = None  # LibriMix: validation reads whole mixtures from here
        self.val: list[tuple[torch.Tensor, torch.Tensor]] = []  # dynamic mixing: fixed crops
        self.val_lone: list[torch.Tensor] = []  # single_speaker_prob > 0: lone talkers, fixed crops
        if cfg.librimix_dir:
            self._librimix_data()
        else:
            self._dynamic_mixing_data()

    def _librimix_data(self) -> None:
        """Train on the named splits; validate on whole mixtures of ``librimix_val_split`` of the same mode
        and mixture type (or on mixtures held out of the training splits)."""
        from hubbub.recipes.librimix_reader import LibriMixSource

        cfg = self.cfg
        if cfg.single_speaker_prob > 0:
            raise ValueError("single_speaker_prob is for dynamic mixing; LibriMix mixtures are what they are")
        common = dict(sample_rate=self.model_cfg.sample_rate, n_src=self.model_cfg.n_src, mode=cfg.librimix_mode,
                      mixture=cfg.librimix_mixture, seed=cfg.seed)
        hold = cfg.librimix_val_hold_out
        self.source = LibriMixSource(cfg.librimix_dir, split=cfg.librimix_train_splits, hold_out=hold, **common)
        if hold:
            self.val_source = LibriMixSource(cfg.librimix_dir, split=cfg.librimix_train_splits, hold_out=hold,
                                             held_out=True, **common)
            self.val_where = f"held out of {'+'.join(cfg.librimix_train_splits)} (the last in id order)"
        else:
            self.val_source = LibriMixSource(cfg.librimix_dir, split=cfg.librimix_val_split, **common)
            self.val_where = f"of {cfg.librimix_val_split}"
        self.n_val = min(cfg.val_mixtures or len(self.val_source), len(self.val_source))
        log.info("LibriMix %s/%s: training on %s (%d mixtures), validating on %d whole mixtures %s",
                 cfg.librimix_mode, cfg.librimix_mixture, "+".join(cfg.librimix_train_splits), len(self.source),
                 self.n_val, self.val_where)

    def corpora(self) -> list[tuple[str, str, str]]:
        """``(name, kind, path)`` of every voice corpus: ``data_dir`` (a LibriSpeech folder, or
        ``kind:path``), then ``voice_corpora`` (``kind:path`` each). The name keys the corpus's weight
        and validation; a ``prepared:<out>/<kind>`` corpus (``hubbub data voices``) keeps its kind's name."""
        from hubbub.recipes.data import VOICE_READERS

        out = []
        for n, spec in enumerate([self.cfg.data_dir, *self.cfg.voice_corpora]):
            kind, sep, path = spec.partition(":")
            if n == 0 and not (sep and kind in VOICE_READERS):
                kind, path = "librispeech", spec
            elif not sep:
                raise ValueError(f"voice_corpora: {spec!r} is not kind:path")
            out.append((Path(path).name if kind == "prepared" else kind, kind, path))
        return out

    def _dynamic_mixing_data(self) -> None:
        from hubbub.recipes.data import (
            DynamicMixer,
            VoiceAugment,
            load_noises,
            load_speaker_audio,
            read_voices,
            split_speakers,
        )

        cfg, sr = self.cfg, self.model_cfg.sample_rate
        corpora = self.corpora()
        if cfg.voice_weights and len(cfg.voice_weights) != len(corpora):
            raise ValueError(f"voice_weights: {len(cfg.voice_weights)} weights for {len(corpora)} corpora "
                             "(data_dir first, then voice_corpora)")
        noises = load_noises(cfg.noise_dir, sr) if cfg.noise_prob > 0 else []
        train_audio: dict = {}
        pools: dict[str, str] = {}
        self.val_sets: dict[str, list] = {}
        length = int(cfg.val_seconds * sr)
        for k, (name, kind, path) in enumerate(corpora):
            train_utts, val_utts = split_speakers(read_voices(kind, path), cfg.val_speakers)
            log.info("%s %s: %d training utterances (%d speakers), %d validation utterances (%d speakers)",
                     name, path, len(train_utts), len({u.speaker for u in train_utts}), len(val_utts),
                     len({u.speaker for u in val_utts}))
            audio = load_speaker_audio(train_utts, sr)
            train_audio.update(audio)
            pools.update({spk: name for spk in audio})
            val_mixer = DynamicMixer(load_speaker_audio(val_utts, sr), self.model_cfg.n_src, seed=cfg.seed + 1,
                                     sample_rate=sr)
            # the first corpus keeps the mixtures every earlier separator run was validated on
            self.val_sets[name] = [val_mixer.item(1_000_000, i, length) for i in range(cfg.val_mixtures)]
            if k == 0:
                self.val = self.val_sets[name]
                if cfg.single_speaker_prob > 0:  # lone talkers of the held-out speakers: how much leaks
                    lone = DynamicMixer(load_speaker_audio(val_utts, sr), self.model_cfg.n_src, seed=cfg.seed + 2,
                                        single_prob=1.0, sample_rate=sr)
                    self.val_lone = [lone.item(1_000_000, i, length)[0] for i in range(max(8, cfg.val_mixtures // 3))]
        augment = VoiceAugment(speed_prob=cfg.speed_prob, speed=cfg.speed_range, shift_prob=cfg.shift_prob,
                               shift_semitones=cfg.shift_semitones, eq_prob=cfg.eq_prob, tilt_db=cfg.tilt_db,
                               peak_db=cfg.peak_db, reverb_prob=cfg.reverb_prob, rt60=cfg.rt60)
        weights = {name: w for (name, _, _), w in zip(corpora, cfg.voice_weights)} if cfg.voice_weights else None
        self.source = DynamicMixer(
            train_audio, self.model_cfg.n_src, seed=cfg.seed, noises=noises, noise_prob=cfg.noise_prob,
            single_prob=cfg.single_speaker_prob, augment=augment, sample_rate=sr,
            pools=pools if len(corpora) > 1 else None, pool_weights=weights,
        )

    def segment_samples(self, step: int) -> int:
        cfg = self.cfg
        frac = min(1.0, step / max(cfg.curriculum_steps, 1))
        seconds = cfg.segment_seconds_start + frac * (cfg.segment_seconds - cfg.segment_seconds_start)
        seconds = round(seconds * 4) / 4  # few distinct shapes
        return int(seconds * self.model_cfg.sample_rate)

    def batch(self, epoch: int, indices: list[int], step: int):
        return self.source.batch(epoch, indices, self.segment_samples(step))

    def loss(self, model, batch) -> torch.Tensor:
        from hubbub.models.losses import pit_loss_with_silence, pit_si_snr_loss

        device = next(model.parameters()).device
        mix, sources = (t.to(device) for t in batch)
        if self.cfg.single_speaker_prob > 0:  # some targets are silent: SI-SNR is undefined for them
            return pit_loss_with_silence(model(mix), sources, mix).mean()
        return pit_si_snr_loss(model(mix), sources).mean()

    def validate(self, model) -> dict[str, float]:
        """Mean SI-SNRi (dB) over the validation mixtures, as the published LibriMix tables compute it
        (best permutation, improvement over the mixture itself, ``mix_both`` included)."""
        import torch

        device = next(model.parameters()).device
        if self.val_source is not None:  # whole mixtures, one at a time, with progress in the log
            score = self._si_snri(model, ([self.val_source.read(i)] for i in range(self.n_val)), self.n_val)
            out = {"score": score, "si_snri": score}
        else:  # each corpus's held-out speakers (the first keeps `si_snri`); the score is their mean
            per = {kind: self._si_snri(model, (v[i : i + 8] for i in range(0, len(v), 8)), len(v))
                   for kind, v in self.val_sets.items()}
            out = {"score": sum(per.values()) / len(per), "si_snri": next(iter(per.values()))}
            if len(per) > 1:
                out.update({f"si_snri_{kind}": value for kind, value in per.items()})
        if self.val_lone:  # the quieter output's share of a lone voice (dB; lower: the voice is kept whole)
            with torch.inference_mode():
                est = model(torch.stack(self.val_lone).to(device)).cpu()
            energy = est.pow(2).sum(-1)
            share = energy.min(-1).values / energy.sum(-1).clamp_min(1e-12)
            out["lone_leak_db"] = float((10 * torch.log10(share.clamp_min(1e-12))).mean())
        return out

    def _si_snri(self, model, batches, total: int) -> float:
        """Mean SI-SNRi (dB) of the model over ``batches`` of ``(mixture, sources)`` items."""
        import torch

        from hubbub.models.losses import pit_si_snr_loss, si_snr

        device = next(model.parameters()).device
        gains: list[float] = []
        t0 = last = time.monotonic()
        for items in batches:
            mix = torch.stack([m for m, _ in items])
            src = torch.stack([s for _, s in items])
            est = model(mix.to(device)).cpu()
            sisnr = -pit_si_snr_loss(est, src)
            base = si_snr(mix[:, None, :].expand_as(src), src).mean(-1)
            gains.extend((sisnr - base).tolist())
            if time.monotonic() - last > 30 and len(gains) < total:
                last = time.monotonic()
                log.info("validation: %d/%d mixtures, SI-SNRi so far %.2f dB (%.0f s)", len(gains), total,
                         sum(gains) / len(gains), last - t0)
        return sum(gains) / len(gains)

    def export(self, model, directory: Path, info: dict) -> None:
        model.save_pretrained(directory, extra={"training": {**info, "recipe": "hubbub train separator"}})
        write_model_card(directory, model.config, self.cfg, info, self.describe_data(), self.command)

    def describe_data(self) -> tuple[str, str]:
        """(training data, validation data) in words, for the model card."""
        cfg, mc = self.cfg, self.model_cfg
        if cfg.librimix_dir:
            part = f"`{cfg.librimix_dir}` wav{mc.sample_rate // 1000}k/{cfg.librimix_mode}"
            train = f"LibriMix {part}, splits {', '.join(cfg.librimix_train_splits)}, {cfg.librimix_mixture}"
            if cfg.librimix_val_hold_out:
                train += f" (less the {cfg.librimix_val_hold_out} held out)"
            return train, f"{self.n_val} whole {cfg.librimix_mixture} mixtures {self.val_where}"
        aug = [f"played {cfg.speed_range[0]}-{cfg.speed_range[1]}x with p={cfg.speed_prob}" if cfg.speed_prob else "",
               f"pitch and formants {cfg.shift_semitones[0]:+g}..{cfg.shift_semitones[1]:+g} semitones with "
               f"p={cfg.shift_prob}" if cfg.shift_prob else "",
               f"equalised (tilt {cfg.tilt_db[0]:+g}..{cfg.tilt_db[1]:+g} dB/octave, peaks {cfg.peak_db[0]:+g}.."
               f"{cfg.peak_db[1]:+g} dB) with p={cfg.eq_prob}" if cfg.eq_prob else "",
               f"in a synthetic room (RT60 {cfg.rt60[0]}-{cfg.rt60[1]} s, reverberant target) with "
               f"p={cfg.reverb_prob}" if cfg.reverb_prob else ""]
        corpora = ", ".join(f"`{path}` ({kind})" for _, kind, path in self.corpora())
        weights = f" weighted {'/'.join(f'{w:g}' for w in cfg.voice_weights)}" if cfg.voice_weights else ""
        train = (f"dynamic {mc.n_src}-speaker mixing (a speaker drawn first, then an utterance) of {corpora}{weights}"
                 + (f", real noise from `{cfg.noise_dir}` with p={cfg.noise_prob}" if cfg.noise_prob else "")
                 + (f", one talker alone with p={cfg.single_speaker_prob}" if cfg.single_speaker_prob else "")
                 + "".join(f"; sources {a}" for a in aug if a))
        if len(self.val_sets) > 1:
            return train, (f"{cfg.val_mixtures} x {cfg.val_seconds} s mixtures of {cfg.val_speakers} held-out "
                           f"speakers of each corpus ({', '.join(self.val_sets)}); score = their mean")
        return train, f"{len(self.val)} x {cfg.val_seconds} s mixtures of {cfg.val_speakers} held-out speakers"


def describe_model(model_cfg, architecture: str = "dualpath") -> str:
    """The architecture and size in one line (what the ``model`` keys made)."""
    from hubbub.models.separator import separator_class

    n_params = sum(p.numel() for p in separator_class(architecture)(model_cfg).parameters())
    return (f"{model_cfg.n_blocks} dual-path blocks x ({model_cfg.intra_layers} intra + {model_cfg.inter_layers} "
            f"inter) transformer layers, d_model {model_cfg.d_model}, d_ff {model_cfg.d_ff}, {model_cfg.n_heads} "
            f"heads, encoder {model_cfg.enc_channels} filters {model_cfg.kernel_size}/{model_cfg.stride}, chunk "
            f"{model_cfg.chunk_size}: {n_params / 1e6:.2f} M parameters")


def write_model_card(directory: Path, model_cfg: SeparatorConfig, cfg: SeparatorTrainConfig, info: dict,
                     data: tuple[str, str], command: str | None = None) -> None:
    """A README.md stating the data (splits, mixture type), steps, wall time, validation score and the
    command that trained it."""
    from hubbub.recipes.trainer import write_card

    world = int(os.environ.get("WORLD_SIZE", "1"))
    batch = f"{cfg.batch_size} per process x {world} processes" if world > 1 else str(cfg.batch_size)
    command = command or "hubbub train separator --config hubbub/recipes/configs/separator-default.yaml"
    text = f"""# hubbub separator ({model_cfg.sample_rate // 1000} kHz, {model_cfg.n_src} speakers)

Separator design `{cfg.architecture}`: {describe_model(model_cfg, cfg.architecture)}.

| | |
|---|---|
| training data | {data[0]} |
| validation data | {data[1]} |
| steps | {info["step"]} (batch {batch}, segments {cfg.segment_seconds_start}-{cfg.segment_seconds} s) |
| wall time | {info["wall_minutes"]} min to this step, validation included |
| CPU time (all threads; runs before CPU accounting count 0) | {info.get("cpu_minutes", "?")} min |
| validation SI-SNRi | {info["si_snri"]:.2f} dB |

Test scores are in `docs/results.md` of the hubbub repository (`hubbub evaluate separation`).
Reproduce: `{command}`.
"""
    write_card(directory, text, cfg.exp_dir)


#: what each ``--model-*`` flag sets (the separator's architecture)
MODEL_KEYS = {
    "sample_rate": "audio rate (Hz)",
    "n_src": "speakers separated (1 for mix_single)",
    "enc_channels": "learned encoder filters",
    "kernel_size": "encoder window (samples)",
    "stride": "encoder hop (samples)",
    "d_model": "transformer width",
    "n_heads": "attention heads",
    "d_ff": "feed-forward width (not scaled with d_model: set it too)",
    "n_blocks": "dual-path blocks, each of intra_layers + inter_layers transformer layers",
    "intra_layers": "intra-chunk layers per block",
    "inter_layers": "inter-chunk layers per block",
    "chunk_size": "frames per chunk (even)",
    "intra_window": "local window of intra-chunk attention (none: whole chunk)",
    "inter_window": "local window of inter-chunk attention (none: global)",
    "dropout": "dropout rate",
}


#: help of the training flags that need one
TRAIN_KEYS = {
    "batch_size": "mixtures a step, per process: under torchrun a step sees batch_size x processes",
    "librimix_dir": "a Libri2Mix/Libri3Mix root: train on it (data_dir is then not read)",
    "librimix_mixture": "mix_clean, mix_both or mix_single (1 source); validation uses the same",
    "librimix_train_splits": "train-100, train-360, or a list: \"[train-100, train-360]\"",
    "librimix_val_split": "LibriMix validation split (whole mixtures; default dev)",
    "librimix_val_hold_out": "N > 0: validate on the last N training mixtures instead (a stand-in for dev)",
    "val_mixtures": "validation mixtures (LibriMix: 0 = the whole split)",
}


def model_config_class(architecture: str = "dualpath") -> type:
    """The model config of a separator design (the default's is torch-free: ``--help`` stays light)."""
    if architecture == "dualpath":
        return SeparatorConfig
    from hubbub.models.separator import separator_class

    return separator_class(architecture).config_class


def _architecture(argv: list[str] | None) -> str:
    """The ``architecture`` a command line asks for: ``--architecture``, else its ``--config``'s key."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.add_argument("--architecture", dest="cfg_architecture")
    known, _ = pre.parse_known_args(argv)
    return known.cfg_architecture or load_yaml(known.config).get("architecture") or "dualpath"


def build_parser(parser: argparse.ArgumentParser | None = None, architecture: str = "dualpath"
                 ) -> argparse.ArgumentParser:
    """The recipe's parser; ``--model-*`` flags are the keys of ``architecture``'s model config."""
    model_cls = model_config_class(architecture)
    return recipe_parser("hubbub train separator", __doc__, SeparatorTrainConfig, model_cls, parser,
                         model_help=MODEL_KEYS if model_cls is SeparatorConfig else None, train_help=TRAIN_KEYS)


def prepare(cfg: SeparatorTrainConfig, model_cfg: SeparatorConfig, command: str | None = None
            ) -> tuple[Separator, SeparatorTask]:
    """The model and the task (its data) from configs; ``command`` (the command line) goes into the
    model card. Missing data raises FileNotFoundError, before any training."""
    import torch

    from hubbub.models.separator import Separator, separator_class

    if cfg.librimix_dir is None and not Path(cfg.data_dir.removeprefix("prepared:")).is_dir():
        raise FileNotFoundError(f"{cfg.data_dir}: LibriSpeech folder (data_dir) not found; "
                                "set --data-dir, or --librimix-dir to train on LibriMix")
    model_cls = separator_class(cfg.architecture)
    model = Separator.from_pretrained(cfg.init_from) if cfg.init_from else None
    if model is not None and not isinstance(model, model_cls):
        raise ValueError(f"--init-from {cfg.init_from} is a {model.model_type}, not a {cfg.architecture} separator")
    model_cfg = model.config if model is not None else model_cfg
    task = SeparatorTask(cfg, model_cfg, command)  # the data first: a missing split is found at once
    if model is None:
        torch.manual_seed(cfg.seed)
        model = model_cls(model_cfg)
    model.train()
    log.info("separator: %s", describe_model(model_cfg, cfg.architecture))
    return model, task


def train(cfg: SeparatorTrainConfig, model_cfg: SeparatorConfig, resume: bool = False,
          command: str | None = None) -> dict:
    """Build the model and task from configs and run the loop."""
    model, task = prepare(cfg, model_cfg, command)
    return fit(cfg, model, task, resume)


def fit(cfg: SeparatorTrainConfig, model: Separator, task: SeparatorTask, resume: bool = False) -> dict:
    from hubbub.recipes.trainer import Trainer

    full = {"train": dataclasses.asdict(cfg), "model": dataclasses.asdict(model.config)}
    return Trainer(cfg, model, task, full_config=full).fit(resume=resume)


def _command(argv: list[str]) -> str:
    """The command line that trains this, for the model card (``torchrun`` included)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    launcher = f"torchrun --nproc_per_node {world} -m hubbub" if world > 1 else "hubbub"
    return f"{launcher} train separator {shlex.join(a for a in argv if a != '--resume')}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    architecture = _architecture(argv)
    args = build_parser(architecture=architecture).parse_args(argv)
    try:
        cfg, model_cfg = build_configs(args, SeparatorTrainConfig, model_config_class(architecture),
                                       load_yaml(args.config))
        model, task = prepare(cfg, model_cfg, _command(argv))
    except (FileNotFoundError, ValueError) as err:  # bad config or missing data: one line, no traceback
        log.error("%s", err)
        return 2
    summary = fit(cfg, model, task, resume=args.resume)
    log.info("done: step %d, best validation SI-SNRi %s", summary["step"], summary["best"])
    return 0
