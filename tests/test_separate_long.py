"""Windowed separation keeps each speaker on its own channel across windows."""

import itertools

import numpy as np
import torch

from conftest import voice
from hubbub.models.losses import si_snr
from hubbub.pipeline.separate import align_to_previous, separate_long


class BandSplitShuffler:
    """A stand-in separator: splits low from high frequencies (which is exact for
    the test signals), then returns the two in an order and with gains that change
    from call to call, as a real separator's output permutation does."""

    sample_rate = 8000
    n_src = 2

    def __init__(self):
        self.calls = 0

    def __call__(self, mix):
        spec = torch.fft.rfft(mix[0])
        freqs = torch.fft.rfftfreq(mix.shape[-1], 1 / self.sample_rate)
        low = torch.fft.irfft(spec * (freqs < 600), n=mix.shape[-1])
        high = torch.fft.irfft(spec * (freqs >= 600), n=mix.shape[-1])
        self.calls += 1
        order = [low * 0.5, high * 2.0] if self.calls % 2 else [high * 3.0, low * 0.7]
        return torch.stack(order)[None]


def _sources(seconds=20):
    t = np.arange(int(seconds * 8000)) / 8000
    # the speakers swap which one is louder every 3 s
    env = (np.sin(2 * np.pi * t / 6) > 0).astype(np.float32) * 0.8 + 0.2
    s1 = np.sin(2 * np.pi * 200 * t) * env
    s2 = np.sin(2 * np.pi * 1500 * t) * (1.2 - env)
    return torch.tensor(np.stack([s1, s2]), dtype=torch.float32)


def test_stitching_keeps_speakers_on_their_channels():
    src = _sources()
    model = BandSplitShuffler()
    out = separate_long(model, src.sum(0), chunk_seconds=4, overlap_seconds=1)
    assert model.calls > 4
    assert out.shape == src.shape
    best = max(itertools.permutations(range(2)), key=lambda p: float(si_snr(out[list(p)], src).sum()))
    scores = si_snr(out[list(best)], src)
    assert (scores > 15).all(), scores
    # and window by window, not just on average
    for start in range(0, src.shape[-1] - 16000, 16000):
        seg = si_snr(out[list(best), start : start + 16000], src[:, start : start + 16000])
        assert (seg > 10).all(), (start, seg)


def test_one_pass_for_short_input_and_no_window():
    src = _sources(3)
    model = BandSplitShuffler()
    separate_long(model, src.sum(0), chunk_seconds=30)
    separate_long(model, src.sum(0), chunk_seconds=None)
    assert model.calls == 2


def test_align_to_previous_finds_order_and_gain():
    a = torch.randn(2, 1000)
    perm, gains = align_to_previous(a, torch.stack([a[1] * 0.5, a[0] * 4]))
    assert perm == [1, 0]
    torch.testing.assert_close(gains, torch.tensor([0.25, 2.0]), atol=1e-4, rtol=1e-4)


def test_real_voices_keep_level(tmp_path):
    """Length is preserved exactly for awkward lengths."""
    x = torch.from_numpy(voice(120, 9.37, 8000) + voice(260, 9.37, 8000, 3))
    out = separate_long(BandSplitShuffler(), x, chunk_seconds=2.5, overlap_seconds=0.7)
    assert out.shape == (2, x.shape[0]) and torch.isfinite(out).all()


def test_streaming_to_files_keeps_speakers_and_length(tmp_path):
    import soundfile as sf

    from hubbub.pipeline.separate import separate_to_files

    src = _sources(20)
    # written at 16 kHz so that every window is resampled on the way in and out
    import torchaudio.functional as AF

    mix16 = AF.resample(src.sum(0), 8000, 16000) * 0.5
    path = tmp_path / "long.wav"
    sf.write(path, mix16.numpy(), 16000)
    outs = [tmp_path / "a.wav", tmp_path / "b.wav"]
    assert separate_to_files(BandSplitShuffler(), path, outs, chunk_seconds=4, overlap_seconds=1) == 16000
    est = torch.stack([torch.from_numpy(sf.read(o, dtype="float32")[0]) for o in outs])
    assert est.shape == (2, mix16.shape[0])
    ref = AF.resample(src, 8000, 16000) * 0.5
    best = max(itertools.permutations(range(2)), key=lambda p: float(si_snr(est[list(p)], ref).sum()))
    for start in range(16000, ref.shape[-1] - 32000, 32000):
        seg = si_snr(est[list(best), start : start + 32000], ref[:, start : start + 32000])
        assert (seg > 10).all(), (start, seg)


def test_streaming_refuses_bad_files(tmp_path):
    import pytest
    import soundfile as sf

    from hubbub.pipeline.audio import AudioError
    from hubbub.pipeline.separate import separate_to_files

    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 8000)
    nan = tmp_path / "nan.wav"
    x = np.ones(16000, dtype=np.float32) * 0.1
    x[12000] = np.nan
    sf.write(nan, x, 8000, subtype="FLOAT")
    tiny = tmp_path / "tiny.wav"
    sf.write(tiny, np.ones(10, dtype=np.float32) * 0.1, 8000)
    outs = [tmp_path / "a.wav", tmp_path / "b.wav"]
    for path, msg in [(silent, "silent"), (nan, "NaN"), (tiny, "too short")]:
        with pytest.raises(AudioError, match=msg):
            separate_to_files(BandSplitShuffler(), path, outs, chunk_seconds=1, overlap_seconds=0.2)
