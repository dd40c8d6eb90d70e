"""Transcript formats (rendered, then parsed back) and the WER / cpWER metrics."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from hubbub.pipeline import formats
from hubbub.pipeline.formats import FORMATS, format_timestamp, parse_formats, render, write_outputs
from hubbub.pipeline.metrics import cpwer, wer
from hubbub.pipeline.result import Result, Segment, SpeakerResult, Word

# (speaker, start, end, text) in time order; spk1 and spk2 overlap, the last one is past an hour.
SEGMENTS = [
    ("spk1", 0.0, 2.5, "Hello there, how are you?"),
    ("spk2", 1.25, 3.0, "Grüße aus Köln — ça va?"),
    ("spk1", 2.75, 4.123, "I'm fine --> thanks."),
    ("spk2", 3661.001, 3663.5, "日本語のテキスト"),
]


def _ms(t: float) -> int:
    return round(t * 1000)


@pytest.fixture
def result() -> Result:
    speakers = []
    for spk in ("spk1", "spk2"):
        segs = [
            Segment(start, end, text, words=(Word(text.split()[0], start, start + 0.1),))
            for s, start, end, text in SEGMENTS
            if s == spk
        ]
        speakers.append(SpeakerResult(spk, None, segs, audio=f"out/meeting_{spk}.wav"))
    return Result("in/meeting one.wav", 3664.0, 16000, {"separator": "tiny", "asr": "tiny"}, speakers)


def _expected_text(spk: str, text: str) -> str:
    return f"[{spk}]: {text}"


def test_format_timestamp():
    assert format_timestamp(0.0) == "00:00.000"
    assert format_timestamp(3661.001) == "01:01:01.001"
    assert format_timestamp(59.9996, always_include_hours=True, decimal_marker=",") == "00:01:00,000"
    assert format_timestamp(-0.0001) == "00:00.000"
    with pytest.raises(ValueError):
        format_timestamp(-1.0)


def test_txt(result):
    lines = render(result, "txt").splitlines()
    assert lines == [_expected_text(spk, text) for spk, _, _, text in SEGMENTS]


SRT_TIME = r"(\d{2}):(\d{2}):(\d{2}),(\d{3})"
SRT_CUE = re.compile(rf"(\d+)\n{SRT_TIME} --> {SRT_TIME}\n((?:[^\n]+\n)+)")


def _seconds(h: str, m: str, s: str, ms: str) -> int:
    """Milliseconds of a parsed timestamp."""
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)


def test_srt_round_trip(result):
    out = render(result, "srt")
    blocks = out.split("\n\n")
    assert blocks[-1] == "" and all(blocks[:-1])  # blank line between (and after) cues
    cues = [SRT_CUE.fullmatch(b + "\n") for b in blocks[:-1]]
    assert all(cues), out
    assert len(cues) == len(SEGMENTS)
    for i, (m, (spk, start, end, text)) in enumerate(zip(cues, SEGMENTS), start=1):
        assert int(m.group(1)) == i
        assert _seconds(*m.group(2, 3, 4, 5)) == _ms(start)
        assert _seconds(*m.group(6, 7, 8, 9)) == _ms(end)
        assert m.group(10) == _expected_text(spk, text).replace("-->", "->") + "\n"
    assert "01:01:01,001 --> 01:01:03,500" in out
    assert "00:00:01,250 --> 00:00:03,000" in out  # overlapping cue kept as is


VTT_TIME = r"(?:(\d{2,}):)?(\d{2}):(\d{2})\.(\d{3})"
VTT_CUE = re.compile(rf"{VTT_TIME} --> {VTT_TIME}\n([^\n]+)")


def test_vtt(result):
    out = render(result, "vtt")
    assert out.startswith("WEBVTT\n\n")
    blocks = out[len("WEBVTT\n\n") :].split("\n\n")
    assert blocks[-1] == ""
    cues = [VTT_CUE.fullmatch(b) for b in blocks[:-1]]
    assert all(cues), out
    for m, (spk, start, end, text) in zip(cues, SEGMENTS):
        h1, h2 = m.group(1), m.group(5)
        assert (h1 is not None) == (start >= 3600) and (h2 is not None) == (end >= 3600)
        assert _seconds(h1 or "0", *m.group(2, 3, 4)) == _ms(start)
        assert _seconds(h2 or "0", *m.group(6, 7, 8)) == _ms(end)
        assert m.group(9) == _expected_text(spk, text).replace("-->", "->")
    assert "00:01.250 --> 00:03.000" in out and "01:01:01.001 --> 01:01:03.500" in out


def test_tsv(result):
    rows = list(csv.reader(io.StringIO(render(result, "tsv")), delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows[0] == ["start", "end", "text"]
    assert len(rows) == len(SEGMENTS) + 1
    for row, (spk, start, end, text) in zip(rows[1:], SEGMENTS):
        assert len(row) == 3
        assert (int(row[0]), int(row[1])) == (_ms(start), _ms(end))
        assert row[2] == _expected_text(spk, text)


def test_json(result):
    d = json.loads(render(result, "json"))
    assert set(d) == {"audio", "duration", "sample_rate", "models", "speakers"}
    assert d["audio"] == "in/meeting one.wav" and d["duration"] == 3664.0 and d["sample_rate"] == 16000
    assert d["models"] == {"separator": "tiny", "asr": "tiny"}
    assert [s["id"] for s in d["speakers"]] == ["spk1", "spk2"]
    for s in d["speakers"]:
        assert set(s) == {"id", "audio", "text", "segments"}
        assert isinstance(s["audio"], str) and isinstance(s["text"], str)
        for g in s["segments"]:
            assert set(g) == {"start", "end", "text"}
            assert isinstance(g["start"], float) and isinstance(g["end"], float) and isinstance(g["text"], str)
    got = sorted((s["id"], g["start"], g["end"], g["text"]) for s in d["speakers"] for g in s["segments"])
    assert got == sorted(SEGMENTS)
    assert "日本語のテキスト" in render(result, "json")  # ensure_ascii=False
    words = json.loads(render(result, "json", words=True))
    assert words["speakers"][0]["segments"][0]["words"] == [{"word": "Hello", "start": 0.0, "end": 0.1}]


def test_rttm(result):
    lines = render(result, "rttm").splitlines()
    assert len(lines) == len(SEGMENTS)
    for line, (spk, start, end, _) in zip(lines, SEGMENTS):
        f = line.split()
        assert len(f) == 10, line
        assert f[0] == "SPEAKER" and f[1] == "meeting_one" and f[2] == "1"
        assert re.fullmatch(r"\d+\.\d{3}", f[3]) and re.fullmatch(r"\d+\.\d{3}", f[4])
        assert float(f[3]) == pytest.approx(start, abs=5e-4)
        assert float(f[4]) == pytest.approx(end - start, abs=1e-3)
        assert f[5:7] == ["<NA>", "<NA>"] and f[7] == spk and f[8:] == ["<NA>", "<NA>"]
    assert render(result, "rttm", file_id="rec7").split()[1] == "rec7"


def test_parse_formats():
    assert parse_formats("all") == list(FORMATS)
    assert parse_formats("srt,json") == ["srt", "json"]
    assert parse_formats(" SRT , json,srt ") == ["srt", "json"]
    for bad in ("doc", "srt,doc", "", ","):
        with pytest.raises(ValueError, match="txt, srt, vtt, tsv, json, rttm"):
            parse_formats(bad)
    with pytest.raises(ValueError, match="doc"):
        parse_formats("srt,doc")
    with pytest.raises(ValueError):
        render(Result(None, 0.0, 16000, {}, []), "doc")


def test_write_outputs(result, tmp_path):
    paths = write_outputs(result, tmp_path / "out", "meeting", parse_formats("all"))
    assert [p.name for p in paths] == [f"meeting.{f}" for f in FORMATS]
    for p, fmt in zip(paths, FORMATS):
        assert p.read_text(encoding="utf-8") == render(result, fmt, file_id="meeting")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)  # no .part files


def test_write_outputs_failure_leaves_no_partial_file(result, tmp_path, monkeypatch):
    real_render = formats.render

    def failing_render(res, fmt, **kw):
        if fmt != "txt":
            raise RuntimeError("boom")
        return real_render(res, fmt, **kw)

    monkeypatch.setattr(formats, "render", failing_render)
    with pytest.raises(RuntimeError, match="boom"):
        write_outputs(result, tmp_path, "meeting", ["txt", "srt", "vtt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meeting.txt"]


def test_write_outputs_failure_during_write(result, tmp_path, monkeypatch):
    """Even a failure while writing the temporary file leaves no target or ``.part`` behind."""
    import hubbub.pipeline.writers as writers

    calls = []
    real_write_text = formats.write_text

    def failing_write_text(path, text):
        calls.append(path)
        if len(calls) == 1:
            return real_write_text(path, text)
        with writers.atomic_path(path) as tmp:
            tmp.write_text(text[:3], encoding="utf-8")
            raise OSError("disk full")

    monkeypatch.setattr(formats, "write_text", failing_write_text)
    with pytest.raises(OSError, match="disk full"):
        write_outputs(result, tmp_path, "meeting", ["txt", "srt"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meeting.txt"]


def test_cpwer_swapped_speakers_perfect():
    refs = ["hello there how are you", ["good morning", "nice to see you"]]
    hyps = ["Good morning, nice to see you!", "Hello there. How are you?"]
    r = cpwer(refs, hyps)
    assert (r.errors, r.ref_words, r.wer, r.permutation) == (0, 11, 0.0, (1, 0))


def test_cpwer_known_substitutions():
    r = cpwer(["the cat sat on the mat", "a b c d"], ["a b x d", "the dog sat on a mat"])
    assert r.permutation == (1, 0)
    assert (r.substitutions, r.deletions, r.insertions, r.errors, r.ref_words) == (3, 0, 0, 3, 10)
    assert r.wer == pytest.approx(0.3)


def test_cpwer_more_hypothesis_streams():
    r = cpwer(["one two three"], ["noise words", "one two three", "uh"])
    assert r.permutation[0] == 1
    assert (r.insertions, r.errors, r.ref_words) == (3, 3, 3)
    assert r.wer == pytest.approx(1.0)


def test_cpwer_more_reference_speakers_and_empty_hypotheses():
    r = cpwer(["one two three", "four five"], ["four five"])
    assert r.permutation == (1, 0) and (r.deletions, r.errors, r.ref_words) == (3, 3, 5)
    r = cpwer(["one two three", "four five"], ["", "  ... "])
    assert (r.deletions, r.errors, r.ref_words, r.wer) == (5, 5, 5, 1.0)
    r = cpwer(["one two"], [])
    assert (r.errors, r.wer) == (2, 1.0)
    assert cpwer([""], [""]).wer == 0.0
    assert cpwer([], ["hello"]).wer == float("inf")


def test_wer():
    r = wer(["Hello, world!", "it's two o'clock"], ["hello word", "its two o'clock extra"])
    assert (r.substitutions, r.deletions, r.insertions, r.ref_words) == (2, 0, 1, 5)
    assert r.wer == pytest.approx(3 / 5)
    assert wer("a b c", "a b c").wer == 0.0
    assert wer([""], ["x"]).insertions == 1
    with pytest.raises(ValueError):
        wer(["a"], [])
