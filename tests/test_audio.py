"""The front-end answers every bad input with an AudioError naming the file."""

import os

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import voice
from hubbub.pipeline.audio import AudioError, load_audio, normalize_peak, probe_audio


def _wav(path, data, sr=16000, subtype=None):
    sf.write(path, data, sr, subtype=subtype)
    return path


def _bad_inputs(tmp: os.PathLike):
    """(name, path, expected message fragment) for each kind of bad file."""
    from pathlib import Path

    tmp = Path(tmp)
    cases = []
    (tmp / "empty.wav").write_bytes(b"")
    cases.append(("empty", tmp / "empty.wav", "empty file"))
    _wav(tmp / "zero.wav", np.zeros(0, dtype=np.float32))
    cases.append(("zero-length", tmp / "zero.wav", "no audio samples"))
    good = _wav(tmp / "good.wav", voice(150, 1.0, 16000))
    (tmp / "header.wav").write_bytes(good.read_bytes()[:44])
    cases.append(("header-only", tmp / "header.wav", "truncated: the header says 1.000 s"))
    flac = tmp / "good.flac"
    sf.write(flac, voice(150, 2.0, 16000), 16000)
    (tmp / "trunc.flac").write_bytes(flac.read_bytes()[: len(flac.read_bytes()) // 3])
    cases.append(("truncated flac", tmp / "trunc.flac", "truncated: the header says 2.000 s"))
    (tmp / "text.wav").write_text("this is not audio\n" * 20)
    cases.append(("text named .wav", tmp / "text.wav", "not a readable audio file"))
    nan = voice(150, 1.0, 16000)
    nan[100] = np.nan
    cases.append(("NaN", _wav(tmp / "nan.wav", nan, subtype="FLOAT"), "NaN or infinite"))
    inf = voice(150, 1.0, 16000)
    inf[5] = np.inf
    cases.append(("Inf", _wav(tmp / "inf.wav", inf, subtype="FLOAT"), "NaN or infinite"))
    cases.append(("all zeros", _wav(tmp / "zeros.wav", np.zeros(16000, dtype=np.float32)), "silent"))
    stereo = np.stack([voice(150, 1.0, 16000), -voice(150, 1.0, 16000)], axis=1)
    cases.append(("cancelling stereo", _wav(tmp / "cancel.wav", stereo, subtype="FLOAT"), "silent after downmixing"))
    (tmp / "dir.wav").mkdir()
    cases.append(("directory", tmp / "dir.wav", "is a directory"))
    cases.append(("missing", tmp / "missing.wav", "no such file"))
    return cases


def test_every_bad_input_gets_a_one_line_error_naming_the_file(tmp_path):
    for name, path, fragment in _bad_inputs(tmp_path):
        with pytest.raises(AudioError) as info:
            load_audio(path, min_seconds=0.0)
        msg = str(info.value)
        assert msg.startswith(str(path)), (name, msg)
        assert fragment in msg, (name, msg)
        assert "\n" not in msg, (name, msg)


def test_too_short_and_too_long(tmp_path):
    one = _wav(tmp_path / "one.wav", np.array([0.5], dtype=np.float32))
    with pytest.raises(AudioError, match="too short"):
        load_audio(one, min_seconds=0.05)
    long = _wav(tmp_path / "long.wav", voice(150, 3.0, 8000), sr=8000)
    with pytest.raises(AudioError, match="too long"):
        load_audio(long, max_seconds=2.0)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path):
    path = _wav(tmp_path / "locked.wav", voice(150, 1.0, 16000))
    path.chmod(0)
    with pytest.raises(AudioError, match="permission denied"):
        load_audio(path)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT", "DOUBLE"])
@pytest.mark.parametrize("sr", [5000, 8000, 16000, 96000])
def test_formats_and_rates_are_read_and_resampled(tmp_path, subtype, sr):
    path = _wav(tmp_path / f"ok {sr} ü.wav", voice(150, 0.5, sr), sr=sr, subtype=subtype)
    wav, out_sr = load_audio(path, sample_rate=8000)
    assert out_sr == 8000 and wav.dim() == 1
    assert abs(wav.shape[0] - 4000) <= 1


def test_multichannel_is_downmixed(tmp_path):
    data = np.stack([voice(100 + 20 * c, 1.0, 16000, c) for c in range(8)], axis=1)
    path = _wav(tmp_path / "eight.flac", data)
    wav, sr = load_audio(path)
    assert wav.shape == (16000,) and sr == 16000
    multi, _ = load_audio(path, mono=False)
    assert multi.shape == (8, 16000)
    assert probe_audio(path).channels == 8


@pytest.mark.parametrize("fmt", ["ogg", "flac", "mp3"])
def test_compressed_formats(tmp_path, fmt):
    path = tmp_path / f"x.{fmt}"
    try:
        sf.write(path, voice(150, 1.0, 16000), 16000)
    except (sf.LibsndfileError, TypeError, ValueError):
        pytest.skip(f"libsndfile here cannot write {fmt}")
    wav, sr = load_audio(path)
    assert sr == 16000 and abs(wav.shape[0] - 16000) < 2000


def test_clipped_square_wave_is_accepted_and_normalised(tmp_path):
    square = np.sign(np.sin(2 * np.pi * 200 * np.arange(8000) / 8000)).astype(np.float32) * 1.5
    path = _wav(tmp_path / "square.wav", square, sr=8000, subtype="FLOAT")
    wav, _ = load_audio(path, normalize=True)
    assert abs(float(wav.abs().max()) - 0.9) < 1e-5
    scaled, gain = normalize_peak(torch.zeros(10))
    assert gain == 1.0 and scaled.abs().max() == 0
