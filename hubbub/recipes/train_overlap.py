"""Train the overlapped-speech detector (voices per 10-ms frame: 0, 1, 2+).

Usage:
    # the embedded default (hubbub/models/pretrained/overlap-8k): LibriSpeech train-clean-100 voices,
    # 12 speakers held out for validation, 8 kHz, about 20 CPU minutes on 2 threads
    hubbub train overlap --config hubbub/recipes/configs/overlap-default.yaml

    # resume, or train on for longer
    hubbub train overlap --config hubbub/recipes/configs/overlap-default.yaml --resume --max-steps 4000

    # any key: --batch-size 32 --example-seconds 12 --model-d-model 128 --noise-dir ../shared/data/noise

Each training example is drawn afresh (seeded by epoch and index): a stretch of conversation in which
two or three talkers take turns, joined by short silences or by overlaps of random length, or one
talker alone, or two talkers on top of each other throughout; each talker at a random level, real
noise on some. A frame's label is the number of turns whose talker has energy there (each
utterance's own speech frames, 30 dB below its loud frames: a pause inside a turn is not speech).
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hubbub.models.configs import OverlapConfig
from hubbub.recipes.config import LoopConfig, build_configs, load_yaml, recipe_parser

if TYPE_CHECKING:
    import torch

__all__ = ["ConversationClips", "OverlapTask", "OverlapTrainConfig", "main", "speech_frames"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OverlapTrainConfig(LoopConfig):
    """Training keys of the overlap-detector recipe (the loop's keys plus data)."""

    exp_dir: str = "exp/overlap"
    data_dir: str = "../shared/data/LibriSpeech/train-clean-100"
    noise_dir: str | None = None
    noise_prob: float = 0.3
    snr_db: tuple[float, float] = (5.0, 25.0)
    val_speakers: int = 12  # held out of data_dir (the separator recipe's split), never trained on
    val_examples: int = 64
    example_seconds: float = 10.0
    single_prob: float = 0.2  # one talker alone
    full_overlap_prob: float = 0.15  # two talkers throughout
    three_prob: float = 0.2  # of the conversations: three talkers (at most two at once)


def speech_frames(wav: np.ndarray, hop: int, win: int, below_db: float = 30.0) -> np.ndarray:
    """``(T,) -> (T // hop + 1,)`` bool: frames (centred on ``i * hop``) within ``below_db`` of the
    utterance's loud frames (its 95th percentile level)."""
    pad = np.pad(wav.astype(np.float64), (win // 2, win // 2 + hop))
    n = len(wav) // hop + 1
    idx = np.arange(n)[:, None] * hop + np.arange(win)[None, :]
    db = 10 * np.log10((pad[idx] ** 2).mean(-1) + 1e-12)
    return db > np.percentile(db, 95) - below_db


class ConversationClips:
    """Random clips of turn-taking speech with per-frame voice counts (see the module docstring).

    Args:
        speakers: speaker -> utterances (mono float32 at ``sample_rate``).
        hop, win: the detector's frame hop and window (samples).
    """

    def __init__(self, speakers: dict[str, list[np.ndarray]], cfg: OverlapTrainConfig, sample_rate: int,
                 hop: int, win: int, noises: list[np.ndarray] | None = None, seed: int = 0) -> None:
        self.names = sorted(speakers)
        if len(self.names) < 3:
            raise ValueError(f"need at least 3 speakers, got {len(self.names)}")
        self.audio = speakers
        self.speech = {s: [speech_frames(w, hop, win) for w in speakers[s]] for s in self.names}
        self.cfg, self.sr, self.hop = cfg, sample_rate, hop
        self.noises = noises or []
        self.seed = seed

    def _segment(self, rng, speaker: str, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """A random stretch of one utterance (whole frames) and its speech frames."""
        k = int(rng.integers(len(self.audio[speaker])))
        wav, speech = self.audio[speaker][k], self.speech[speaker][k]
        frames = min(int(seconds * self.sr) // self.hop, len(wav) // self.hop)
        first = int(rng.integers(0, len(wav) // self.hop - frames + 1))
        return wav[first * self.hop : (first + frames) * self.hop], speech[first : first + frames]

    def item(self, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(T,)`` waveform and ``(T // hop + 1,)`` labels (0, 1 or 2 voices)."""
        import torch

        cfg, hop = self.cfg, self.hop
        rng = np.random.default_rng([self.seed, epoch, index])
        n = int(cfg.example_seconds * self.sr) // hop
        mix = np.zeros(n * hop, dtype=np.float64)
        count = np.zeros(n + 1, dtype=np.int64)
        kind = rng.random()
        n_spk = 1 if kind < cfg.single_prob else (3 if rng.random() < cfg.three_prob else 2)
        who = [self.names[i] for i in rng.choice(len(self.names), size=n_spk, replace=False)]
        levels = {s: rng.uniform(-33.0, -25.0) for s in who}
        placed: list[tuple[str, int]] = []  # (speaker, first frame) of each turn

        def put(speaker: str, first: int, seconds: float) -> int:
            wav, speech = self._segment(rng, speaker, seconds)
            frames = min(len(speech), n - first)
            if frames <= 0:
                return first
            rms = np.sqrt(np.mean(wav[speech.repeat(hop)[: len(wav)]] ** 2) + 1e-12) if speech.any() else 1e-3
            gain = 10 ** (levels[speaker] / 20) / rms
            mix[first * hop : (first + frames) * hop] += gain * wav[: frames * hop]
            count[first : first + frames] += speech[:frames]
            placed.append((speaker, first))
            return first + frames

        if kind >= cfg.single_prob and kind < cfg.single_prob + cfg.full_overlap_prob:  # two throughout
            for s in who[:2]:
                put(s, int(rng.integers(0, n // 4)), cfg.example_seconds)
        else:
            t, last = int(rng.integers(0, n // 8)), None
            while t < n:
                speaker = rng.choice([s for s in who if s != last] or who)
                end = put(speaker, t, rng.uniform(1.0, 8.0))
                last = speaker
                if n_spk == 1 or rng.random() < 0.5:  # a silence before the next turn
                    t = end + int(rng.uniform(0.1, 1.0) * self.sr) // hop
                else:  # the next turn starts before this one ends
                    t = max(end - int(rng.uniform(0.2, 3.0) * self.sr) // hop, t + 1)
        if self.noises and rng.random() < cfg.noise_prob:
            noise = self.noises[int(rng.integers(len(self.noises)))]
            noise = np.resize(noise, len(mix) + len(noise))[int(rng.integers(len(noise))):][: len(mix)]
            speech_power = np.mean(mix**2) + 1e-12
            snr = rng.uniform(*cfg.snr_db)
            mix = mix + noise * np.sqrt(speech_power / (np.mean(noise**2) + 1e-12) * 10 ** (-snr / 10))
        mix *= 10 ** (rng.uniform(-10, 6) / 20)
        peak = np.abs(mix).max()
        if peak > 0.99:
            mix *= 0.99 / peak
        return torch.from_numpy(mix.astype(np.float32)), torch.from_numpy(np.minimum(count, 2))

    def batch(self, epoch: int, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        items = [self.item(epoch, i) for i in indices]
        return torch.stack([w for w, _ in items]), torch.stack([y for _, y in items])


class OverlapTask:
    """Conversation clips, per-frame cross-entropy, overlap F1 on held-out speakers."""

    def __init__(self, cfg: OverlapTrainConfig, model_cfg: OverlapConfig, command: str | None = None) -> None:
        from hubbub.recipes.data import load_noises, load_speaker_audio, read_librispeech, split_speakers

        self.cfg, self.model_cfg, self.command = cfg, model_cfg, command
        sr = model_cfg.sample_rate
        train_utts, val_utts = split_speakers(read_librispeech(cfg.data_dir), cfg.val_speakers)
        noises = load_noises(cfg.noise_dir, sr) if cfg.noise_prob > 0 else []
        args = dict(cfg=cfg, sample_rate=sr, hop=model_cfg.hop_length, win=model_cfg.win_length, noises=noises)
        self.source = ConversationClips(load_speaker_audio(train_utts, sr), seed=cfg.seed, **args)
        val = ConversationClips(load_speaker_audio(val_utts, sr), seed=cfg.seed + 1, **args)
        self.val = [val.item(1_000_000, i) for i in range(cfg.val_examples)]
        log.info("%d training utterances (%d speakers); %d validation clips of %d held-out speakers",
                 len(train_utts), len(self.source.names), len(self.val), len(val.names))

    def batch(self, epoch: int, indices: list[int], step: int):
        return self.source.batch(epoch, indices)

    def loss(self, model, batch) -> torch.Tensor:
        import torch.nn.functional as F

        device = next(model.parameters()).device
        wav, labels = (t.to(device) for t in batch)
        logits = model(wav)
        frames = min(logits.shape[1], labels.shape[1])
        return F.cross_entropy(logits[:, :frames].reshape(-1, logits.shape[-1]), labels[:, :frames].reshape(-1))

    def validate(self, model) -> dict[str, float]:
        """Frame-level overlap (2+ voices) precision, recall and F1 at probability 0.5, and accuracy."""
        import torch

        device = next(model.parameters()).device
        tp = fp = fn = correct = total = 0
        with torch.inference_mode():
            for i in range(0, len(self.val), 8):
                wav = torch.stack([w for w, _ in self.val[i : i + 8]]).to(device)
                labels = torch.stack([y for _, y in self.val[i : i + 8]])
                prob = model(wav).softmax(-1).cpu()
                frames = min(prob.shape[1], labels.shape[1])
                prob, labels = prob[:, :frames], labels[:, :frames]
                said = prob[..., 2:].sum(-1) >= 0.5
                truth = labels >= 2
                tp += int((said & truth).sum())
                fp += int((said & ~truth).sum())
                fn += int((~said & truth).sum())
                correct += int((prob.argmax(-1).clamp(max=2) == labels).sum())
                total += labels.numel()
        precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        return {"score": f1, "overlap_f1": f1, "precision": precision, "recall": recall,
                "accuracy": correct / max(total, 1)}

    def export(self, model, directory: Path, info: dict) -> None:
        from hubbub.recipes.trainer import write_card

        model.save_pretrained(directory, extra={"training": {**info, "recipe": "hubbub train overlap"}})
        c, cfg = model.config, self.cfg
        n_params = sum(p.numel() for p in model.parameters())
        training = (f"conversation clips of `{cfg.data_dir}` ({cfg.example_seconds:g} s; one talker "
                    f"p={cfg.single_prob}, two throughout p={cfg.full_overlap_prob}, turns with silences or "
                    f"overlaps otherwise; noise from `{cfg.noise_dir}` p={cfg.noise_prob})")
        scores = " / ".join(f"{info.get(k, float('nan')):.3f}" for k in ("overlap_f1", "precision", "recall"))
        text = f"""# hubbub overlapped-speech detector ({c.sample_rate // 1000} kHz)

Voices per {c.hop_ms:g}-ms frame (0, 1, 2+) from the recording: {c.n_mels} log-mel bands, a convolution,
{c.n_layers} transformer layers (d_model {c.d_model}, {c.n_heads} heads, attention window {c.window}),
{n_params / 1e3:.0f} k parameters.

| | |
|---|---|
| training data | {training} |
| validation data | {len(self.val)} clips of {cfg.val_speakers} held-out speakers |
| steps | {info["step"]} (batch {cfg.batch_size}) |
| CPU time (all threads) | {info.get("cpu_minutes", "?")} min |
| validation overlap F1 / precision / recall | {scores} |

Scores on test-other conversations are in `docs/results.md` of the hubbub repository.
Reproduce: `{self.command or "hubbub train overlap --config hubbub/recipes/configs/overlap-default.yaml"}`.
"""
        write_card(directory, text, cfg.exp_dir)


def build_parser():
    return recipe_parser("hubbub train overlap", __doc__, OverlapTrainConfig, OverlapConfig)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        cfg, model_cfg = build_configs(args, OverlapTrainConfig, OverlapConfig, load_yaml(args.config))
        if not Path(cfg.data_dir).is_dir():
            raise FileNotFoundError(f"{cfg.data_dir}: LibriSpeech folder (data_dir) not found; set --data-dir")
        task = OverlapTask(cfg, model_cfg, "hubbub train overlap " + shlex.join(a for a in argv if a != "--resume"))
    except (FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 2
    import torch

    from hubbub.models.overlap import OverlapDetector
    from hubbub.recipes.trainer import Trainer

    torch.manual_seed(cfg.seed)
    model = OverlapDetector(model_cfg).train()
    full = {"train": dataclasses.asdict(cfg), "model": dataclasses.asdict(model_cfg)}
    summary = Trainer(cfg, model, task, full_config=full).fit(resume=args.resume)
    log.info("done: step %d, best validation overlap F1 %s", summary["step"], summary["best"])
    return 0
