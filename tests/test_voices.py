"""The separator's voice pool: the speechocean762 reader, the mixer's speaker draw, the voice augmentations."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from hubbub.recipes.data import DynamicMixer, VoiceAugment, read_speechocean762, read_voices, split_speakers
from hubbub.recipes.voices import equalise, shift_voice

SR = 8000


def _tone(freq: float, seconds: float = 1.0, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def _speechocean(root, speakers: dict[str, int]) -> None:
    """A speechocean762-layout folder: ``speakers`` id -> utterance count, Ogg Opus audio."""
    lines, spk_lines = [], []
    for k, (spk, count) in enumerate(speakers.items()):
        folder = root / "WAVE" / f"SPEAKER{spk}"
        folder.mkdir(parents=True)
        for i in range(count):
            utt = f"{spk}{i:05d}"
            sf.write(folder / f"{utt}.ogg", _tone(150 + 40 * k + 5 * i), 16000, format="OGG", subtype="OPUS")
            lines.append(f"{utt}\tWORD {i}")
            spk_lines.append(f"{utt}\t{spk}")
    (root / "text").write_text("\n".join(lines) + "\n")
    (root / "utt2spk").write_text("\n".join(spk_lines) + "\n")
    (root / "speakers.tsv").write_text("speaker\tgender\tage\n" + "".join(f"{s}\tf\t9\n" for s in speakers))


def test_speechocean762_reader_reads_opus(tmp_path):
    _speechocean(tmp_path, {"0001": 2, "0003": 3})
    utts = read_speechocean762(tmp_path)
    assert [u.speaker for u in utts] == ["so0001"] * 2 + ["so0003"] * 3
    assert utts[0].id == "000100000" and utts[0].text == "WORD 0"
    assert read_voices("speechocean762", tmp_path) == utts
    audio = __import__("hubbub.recipes.data", fromlist=["load_speaker_audio"]).load_speaker_audio(utts, SR)
    assert sorted(audio) == ["so0001", "so0003"] and len(audio["so0003"]) == 3
    assert abs(len(audio["so0001"][0]) - SR) < 200 and np.abs(audio["so0001"][0]).max() > 0.1  # decoded, resampled
    with pytest.raises(FileNotFoundError, match="WAVE"):
        read_speechocean762(tmp_path / "WAVE")
    with pytest.raises(ValueError, match="unknown voice corpus"):
        read_voices("timit", tmp_path)


def test_split_speakers_holds_out_whole_speakers(tmp_path):
    _speechocean(tmp_path, {f"{k:04d}": 1 for k in range(20)})
    train, held = split_speakers(read_speechocean762(tmp_path), 4)
    assert len({u.speaker for u in held}) == 4 and not {u.speaker for u in held} & {u.speaker for u in train}


def test_mixer_draws_speakers_uniformly_not_utterances():
    """One speaker with 50 utterances and nine with one each: every speaker is drawn about as often."""
    rng = np.random.default_rng(0)
    speakers = {"big": [rng.standard_normal(800).astype(np.float32) * (k + 1) for k in range(50)]}
    speakers |= {f"s{k}": [rng.standard_normal(800).astype(np.float32)] for k in range(9)}
    mixer = DynamicMixer(speakers, 2, seed=1)
    counts = Counter()
    for i in range(2000):
        r = np.random.default_rng([mixer.seed, 0, i])
        counts.update(mixer.speakers[k] for k in mixer._speakers(r))
    expected = 2 * 2000 / 10
    assert all(abs(c - expected) < 0.2 * expected for c in counts.values()), counts


def test_mixer_pools_draw_corpus_by_weight_then_speaker():
    rng = np.random.default_rng(0)
    speakers = {f"a{k}": [rng.standard_normal(800).astype(np.float32)] for k in range(2)}
    speakers |= {f"b{k}": [rng.standard_normal(800).astype(np.float32)] for k in range(20)}
    pools = {s: s[0] for s in speakers}
    mixer = DynamicMixer(speakers, 2, seed=1, pools=pools, pool_weights={"a": 1.0, "b": 1.0})
    counts = Counter()
    for i in range(2000):
        counts.update(mixer.speakers[k][0] for k in mixer._speakers(np.random.default_rng([1, 0, i])))
    # by speaker count corpus a would get 2/22 of the sources; by weight it gets about half
    assert 0.4 < counts["a"] / 4000 < 0.6
    with pytest.raises(ValueError, match="weights"):
        DynamicMixer(speakers, 2, pools=pools, pool_weights={"a": 0.0, "b": 0.0})


@pytest.mark.parametrize("augment", [
    VoiceAugment(speed_prob=1.0, speed=(0.9, 0.9)),
    VoiceAugment(shift_prob=1.0, shift_semitones=(3.0, 3.0)),
    VoiceAugment(eq_prob=1.0, tilt_db=(-4.0, -4.0)),
    VoiceAugment(reverb_prob=1.0, rt60=(0.5, 0.5)),
], ids=["speed", "shift", "eq", "reverb"])
def test_each_augmentation_keeps_length_and_the_mixture_is_the_sum(augment):
    t = np.arange(3 * SR) / SR
    speakers = {f"s{k}": [np.sin(2 * np.pi * (180 + 60 * k) * t).astype(np.float32)] for k in range(3)}
    plain = DynamicMixer(speakers, 2, seed=3)
    changed = DynamicMixer(speakers, 2, seed=3, augment=augment)
    mix, src = changed.item(0, 2, 4000)
    assert mix.shape == (4000,) and src.shape == (2, 4000)
    torch.testing.assert_close(mix, src.sum(0))
    assert not torch.allclose(src, plain.item(0, 2, 4000)[1], atol=1e-3)  # it did change the voices


def test_shift_voice_moves_pitch_keeps_length():
    t = np.arange(SR) / SR
    tone = np.sin(2 * np.pi * 400 * t).astype(np.float32)
    up = shift_voice(tone, SR, 12.0)  # one octave
    assert up.shape == tone.shape
    peak = np.argmax(np.abs(np.fft.rfft(up[1000:7000]))) * SR / 6000
    assert abs(peak - 800) < 20


def test_equalise_tilts_the_spectrum_keeps_rms():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(SR).astype(np.float32)
    dark = equalise(noise, SR, -6.0)
    assert dark.shape == noise.shape and abs(np.std(dark) - np.std(noise)) < 0.01
    spec = np.abs(np.fft.rfft(dark)) ** 2
    low, high = spec[50:500].mean(), spec[3000:3900].mean()  # 100-1000 Hz against 3-3.9 kHz
    assert 10 * np.log10(low / high) > 10


def test_prepared_pool_trains_the_gpu_recipe_for_two_steps_on_cpu(tmp_path, tiny_librispeech):
    """``hubbub data voices`` then the GPU recipe (separator-gpu.yaml) as documented, on CPU, two steps:
    the prepared corpora keep their kinds' names, speakers and validation splits."""
    import csv

    from hubbub.__main__ import main
    from hubbub.models.separator import Separator
    from hubbub.recipes.data import read_prepared

    so = tmp_path / "so"
    _speechocean(so, {f"{k:04d}": 2 for k in range(1, 5)})
    out = tmp_path / "voices"
    assert main(["data", "voices", "--out", str(out), "--corpus", f"librispeech:{tiny_librispeech}",
                 "--corpus", f"speechocean762:{so}", "--jobs", "1"]) == 0
    utts = read_prepared(out / "speechocean762")
    assert [u.speaker for u in utts] == [f"so{k:04d}" for k in range(1, 5) for _ in range(2)]
    assert utts[0].text == "WORD 0" and sf.info(utts[0].path).samplerate == 8000
    assert read_voices("prepared", out / "librispeech")[0].speaker == "100"
    assert main(["data", "voices", "--out", str(out), "--corpus", f"speechocean762:{so}"]) == 0  # resumable

    config = Path(__file__).resolve().parents[1] / "hubbub/recipes/configs/separator-gpu.yaml"
    exp = tmp_path / "exp"
    assert main(["train", "separator", "--config", str(config), "--device", "cpu", "--exp-dir", str(exp),
                 "--data-dir", f"prepared:{out}/librispeech", "--voice-corpora", f"[prepared:{out}/speechocean762]",
                 "--batch-size", "2", "--epoch-size", "8", "--val-speakers", "2", "--val-mixtures", "2",
                 "--val-seconds", "0.5", "--segment-seconds-start", "0.5", "--segment-seconds", "0.5",
                 "--val-every", "2", "--max-steps", "2", "--threads", "1", "--max-minutes", "5"]) == 0
    rows = list(csv.DictReader((exp / "metrics.csv").open()))
    assert [r["step"] for r in rows] == ["2"]
    assert rows[0]["si_snri_librispeech"] and rows[0]["si_snri_speechocean762"]
    assert Separator.from_pretrained(exp / "best").config.d_model == 64
