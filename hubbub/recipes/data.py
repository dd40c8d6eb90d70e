"""Training data: LibriSpeech-layout corpora and on-the-fly dynamic mixing.

Every mixture is a pure function of ``(seed, epoch, index)``, so a resumed run
sees exactly the data an uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hubbub.pipeline.audio import AudioError, load_audio
from hubbub.pipeline.inputs import AUDIO_EXTENSIONS  # the one list; re-exported for the recipes

__all__ = [
    "DynamicMixer",
    "add_noise",
    "Utterance",
    "fixed_mixtures",
    "load_noises",
    "load_speaker_audio",
    "read_librispeech",
    "rms_db",
    "split_speakers",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Utterance:
    """One LibriSpeech utterance: ``<speaker>-<chapter>-<index>``."""

    id: str
    speaker: str
    path: str
    text: str | None = None


def read_librispeech(root: str | os.PathLike) -> list[Utterance]:
    """All utterances under a LibriSpeech-layout folder, sorted by id.

    Layout: ``<root>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` with one
    ``<speaker>-<chapter>.trans.txt`` per chapter (``<utt_id> <TEXT>`` lines).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    texts: dict[str, str] = {}
    for trans in root.rglob("*.trans.txt"):
        for line in trans.read_text(encoding="utf-8").splitlines():
            if line.strip():
                utt, _, text = line.strip().partition(" ")
                texts[utt] = text.strip()
    utts = []
    for path in root.rglob("*"):
        if path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file():
            utt_id = path.stem
            utts.append(Utterance(utt_id, utt_id.split("-")[0], str(path), texts.get(utt_id)))
    if not utts:
        raise FileNotFoundError(f"{root}: no audio files in LibriSpeech layout")
    return sorted(utts, key=lambda u: u.id)


def split_speakers(utts: list[Utterance], n_held_out: int) -> tuple[list[Utterance], list[Utterance]]:
    """Split by speaker: every k-th speaker (of those with one utterance first)
    goes to the held-out part, deterministically."""
    by_spk: dict[str, list[Utterance]] = {}
    for u in utts:
        by_spk.setdefault(u.speaker, []).append(u)
    speakers = sorted(by_spk, key=lambda s: (len(by_spk[s]) > 1, s))
    n_held_out = min(n_held_out, max(len(speakers) - 2, 0))
    held = set(speakers[:: max(1, len(speakers) // max(n_held_out, 1))][:n_held_out]) if n_held_out else set()
    train = [u for u in utts if u.speaker not in held]
    dev = [u for u in utts if u.speaker in held]
    return train, dev


def load_speaker_audio(utts: list[Utterance], sample_rate: int) -> dict[str, list[np.ndarray]]:
    """Read every utterance at ``sample_rate``, grouped by speaker (skips bad files)."""
    audio: dict[str, list[np.ndarray]] = {}
    for u in utts:
        try:
            wav, _ = load_audio(u.path, sample_rate=sample_rate)
        except AudioError as err:
            log.warning("skipping %s", err)
            continue
        audio.setdefault(u.speaker, []).append(wav.numpy())
    return audio


def load_noises(folder: str | os.PathLike | None, sample_rate: int) -> list[np.ndarray]:
    """Every readable audio file in ``folder`` (recursively), mono at ``sample_rate``."""
    if not folder:
        return []
    noises = []
    for path in sorted(Path(folder).rglob("*")):
        if path.suffix.lower() in AUDIO_EXTENSIONS:
            try:
                noises.append(load_audio(path, sample_rate=sample_rate)[0].numpy())
            except AudioError as err:
                log.warning("skipping noise %s", err)
    return noises


def _crop(rng: np.random.Generator, wav: np.ndarray, length: int) -> np.ndarray:
    if len(wav) >= length:
        start = rng.integers(0, len(wav) - length + 1)
        return wav[start : start + length]
    out = np.zeros(length, dtype=np.float32)
    start = rng.integers(0, length - len(wav) + 1)
    out[start : start + len(wav)] = wav
    return out


def rms_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-12)


class DynamicMixer:
    """Random ``n_src``-speaker mixtures drawn from per-speaker audio.

    Speakers are drawn uniformly (not by amount of audio), each source is set to
    a random level in ``level_db`` (dBFS RMS, LibriMix-like), and real noise is
    added at an SNR in ``snr_db`` with probability ``noise_prob``. With probability
    ``single_prob`` a mixture holds one talker: the other sources are silent (zeros),
    so that a separator learns to keep a lone voice in one output. With probability
    ``speed_prob`` each source is played faster or slower by a factor in ``speed``
    (pitch moves with it: :func:`~hubbub.recipes.asr_data.speed_perturb`), which makes
    new voices of the training speakers.

    Args:
        speakers: speaker id -> list of mono waveforms at the target rate.
        n_src: speakers per mixture.
        seed: base seed; item ``(epoch, index)`` is reproducible.
    """

    def __init__(
        self,
        speakers: dict[str, list[np.ndarray]],
        n_src: int = 2,
        seed: int = 0,
        noises: list[np.ndarray] | None = None,
        level_db: tuple[float, float] = (-33.0, -25.0),
        noise_prob: float = 0.0,
        snr_db: tuple[float, float] = (5.0, 20.0),
        gain_jitter: bool = True,
        single_prob: float = 0.0,
        speed_prob: float = 0.0,
        speed: tuple[float, float] = (0.9, 1.1),
    ) -> None:
        self.speakers = sorted(speakers)
        if len(self.speakers) < n_src:
            raise ValueError(f"need at least {n_src} speakers, got {len(self.speakers)}")
        self.audio = speakers
        self.n_src = n_src
        self.seed = seed
        self.noises = noises or []
        self.level_db = level_db
        self.noise_prob = noise_prob
        self.snr_db = snr_db
        self.gain_jitter = gain_jitter
        self.single_prob = single_prob
        self.speed_prob = speed_prob
        self.speed = speed

    def _source(self, rng: np.random.Generator, utts: list[np.ndarray], length: int) -> np.ndarray:
        """A crop of ``length`` samples from one of ``utts``, speed-perturbed with ``speed_prob``
        (no draw at 0: the same mixtures as before)."""
        factor = 1.0
        if self.speed_prob > 0:
            draw, value = rng.random(), rng.uniform(*self.speed)
            factor = value if draw < self.speed_prob else 1.0
        span = int(np.ceil(length * factor))
        wav = _crop(rng, utts[rng.integers(len(utts))], span)
        if factor != 1.0:
            from hubbub.recipes.asr_data import speed_perturb

            # the sample rate only sets the rounding of the factor: 8 kHz steps of 50 Hz
            wav = speed_perturb(torch.from_numpy(np.ascontiguousarray(wav)), 8000, factor)[0].numpy()
            wav = np.pad(wav, (0, max(0, length - len(wav))))[:length].astype(np.float32)
        return wav

    def item(self, epoch: int, index: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One mixture ``(T,)`` and its sources ``(n_src, T)``."""
        rng = np.random.default_rng([self.seed, epoch, index])
        chosen = rng.choice(len(self.speakers), size=self.n_src, replace=False)
        sources = []
        for k in chosen:
            utts = self.audio[self.speakers[k]]
            wav = self._source(rng, utts, length)
            for _ in range(3):  # avoid crops that are mostly silence
                if rms_db(wav) > -60:
                    break
                wav = self._source(rng, utts, length)
            level = rng.uniform(*self.level_db)
            sources.append(wav * 10 ** ((level - rms_db(wav)) / 20))
        src = np.stack(sources).astype(np.float32)
        if self.single_prob > 0 and rng.random() < self.single_prob:  # no draw at 0: the same mixtures as before
            src[1:] = 0.0
        mix = src.sum(0)
        if self.noises and rng.random() < self.noise_prob:
            noise = _crop(rng, self.noises[rng.integers(len(self.noises))], length)
            snr = rng.uniform(*self.snr_db)
            mix = mix + noise * 10 ** ((rms_db(mix) - snr - rms_db(noise)) / 20)
        peak = np.abs(mix).max()
        if peak > 0.95:  # keep the mixture (and the targets with it) unclipped
            mix, src = mix * (0.95 / peak), src * (0.95 / peak)
        return torch.from_numpy(mix.astype(np.float32)), torch.from_numpy(src)

    def batch(self, epoch: int, indices: list[int], length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked mixtures ``(B, T)`` and sources ``(B, n_src, T)``."""
        items = [self.item(epoch, i, length) for i in indices]
        return torch.stack([m for m, _ in items]), torch.stack([s for _, s in items])


def add_noise(mix: torch.Tensor, noises: list[np.ndarray], snr_db: float, seed: int) -> torch.Tensor:
    """Add one of ``noises`` (looped, random offset) to ``mix (T,)`` at ``snr_db``; reproducible by ``seed``."""
    rng = np.random.default_rng(seed)
    noise = noises[rng.integers(len(noises))]
    reps = -(-mix.shape[-1] // len(noise))
    noise = np.tile(noise, reps)
    start = rng.integers(0, len(noise) - mix.shape[-1] + 1)
    noise = torch.from_numpy(noise[start : start + mix.shape[-1]].copy())
    gain = (mix.pow(2).mean() / (noise.pow(2).mean() + 1e-12)).sqrt() * 10 ** (-snr_db / 20)
    return mix + gain * noise


def fixed_mixtures(mixer: DynamicMixer, count: int, length: int, epoch: int = 1_000_000):
    """A fixed list of ``count`` mixtures (e.g. for validation)."""
    return [mixer.item(epoch, i, length) for i in range(count)]
