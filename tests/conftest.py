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


WHISPER_SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]


def write_byte_tokenizer(path) -> None:
    """A byte-level BPE with no merges (256 byte tokens) and Whisper's special tokens after them (ids 256-260)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel

    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(sorted(ByteLevel.alphabet()))}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(WHISPER_SPECIALS)
    tok.save(str(path))


def tiny_whisper_config(**changes):
    """Whisper's layout at toy size: 30-s windows (1,500 encoder frames), the byte tokenizer's 261 tokens
    then 1,501 timestamp tokens (<|0.00|> .. <|30.00|>), alignment heads, a 2-channel time-frequency block."""
    from hubbub.models.whisper import WhisperConfig

    fields = dict(n_mels=16, n_audio_ctx=1500, n_audio_state=16, n_audio_head=2, n_audio_layer=1,
                  n_vocab=256 + len(WHISPER_SPECIALS) + 1501, n_text_ctx=64, n_text_state=16, n_text_head=2,
                  n_text_layer=1, eot=256, sot=257, language=258, transcribe=259, no_timestamps=260,
                  alignment_heads=((0, 0), (0, 1)), tf_channels=2)
    return WhisperConfig(**{**fields, **changes})


@pytest.fixture(scope="session")
def tiny_asr_dir(tmp_path_factory) -> Path:
    """A saved random-weight tiny Whisper (the default ASR's class and code paths, long-form reading included)."""
    from hubbub.models.whisper import WhisperASR, WhisperTokenizer

    source = tmp_path_factory.mktemp("tiny-whisper-tokenizer") / "tokenizer.json"
    write_byte_tokenizer(source)
    torch.manual_seed(0)
    cfg = tiny_whisper_config()
    path = tmp_path_factory.mktemp("tiny-asr")
    WhisperASR(cfg, WhisperTokenizer(source, cfg.eot)).save_pretrained(path)
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
