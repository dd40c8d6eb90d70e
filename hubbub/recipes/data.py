"""Training data: LibriSpeech- and speechocean762-layout corpora and on-the-fly dynamic mixing.

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
from hubbub.recipes.voices import equalise, fit_length, reverberate, shift_voice, speed_perturb

__all__ = [
    "DynamicMixer",
    "VoiceAugment",
    "add_noise",
    "Utterance",
    "fixed_mixtures",
    "load_noises",
    "load_speaker_audio",
    "read_librispeech",
    "read_speechocean762",
    "read_voices",
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


def read_speechocean762(root: str | os.PathLike) -> list[Utterance]:
    """All utterances of a speechocean762-layout folder, sorted by id.

    Layout: ``<root>/WAVE/SPEAKER<spk>/<utt>.<ext>`` with ``text`` (``utt<TAB>TEXT``) and ``utt2spk``
    (``utt<TAB>spk``) beside ``WAVE``. Speaker ids come out as ``so<spk>``, so that they never collide
    with another corpus's numbers in one voice pool.
    """
    root = Path(root)
    if not (root / "WAVE").is_dir():
        raise FileNotFoundError(f"{root}: no WAVE/ folder (speechocean762 layout)")

    def table(name: str) -> dict[str, str]:
        path = root / name
        if not path.is_file():
            return {}
        rows = (line.split(None, 1) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
        return {r[0]: (r[1].strip() if len(r) > 1 else "") for r in rows}

    texts, utt2spk = table("text"), table("utt2spk")
    utts = []
    for path in (root / "WAVE").rglob("*"):
        if path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file():
            spk = utt2spk.get(path.stem) or path.parent.name.removeprefix("SPEAKER")
            utts.append(Utterance(path.stem, f"so{spk}", str(path), texts.get(path.stem)))
    if not utts:
        raise FileNotFoundError(f"{root}/WAVE: no audio files")
    return sorted(utts, key=lambda u: u.id)


def read_prepared(root: str | os.PathLike) -> list[Utterance]:
    """A corpus written by ``hubbub data voices`` (:mod:`hubbub.recipes.prepare_voices`): its
    ``voices.tsv`` (``id<TAB>speaker<TAB>relative path<TAB>text``), in that order."""
    root = Path(root)
    table = root / "voices.tsv"
    if not table.is_file():
        raise FileNotFoundError(f"{root}: no voices.tsv (write it with hubbub data voices)")
    utts = []
    for line in table.read_text(encoding="utf-8").splitlines():
        if line.strip():
            utt, spk, rel, *text = line.split("\t")
            utts.append(Utterance(utt, spk, str(root / rel), text[0] if text and text[0] else None))
    if not utts:
        raise FileNotFoundError(f"{table}: empty")
    return utts


#: the voice corpora a recipe can name: ``kind -> reader``
VOICE_READERS = {"librispeech": read_librispeech, "speechocean762": read_speechocean762, "prepared": read_prepared}


def read_voices(kind: str, root: str | os.PathLike) -> list[Utterance]:
    """The utterances of one voice corpus (``kind`` in :data:`VOICE_READERS`)."""
    if kind not in VOICE_READERS:
        raise ValueError(f"unknown voice corpus {kind!r}: one of {', '.join(VOICE_READERS)}")
    return VOICE_READERS[kind](root)


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


@dataclass(frozen=True)
class VoiceAugment:
    """New voices for the mixer: each augmentation is applied to a source with its probability
    (0: off, and no random draw is made for it, so turning one on leaves the others' draws alone).

    The target is the augmented source (reverberant, equalised, shifted): the mixture stays exactly the
    sum of its sources, and the separator learns to output each voice as it sounds in the room."""

    speed_prob: float = 0.0  # played faster or slower (pitch, formants and tempo move together) ...
    speed: tuple[float, float] = (0.9, 1.1)  # ... by a factor in this range
    shift_prob: float = 0.0  # pitch and formants shifted, tempo kept (vocal-tract-length perturbation) ...
    shift_semitones: tuple[float, float] = (-3.0, 3.0)  # ... by this many semitones
    eq_prob: float = 0.0  # a spectral tilt and random peaks/dips (microphone, vocal effort) ...
    tilt_db: tuple[float, float] = (-3.0, 3.0)  # ... tilt in dB per octave around 1 kHz
    peak_db: tuple[float, float] = (-6.0, 6.0)  # ... two bumps of this gain, 0.3-1 octave wide
    reverb_prob: float = 0.0  # a synthetic room ...
    rt60: tuple[float, float] = (0.15, 0.6)  # ... of this reverberation time (s)
    drr_db: tuple[float, float] = (0.0, 12.0)  # ... and direct-to-reverberant ratio (dB)

    def apply(self, rng: np.random.Generator, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        """Shift, equalise and reverberate ``wav (T,)`` (speed is the mixer's: it changes the crop)."""
        if self.shift_prob > 0:
            draw, semis = rng.random(), rng.uniform(*self.shift_semitones)
            if draw < self.shift_prob:
                wav = shift_voice(wav, sample_rate, semis)
        if self.eq_prob > 0:
            draw, tilt = rng.random(), rng.uniform(*self.tilt_db)
            peaks = [(float(np.exp(rng.uniform(np.log(200), np.log(0.45 * sample_rate)))),
                      rng.uniform(*self.peak_db), rng.uniform(0.3, 1.0)) for _ in range(2)]
            if draw < self.eq_prob:
                wav = equalise(wav, sample_rate, tilt, peaks)
        if self.reverb_prob > 0:
            draw, rt60, drr = rng.random(), rng.uniform(*self.rt60), rng.uniform(*self.drr_db)
            room_seed = int(rng.integers(2**31))
            if draw < self.reverb_prob:
                wav = reverberate(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)), sample_rate,
                                  rt60, drr, np.random.default_rng(room_seed)).numpy()
        return wav.astype(np.float32)


class DynamicMixer:
    """Random ``n_src``-speaker mixtures drawn from per-speaker audio.

    A **speaker** is drawn first, then one of its utterances, so a few speakers with hours of audio do
    not dominate. With ``pools`` (speaker -> corpus name) and ``pool_weights`` (corpus -> weight), each
    source first draws a corpus by weight, then a speaker uniformly within it. Each source is set to
    a random level in ``level_db`` (dBFS RMS, LibriMix-like), and real noise is added at an SNR in
    ``snr_db`` with probability ``noise_prob``. With probability ``single_prob`` a mixture holds one
    talker: the other sources are silent (zeros), so that a separator learns to keep a lone voice in
    one output. ``augment`` makes new voices of the training speakers (:class:`VoiceAugment`); the
    mixture is always the sum of its (augmented) sources, plus noise when drawn.

    Args:
        speakers: speaker id -> list of mono waveforms at ``sample_rate``.
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
        augment: VoiceAugment | None = None,
        sample_rate: int = 8000,
        pools: dict[str, str] | None = None,
        pool_weights: dict[str, float] | None = None,
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
        self.augment = augment or VoiceAugment()
        self.sample_rate = sample_rate
        self.pools: dict[str, list[int]] = {}
        if pools:
            for k, spk in enumerate(self.speakers):
                self.pools.setdefault(pools[spk], []).append(k)
            weights = pool_weights or {}
            names = sorted(self.pools)
            w = np.array([float(weights.get(n, 1.0)) for n in names])
            if (w < 0).any() or w.sum() <= 0:
                raise ValueError(f"pool weights must be >= 0 with a positive sum, got {weights}")
            self.pool_names, self.pool_p = names, w / w.sum()

    def _speakers(self, rng: np.random.Generator) -> list[int]:
        """Indices of ``n_src`` different speakers: uniform over speakers (within a pool drawn by weight)."""
        if not self.pools:
            return list(rng.choice(len(self.speakers), size=self.n_src, replace=False))
        chosen: list[int] = []
        for _ in range(self.n_src):
            pool = self.pools[self.pool_names[rng.choice(len(self.pool_names), p=self.pool_p)]]
            free = [k for k in pool if k not in chosen] or [k for k in range(len(self.speakers)) if k not in chosen]
            chosen.append(free[rng.integers(len(free))])
        return chosen

    def _source(self, rng: np.random.Generator, utts: list[np.ndarray], length: int) -> np.ndarray:
        """A crop of ``length`` samples from one of ``utts``, speed-perturbed with ``speed_prob``
        (no draw at 0: the same mixtures as before), then shifted, equalised and reverberated."""
        aug = self.augment
        factor = 1.0
        if aug.speed_prob > 0:
            draw, value = rng.random(), rng.uniform(*aug.speed)
            factor = value if draw < aug.speed_prob else 1.0
        span = int(np.ceil(length * factor))
        wav = _crop(rng, utts[rng.integers(len(utts))], span)
        if factor != 1.0:
            # the sample rate only sets the rounding of the factor: 8 kHz steps of 50 Hz
            wav = fit_length(speed_perturb(torch.from_numpy(np.ascontiguousarray(wav)), 8000, factor)[0].numpy(),
                             length)
        return aug.apply(rng, wav, self.sample_rate)

    def item(self, epoch: int, index: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One mixture ``(T,)`` and its sources ``(n_src, T)``."""
        rng = np.random.default_rng([self.seed, epoch, index])
        chosen = self._speakers(rng)
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
