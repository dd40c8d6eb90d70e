"""Speaker embeddings: who is speaking, as a unit vector.

hubbub uses Resemblyzer's voice encoder (Apache-2.0; a GE2E speaker encoder,
Wan et al. 2018, 3 LSTM layers over 40 log-mel bands, trained by Resemble AI on
LibriSpeech, VoxCeleb 1 and 2). Its weights ship inside the ``resemblyzer``
package, a pinned dependency, so nothing is downloaded; hubbub checks their
sha256 before loading them.

    >>> enc = SpeakerEncoder.load()
    >>> e = enc.embed(wav, 16000)              # (256,), unit norm
    >>> float(e @ enc.embed(other, 16000))     # cosine similarity
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

__all__ = ["RESEMBLYZER_SHA256", "SpeakerEncoder"]

RESEMBLYZER_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"  # resemblyzer 0.1.4
#: the encoder's rate
SAMPLE_RATE = 16000
#: shorter speech gives an unreliable embedding (the encoder's partial windows are 1.6 s)
MIN_SECONDS = 1.0


def _weights_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the speaker encoder needs the resemblyzer package: pip install resemblyzer")
    return Path(spec.origin).parent / "pretrained.pt"


class SpeakerEncoder:
    """Resemblyzer's voice encoder behind one method, :meth:`embed`."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder

    @classmethod
    def load(cls, device: str = "cpu") -> SpeakerEncoder:
        """The encoder, from the weights inside the resemblyzer package (sha256 checked)."""
        path = _weights_path()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != RESEMBLYZER_SHA256:
            raise ValueError(f"{path}: sha256 {digest} is not the expected {RESEMBLYZER_SHA256} (resemblyzer 0.1.4)")
        from resemblyzer import VoiceEncoder

        return cls(VoiceEncoder(device, verbose=False, weights_fpath=path))

    @torch.no_grad()
    def embed(self, wav: torch.Tensor | np.ndarray, sample_rate: int) -> torch.Tensor:
        """``(T,)`` speech at ``sample_rate`` -> ``(256,)`` unit-norm embedding (averaged
        over 1.6-s windows). Speech is resampled to 16 kHz and its level normalised."""
        import librosa

        x = np.asarray(wav.cpu().numpy() if torch.is_tensor(wav) else wav, dtype=np.float32)
        if sample_rate != SAMPLE_RATE:
            x = librosa.resample(x, orig_sr=sample_rate, target_sr=SAMPLE_RATE)
        rms = float(np.sqrt(np.mean(x**2))) if x.size else 0.0
        if rms > 0:
            x = x * (10 ** (-30 / 20) / rms)  # -30 dBFS, as resemblyzer's own preprocessing
        e = self.encoder.embed_utterance(x, rate=1.3, min_coverage=0.5)
        return torch.from_numpy(np.asarray(e, dtype=np.float32))
