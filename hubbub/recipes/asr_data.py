"""ASR training data: typed records, corpus readers, a mixed-corpus length-bucketed
sampler and the audio augmentation shared with ``hubbub data synth``.

Corpora are named by a spec string ``kind:path`` (the kind may be left out where
the path says it):

* ``librispeech:<folder>``: LibriSpeech layout with ``.trans.txt`` transcripts;
* ``manifest:<file.jsonl>``: JSONL records with at least ``{"audio", "text"}``
  (``id``, ``duration``, ``speaker`` optional; relative audio paths are relative
  to the manifest's folder), e.g. the manifests of ``hubbub data synth``;
* ``fsdd:<folder>``, ``fsdd-train:<folder>``, ``fsdd-test:<folder>``: the Free
  Spoken Digit Dataset, ``<digit>_<speaker>_<index>.<ext>``, the digit as a word
  (``ZERO`` .. ``NINE``); official split: index 0-4 test, 5-49 train.

Every batch is a pure function of ``(seed, epoch, batch number)``, as in
:mod:`hubbub.recipes.data`, so a resumed run trains on exactly the batches an
uninterrupted one would have.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hubbub.models.text import normalize_text
from hubbub.pipeline.inputs import AUDIO_EXTENSIONS
from hubbub.recipes.voices import reverberate, speed_perturb  # re-exported: the ASR recipe's augmentation uses them

if TYPE_CHECKING:  # torch and the audio front-end are imported where they run (``data synth --help`` needs neither)
    import torch

__all__ = [
    "DIGIT_WORDS",
    "AsrBatches",
    "AsrExample",
    "AugmentConfig",
    "augment",
    "band_limit",
    "even_subset",
    "filter_examples",
    "load_corpus",
    "load_waveforms",
    "pad_batch",
    "parse_spec",
    "pitch_shift",
    "read_fsdd",
    "read_librispeech_asr",
    "read_manifest",
    "read_sentences",
    "reverberate",
    "speed_perturb",
]

log = logging.getLogger(__name__)

DIGIT_WORDS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
#: FSDD's official split: recordings with index < 5 are the test set
FSDD_TEST_INDICES = range(5)
CORPUS_KINDS = ("librispeech", "manifest", "fsdd", "fsdd-train", "fsdd-test")
_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z0-9]+)_(\d+)$")


# --------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class AsrExample:
    """One utterance to train or score on.

    ``audio`` is an absolute path, ``text`` the normalised transcript
    (:func:`~hubbub.models.text.normalize_text`), ``duration`` seconds
    from the file header, ``corpus`` the spec it was read from.
    """

    id: str
    audio: str
    text: str
    duration: float
    speaker: str | None = None
    corpus: str = ""


def _example(id_: str, path: str | Path, text: str, speaker: str | None, corpus: str,
             duration: float | None = None) -> AsrExample | None:
    """An :class:`AsrExample`, or None (logged) when the file or the text is unusable."""
    text = normalize_text(text or "")
    if not text:
        log.debug("%s: no transcript, skipped", id_)
        return None
    if duration is None:
        from hubbub.pipeline.audio import AudioError, probe_audio

        try:
            duration = probe_audio(path).duration
        except AudioError as err:
            log.warning("skipping %s", err)
            return None
    return AsrExample(id_, str(Path(path).resolve()), text, float(duration), speaker, corpus)


def read_librispeech_asr(root: str | os.PathLike, corpus: str = "") -> list[AsrExample]:
    """Transcribed utterances of a LibriSpeech-layout folder (untranscribed ones are skipped)."""
    from hubbub.recipes.data import read_librispeech

    corpus = corpus or f"librispeech:{root}"
    out = [_example(u.id, u.path, u.text or "", u.speaker, corpus) for u in read_librispeech(root)]
    return [e for e in out if e is not None]


def read_manifest(path: str | os.PathLike, corpus: str = "") -> list[AsrExample]:
    """Records of a JSONL manifest: ``{"audio", "text"}`` plus optional ``id``, ``duration``, ``speaker``.

    Audio paths are found as in ``hubbub evaluate separation``: as written, relative to the
    manifest's folder, or by file stem under it; records without a transcript are skipped.
    """
    from hubbub.recipes.manifest import find_audio

    path = Path(path)
    corpus = corpus or f"manifest:{path}"
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            audio, text = rec["audio"], rec["text"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path}:{n}: not an {{\"audio\", \"text\"}} record ({err})") from None
        try:
            audio_path = find_audio(audio, path.parent)
        except FileNotFoundError as err:
            log.warning("%s:%d: skipped (%s)", path, n, err)
            continue
        ex = _example(str(rec.get("id") or audio_path.stem), audio_path, text, rec.get("speaker"), corpus,
                      rec.get("duration"))
        if ex is not None:
            out.append(ex)
    return out


def read_fsdd(folder: str | os.PathLike, split: str = "train", corpus: str = "") -> list[AsrExample]:
    """FSDD recordings ``<digit>_<speaker>_<index>``: ``split`` is ``train`` (index 5-49),
    ``test`` (index 0-4) or ``all``. The transcript is the digit as a word."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"FSDD split must be train, test or all, got {split!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a directory")
    corpus = corpus or f"fsdd-{split}:{folder}"
    out = []
    for path in sorted(folder.rglob("*")):
        match = _FSDD_NAME.match(path.stem)
        if path.suffix.lower() not in AUDIO_EXTENSIONS or not match:
            continue
        digit, speaker, index = int(match[1]), match[2], int(match[3])
        if split != "all" and (index in FSDD_TEST_INDICES) != (split == "test"):
            continue
        ex = _example(path.stem, path, DIGIT_WORDS[digit], speaker, corpus)
        if ex is not None:
            out.append(ex)
    if not out:
        raise FileNotFoundError(f"{folder}: no FSDD recordings (<digit>_<speaker>_<index>.wav|flac) for {split}")
    return out


def parse_spec(spec: str) -> tuple[str, str]:
    """``"kind:path"`` -> ``(kind, path)``; without a known kind, guessed from the path."""
    kind, sep, rest = spec.partition(":")
    if sep and kind in CORPUS_KINDS:
        return kind, rest
    path = Path(spec)
    if path.suffix == ".jsonl":
        return "manifest", spec
    if path.is_dir() and next(path.rglob("*.trans.txt"), None) is not None:
        return "librispeech", spec
    raise ValueError(f"{spec}: say what it is, as one of {', '.join(k + ':PATH' for k in CORPUS_KINDS)}")


def load_corpus(spec: str) -> list[AsrExample]:
    """The examples of one corpus spec (see the module docstring)."""
    kind, path = parse_spec(spec)
    if kind == "librispeech":
        return read_librispeech_asr(path, corpus=spec)
    if kind == "manifest":
        return read_manifest(path, corpus=spec)
    split = {"fsdd": "train", "fsdd-train": "train", "fsdd-test": "test"}[kind]
    return read_fsdd(path, split, corpus=spec)


def filter_examples(examples: Sequence[AsrExample], min_seconds: float = 0.0,
                    max_seconds: float | None = None) -> list[AsrExample]:
    """Keep examples whose duration is within limits."""
    return [e for e in examples if e.duration >= min_seconds and (max_seconds is None or e.duration <= max_seconds)]


def even_subset(examples: Sequence[AsrExample], count: int | None) -> list[AsrExample]:
    """``count`` examples spread evenly over the id-sorted list (all when it is shorter)."""
    items = sorted(examples, key=lambda e: (e.corpus, e.id))
    if count is None or len(items) <= count:
        return items
    return [items[int(i * len(items) / count)] for i in range(count)]


def read_sentences(path: str | os.PathLike, limit: int | None = None) -> list[tuple[str, str]]:
    """``(id, text)`` pairs of a text file: ``utt_id<TAB>TEXT`` lines, or one sentence per
    line (ids ``<stem>-<line number>``). Blank lines are skipped; texts are as written."""
    path = Path(path)
    out = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            utt, tab, text = line.partition("\t")
            if tab:
                utt = re.sub(r"[^A-Za-z0-9_.-]", "_", utt.strip()) or f"{path.stem}-{n:06d}"
            else:
                utt, text = f"{path.stem}-{n:06d}", line
            out.append((utt, text.strip()))
            if limit is not None and len(out) >= limit:
                break
    return out


# ----------------------------------------------------------------------------------------- augmentation


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each augmentation (0 turns one off)."""

    speed_prob: float = 0.0
    speed: tuple[float, float] = (0.9, 1.1)  # playback speed factor
    pitch_prob: float = 0.0
    pitch_cents: float = 300.0  # shift drawn from [-x, x] (sox ``pitch``; skipped without sox)
    reverb_prob: float = 0.0
    rt60: tuple[float, float] = (0.2, 0.8)  # seconds
    drr_db: tuple[float, float] = (0.0, 12.0)  # direct-to-reverberant ratio
    noise_prob: float = 0.0
    snr_db: tuple[float, float] = (5.0, 25.0)
    band_prob: float = 0.0
    lowpass_hz: tuple[float, float] = (3200.0, 3600.0)  # telephone-like band limit


def pitch_shift(wav: torch.Tensor, sample_rate: int, cents: float) -> torch.Tensor | None:
    """Shift the pitch by ``cents`` keeping the tempo (sox ``pitch``); None without sox."""
    import torch

    sox = shutil.which("sox")
    if sox is None:
        return None
    raw = ["-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1", "-r", str(sample_rate)]
    data = wav.detach().cpu().numpy().astype("<f4").tobytes()
    proc = subprocess.run([sox, "-q", *raw, "-", *raw, "-", "pitch", f"{cents:.0f}"], input=data,
                          capture_output=True, timeout=120, check=False)
    if proc.returncode != 0 or not proc.stdout:
        log.warning("sox pitch failed (%s): pitch left unchanged", proc.stderr.decode(errors="replace").strip())
        return None
    return torch.from_numpy(np.frombuffer(proc.stdout, dtype="<f4").copy())


def band_limit(wav: torch.Tensor, sample_rate: int, cutoff_hz: float) -> torch.Tensor:
    """Low-pass at ``cutoff_hz`` (two cascaded biquads, 24 dB/octave), like a telephone
    channel or the 8 kHz separator's output; a no-op at or above Nyquist."""
    import torchaudio.functional as AF

    if cutoff_hz >= sample_rate / 2:
        return wav
    for _ in range(2):
        wav = AF.lowpass_biquad(wav, sample_rate, cutoff_hz)
    return wav


def augment(wav: torch.Tensor, sample_rate: int, rng: np.random.Generator, cfg: AugmentConfig,
            noises: Sequence[np.ndarray] = ()) -> tuple[torch.Tensor, dict]:
    """Speed, pitch, reverberation, real noise and band limiting, each with its own
    probability; every draw comes from ``rng``. Returns the waveform and what was
    done (``{}`` when nothing was)."""
    from hubbub.recipes.data import add_noise

    info: dict = {}
    # draw every decision up front, so that one augmentation being unavailable
    # (no sox) does not change the others
    draws = rng.random(5)
    speed = rng.uniform(*cfg.speed)
    cents = rng.uniform(-cfg.pitch_cents, cfg.pitch_cents)
    rt60, drr = rng.uniform(*cfg.rt60), rng.uniform(*cfg.drr_db)
    noise_k = int(rng.integers(len(noises))) if len(noises) else -1
    snr, noise_seed = rng.uniform(*cfg.snr_db), int(rng.integers(2**31))
    cutoff = rng.uniform(*cfg.lowpass_hz)
    if draws[0] < cfg.speed_prob:
        wav, used = speed_perturb(wav, sample_rate, speed)
        if used != 1.0:
            info["speed"] = round(used, 4)
    if draws[1] < cfg.pitch_prob:
        shifted = pitch_shift(wav, sample_rate, cents)
        if shifted is not None:
            wav = shifted
            info["pitch_cents"] = round(cents)
    if draws[2] < cfg.reverb_prob:
        wav = reverberate(wav, sample_rate, rt60, drr, rng=np.random.default_rng(noise_seed))
        info["reverb_rt60"], info["reverb_drr_db"] = round(rt60, 3), round(drr, 1)
    if draws[3] < cfg.noise_prob and noise_k >= 0:
        wav = add_noise(wav, [noises[noise_k]], snr, seed=noise_seed)
        info["noise"], info["snr_db"] = noise_k, round(snr, 1)
    if draws[4] < cfg.band_prob and cutoff < sample_rate / 2:
        wav = band_limit(wav, sample_rate, cutoff)
        info["lowpass_hz"] = round(cutoff)
    return wav, info


# ---------------------------------------------------------------------------------------------- batches


class AsrBatches:
    """Length-bucketed batches drawn from several corpora with per-corpus weights.

    Every example gets the probability ``weight[c] / len(corpus c)`` (weights
    normalised), so corpus ``c`` supplies a ``weight[c]`` share of the examples
    whatever its size. Examples are sorted by duration and cut into ``buckets``
    groups of equal count; a batch first draws a bucket (by its probability
    mass), then ``batch_size`` examples from it (with replacement), so the
    utterances of a batch have similar lengths and little padding.
    ``max_batch_seconds`` caps ``batch_size x longest`` (fewer long utterances).

    ``examples(epoch, number)`` is a pure function of ``(seed, epoch, number)``.
    """

    def __init__(
        self,
        corpora: Sequence[Sequence[AsrExample]],
        weights: Sequence[float] | None = None,
        batch_size: int = 8,
        seed: int = 0,
        buckets: int = 10,
        max_batch_seconds: float | None = None,
    ) -> None:
        corpora = [list(c) for c in corpora]
        weights = list(weights) if weights else [1.0] * len(corpora)
        if len(weights) != len(corpora):
            raise ValueError(f"{len(weights)} weights for {len(corpora)} corpora")
        if any(w < 0 for w in weights):
            raise ValueError(f"corpus weights must be >= 0, got {weights}")
        used = [(c, w) for c, w in zip(corpora, weights) if c and w > 0]
        if not used:
            raise ValueError("no training examples (every corpus is empty or has weight 0)")
        total = sum(w for _, w in used)
        items = [(e, w / total / len(c)) for c, w in used for e in c]
        items.sort(key=lambda p: (p[0].duration, p[0].id))
        self.examples_sorted = [e for e, _ in items]
        prob = np.array([p for _, p in items])
        n_buckets = max(1, min(buckets, len(items)))
        self.bounds = np.linspace(0, len(items), n_buckets + 1).round().astype(int)
        mass = np.array([prob[a:b].sum() for a, b in zip(self.bounds[:-1], self.bounds[1:])])
        self.bucket_prob = mass / mass.sum()
        self.within = [prob[a:b] / prob[a:b].sum() if prob[a:b].sum() > 0 else None
                       for a, b in zip(self.bounds[:-1], self.bounds[1:])]
        self.batch_size = batch_size
        self.seed = seed
        self.max_batch_seconds = max_batch_seconds

    def __len__(self) -> int:
        return len(self.examples_sorted)

    def examples(self, epoch: int, number: int) -> list[AsrExample]:
        """The examples of batch ``number`` of ``epoch``, longest first."""
        rng = np.random.default_rng([self.seed, epoch, number])
        k = int(rng.choice(len(self.bucket_prob), p=self.bucket_prob))
        a, b = self.bounds[k], self.bounds[k + 1]
        picks = rng.choice(np.arange(a, b), size=self.batch_size, p=self.within[k])
        chosen = sorted((self.examples_sorted[i] for i in picks), key=lambda e: -e.duration)
        if self.max_batch_seconds:
            keep = max(1, int(self.max_batch_seconds // max(chosen[0].duration, 1e-3)))
            chosen = chosen[:keep]
        return chosen


def load_waveforms(
    examples: Sequence[AsrExample],
    sample_rate: int,
    rng: np.random.Generator | None = None,
    augmentation: AugmentConfig | None = None,
    noises: Sequence[np.ndarray] = (),
) -> tuple[list[AsrExample], list[torch.Tensor]]:
    """Read each example at ``sample_rate`` (augmented when asked); unreadable ones
    are logged and left out, so the returned examples are those that loaded."""
    from hubbub.pipeline.audio import AudioError, load_audio

    kept, wavs = [], []
    for ex in examples:
        try:
            wav, _ = load_audio(ex.audio, sample_rate=sample_rate)
        except AudioError as err:
            log.warning("skipping %s", err)
            continue
        if augmentation is not None and rng is not None:
            wav, _ = augment(wav, sample_rate, rng, augmentation, noises)
        peak = float(wav.abs().max())
        if peak > 0.99:
            wav = wav * (0.99 / peak)
        kept.append(ex)
        wavs.append(wav.float())
    return kept, wavs


def pad_batch(seqs: Sequence[torch.Tensor], value: float | int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad 1-D tensors into ``(B, max_len)`` and their lengths ``(B,)``."""
    import torch

    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), int(lengths.max())), value, dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out, lengths

