"""What a user reads back (issue 38): speakers are the people heard, segments in time order, progress in
seconds of audio, inputs checked before models load, option names that say what they do."""

import json
import logging

import numpy as np
import pytest
import soundfile as sf

from hubbub.__main__ import main
from hubbub.pipeline import Pipeline
from hubbub.pipeline.formats import FORMATS, render
from hubbub.pipeline.pipeline import load_asr, people_heard
from hubbub.pipeline.result import Result, Segment, SpeakerResult, Word
from hubbub.pipeline.separate import load_separator


def _seg(start: float, end: float, text: str) -> Segment:
    return Segment(start, end, text, (Word(text.split()[0], start, end),) if text else ())


def test_one_voice_is_one_speaker_in_every_format(tmp_path):
    """A leakage stream with no words is no one, and the one voice is spk1 whatever stream it came from."""
    files = [tmp_path / "spk1.wav", tmp_path / "spk2.wav"]
    for k, f in enumerate(files):
        sf.write(f, np.full(800, 0.1 * (k + 1), np.float32), 8000)
    streams = [SpeakerResult("spk1", None, [Segment(0.2, 0.4, "")], audio=str(files[0])),
               SpeakerResult("spk2", None, [_seg(3.73, 6.67, "later words"), _seg(0.0, 3.88, "first words")],
                             audio=str(files[1]))]
    heard = people_heard(streams)
    assert [s.id for s in heard] == ["spk1"]
    assert [g.start for g in heard[0].segments] == [0.0, 3.73]  # time order ...
    assert heard[0].text == "first words later words"  # ... and the text joined in it
    assert heard[0].audio == str(files[0]) and sorted(p.name for p in tmp_path.iterdir()) == ["spk1.wav"]
    assert sf.read(files[0])[0][0] == pytest.approx(0.2, abs=1e-3)  # the file is the voice that spoke (was spk2.wav)
    result = Result("one.wav", 7.0, 8000, {}, heard)
    for fmt in FORMATS:
        text = render(result, fmt)
        assert "spk2" not in text and "spk1" in text, fmt
    data = json.loads(render(result, "json"))
    assert [s["id"] for s in data["speakers"]] == ["spk1"]
    assert [g["start"] for g in data["speakers"][0]["segments"]] == [0.0, 3.73]


def test_speakers_are_numbered_in_order_of_first_speech(tmp_path):
    later = SpeakerResult("spk1", None, [_seg(5.0, 6.0, "b")])
    first = SpeakerResult("spk2", None, [_seg(1.0, 2.0, "a")])
    silent = SpeakerResult("spk3", None, [])
    heard = people_heard([later, first, silent])
    assert [(s.id, s.text) for s in heard] == [("spk1", "a"), ("spk2", "b")]


def test_progress_counts_seconds_of_audio_inside_a_file(tmp_path, tiny_separator_dir, tiny_asr_dir):
    from conftest import voice

    paths = []
    for k, seconds in enumerate((6.0, 2.0)):
        paths.append(tmp_path / f"in{k}.wav")
        sf.write(paths[-1], voice(120 + 50 * k, seconds, 8000) + voice(250, seconds, 8000, 3), 8000)
    pipe = Pipeline(load_separator(tiny_separator_dir), load_asr(tiny_asr_dir), chunk_seconds=2.0,
                    overlap_seconds=0.5)
    calls: list[tuple[float, float]] = []
    pipe.transcribe_many([(p, tmp_path / p.stem) for p in paths], progress=lambda d, t: calls.append((d, t)))
    assert {t for _, t in calls} == {8.0}  # seconds of audio of the whole call
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == 8.0
    assert len([d for d in done if 0 < d < 3.0]) >= 3  # the first (6 s) file moves the count while it runs


def test_a_missing_input_is_reported_before_any_model_loads(tmp_path, monkeypatch, caplog):
    import hubbub.pipeline.pipeline as pipeline_module
    import hubbub.pipeline.separate as separate_module

    def no(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(pipeline_module, "load_asr", no)
    monkeypatch.setattr(separate_module, "load_separator", no)
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF0000WAVE")
    missing = tmp_path / "missing.wav"
    with caplog.at_level(logging.INFO):
        code = main(["transcribe", str(missing), str(bad), "-o", str(tmp_path / "out"), "-q"])
    assert code == 1
    assert str(missing) in caplog.text and str(bad) in caplog.text
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_streams_option_and_the_old_spelling(tmp_path, tiny_separator_dir, tiny_asr_dir, two_voice_mix, caplog):
    common = [str(two_voice_mix), "-f", "json", "--model", str(tiny_separator_dir), "--asr", str(tiny_asr_dir)]
    assert main(["transcribe", *common, "-o", str(tmp_path / "a"), "--no-separation"]) == 0
    assert "separator" not in json.loads((tmp_path / "a" / "mix.json").read_text())["models"]
    with caplog.at_level(logging.WARNING):
        assert main(["transcribe", *common, "-o", str(tmp_path / "b"), "--speakers", "1"]) == 0
    assert "--speakers is now --streams" in caplog.text
    assert json.loads((tmp_path / "b" / "mix.json").read_text()) == json.loads((tmp_path / "a" / "mix.json")
                                                                                .read_text().replace("/a/", "/b/"))
    assert main(["transcribe", *common, "-o", str(tmp_path / "c"), "--streams", "3"]) == 1  # the separator has 2


def test_each_speakers_map_is_the_read_that_gave_its_first_words():
    """The demo's maps: per speaker, the read (decode) whose words are that speaker's first segment; a
    read of the recording over an overlap also holds the other voice's words, counted in ``kept``."""
    from hubbub.pipeline.pipeline import maps_of_speakers

    def read(offset, words, source):
        return {"offset": offset, "source": source, "text": " ".join(w for w, _, _ in words), "words": words}

    mixture = read(0.0, [("hello", 0.1, 0.4), ("there", 0.5, 0.8), ("yes", 0.9, 1.1)], "recording")
    apart = read(0.8, [("yes", 0.9, 1.1), ("indeed", 1.2, 1.6)], "separated voice")
    other = read(0.0, [("hullo", 0.1, 0.4), ("there", 0.5, 0.8)], "separated voice")  # another decode of spk1
    spk1 = SpeakerResult("spk1", None, [Segment(0.1, 0.8, "hello there", (Word("hello", 0.1, 0.4),
                                                                              Word("there", 0.5, 0.8)))])
    spk2 = SpeakerResult("spk2", None, [Segment(0.9, 1.6, "yes indeed", (Word("yes", 0.9, 1.1),
                                                                           Word("indeed", 1.2, 1.6)))])
    silent = SpeakerResult("spk3", None, [Segment(2.0, 2.5, "ah", ())])  # no word times: no read gave them
    maps = maps_of_speakers([spk1, spk2, silent], [other, mixture, apart])
    assert maps["spk1"]["text"] == "hello there yes" and maps["spk1"]["kept"] == [True, True, False]
    assert maps["spk2"]["text"] == "yes indeed" and maps["spk2"]["kept"] == [True, True]
    assert "spk3" not in maps


def test_the_map_caption_says_what_it_spans():
    from hubbub.demo.plots import read_caption

    d = {"offset": 1.5, "times": np.zeros(100), "frame_shift": 0.02, "source": "recording",
         "text": "hello there yes", "kept": [True, True, False]}
    caption = read_caption("spk1", d)
    assert caption.startswith("spk1: read of 1.50-3.50 s of the recording: \u201chello there yes\u201d")
    assert "2 of its 3 words are in spk1's transcript" in caption


def test_the_readme_output_section_shows_every_format():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Output", 1)[1].split("\n## ", 1)[0]
    for fmt in FORMATS:
        assert f"`out/rec.{fmt}`" in section or f".{fmt}`" in section, fmt  # what it holds ...
        assert f"# rec.{fmt}" in section or fmt in ("json", "vtt"), fmt  # ... and an example
    assert '"speakers": [{"id": "spk1"' in section  # the JSON example
