"""The one streaming separator: each speaker stays on its own channel across windows, each voice
comes out at its level in the mixture, nothing is clipped, and memory and files agree."""

import itertools

import numpy as np
import torch

from conftest import voice
from hubbub.models.losses import si_snr
from hubbub.pipeline.separate import PEAK, align_to_previous, separate_waveform


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


def _snr(est, ref):
    """Plain SNR (dB): unlike SI-SNR it also counts a wrong level."""
    return 10 * torch.log10(ref.pow(2).sum(-1) / (est - ref).pow(2).sum(-1))


def test_stitching_keeps_speakers_on_their_channels_at_their_level():
    src = _sources() * 0.4
    model = BandSplitShuffler()
    out = separate_waveform(model, src.sum(0), 8000, chunk_seconds=4, overlap_seconds=1)
    assert model.calls > 4
    assert out.shape == src.shape
    best = max(itertools.permutations(range(2)), key=lambda p: float(si_snr(out[list(p)], src).sum()))
    # each voice at its level in the mixture, whatever gain the separator gave it in each window
    scores = _snr(out[list(best)], src)
    assert (scores > 15).all(), scores
    # and window by window, not just on average
    for start in range(0, src.shape[-1] - 16000, 16000):
        seg = _snr(out[list(best), start : start + 16000], src[:, start : start + 16000])
        assert (seg > 10).all(), (start, seg)


def test_one_pass_for_short_input_and_no_window():
    src = _sources(3)
    model = BandSplitShuffler()
    separate_waveform(model, src.sum(0), 8000, chunk_seconds=30)
    separate_waveform(model, src.sum(0), 8000, chunk_seconds=None)
    assert model.calls == 2


def test_align_to_previous_finds_the_order():
    a = torch.randn(3, 1000)
    assert align_to_previous(a, torch.stack([a[1] * 0.5, a[2] * 3, a[0] * 4])) == [2, 0, 1]


def test_awkward_lengths_are_kept():
    x = torch.from_numpy(voice(120, 9.37, 8000) + voice(260, 9.37, 8000, 3))
    out = separate_waveform(BandSplitShuffler(), x, 8000, chunk_seconds=2.5, overlap_seconds=0.7)
    assert out.shape == (2, x.shape[0]) and torch.isfinite(out).all()


class Overshooter(BandSplitShuffler):
    """Splits like :class:`BandSplitShuffler` but adds opposite clicks to the two outputs: they
    cancel in the sum, so each voice, at its level in the mixture, peaks far above it."""

    def __call__(self, mix):
        out = super().__call__(mix)
        clicks = torch.zeros(mix.shape[-1])
        clicks[::997] = 4.0
        return out + torch.stack([clicks, -clicks])[None]


def test_no_written_sample_is_clipped(tmp_path):
    """Voices that would go past full scale are scaled down together (the same ratio everywhere,
    nothing clipped), in memory and on disk alike."""
    import soundfile as sf

    from hubbub.pipeline.separate import separate_stream, separate_to_files

    mix = _sources(12).sum(0)
    mix = mix / mix.abs().max() * 0.9
    path = tmp_path / "loud.wav"
    sf.write(path, mix.numpy(), 8000, subtype="FLOAT")
    outs = [tmp_path / "a.wav", tmp_path / "b.wav"]
    separate_to_files(Overshooter(), path, outs, chunk_seconds=4, overlap_seconds=1)
    written = torch.stack([torch.from_numpy(sf.read(o, dtype="float32")[0]) for o in outs])
    in_memory = separate_waveform(Overshooter(), mix, 8000, chunk_seconds=4, overlap_seconds=1)
    raw = torch.cat(list(separate_stream(Overshooter(), lambda a, n: mix[a : a + n], mix.shape[0], 8000, 4, 1)), -1)
    assert float(raw.abs().max()) > 1.5  # at mixture level the clicks go far past full scale
    for est in (written, in_memory):
        assert float(est.abs().max()) <= PEAK + 1e-6
        # not clipped: the same waveform, only quieter (clipping would flatten the clicks)
        ratio = PEAK / float(raw.abs().max())
        torch.testing.assert_close(est, raw * ratio, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(written, in_memory, atol=1e-5, rtol=1e-4)


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
        seg = _snr(est[list(best), start : start + 32000], ref[:, start : start + 32000])
        assert (seg > 10).all(), (start, seg)
    # the same stream, kept in memory, gives the same voices (of the same 16-bit samples)
    as_read = torch.from_numpy(sf.read(path, dtype="float32")[0])
    in_memory = separate_waveform(BandSplitShuffler(), as_read, 16000, chunk_seconds=4, overlap_seconds=1)
    torch.testing.assert_close(est, in_memory, atol=1e-5, rtol=1e-4)


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
