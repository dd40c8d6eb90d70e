"""Train the attention separator.

Usage:
    # the offline default model (dynamic mixing of LibriSpeech train-clean-100 voices, 8 kHz)
    hubbub train separator --config hubbub/recipes/configs/separator-default.yaml

    # resume after an interruption, or train on for a longer budget
    hubbub train separator --config hubbub/recipes/configs/separator-default.yaml --resume --max-minutes 120

    # real Libri2Mix (8 kHz, min) on GPUs, 4 processes
    torchrun --nproc_per_node 4 -m hubbub train separator \
        --config hubbub/recipes/configs/separator-libri2mix-8k.yaml --librimix-dir /data/Libri2Mix --device cuda

    # any config key can be overridden: --batch-size 8 --lr 5e-4 --model-d-model 96 --model-n-src 3

    # another separator design (`architecture:` in the YAML, or --architecture): its `model:` keys and
    # --model-* flags are those of its config (hubbub.models.tf_separator, hubbub.models.unet_separator)
    hubbub train separator --config hubbub/recipes/configs/separator-study-tf.yaml --max-cpu-minutes 20
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from hubbub.models.losses import pit_si_snr_loss, si_snr
from hubbub.models.separator import Separator, SeparatorConfig, separator_class
from hubbub.recipes.config import build_configs, load_yaml, recipe_parser
from hubbub.recipes.trainer import LoopConfig, Trainer, write_card

__all__ = ["SeparatorTask", "SeparatorTrainConfig", "build_parser", "main", "train"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeparatorTrainConfig(LoopConfig):
    """Training keys of the separator recipe (the loop's keys plus data)."""

    exp_dir: str = "exp/separator"
    architecture: str = "dualpath"  # a name in hubbub.models.separator.ARCHITECTURES
    data_dir: str = "../shared/data/LibriSpeech/train-clean-100"  # LibriSpeech layout, dynamic mixing
    librimix_dir: str | None = None  # a Libri2Mix/Libri3Mix root: train on its mixtures instead
    librimix_mode: str = "min"
    librimix_mixture: str = "mix_clean"
    noise_dir: str | None = None
    noise_prob: float = 0.0
    val_speakers: int = 12  # held out of data_dir, never trained on
    val_mixtures: int = 48
    val_seconds: float = 4.0
    segment_seconds_start: float = 1.5  # curriculum: segment length grows ...
    segment_seconds: float = 3.0  # ... to this over `curriculum_steps`
    curriculum_steps: int = 4000
    init_from: str | None = None  # a pretrained folder to start from


class SeparatorTask:
    """Dynamic mixing (or LibriMix) batches, PIT SI-SNR loss, SI-SNRi validation."""

    def __init__(self, cfg: SeparatorTrainConfig, model_cfg) -> None:
        from hubbub.recipes.data import DynamicMixer, load_noises, load_speaker_audio, read_librispeech, split_speakers

        self.cfg = cfg
        self.model_cfg = model_cfg
        sr = model_cfg.sample_rate
        noises = load_noises(cfg.noise_dir, sr) if cfg.noise_prob > 0 else []
        utts = read_librispeech(cfg.data_dir)
        train_utts, val_utts = split_speakers(utts, cfg.val_speakers)
        log.info(
            "%d training utterances (%d speakers), %d validation utterances (%d speakers)",
            len(train_utts), len({u.speaker for u in train_utts}), len(val_utts), len({u.speaker for u in val_utts}),
        )
        val_mixer = DynamicMixer(load_speaker_audio(val_utts, sr), model_cfg.n_src, seed=cfg.seed + 1)
        length = int(cfg.val_seconds * sr)
        self.val = [val_mixer.item(1_000_000, i, length) for i in range(cfg.val_mixtures)]
        if cfg.librimix_dir:
            from hubbub.recipes.librimix import LibriMixSource

            self.source = LibriMixSource(
                cfg.librimix_dir, sample_rate=sr, n_src=model_cfg.n_src, mode=cfg.librimix_mode,
                split="train", mixture=cfg.librimix_mixture, seed=cfg.seed,
            )
        else:
            self.source = DynamicMixer(
                load_speaker_audio(train_utts, sr), model_cfg.n_src, seed=cfg.seed,
                noises=noises, noise_prob=cfg.noise_prob,
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
        device = next(model.parameters()).device
        mix, sources = (t.to(device) for t in batch)
        return pit_si_snr_loss(model(mix), sources).mean()

    def validate(self, model) -> dict[str, float]:
        gains = []
        for i in range(0, len(self.val), 8):
            mix = torch.stack([m for m, _ in self.val[i : i + 8]])
            src = torch.stack([s for _, s in self.val[i : i + 8]])
            device = next(model.parameters()).device
            est = model(mix.to(device)).cpu()
            sisnr = -pit_si_snr_loss(est, src)
            base = si_snr(mix[:, None, :].expand_as(src), src).mean(-1)
            gains.extend((sisnr - base).tolist())
        score = sum(gains) / len(gains)
        return {"score": score, "si_snri": score}

    def export(self, model, directory: Path, info: dict) -> None:
        model.save_pretrained(directory, extra={"training": {**info, "recipe": "hubbub train separator"}})
        write_model_card(directory, model.config, self.cfg, info)


def _design(model_cfg) -> str:
    """One line on the separator's design, for its model card."""
    c = model_cfg
    if isinstance(c, SeparatorConfig):
        return (f"Dual-path attention separator (learned encoder {c.kernel_size}/{c.stride},\n"
                f"{c.n_blocks} dual-path blocks, d_model {c.d_model}, chunk {c.chunk_size})")
    if hasattr(c, "n_fft"):
        return (f"Time-frequency dual-path attention separator (STFT {c.n_fft}/{c.hop}, bands of {c.band_width} bins,\n"
                f"{c.n_blocks} blocks of frequency + time attention, d_model {c.d_model})")
    return (f"Multi-resolution (U-Net) separator (learned encoder {c.kernel_size}/{c.stride}, {c.n_blocks} U-blocks\n"
            f"of depth {c.depth}, attention on the {c.attn_levels} coarsest levels, width {c.hidden})")


def write_model_card(directory: Path, model_cfg, cfg: SeparatorTrainConfig, info: dict) -> None:
    """A README.md stating the data, steps, wall time and validation score."""
    n_params = sum(p.numel() for p in separator_class(cfg.architecture)(model_cfg).parameters())
    data = f"LibriMix at `{cfg.librimix_dir}`" if cfg.librimix_dir else (
        f"dynamic {model_cfg.n_src}-speaker mixing of `{cfg.data_dir}` "
        f"({cfg.val_speakers} speakers held out for validation)"
        + (f", real noise from `{cfg.noise_dir}` with p={cfg.noise_prob}" if cfg.noise_prob else "")
    )
    text = f"""# hubbub separator ({model_cfg.sample_rate // 1000} kHz, {model_cfg.n_src} speakers)

{_design(model_cfg)},
{n_params / 1e6:.2f} M parameters.

| | |
|---|---|
| training data | {data} |
| steps | {info["step"]} (batch {cfg.batch_size}, segments {cfg.segment_seconds_start}-{cfg.segment_seconds} s) |
| wall time | {info["wall_minutes"]} min |
| CPU time (all threads; runs before CPU accounting count 0) | {info.get("cpu_minutes", "?")} min |
| validation SI-SNRi ({cfg.val_mixtures} x {cfg.val_seconds} s, held-out speakers) | {info["si_snri"]:.2f} dB |

Test scores (unseen speakers) are in `docs/benchmarks.md` of the hubbub repository.
Reproduce: `hubbub train separator --config hubbub/recipes/configs/separator-default.yaml`
(architecture `{cfg.architecture}`; the study configs are `hubbub/recipes/configs/separator-study-*.yaml`).
"""
    write_card(directory, text, cfg.exp_dir)


def _architecture(argv: list[str] | None) -> str:
    """The ``architecture`` a command line asks for: ``--architecture``, else its ``--config``'s key."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.add_argument("--architecture", dest="cfg_architecture")
    known, _ = pre.parse_known_args(argv)
    return known.cfg_architecture or load_yaml(known.config).get("architecture") or "dualpath"


def build_parser(
    parser: argparse.ArgumentParser | None = None, architecture: str = "dualpath"
) -> argparse.ArgumentParser:
    """The recipe's parser; ``--model-*`` flags are the keys of ``architecture``'s model config."""
    model_cls = separator_class(architecture).config_class
    return recipe_parser("hubbub train separator", __doc__, SeparatorTrainConfig, model_cls, parser)


def train(cfg: SeparatorTrainConfig, model_cfg, resume: bool = False) -> dict:
    """Build the model and task from configs and run the loop."""
    model_cls = separator_class(cfg.architecture)
    if cfg.init_from:
        model = Separator.from_pretrained(cfg.init_from)
        if not isinstance(model, model_cls):
            raise ValueError(f"--init-from {cfg.init_from} is a {model.model_type}, not a {cfg.architecture} separator")
        model_cfg = model.config
        model.train()
    else:
        torch.manual_seed(cfg.seed)
        model = model_cls(model_cfg)
    task = SeparatorTask(cfg, model_cfg)
    full = {"train": dataclasses.asdict(cfg), "model": dataclasses.asdict(model_cfg)}
    return Trainer(cfg, model, task, full_config=full).fit(resume=resume)


def main(argv: list[str] | None = None) -> int:
    architecture = _architecture(argv)
    args = build_parser(architecture=architecture).parse_args(argv)
    model_cls = separator_class(architecture).config_class
    cfg, model_cfg = build_configs(args, SeparatorTrainConfig, model_cls, load_yaml(args.config))
    summary = train(cfg, model_cfg, resume=args.resume)
    log.info("done: step %d, best validation SI-SNRi %s", summary["step"], summary["best"])
    return 0
