"""Speech regions of separated streams: timing, leakage and silence."""

import numpy as np
import torch

from conftest import voice
from hubbub.pipeline.regions import RegionConfig, speech_regions

SR = 8000


def _place(x, start, total):
    out = np.zeros(int(total * SR), dtype=np.float32)
    out[int(start * SR) : int(start * SR) + len(x)] = x
    return out


def test_regions_follow_each_voice():
    a = _place(voice(120, 2.0, SR, 1), 0.5, 8.0)
    b = _place(voice(240, 1.5, SR, 2), 4.0, 8.0)
    regions = speech_regions(torch.tensor(np.stack([a, b])), SR)
    assert len(regions[0]) == 1 and len(regions[1]) == 1
    (s0, e0), (s1, e1) = regions[0][0], regions[1][0]
    assert abs(s0 - 0.5) < 0.2 and abs(e0 - 2.5) < 0.25
    assert abs(s1 - 4.0) < 0.2 and abs(e1 - 5.5) < 0.25


def test_leakage_and_silence_yield_no_regions():
    a = _place(voice(120, 3.0, SR, 1), 1.0, 6.0)
    leak = 0.03 * a  # -30 dB copy of the other talker
    silent = np.zeros_like(a)
    regions = speech_regions(torch.tensor(np.stack([a, leak, silent])), SR)
    assert len(regions[0]) == 1
    assert regions[1] == [] and regions[2] == []


def test_overlapping_speech_is_kept_on_both_streams():
    a = _place(voice(120, 3.0, SR, 1), 1.0, 6.0)
    b = _place(voice(250, 3.0, SR, 2), 2.0, 6.0) * 0.5
    regions = speech_regions(torch.tensor(np.stack([a, b])), SR)
    assert regions[0] and regions[1]


def test_long_regions_are_cut_and_short_input_is_fine():
    a = voice(120, 30.0, SR, 1)
    regions = speech_regions(torch.tensor(a), SR, RegionConfig(max_region=8.0))[0]
    assert all(e - s <= 8.5 for s, e in regions)
    assert regions[0][0] < 0.5 and regions[-1][1] > 29.0
    assert speech_regions(torch.zeros(10), SR) == [[]]


def test_file_levels_match_whole_signal_levels(tmp_path):
    import soundfile as sf

    from hubbub.pipeline.regions import file_levels, regions_from_levels

    a = _place(voice(120, 2.0, SR, 1), 0.7, 9.3)
    b = _place(voice(240, 3.0, SR, 2), 4.1, 9.3)
    for name, x in (("a.wav", a), ("b.wav", b)):
        sf.write(tmp_path / name, x, SR, subtype="FLOAT")
    levels, duration, leakage, agreement = file_levels([tmp_path / "a.wav", tmp_path / "b.wav"], block_seconds=1.3)
    assert leakage == [False, False]
    whole, _, _, whole_agreement = file_levels([tmp_path / "a.wav", tmp_path / "b.wav"], block_seconds=60)
    assert abs(duration - 9.3) < 1e-3
    assert levels.shape == whole.shape
    assert agreement.shape == (2, 2, 2, levels.shape[-1])
    torch.testing.assert_close(levels, whole, atol=1e-3, rtol=1e-4)
    # block edges drop a few STFT frames: the per-frame sums agree everywhere else
    assert float((agreement - whole_agreement).abs().sum()) <= 0.05 * float(whole_agreement.abs().sum())
    assert regions_from_levels(levels, duration, agreement=agreement) == speech_regions(
        torch.tensor(np.stack([a, b])), SR)


def _leaky_pair(seconds=6.0):
    """One voice split in two as a masking separator splits it: a soft mask over frequency
    (so both parts share the source's phases), the high part quieter."""
    x = torch.from_numpy(voice(140, seconds, SR, 3))
    spec = torch.fft.rfft(x)
    mask = torch.sigmoid((700.0 - torch.fft.rfftfreq(x.shape[0], 1 / SR)) / 200.0)
    low = torch.fft.irfft(spec * mask, n=x.shape[0])
    return torch.stack([low, torch.fft.irfft(spec * (1 - mask), n=x.shape[0]) * 0.6])


def test_a_stream_that_is_part_of_the_other_voice_yields_no_speaker(tmp_path):
    import soundfile as sf

    from hubbub.pipeline.regions import file_levels, leakage_streams, phase_agreement, regions_from_levels

    pair = _leaky_pair()
    agreement = phase_agreement(pair, SR)
    assert float(agreement[0, 1]) > 0.95
    assert leakage_streams(agreement, pair.pow(2).sum(-1)) == [False, True]
    regions = speech_regions(pair, SR)
    assert regions[0] and regions[1] == []
    # two different talkers talking at once are two speakers
    both = torch.tensor(np.stack([voice(120, 6.0, SR, 1), voice(210, 6.0, SR, 2)]))
    assert float(phase_agreement(both, SR)[0, 1]) < 0.5
    assert all(speech_regions(both, SR))
    # from files, block by block: the same decision
    paths = [tmp_path / "a.wav", tmp_path / "b.wav"]
    for p, x in zip(paths, pair):
        sf.write(p, x.numpy(), SR, subtype="FLOAT")
    levels, duration, leakage, agreement = file_levels(paths, block_seconds=1.1)
    assert leakage == [False, True]
    assert regions_from_levels(levels, duration, leakage=leakage, agreement=agreement) == regions


def test_a_voice_split_across_streams_for_a_stretch_is_one_talker():
    """A separator that splits a lone talker across its outputs for a few seconds (same phases there)
    makes no second talker in that stretch; two talkers at once stay two."""
    total = 11.0
    x = torch.from_numpy(_place(voice(140, 8.0, SR, 3), 0.0, total))
    spec = torch.fft.rfft(x)
    mask = torch.sigmoid((700.0 - torch.fft.rfftfreq(x.shape[0], 1 / SR)) / 200.0)
    low, high = (torch.fft.irfft(spec * m, n=x.shape[0]) for m in (mask, 1 - mask))
    stretch = torch.zeros_like(x)
    stretch[int(2.0 * SR) : int(5.0 * SR)] = 1.0
    other_a = torch.from_numpy(_place(voice(110, 3.0, SR, 4), 8.0, total))
    other_b = torch.from_numpy(_place(voice(230, 3.0, SR, 5), 8.0, total))
    a = low + other_a
    b = 1.5 * high * stretch + other_b
    streams = torch.stack([a, b])

    def covers(regions, s, e):
        return any(min(e, re) - max(s, rs) > 0.5 * (e - s) for rs, re in regions)

    regions = speech_regions(streams, SR, RegionConfig(local_same_voice=0.85))
    assert covers(regions[0], 2.3, 4.7) and not covers(regions[1], 2.3, 4.7)
    assert covers(regions[0], 8.2, 10.8) and covers(regions[1], 8.2, 10.8)
    off = speech_regions(streams, SR, RegionConfig(local_same_voice=1.0))  # the frame-wise test off
    assert covers(off[1], 2.3, 4.7)
