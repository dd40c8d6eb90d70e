"""Reading a conversation as Whisper reads it, then adding what separation hears
(hubbub.pipeline.reading and ``Pipeline(reading="whisper")``)."""

from __future__ import annotations

import pytest
import torch

from hubbub.pipeline.reading import (
    assign_words,
    dominant_stream,
    overlaps,
    pieces_of,
    segments_of,
    take_overlap_words,
)
from hubbub.pipeline.result import Word

HOP = 0.01


def _levels(spans_db: list[list[tuple[float, float, float]]], seconds: float = 10.0) -> torch.Tensor:
    """``(n, frames)`` dB levels: -90 dB, with ``(start, end, dB)`` spans per stream."""
    levels = torch.full((len(spans_db), int(seconds / HOP)), -90.0)
    for k, spans in enumerate(spans_db):
        for a, b, db in spans:
            levels[k, int(a / HOP) : int(b / HOP)] = db
    return levels


def test_a_word_in_an_overlap_goes_to_the_dominant_voice():
    levels = _levels([[(0.0, 4.0, -20.0)], [(3.0, 6.0, -30.0)]])
    assert dominant_stream(3.2, 3.6, levels, HOP) == 0  # both speak; the first is 10 dB louder
    assert dominant_stream(4.5, 5.0, levels, HOP) == 1  # only the second speaks
    assert dominant_stream(9.99, 12.0, levels, HOP) in (0, 1)  # past the end: no failure


def test_a_sentence_stays_with_one_talker_unless_another_takes_over():
    """A reading segment goes to the stream loudest over most of it; a flicker of one word does not move
    a word, a run of three does (a change of talker inside Whisper's segment)."""
    levels = _levels([[(0.0, 2.0, -20.0), (2.2, 2.5, -60.0), (2.5, 4.0, -20.0)],
                      [(2.2, 2.5, -30.0), (4.0, 6.0, -20.0)]])
    one = [Word(f"w{i}", 0.3 * i, 0.3 * i + 0.25) for i in range(12)]  # 0-3.55 s: stream 0, a 0.3-s dip
    assert assign_words([one], levels, HOP) == [[0] * 12]
    change = [Word(f"w{i}", 0.5 * i, 0.5 * i + 0.4) for i in range(12)]  # 0-5.9 s: stream 0, then 1 from 4 s
    assert assign_words([change], levels, HOP) == [[0] * 8 + [1] * 4]


def test_overlaps_are_where_two_streams_regions_meet():
    found = [[(0.0, 4.0), (7.0, 9.0)], [(3.0, 6.0), (8.8, 9.5)]]
    assert overlaps(found, 0.5) == [(3.0, 4.0)]  # 8.8-9.0 is too short
    assert overlaps(found, 0.1) == [(3.0, 4.0), (8.8, 9.0)]
    assert overlaps([[(0.0, 5.0)], [(1.0, 2.0)], [(1.5, 3.0)]], 0.2) == [(1.0, 3.0)]  # merged


def test_separated_words_are_used_only_inside_overlaps():
    own = [[Word("hello", 0.5, 0.9), Word("there", 3.1, 3.4), Word("fine", 3.5, 3.8)], [Word("later", 5.0, 5.4)]]
    apart = {0: [Word("hullo", 0.5, 0.9), Word("there", 3.1, 3.4)],
             1: [Word("early", 1.0, 1.3), Word("fine", 3.55, 3.8), Word("later", 5.0, 5.4)]}
    out = take_overlap_words(own, apart, (3.0, 4.0), dominant=0)
    assert [w.word for w in out[0]] == ["hello", "there"]  # dominant: the recording's words, less the other's
    assert [w.word for w in out[1]] == ["fine", "later"]  # the other voice: its stream's words in the overlap only
    assert all(w.word != "early" for ws in out for w in ws)  # outside the overlap the stream is not used


def test_segments_split_at_pauses_in_time_order():
    words = [Word("c", 3.0, 3.2), Word("a", 0.0, 0.3), Word("b", 0.4, 0.8)]
    segs = segments_of(words, pause=1.0)
    assert [(s.start, s.end, s.text) for s in segs] == [(0.0, 0.8, "a b"), (3.0, 3.2, "c")]
    assert segments_of([], 1.0) == []


def test_pieces_for_the_clustering_end_at_sentences_and_short_pauses():
    """Two talkers 0.15 s apart in one stream: one segment (1-s pauses), two pieces (the sentence ends)."""
    words = [Word("I", 0.0, 0.2), Word("agree.", 0.3, 0.8), Word("Then", 0.95, 1.2), Word("go", 1.3, 1.5),
             Word("now", 2.0, 2.3)]
    assert [s.text for s in segments_of(words, 1.0)] == ["I agree. Then go now"]
    assert [s.text for s in pieces_of(words, 0.3)] == ["I agree.", "Then go", "now"]  # and at the 0.5-s pause
    assert pieces_of([], 0.3) == []
    run_on = [Word(f"w{i}", 0.4 * i, 0.4 * i + (0.3 if i != 7 else 0.2)) for i in range(20)]  # 8 s, no sentence end
    parts = pieces_of(run_on, 0.3, longest=6.0)
    assert [len(p.words) for p in parts] == [8, 12]  # at the longest pause (after w7), each 6 s or less
    assert all(p.end - p.start <= 6.0 for p in parts)


def test_reading_is_a_setting_of_the_pipeline():
    from hubbub.pipeline import Pipeline

    assert Pipeline().reading == "turns"
    with pytest.raises(ValueError, match="reading"):
        Pipeline(reading="sideways")


def test_whisper_reading_runs_end_to_end(tmp_path, tiny_separator_dir, two_voice_mix):
    """A tiny random Whisper reads a two-voice mixture whole; every speaker found has words, in time order."""
    from test_whisper import DIMS

    from conftest import write_byte_tokenizer
    from hubbub.models.whisper import WhisperASR, WhisperConfig, WhisperTokenizer
    from hubbub.pipeline import Pipeline
    from hubbub.pipeline.separate import load_separator

    write_byte_tokenizer(tmp_path / "tokenizer.json")
    cfg = WhisperConfig(**{**DIMS, "n_audio_ctx": 150, "n_text_ctx": 64}, eot=256, sot=257, language=258,
                        transcribe=259, no_timestamps=260)
    torch.manual_seed(0)
    asr = WhisperASR(cfg, WhisperTokenizer(tmp_path / "tokenizer.json", cfg.eot))
    pipe = Pipeline(load_separator(tiny_separator_dir), asr, reading="whisper")
    seen = []
    result = pipe.transcribe_to_dir(two_voice_mix, tmp_path / "voices", progress=lambda a, b: seen.append(a / b))
    assert seen and seen[-1] == pytest.approx(1.0)
    for spk in result.speakers:
        assert spk.segments and all(s.text for s in spk.segments)
        assert [s.start for s in spk.segments] == sorted(s.start for s in spk.segments)
    with pytest.raises(ValueError, match="Whisper"):
        Pipeline(load_separator(tiny_separator_dir), _not_whisper(), reading="whisper")._read_whole(
            two_voice_mix, [], 8000, 2.0, [], [], 0, False)


def _not_whisper():
    return torch.nn.Linear(1, 1)


def test_cli_reading_option(tmp_path, tiny_separator_dir, tiny_asr_dir, two_voice_mix, monkeypatch):
    """``transcribe --reading whisper`` reaches the pipeline: the recording is read whole by Whisper's long-form
    reading, once per recording; ``--reading turns`` (the default) never reads it whole."""
    import hubbub.pipeline.whole as whole
    from hubbub.__main__ import main

    calls = []
    real = whole.transcribe_long
    monkeypatch.setattr(whole, "transcribe_long", lambda *a, **k: calls.append(a) or real(*a, **k))
    args = ["transcribe", str(two_voice_mix), "-o", str(tmp_path / "out"), "--model", str(tiny_separator_dir),
            "--asr", str(tiny_asr_dir), "-q", "-f", "json", "--overwrite"]
    assert main([*args, "--reading", "whisper"]) == 0 and len(calls) == 1
    assert (tmp_path / "out" / "mix.json").is_file()
    assert main([*args, "--reading", "turns"]) == 0 and len(calls) == 1


def test_speech_the_reading_skipped_is_found_in_the_streams_regions():
    """A stream's stretch of speech with no word of the reading (of any stream) is read again; covered
    speech and short gaps are not."""
    from hubbub.pipeline.reading import unread

    found = [[(0.0, 10.0)], [(12.0, 14.0)]]
    words = [Word("a", 0.5, 1.0), Word("b", 1.2, 2.0), Word("c", 6.0, 9.5), Word("d", 12.1, 13.9)]
    assert unread(found, words, 1.0) == [(0, 2.2, 5.8)]
    assert unread(found, words, 4.0) == []
    assert unread(found, [], 1.0) == [(0, 0.0, 10.0), (1, 12.0, 14.0)]
    assert unread(found, words, 0.0) == []


def test_whisper_reading_gives_the_demo_its_asr_maps(tmp_path, tiny_separator_dir, tiny_asr_dir, two_voice_mix):
    """``details=True`` with ``reading="whisper"``: each speaker's map is a read of its first segment from the
    recording, ``kept`` saying per word of that read whether the speaker has it."""
    from hubbub.models.loading import load_model
    from hubbub.pipeline import Pipeline
    from hubbub.pipeline.separate import load_separator

    pipe = Pipeline(load_separator(tiny_separator_dir), load_model(tiny_asr_dir), reading="whisper")
    result = pipe(two_voice_mix, details=True)
    maps = result.details["asr"]
    assert set(maps) <= {s.id for s in result.speakers}
    for spk in result.speakers:
        if spk.id in maps:
            m = maps[spk.id]
            assert m["source"] == "recording" and len(m["kept"]) == len(m["words"])
            assert m["offset"] == pytest.approx(spk.segments[0].start, abs=0.01)
    assert maps or not result.speakers  # a speaker with words has a map
