"""The overlapped-speech detector: model, training clips, and how the regions use it."""

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import voice
from hubbub.models.loading import load_model
from hubbub.models.overlap import OverlapConfig, OverlapDetector
from hubbub.pipeline.regions import RegionConfig, file_overlap, speech_regions
from hubbub.recipes.train_overlap import ConversationClips, OverlapTrainConfig, speech_frames

SR = 8000
TINY = OverlapConfig(n_mels=16, d_model=16, n_heads=2, d_ff=32, n_layers=1, dropout=0.0)


def _place(x, start, total):
    out = np.zeros(int(total * SR), dtype=np.float32)
    out[int(start * SR) : int(start * SR) + len(x)] = x
    return out


def test_detector_shapes_and_round_trip(tmp_path):
    torch.manual_seed(0)
    model = OverlapDetector(TINY).eval()
    wav = torch.randn(2, SR * 3)
    assert model(wav).shape == (2, 301, 3)  # one frame per 10 ms, centred
    model.save_pretrained(tmp_path / "det")
    again = load_model(tmp_path / "det")
    assert isinstance(again, OverlapDetector) and again.config == TINY
    torch.testing.assert_close(again(wav), model(wav))


def test_probability_is_per_frame_at_any_rate_and_length():
    torch.manual_seed(0)
    model = OverlapDetector(TINY).eval()
    wav = torch.randn(16000 * 13)  # 13 s at 16 kHz: three blocks
    p = model.overlap_probability(wav, 16000)
    assert p.shape == (1301,)
    assert bool(((p >= 0) & (p <= 1)).all())
    short = model.overlap_probability(torch.randn(400), 16000)  # shorter than a window
    assert short.shape == (3,)


def test_file_overlap_maps_detector_frames_to_level_frames(tmp_path):
    """A detector that hears "two voices" exactly where the audio is loud: the probability per level frame
    must follow the file's loud stretches across block edges and their context (an offset is caught)."""

    class Loud(OverlapDetector):
        def overlap_probability(self, wav, sample_rate):
            step = self.config.hop_ms / 1000
            n = int(round(wav.shape[-1] / sample_rate / step)) + 1
            at = (torch.arange(n) * step * sample_rate).long().clamp(max=wav.shape[-1] - 1)
            return (wav[at].abs() > 0.5).float()  # frame j is centred on j * step

    x = np.zeros(SR * 5, dtype=np.float32)
    loud = [(0.7, 1.5), (1.9, 2.3), (3.25, 3.9)]  # the second spans the 2-s block edge
    for a, b in loud:
        x[int(a * SR) : int(b * SR)] = 1.0
    path = tmp_path / "x.wav"
    sf.write(path, x, SR)
    p = file_overlap(path, Loud(TINY), 500, 0.010, block_seconds=2.0)
    want = torch.zeros(500)
    for a, b in loud:
        want[int(round(a * 100)) : int(round(b * 100))] = 1.0
    assert p.shape == (500,)
    assert int((p != want).sum()) <= 2 * len(loud)  # at most one frame off at each edge


def test_speech_frames_follow_energy():
    x = np.concatenate([np.zeros(SR), voice(150, 1.0, SR, 1), np.zeros(SR)]).astype(np.float32)
    speech = speech_frames(x, 80, 200)
    assert speech.shape == (301,)
    assert not speech[:95].any() and not speech[206:].any()
    assert speech[100:200].mean() > 0.6  # the voice's syllables, not its gaps


def test_conversation_clips_count_voices():
    speakers = {f"s{k}": [voice(100 + 40 * k + 7 * j, 3.0, SR, 10 * k + j) for j in range(3)] for k in range(4)}
    cfg = OverlapTrainConfig(example_seconds=4.0, noise_prob=0.0)
    clips = ConversationClips(speakers, cfg, SR, 80, 200, seed=0)
    wav, labels = clips.item(0, 0)
    assert wav.shape == (4 * SR,) and labels.shape == (401,)
    assert clips.item(0, 0)[0].equal(wav)  # reproducible
    seen = torch.cat([clips.item(0, i)[1] for i in range(40)])
    assert set(seen.unique().tolist()) == {0, 1, 2}
    wavs, ys = clips.batch(0, [0, 1, 2])
    assert wavs.shape == (3, 4 * SR) and ys.shape == (3, 401)


def _split_voice():
    """What a separator makes of one talker it splits: sound in both streams at once, -3 dB apart
    (other phases in each, so the whole-file same-voice test does not apply)."""
    a = _place(voice(120, 3.0, SR, 1), 1.0, 6.0)
    b = _place(voice(170, 3.0, SR, 2), 1.0, 6.0)
    return torch.tensor(np.stack([a, 0.7 * b]))


def test_without_a_detected_overlap_one_stream_speaks():
    streams = _split_voice()
    frames = 601
    both = speech_regions(streams, SR)
    assert all(len(r) == 1 for r in both)  # without the detector: two voices at once
    alone = speech_regions(streams, SR, overlap=torch.zeros(frames))
    assert len(alone[0]) == 1 and alone[1] == []  # the dominant stream only
    heard = speech_regions(streams, SR, overlap=torch.ones(frames))
    assert heard == both  # where the detector hears two voices, both streams stay


def test_a_detected_overlap_is_widened_and_kept_on_both_streams():
    streams = _split_voice()
    p = torch.zeros(601)
    p[300:350] = 0.9  # 3.0-3.5 s
    cfg = RegionConfig(overlap_pad=0.2)
    regions = speech_regions(streams, SR, cfg, overlap=p)
    (s1, e1), = regions[1]
    assert s1 == pytest.approx(3.0 - 0.2 - cfg.pad, abs=0.05) and e1 == pytest.approx(3.5 + 0.2 + cfg.pad, abs=0.06)


class _Constant(OverlapDetector):
    """A detector that hears two voices everywhere (``p = 1``) or nowhere (``p = 0``)."""

    def __init__(self, p: float) -> None:
        super().__init__(TINY)
        self.p = p

    def overlap_probability(self, wav, sample_rate):
        return torch.full((int(round(wav.shape[-1] / sample_rate * 100)) + 1,), self.p)


def test_the_pipeline_reads_two_voices_at_once_only_where_the_detector_hears_them(
        tiny_separator_dir, tiny_asr_dir, two_voice_mix):
    from hubbub.pipeline import Pipeline
    from hubbub.pipeline.pipeline import load_asr, load_overlap_detector
    from hubbub.pipeline.separate import load_separator
    from hubbub.pipeline.turns import overlaps

    sep, asr = load_separator(tiny_separator_dir), load_asr(tiny_asr_dir)
    plain = Pipeline(sep, asr)(two_voice_mix, details=True).details
    heard = Pipeline(sep, asr, overlap_detector=_Constant(1.0))(two_voice_mix, details=True).details
    never = Pipeline(sep, asr, overlap_detector=_Constant(0.0))(two_voice_mix, details=True).details
    assert heard["regions"] == plain["regions"] and heard["overlap"].shape[-1] > 0
    assert overlaps(never["regions"]) == []  # one voice at a time: every region is read from the recording
    assert load_overlap_detector("none") is None
