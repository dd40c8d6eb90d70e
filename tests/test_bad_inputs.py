"""The bad-input corpus through the CLI and the Python API.

Every input gets either a correct result or a one-line error that names the
file; no traceback, no partial outputs, and the rest of the batch is done.
The corpus is generated here (see ``docs/reliability.md`` for the counts).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import voice
from hubbub.__main__ import main
from hubbub.pipeline import Pipeline
from hubbub.pipeline.audio import AudioError
from hubbub.pipeline.pipeline import load_asr
from hubbub.pipeline.separate import load_separator

OK = "ok"
#: digital silence: an empty result (no speakers) from the CLI (exit 0 for it), the Python API and the demo
SILENT = "is silent"


def _speech(sr: int, seconds: float = 1.0) -> np.ndarray:
    return voice(130, seconds, sr, 1) + voice(270, seconds, sr, 2)


def build_corpus(d: Path) -> list[tuple[Path, str]]:
    """(path, expected) pairs; expected is "ok" or a fragment of the error message."""
    d.mkdir(parents=True, exist_ok=True)
    cases: list[tuple[Path, str]] = []

    def add(name: str, expect: str) -> Path:
        cases.append((d / name, expect))
        return d / name

    add("empty.wav", "empty file").write_bytes(b"")
    sf.write(add("zero-length.wav", "no audio samples"), np.zeros(0, np.float32), 16000)
    good = d / "_good.tmp.wav"
    sf.write(good, _speech(16000), 16000)
    add("header-only.wav", "truncated").write_bytes(good.read_bytes()[:44])
    flac = d / "_good.tmp.flac"
    sf.write(flac, _speech(16000, 3.0), 16000)
    add("truncated.flac", "truncated").write_bytes(flac.read_bytes()[: flac.stat().st_size // 3])
    good.unlink()
    flac.unlink()
    add("text.wav", "not a readable audio file").write_text("hello, I am not audio\n" * 50)
    x = _speech(16000)
    x[500] = np.nan
    sf.write(add("nan.wav", "NaN"), x, 16000, subtype="FLOAT")
    x = _speech(16000)
    x[9] = np.inf
    sf.write(add("inf.wav", "NaN or infinite"), x, 16000, subtype="FLOAT")
    sf.write(add("zeros.wav", SILENT), np.zeros(16000, np.float32), 16000)
    square = np.sign(np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    sf.write(add("clipped-square.wav", OK), square, 16000)
    sf.write(add("one-sample.wav", "too short"), np.array([0.3], np.float32), 16000)
    sf.write(add("rate-5k.wav", OK), _speech(5000), 5000)
    sf.write(add("rate-96k.wav", OK), _speech(96000, 0.5), 96000)
    sf.write(add("eight-channels.wav", OK), np.stack([_speech(16000)] * 8, axis=1), 16000)
    sf.write(add("pcm24.wav", OK), _speech(16000), 16000, subtype="PCM_24")
    sf.write(add("float32.wav", OK), _speech(16000), 16000, subtype="FLOAT")
    sf.write(add("ünïcödé name with spaces.flac", OK), _speech(16000), 16000)
    add("directory.wav", "").mkdir()
    return cases


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[tuple[Path, str]]:
    return build_corpus(tmp_path_factory.mktemp("bad") / "in")


@pytest.fixture(scope="module")
def three_hours(tmp_path_factory) -> Path:
    """A 3-hour 8 kHz file, written block by block only when a test asks for it."""
    path = tmp_path_factory.mktemp("huge") / "three hours.wav"
    block = (_speech(8000, 60.0) * 0.5).astype(np.float32)
    with sf.SoundFile(str(path), "w", samplerate=8000, channels=1, subtype="PCM_16") as f:
        for _ in range(180):
            f.write(block)
    return path


def _check_batch(caplog, corpus, out: Path, produced) -> None:
    for path, expect in corpus:
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR" and str(path) in r.getMessage()]
        if expect in (OK, SILENT):
            assert not errors, (path, errors)
            assert produced(path), path
        else:
            assert len(errors) == 1, (path, errors)
            assert expect in errors[0] and "\n" not in errors[0], (path, errors[0])
            assert "Traceback" not in errors[0]
    assert not [p for p in out.rglob("*") if p.name.startswith(".")], "temporary files left behind"


def test_separate_cli_on_the_corpus(tmp_path, corpus, tiny_separator_dir, caplog):
    out = tmp_path / "out"
    code = main(["separate", *[str(p) for p, _ in corpus], "-o", str(out), "--model", str(tiny_separator_dir),
                 "--quiet"])
    assert code == 1
    _check_batch(caplog, corpus, out, lambda p: (out / p.stem / "spk2.wav").is_file())
    for path, expect in corpus:
        if expect in (OK, SILENT):
            voice1, sr = sf.read(str(out / path.stem / "spk1.wav"))
            assert sr == sf.info(str(path)).samplerate
            assert (expect == SILENT) == (not voice1.any()), path  # the voices of silence are silent
        elif path.is_file():
            assert not (out / path.stem).exists(), path


@pytest.mark.slow
def test_transcribe_cli_on_the_corpus(tmp_path, corpus, tiny_separator_dir, tiny_asr_dir, caplog):
    out = tmp_path / "out"
    code = main(["transcribe", *[str(p) for p, _ in corpus], "-o", str(out), "--model", str(tiny_separator_dir),
                 "--asr", str(tiny_asr_dir), "-f", "json,srt", "--quiet"])
    assert code == 1
    _check_batch(caplog, corpus, out, lambda p: (out / f"{p.stem}.json").is_file())
    silent = json.loads((out / "zeros.json").read_text())
    assert silent["speakers"] == [] and silent["duration"] == 1.0 and silent["audio"].endswith("zeros.wav")
    assert not (out / "zeros").exists()


@pytest.mark.slow
def test_python_api_on_the_corpus(corpus, tiny_separator_dir, tiny_asr_dir):
    pipe = Pipeline(load_separator(tiny_separator_dir), load_asr(tiny_asr_dir))
    for path, expect in corpus:
        if expect == OK:
            result = pipe(path)
            assert 1 <= len(result.speakers) <= 2 and result.sample_rate == sf.info(str(path)).samplerate
        elif expect == SILENT:
            result = pipe(path)
            assert result.speakers == [] and result.duration == sf.info(str(path)).duration
        else:
            with pytest.raises(AudioError) as info:
                pipe(path)
            assert str(info.value).startswith(str(path)) and expect in str(info.value)


def test_three_hour_file_is_refused_by_a_duration_limit(tmp_path, three_hours, tiny_separator_dir,
                                                                      caplog):
    out = tmp_path / "out"
    code = main(["separate", str(three_hours), "-o", str(out), "--model", str(tiny_separator_dir), "--quiet",
                 "--max-seconds", "3600"])
    assert code == 1 and "too long: 10800.0 s (limit 3600 s)" in caplog.text
    assert not (out / three_hours.stem).exists()
    with pytest.raises(AudioError, match="too long"):
        Pipeline(load_separator(tiny_separator_dir), None, max_seconds=3600)(three_hours)


def _drop_root_file_access() -> list[str] | None:
    """A command prefix under which root obeys file permissions (None if impossible)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]


@pytest.mark.slow
@pytest.mark.skipif(_drop_root_file_access() is None, reason="running as root without setpriv")
def test_unreadable_file_in_a_batch(tmp_path, tiny_separator_dir):
    locked = tmp_path / "locked.wav"
    sf.write(locked, _speech(8000), 8000)
    locked.chmod(0)
    good = tmp_path / "good.wav"
    sf.write(good, _speech(8000), 8000)
    out = tmp_path / "o"
    cmd = [*_drop_root_file_access(), sys.executable, "-m", "hubbub", "separate", str(locked), str(good),
           "-o", str(out), "--model", str(tiny_separator_dir), "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert f"{locked}: permission denied" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (out / "good" / "spk1.wav").is_file() and not (out / "locked").exists()


@pytest.mark.slow
def test_demo_handler_on_the_corpus(corpus, tiny_separator_dir, tiny_asr_dir):
    gr = pytest.importorskip("gradio")
    pytest.importorskip("matplotlib")
    from hubbub.demo import app

    pipe = Pipeline(load_separator(tiny_separator_dir), load_asr(tiny_asr_dir))
    for path, expect in corpus:
        if expect in (OK, SILENT):
            out = app.analyze(str(path), 2, "global", 16, progress=None, pipeline=pipe)
            assert Path(out[-1]).is_file(), path  # the zip of the outputs
            assert (out[-2]["speakers"] == []) == (expect == SILENT), path
        else:
            with pytest.raises(gr.Error) as info:
                app.analyze(str(path), 2, "global", 16, progress=None, pipeline=pipe)
            message = str(info.value.message)
            assert path.name in message and expect in message and "\n" not in message, (path, message)
