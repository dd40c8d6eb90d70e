"""Shared fixtures: tiny models and generated audio (no real data needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from hubbub.models.separator import Separator, SeparatorConfig

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

TINY_SEPARATOR = SeparatorConfig(
    sample_rate=8000, n_src=2, enc_channels=16, kernel_size=16, stride=8, d_model=16, n_heads=2, d_ff=32,
    n_blocks=1, chunk_size=10,
)


def voice(f0: float, seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """A speech-like test signal: harmonics of ``f0`` with a syllable-rate envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f = f0 * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = 0.5 * (1 + np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6))) ** 2
    return (0.1 * x * env).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_separator_dir(tmp_path_factory) -> Path:
    """A saved random-weight tiny separator (config.json + model.safetensors)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-separator")
    Separator(TINY_SEPARATOR).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_librispeech(tmp_path_factory) -> Path:
    """A LibriSpeech-layout folder: 8 speakers x 2 utterances of synthetic voices at 16 kHz."""
    root = tmp_path_factory.mktemp("librispeech") / "train-tiny"
    for s in range(8):
        spk = str(100 + s)
        chapter = root / spk / "10"
        chapter.mkdir(parents=True)
        lines = []
        for u in range(2):
            utt = f"{spk}-10-{u:04d}"
            sf.write(chapter / f"{utt}.flac", voice(90 + 25 * s, 1.5 + 0.5 * u, 16000, seed=s * 10 + u), 16000)
            lines.append(f"{utt} HELLO SPEAKER {s} NUMBER {u}")
        (chapter / f"{spk}-10.trans.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture()
def two_voice_mix(tmp_path) -> Path:
    """A 2 s, 16 kHz two-voice mixture file."""
    x = voice(110, 2.0, 16000, 1) + voice(220, 2.0, 16000, 2)
    path = tmp_path / "mix.wav"
    sf.write(path, x, 16000)
    return path


@pytest.fixture(scope="session")
def tiny_asr_dir(tmp_path_factory) -> Path:
    """A saved random-weight tiny character ASR (with its tokenizer)."""
    from hubbub.models.asr import ASRConfig, SpeechTransformer
    from hubbub.models.tokenizer import CharTokenizer

    torch.manual_seed(0)
    cfg = ASRConfig(d_model=32, n_heads=2, d_ff=64, enc_layers=1, dec_layers=1, twod_channels=4, dropout=0.0,
                    tokenizer="char", vocab_size=CharTokenizer().vocab_size)
    path = tmp_path_factory.mktemp("tiny-asr")
    SpeechTransformer(cfg, CharTokenizer()).save_pretrained(path)
    return path


@pytest.fixture(autouse=True)
def _restore_thread_count():
    """Whatever a test sets (``--threads 1`` of an in-process command, say), the next starts as this one did."""
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is faster, and far faster on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
