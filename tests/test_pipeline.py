"""The separate-then-transcribe pipeline and `hubbub transcribe`."""

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import voice
from hubbub.__main__ import main
from hubbub.pipeline import Pipeline
from hubbub.pipeline.audio import AudioError
from hubbub.pipeline.pipeline import load_asr
from hubbub.pipeline.separate import load_separator


@pytest.fixture()
def pipe(tiny_separator_dir, tiny_asr_dir):
    return Pipeline(load_separator(tiny_separator_dir), load_asr(tiny_asr_dir), names={"separator": "tiny"})


def test_pipeline_result_structure(pipe, two_voice_mix):
    result = pipe(two_voice_mix)
    assert result.audio == str(two_voice_mix) and result.sample_rate == 16000
    assert abs(result.duration - 2.0) < 1e-6
    # speakers are the voices with words, numbered by first speech
    ids = [s.id for s in result.speakers]
    assert 1 <= len(ids) <= 2 and ids == ["spk1", "spk2"][: len(ids)]
    assert [s.segments[0].start for s in result.speakers] == sorted(s.segments[0].start for s in result.speakers)
    for s in result.speakers:
        assert s.waveform.shape == (32000,) and s.segments
        assert [g.start for g in s.segments] == sorted(g.start for g in s.segments)
        for seg in s.segments:
            assert 0 <= seg.start < seg.end <= result.duration + 1e-6
            assert seg.text
            assert all(seg.start - 0.05 <= w.start <= w.end <= seg.end + 0.05 for w in seg.words)
    d = result.to_dict()
    assert set(d) == {"audio", "duration", "sample_rate", "models", "speakers"}
    assert set(d["speakers"][0]) == {"id", "audio", "text", "segments"}


def test_waveform_input_and_one_speaker(pipe):
    x = voice(120, 1.5, 8000) + voice(260, 1.5, 8000, 4)
    result = pipe(torch.from_numpy(x), sample_rate=8000, speakers=1)
    assert len(result.speakers) == 1 and "separator" not in result.models
    with pytest.raises(ValueError, match="sample_rate"):
        pipe(x)
    with pytest.raises(ValueError, match="not 3"):
        pipe(torch.from_numpy(x), sample_rate=8000, speakers=3)


def test_digital_silence_is_an_empty_result_and_nan_is_refused(pipe, tmp_path):
    quiet = pipe(np.zeros(8000, dtype=np.float32), sample_rate=8000)  # valid audio: nobody speaks
    assert quiet.speakers == [] and quiet.duration == 1.0 and quiet.sample_rate == 8000 and quiet.audio is None
    path = tmp_path / "silence.flac"
    sf.write(path, np.zeros(12000, np.float32), 8000)
    for result in (pipe(path), pipe(path, speakers=1), pipe(path, details=True)):
        assert result.speakers == [] and result.duration == 1.5 and result.audio == str(path)
        assert result.to_dict()["speakers"] == [] and result.segments() == []
    assert pipe(path, details=True).details == {"regions": [], "leakage": []}
    voices = tmp_path / "voices"
    assert pipe.transcribe_to_dir(path, voices).speakers == [] and not list(voices.iterdir())  # nothing written
    bad = voice(120, 1.0, 8000)
    bad[3] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        pipe(bad, sample_rate=8000)


@pytest.mark.slow
def test_transcribe_writes_every_format(tmp_path, tiny_separator_dir, tiny_asr_dir, two_voice_mix):
    out = tmp_path / "out"
    args = ["transcribe", str(two_voice_mix), "-o", str(out), "-f", "all", "--model", str(tiny_separator_dir),
            "--asr", str(tiny_asr_dir), "--quiet"]
    assert main(args) == 0
    for fmt in ("txt", "srt", "vtt", "tsv", "json", "rttm"):
        assert (out / f"mix.{fmt}").is_file(), fmt
    assert sf.info(str(out / "mix" / "spk1.wav")).samplerate == 16000
    data = json.loads((out / "mix.json").read_text())
    assert data["sample_rate"] == 16000 and 1 <= len(data["speakers"]) <= 2
    assert sorted(p.name for p in (out / "mix").iterdir()) == [f"{s['id']}.wav" for s in data["speakers"]]
    assert data["speakers"][0]["audio"].endswith("spk1.wav")
    srt = (out / "mix.srt").read_text()
    if srt.strip():
        assert re.search(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n\[spk\d\]: ", srt)
    # a second run skips; --overwrite redoes
    (out / "mix.txt").write_text("old")
    assert main(args) == 0 and (out / "mix.txt").read_text() == "old"
    assert main([*args, "--overwrite"]) == 0 and (out / "mix.txt").read_text() != "old"


@pytest.mark.slow
def test_transcribe_decoding_options(tmp_path, tiny_separator_dir, tiny_asr_dir, two_voice_mix, monkeypatch):
    """The decoding flags reach the search that reads the voices (a spy on ``decode``), and bad values stop
    the command before anything is written."""
    import hubbub.models.decoding as decoding

    seen = []
    real = decoding.decode

    def spy(model, wav, lengths=None, options=None, **fields):
        seen.append(options)
        return real(model, wav, lengths, options, **fields)

    monkeypatch.setattr(decoding, "decode", spy)
    out = tmp_path / "out"
    args = ["transcribe", str(two_voice_mix), "-o", str(out), "--model", str(tiny_separator_dir),
            "--asr", str(tiny_asr_dir), "--quiet", "-f", "json"]
    assert main([*args, "--beam-size", "0"]) == 2 and not seen and not out.exists()
    with pytest.raises(SystemExit) as stop:  # a Speech-Transformer flag: an unknown option now, not ignored
        main([*args, "--ctc-weight", "1"])
    assert stop.value.code == 2 and not out.exists()
    assert main(args) == 0  # greedy
    assert seen and all(o.beam_size == 1 for o in seen)
    assert json.loads((out / "mix.json").read_text())["speakers"]
    seen.clear()
    assert main([*args, "--beam-size", "2", "--overwrite"]) == 0
    assert seen and all(o.beam_size == 2 for o in seen)


def test_transcribe_batch_with_a_corrupt_file(tmp_path, tiny_separator_dir, tiny_asr_dir, two_voice_mix, caplog):
    bad = tmp_path / "corrupt.flac"
    bad.write_bytes(b"fLaC" + b"\x00" * 100)
    out = tmp_path / "out"
    code = main(["transcribe", str(bad), str(two_voice_mix), "-o", str(out), "-f", "json",
                 "--model", str(tiny_separator_dir), "--asr", str(tiny_asr_dir), "--no-separation"])
    assert code == 1
    assert (out / "mix.json").is_file() and not (out / "corrupt.json").exists()
    assert str(bad) in caplog.text and "transcribed 1" in caplog.text and "failed 1" in caplog.text
    assert main(["transcribe", str(two_voice_mix), "-o", str(out), "-f", "doc", "--quiet"]) == 2


@pytest.mark.slow
def test_short_files_share_asr_batches(tmp_path, pipe, tiny_separator_dir, tiny_asr_dir, two_voice_mix):
    files = []
    for i, seconds in enumerate((0.8, 1.3, 2.1)):
        path = tmp_path / "in" / f"short{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, voice(110 + 40 * i, seconds, 8000) + voice(230, seconds, 8000, 3), 8000)
        files.append(path)
    bad = tmp_path / "in" / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVE")
    items = [(p, tmp_path / "v" / p.stem) for p in (*files, bad, two_voice_mix)]
    results = pipe.transcribe_many(items)
    assert isinstance(results[3], AudioError) and str(bad) in str(results[3])
    for (path, _), result in zip(items, results):
        if path != bad:
            alone = pipe.transcribe_to_dir(path, tmp_path / "alone" / path.stem)
            assert result.to_dict()["speakers"] == [
                {**s, "audio": s["audio"].replace("alone", "v")} for s in alone.to_dict()["speakers"]
            ]
    # the CLI: the same outputs whatever the batch size, the bad file named, exit code 1
    common = [str(tmp_path / "in"), str(two_voice_mix), "-f", "json", "--model", str(tiny_separator_dir),
              "--asr", str(tiny_asr_dir), "--quiet"]
    assert main(["transcribe", *common, "-o", str(tmp_path / "b1"), "--batch-size", "1"]) == 1
    assert main(["transcribe", *common, "-o", str(tmp_path / "b4"), "--batch-size", "4"]) == 1
    decoded = 0
    for name in ("short0", "short1", "short2", "mix"):
        one, four = (json.loads((tmp_path / b / f"{name}.json").read_text()) for b in ("b1", "b4"))
        assert [s["segments"] for s in one["speakers"]] == [s["segments"] for s in four["speakers"]]
        decoded += sum(len(s["segments"]) for s in one["speakers"])
    assert decoded  # the tiny ASR says something, so the comparison means something
    assert not (tmp_path / "b4" / "bad.json").exists() and not list((tmp_path / "b4").glob(".*part"))


def test_transcribe_file_api(pipe, two_voice_mix):
    one = pipe.transcribe_file(two_voice_mix)
    both = pipe.transcribe_file(two_voice_mix, speakers=None)
    lines = both.splitlines()
    assert one and lines and all(re.fullmatch(r"\[spk\d\]: \S.*", line) for line in lines), both
    result = pipe(two_voice_mix)
    assert lines == [f"[{spk}]: {seg.text}" for spk, seg in result.segments()]  # the API's segments, in time order
    assert pipe.separate_file(two_voice_mix).sources.shape == (2, 32000)


def test_api_and_streaming_to_a_folder_are_one_path(tmp_path, pipe, two_voice_mix):
    """``pipe(path)`` and ``transcribe_to_dir`` (what the CLI calls) give the same voices and words:
    the first only reads the voices back into memory."""
    streamed = pipe.transcribe_to_dir(two_voice_mix, tmp_path / "voices")
    n = len(streamed.speakers)
    assert [s.audio for s in streamed.speakers] == [str(tmp_path / "voices" / f"spk{k}.wav") for k in range(1, n + 1)]
    assert all(s.waveform is None for s in streamed.speakers)
    assert streamed.sample_rate == 16000 and abs(streamed.duration - 2.0) < 1e-6
    api = pipe(two_voice_mix)
    assert any(s.segments for s in api.speakers)  # something to compare
    assert [s.segments for s in api.speakers] == [s.segments for s in streamed.speakers]
    for spk, path in zip(api.speakers, (tmp_path / "voices" / f"spk{k}.wav" for k in range(1, n + 1))):
        assert spk.audio is None
        np.testing.assert_array_equal(spk.waveform.numpy(), sf.read(path, dtype="float32")[0])
    # a waveform in memory goes the same way
    x, sr = sf.read(two_voice_mix, dtype="float32")
    assert [s.segments for s in pipe(x, sample_rate=sr).speakers] == [s.segments for s in api.speakers]
    one = pipe.transcribe_to_dir(two_voice_mix, tmp_path / "one", speakers=1)
    assert len(one.speakers) == 1
    assert sf.info(str(tmp_path / "one" / "spk1.wav")).samplerate == 16000
    data, _ = sf.read(tmp_path / "one" / "spk1.wav", dtype="float32")
    original, _ = sf.read(two_voice_mix, dtype="float32")
    assert np.abs(data - original).max() < 1e-6  # one voice: the recording itself, not band-limited


def test_a_misspelt_window_is_one_line_before_any_work(tmp_path, two_voice_mix, caplog):
    out = tmp_path / "out"
    assert main(["separate", str(two_voice_mix), "-o", str(out), "--window", "sideways"]) == 2
    assert main(["transcribe", str(two_voice_mix), "-o", str(out), "--asr-window", "local"]) == 2  # W is frames
    assert not out.exists()
    assert "'global' or 'local:W'" in caplog.text


def test_replace_shares_the_models_and_changes_only_what_it_is_given(pipe, tiny_separator_dir):
    from hubbub.pipeline.config import RUN_FIELDS

    other = pipe.replace(overlap_aware=False, max_seconds=12.0)
    assert other is not pipe and other.separator is pipe.separator and other.asr is pipe.asr
    assert (other.overlap_aware, other.max_seconds) == (False, 12.0) and pipe.max_seconds != 12.0
    assert all(getattr(other, k) is getattr(pipe, k) for k in RUN_FIELDS if k not in ("overlap_aware", "max_seconds"))
    assert other.names == pipe.names and other.speaker_encoder is pipe.speaker_encoder
    with pytest.raises(TypeError, match="no setting"):
        pipe.replace(colour="blue")
    with pytest.raises(TypeError, match="from_pretrained"):  # a setting that would load a model
        pipe.replace(asr="whisper-base")
    # the window: a new separator of the same weights, the old one untouched
    local = pipe.replace(window="local:4")
    assert local.separator is not pipe.separator and local.separator.config.inter_window == 4
    assert pipe.separator.config.inter_window is None
    assert local.separator.encoder.weight.data_ptr() == pipe.separator.encoder.weight.data_ptr()
    # the detector dropped, and its name with it
    named = Pipeline(pipe.separator, pipe.asr, pipe.config, overlap_detector=object(),
                     names={**pipe.names, "overlap_detector": "x"})
    dropped = named.replace(overlap_detector="none")
    assert dropped.overlap_detector is None and "overlap_detector" not in dropped.names


def test_pipeline_config_refuses_bad_settings_before_any_model_loads(monkeypatch):
    """Settings are checked when the config is built; nothing is loaded for a config that is refused."""
    import hubbub.pipeline.pipeline as pipeline_mod
    from hubbub.pipeline.config import PipelineConfig

    monkeypatch.setattr(pipeline_mod, "load_separator", lambda *a, **k: pytest.fail("a model loaded"))
    for bad in ({"reading": "sideways"}, {"precision": "bfloat17"}, {"window": "sideways"},
                {"asr_window": "local:x"}, {"chunk_seconds": 4.0, "overlap_seconds": 0.0}, {"max_seconds": 0}):
        with pytest.raises(ValueError):
            Pipeline.from_pretrained(**bad)
    with pytest.raises(TypeError, match="no setting"):
        Pipeline.from_pretrained(colour="blue")
    config = PipelineConfig(separator=Path("a/b"), chunk_seconds=0)
    assert config.separator == "a/b" and config.chunk_seconds is None  # a path is its string; 0 is one window
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.reading = "whisper"


def test_from_pretrained_loads_what_the_config_names(tiny_separator_dir, tiny_asr_dir):
    from hubbub.pipeline.config import PipelineConfig

    config = PipelineConfig(separator=str(tiny_separator_dir), asr=str(tiny_asr_dir), overlap_detector="none",
                            label_speakers=False, window="local:4", max_seconds=60.0)
    pipe = Pipeline.from_pretrained(config)
    assert pipe.config is config and pipe.max_seconds == 60.0 and pipe.overlap_detector is None
    assert pipe.separator.config.inter_window == 4 and pipe.asr.tokenizer is not None
    assert pipe.names == {"separator": str(tiny_separator_dir), "asr": str(tiny_asr_dir)}
    one_voice = Pipeline.from_pretrained(config, separate=False)
    assert one_voice.separator is None and one_voice.speaker_encoder is None and one_voice.overlap_detector is None
    separate_only = Pipeline.from_pretrained(config, transcribe=False)
    assert separate_only.asr is None and "asr" not in separate_only.names
