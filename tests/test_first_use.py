"""First use, as a new user meets it (issue 17): help, common options, log lines and the bar,
a killed batch, silence and truncation, the install's dependencies and the README."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import voice
from hubbub.__main__ import COMMANDS, split_common
from hubbub.__main__ import main as hubbub_main
from hubbub.recipes.cli import COMMANDS as RECIPES
from hubbub.recipes.cli import HELP as RECIPE_HELP

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
HEAVY = ("torch", "gradio", "torchaudio", "matplotlib")
#: a log line as hubbub's dispatcher formats it
LOG_LINE = re.compile(r"\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) \S+: ")


def hubbub(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m hubbub ARGS`` in a fresh interpreter (stderr is a pipe, not a terminal)."""
    return subprocess.run([sys.executable, "-m", "hubbub", *args], capture_output=True, text=True, cwd=ROOT,
                          env=ENV, timeout=timeout, **kwargs)


def hubbub_tty(*args: str, timeout: float = 300) -> tuple[int, str]:
    """Run ``python -m hubbub ARGS`` with stderr on a pseudo-terminal, as in a user's shell:
    the exit code and what the terminal received."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))  # 30 rows, 120 columns
    proc = subprocess.Popen([sys.executable, "-m", "hubbub", *args], stdout=subprocess.DEVNULL, stderr=slave,
                            cwd=ROOT, env=ENV)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed its side
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=10), b"".join(chunks).decode(errors="replace")


def _mix(path: Path, seconds: float = 1.5, sr: int = 8000) -> Path:
    sf.write(path, 0.5 * (voice(120, seconds, sr, 1) + voice(240, seconds, sr, 2)), sr)
    return path


# --------------------------------------------------------------------------- help (items 4, 7)

HELP_COMMANDS = [["--help"], ["separate", "--help"], ["transcribe", "--help"], ["demo", "--help"],
                 ["train", "--help"], ["evaluate", "--help"], ["data", "--help"]] + [
    [g, n, "--help"] for g, n in RECIPES]


@pytest.mark.slow
@pytest.mark.parametrize("args", HELP_COMMANDS, ids=" ".join)
def test_help_imports_neither_torch_nor_gradio(args):
    code = ("import sys, runpy; sys.argv = ['hubbub', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('hubbub', run_name='__main__')\n"
            "except SystemExit as e:\n    code = e.code\n"
            f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, env=ENV,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("HEAVY []"), proc.stdout[-500:]
    assert "usage:" in proc.stdout


@pytest.mark.slow
def test_configs_live_apart_from_torch_and_keep_their_old_names():
    # the recipe parsers are built from these: they must import without torch (see the --help test above)
    from hubbub.models import configs, overlap, separator
    from hubbub.recipes import config, trainer

    assert separator.SeparatorConfig is configs.SeparatorConfig and overlap.OverlapConfig is configs.OverlapConfig
    assert trainer.LoopConfig is config.LoopConfig
    code = ("import sys, hubbub.models.configs, hubbub.recipes.config, hubbub.recipes.asr_data\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr[-2000:]


@pytest.mark.slow
def test_help_text_is_plain_and_lists_every_target():
    top = hubbub("--help").stdout
    for (group, name) in RECIPES:  # every recipe target, read from the table the dispatcher uses
        line = next(ln for ln in top.splitlines() if ln.strip().startswith(group))
        assert name in line, (group, name, line)
        assert RECIPE_HELP[(group, name)]
    train = hubbub("train", "--help")
    assert train.returncode == 0
    for name in ("separator", "asr", "overlap"):
        assert re.search(rf"^  {name}\s+\S", train.stdout, re.M), train.stdout
    assert not re.search(r"^  lm\s", train.stdout, re.M)  # the word LM left with the from-scratch ASR
    for command in ("separate", "transcribe"):
        text = hubbub(command, "--help").stdout
        assert "``" not in text and ":mod:" not in text and ":func:" not in text
        assert f"hubbub {command} " in text and "--allow-truncated" in text and "-q, --quiet" in text


# --------------------------------------------------------------------------- common options (item 5)

def test_common_options_are_taken_anywhere_before_a_double_dash():
    common, rest = split_common(["-q", "transcribe", "a.wav", "--threads", "2", "-v", "-o", "out", "--", "-q"])
    assert (common.quiet, common.threads, common.verbosity) == (True, 2, 0)
    assert split_common(["evaluate", "asr", "--quiet"])[0].quiet_after  # evaluate's own --quiet: no bar only
    assert rest == ["transcribe", "a.wav", "-o", "out", "--", "-q"]
    assert split_common(["demo", "--threads=3", "-vv"])[0].threads == 3
    with pytest.raises(ValueError, match="--threads"):
        split_common(["separate", "--threads", "zero"])


@pytest.mark.slow
@pytest.mark.parametrize("where", ["after", "before"])
def test_quiet_and_threads_before_or_after_the_command(tmp_path, tiny_separator_dir, where):
    a = _mix(tmp_path / "a.wav")
    common = ["-q", "--threads", "1"]
    args = ["separate", str(a), "-o", str(tmp_path / "out"), "--model", str(tiny_separator_dir)]
    proc = hubbub(*(args + common if where == "after" else common + args))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == ""  # no bar, no info lines
    assert (tmp_path / "out" / "a" / "spk2.wav").is_file()
    loud = hubbub(*args, "--overwrite", "-v")
    assert "separated 1" in loud.stderr and "DEBUG" in loud.stderr


@pytest.mark.slow
def test_common_options_reach_commands_that_do_not_define_them(tmp_path):
    # `hubbub demo` has no --threads of its own: the dispatcher takes it, and the error for a bad
    # --max-seconds still comes from the demo's own parser (without importing gradio)
    proc = hubbub("demo", "--threads", "1", "-q", "--max-seconds", "0")
    assert proc.returncode == 2 and "--max-seconds must be positive" in proc.stderr


@pytest.mark.slow
def test_demo_without_gradio_says_what_to_install():
    code = ("import sys; sys.modules['gradio'] = None\n"
            "from hubbub.__main__ import main\nsys.exit(main(['demo', '--port', '1']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=ENV,
                          timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "hubbub demo needs gradio" in proc.stderr and "pip install" in proc.stderr


# --------------------------------------------------------------------------- log lines and the bar (item 6)

def test_log_lines_never_share_a_line_with_the_progress_bar(tmp_path, tiny_separator_dir):
    inputs = []
    for k in range(4):
        inputs.append(_mix(tmp_path / f"good{k}.wav", seconds=0.5))
        bad = tmp_path / f"bad{k}.wav"
        bad.write_text("not audio")
        inputs.append(bad)
    code, err = hubbub_tty("separate", *map(str, inputs), "-o", str(tmp_path / "out"), "--model",
                           str(tiny_separator_dir))
    assert code == 1
    assert "s of audio [" in err  # the bar was drawn (stderr is a terminal), in seconds of audio
    errors = 0
    for line in err.replace("\r\n", "\n").split("\n"):
        for piece in line.split("\r"):  # what a terminal shows: each \r starts the line again
            if "ERROR" in piece or "WARNING" in piece:
                assert LOG_LINE.match(piece), repr(piece)  # the log line starts its own line ...
                assert "%|" not in piece and "of audio" not in piece, repr(piece)  # ... and holds no bar
                errors += "ERROR" in piece
    assert errors == 4


# --------------------------------------------------------------------------- a killed batch (item 2)

def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith(".")) if out.exists() else []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_killed_transcribe_batch_leaves_no_partial_outputs(tmp_path, tiny_separator_dir, tiny_asr_dir, sig):
    inputs = [_mix(tmp_path / f"long{k}.wav", seconds=40.0) for k in range(1, 4)]
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hubbub", "transcribe", *map(str, inputs), "-o", str(out), "--model",
           str(tiny_separator_dir), "--asr", str(tiny_asr_dir), "--batch-size", "1", "--chunk-seconds", "4",
           "--threads", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        seen = [n for n in _leftovers(out) if n.endswith(".part")]
        if any(list((out / n).glob("*.wav")) for n in seen):  # a voice is being written
            break
        time.sleep(0.05)
    assert seen and proc.poll() is None, "the batch ended before it could be interrupted: make the inputs longer"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err[-2000:]
    assert "Traceback" not in err
    assert f"interrupted by {sig.name}" in err
    removed = re.search(r"(\d+) partial one\(s\) removed", err)
    assert removed and int(removed.group(1)) >= 1, err[-2000:]  # what was in progress is counted
    assert _leftovers(out) == [], "partial outputs left behind"
    # the run goes on where it stopped, and ends clean
    done = subprocess.run(cmd + ["-q"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert all((out / f"long{k}.json").is_file() for k in range(1, 4)) and _leftovers(out) == []


@pytest.mark.slow
def test_a_run_sweeps_what_a_hard_kill_left_for_its_inputs(tmp_path, tiny_separator_dir, tiny_asr_dir):
    a = _mix(tmp_path / "a.wav")
    out = tmp_path / "out"
    out.mkdir()
    stale = [out / ".a.k3x9_q2z.part", out / ".a.json.ab12cd34.part", out / ".a.old.4242"]
    stale[0].mkdir()
    sf.write(stale[0] / "spk1.wav", np.zeros(100, np.float32), 8000)
    stale[1].write_text("{")
    stale[2].mkdir()
    others = [out / ".a.b.k3x9_q2z.part", out / ".other.k3x9_q2z.part", out / "notes.txt"]  # not this run's
    for p in others:
        p.write_text("x")
    proc = hubbub("transcribe", str(a), "-o", str(out), "--model", str(tiny_separator_dir), "--asr",
                  str(tiny_asr_dir), "-f", "json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in others)
    assert "left by an interrupted run" in proc.stderr
    assert (out / "a.json").is_file() and (out / "a" / "spk1.wav").is_file()


# --------------------------------------------------------------------------- silence and truncation (item 10)

@pytest.mark.slow
def test_digital_silence_is_an_empty_result_and_no_failure(tmp_path, tiny_separator_dir, tiny_asr_dir):
    silent = tmp_path / "silence.flac"
    sf.write(silent, np.zeros(16000, np.float32), 8000)
    good = _mix(tmp_path / "good.wav")
    out = tmp_path / "out"
    proc = hubbub("transcribe", str(silent), str(good), "-o", str(out), "--model", str(tiny_separator_dir),
                  "--asr", str(tiny_asr_dir), "-f", "json,txt,srt")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ERROR" not in proc.stderr and "silence.flac: digital silence" in proc.stderr
    result = json.loads((out / "silence.json").read_text())
    assert result["speakers"] == [] and result["duration"] == 2.0 and result["audio"] == str(silent)
    assert (out / "silence.txt").read_text().strip() == "" and (out / "silence.srt").read_text().strip() == ""
    assert not (out / "silence").exists() and json.loads((out / "good.json").read_text())["speakers"]


def _truncated_flac(path: Path, seconds: float = 6.0, keep: float = 0.5) -> Path:
    full = path.with_suffix(".full.flac")
    sf.write(full, 0.5 * (voice(120, seconds, 8000, 1) + voice(240, seconds, 8000, 2)), 8000)
    data = full.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    full.unlink()
    return path


@pytest.mark.parametrize("kind", ["flac", "wav"])
def test_a_truncated_file_is_an_error_unless_allowed(tmp_path, tiny_separator_dir, kind):
    if kind == "flac":
        cut = _truncated_flac(tmp_path / "cut.flac")
    else:
        full = _mix(tmp_path / "full.wav", seconds=6.0)
        cut = tmp_path / "cut.wav"
        cut.write_bytes(full.read_bytes()[:30000])  # the data chunk still says 6 s
    with sf.SoundFile(str(cut)) as f:  # libsndfile opens it: the header is intact
        header_frames = f.frames
    out = tmp_path / "out"
    args = ["separate", str(cut), "-o", str(out), "--model", str(tiny_separator_dir)]
    refused = hubbub(*args)
    assert refused.returncode == 1
    errors = [ln for ln in refused.stderr.splitlines() if "ERROR" in ln]
    assert len(errors) == 1 and f"{cut}: truncated: the header says 6.000 s" in errors[0], refused.stderr
    assert "--allow-truncated" in errors[0] and not (out / "cut").exists() and _leftovers(out) == []
    kept = hubbub(*args, "--allow-truncated")
    assert kept.returncode == 0, kept.stderr[-2000:]
    assert "truncated: using the first" in kept.stderr
    voice1, sr = sf.read(out / "cut" / "spk1.wav")
    assert sr == 8000 and 0 < len(voice1) < 48000
    if kind == "wav":
        assert len(voice1) == (30000 - 44) // 2 and header_frames == len(voice1)  # libsndfile shortens it quietly
    assert _leftovers(out) == []


@pytest.mark.slow
def test_truncated_transcribe_keeps_the_original_name(tmp_path, tiny_separator_dir, tiny_asr_dir):
    cut = _truncated_flac(tmp_path / "cut.flac", keep=0.6)
    out = tmp_path / "out"
    proc = hubbub("transcribe", str(cut), "-o", str(out), "--model", str(tiny_separator_dir), "--asr",
                  str(tiny_asr_dir), "-f", "json", "--allow-truncated")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((out / "cut.json").read_text())
    assert result["audio"] == str(cut) and 0 < result["duration"] < 6.0
    n = len(result["speakers"])  # the voices with words (the tiny ASR may hear words in one only)
    assert n in (1, 2) and [Path(s["audio"]).parent for s in result["speakers"]] == [out / "cut"] * n
    assert _leftovers(out) == []


# --------------------------------------------------------------------------- install and README (items 3, 11, 12)

def test_the_plain_install_has_the_demo_and_the_old_extra_still_works():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {re.split(r"[<>=!~ ;\[]", d, maxsplit=1)[0].lower() for d in meta["dependencies"]}
    assert {"gradio", "matplotlib", "torch"} <= core
    assert meta["optional-dependencies"]["demo"] == []  # `pip install "hubbub[demo]"` still resolves
    assert COMMANDS["demo"][0] == "hubbub.demo.cli"


def test_readme_quick_start_output_is_ignored_and_cpu_wheels_are_explained():
    readme = (ROOT / "README.md").read_text()
    assert "hubbub transcribe hubbub/demo/examples/ -o out/" in readme
    assert "--index-url https://download.pytorch.org/whl/cpu" in readme
    assert "pip install -e . && .venv/bin/hubbub transcribe" in readme  # the default install is unchanged
    if shutil.which("git") and (ROOT / ".git").exists():
        check = subprocess.run(["git", "check-ignore", "-q", "out/x.json"], cwd=ROOT)
        assert check.returncode == 0, "out/ is not ignored"


def test_in_process_main_puts_the_common_options_back(tmp_path, tiny_separator_dir):
    import logging

    import torch

    before = (torch.get_num_threads(), os.environ.get("TQDM_DISABLE"), logging.getLogger().level)
    a = _mix(tmp_path / "a.wav", seconds=0.5)
    assert hubbub_main(["-q", "separate", str(a), "-o", str(tmp_path / "o"), "--model", str(tiny_separator_dir),
                        "--threads", "1"]) == 0
    assert (torch.get_num_threads(), os.environ.get("TQDM_DISABLE"), logging.getLogger().level) == before
