"""The demo as a server: concurrent load, and what it refuses to serve or accept."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import voice
from hubbub.pipeline import Pipeline
from hubbub.pipeline.pipeline import load_asr
from hubbub.pipeline.separate import load_separator

gr = pytest.importorskip("gradio")
client_mod = pytest.importorskip("gradio_client")
httpx = pytest.importorskip("httpx")
from hubbub.demo import app  # noqa: E402
from hubbub.demo import cli as demo_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # a served app, and 40 requests under load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vm_hwm_mb() -> float:
    """Peak resident memory of this process (MiB): the server runs in it."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def run_load(url: str, audio: str, users: int, requests: int) -> dict:
    """``users`` threads, each calling ``/analyze`` ``requests`` times: what was answered, refused, failed."""
    outcomes: list[tuple[str, str]] = []
    lock = threading.Lock()

    def user() -> None:
        client = client_mod.Client(url, verbose=False)
        for _ in range(requests):
            try:
                client.predict(client_mod.handle_file(audio), 2, "global", 16, api_name="/analyze")
                outcome = ("answered", "")
            except client_mod.exceptions.AppError as err:  # refused with a message
                outcome = ("refused", str(err)) if "queue" in str(err).lower() else ("error", str(err))
            except Exception as err:  # noqa: BLE001 - anything else is a failure to report
                outcome = ("error", f"{type(err).__name__}: {err}")
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=user) for _ in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"answered": sum(o == "answered" for o, _ in outcomes), "refused": sum(o == "refused" for o, _ in outcomes),
            "errors": [d for o, d in outcomes if o == "error"]}


@pytest.fixture()
def served(tiny_separator_dir, tiny_asr_dir):
    pipe = Pipeline(load_separator(tiny_separator_dir), load_asr(tiny_asr_dir), names={"separator": "tiny"})
    demo = app.build_demo(pipe, max_seconds=8, max_file_size="2mb")
    demo.launch(server_port=free_port(), prevent_thread_lock=True, quiet=True)
    yield demo
    demo.close()


def test_eight_users_five_requests_each(served):
    before = vm_hwm_mb()
    res = run_load(served.local_url, app.examples()[0]["path"], users=8, requests=5)
    assert res["errors"] == [], res["errors"][:3]
    assert res["answered"] + res["refused"] == 40
    assert res["answered"] >= 8  # the queue (size 16) holds all 8 users' pending requests
    assert vm_hwm_mb() - before < 1024, "memory grew by more than 1 GiB under load"
    # the server is still up and answers in full
    example = app.examples()[1]
    out = client_mod.Client(served.local_url, verbose=False).predict(
        client_mod.handle_file(example["path"]), 2, "global", 16, api_name="/analyze")
    k = app.MAX_PLAYERS
    result = out[2 * k + 6]
    assert result["audio"] == Path(example["path"]).name and abs(result["duration"] - example["duration"]) < 0.01
    n = len(result["speakers"])  # the voices with words (the tiny ASR may hear words in one only)
    assert n in (1, 2) and [s["id"] for s in result["speakers"]] == ["spk1", "spk2"][:n]
    assert all(Path(p["value"]).is_file() for p in out[:n]) and out[2]["visible"] is False


def _get(demo, path: str) -> httpx.Response:
    return httpx.get(demo.local_url.rstrip("/") + path, timeout=30)


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd",
                                    str(ROOT / "pyproject.toml"), str(ROOT / "hubbub" / "models" / "hub.py")])
def test_no_path_traversal_through_the_file_route(served, target):
    resp = _get(served, f"/gradio_api/file={target}")
    assert resp.status_code in (403, 404), (target, resp.status_code, resp.text[:200])
    assert "root:" not in resp.text and "[project]" not in resp.text


def test_bundled_examples_are_served(served):
    example = app.examples()[0]["path"]
    assert _get(served, f"/gradio_api/file={example}").status_code == 200


def test_upload_size_limit_is_enforced_by_the_server(served, tmp_path):
    big = tmp_path / "big.wav"
    sf.write(big, np.random.default_rng(0).normal(0, 0.1, 3 * 1024 * 1024 // 2).astype(np.float32), 8000,
             subtype="PCM_16")  # 3 MB > the 2 MB limit
    with big.open("rb") as f:
        resp = httpx.post(served.local_url.rstrip("/") + "/gradio_api/upload", files={"files": f}, timeout=60)
    assert resp.status_code == 413, (resp.status_code, resp.text[:200])


def test_duration_limit_is_enforced_by_the_server(served, tmp_path):
    long = tmp_path / "long.wav"
    sf.write(long, voice(140, 10.0, 8000), 8000)  # 10 s > max_seconds=8, small enough to upload
    client = client_mod.Client(served.local_url, verbose=False)
    with pytest.raises(client_mod.exceptions.AppError, match="too long"):
        client.predict(client_mod.handle_file(str(long)), 2, "global", 16, api_name="/analyze")


def test_loopback_unless_host_says_otherwise(monkeypatch):
    seen = {}
    monkeypatch.setattr(app, "launch", lambda host, *a, **k: seen.setdefault("host", host))
    monkeypatch.setenv("GRADIO_TEMP_DIR", gr.utils.get_upload_folder())  # the command would make its own
    assert demo_cli.main(["demo"]) == 0 and seen["host"] == "127.0.0.1"
    seen.clear()
    assert demo_cli.main(["demo", "--host", "0.0.0.0"]) == 0 and seen["host"] == "0.0.0.0"


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_upload_copies_are_removed_when_the_demo_stops(tmp_path, tiny_separator_dir, tiny_asr_dir, two_voice_mix,
                                                       stop):
    """``hubbub demo`` keeps Gradio's upload copies in its own temporary folder and removes it on Ctrl+C
    (SIGINT) and on SIGTERM."""
    import os
    import signal
    import subprocess
    import sys
    import time

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    env["TMPDIR"] = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    # a terminal's Ctrl+C: SIGINT at its default in the child (an ignored SIGINT, as an earlier test's browser
    # driver may leave in this process, would be inherited and the demo would rightly not stop on it)
    proc = subprocess.Popen([sys.executable, "-m", "hubbub", "demo", "--port", str(port), "--separator",
                             str(tiny_separator_dir), "--asr", str(tiny_asr_dir)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_default_sigint)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(240):
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        client = client_mod.Client(url, verbose=False)
        client.predict(client_mod.handle_file(str(two_voice_mix)), 2, "global", 16, api_name="/analyze")
        held = [p for p in (tmp_path / "tmp").rglob("*") if p.is_file()]
        assert any(p.name == "mix.wav" and p.parent.parent.name.startswith("hubbub-demo-uploads-") for p in held), held
        client.close()
        proc.send_signal(getattr(signal, stop))
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = [p for p in (tmp_path / "tmp").rglob("*")]
    assert not left, (left, out)


def _default_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def test_sweep_removes_old_entries_then_the_oldest_over_the_cap(tmp_path):
    import os
    import time

    now = time.time()
    for k, (age, size) in enumerate([(7200, 10), (300, 600), (200, 600), (100, 600)]):
        d = tmp_path / f"e{k}"
        d.mkdir()
        (d / "f.bin").write_bytes(b"x" * size)
        os.utime(d, (now - age, now - age))
    assert app.sweep([tmp_path], keep_seconds=3600, keep_bytes=1300) == 2  # e0 too old, then e1 over the cap
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e2", "e3"]
    assert app.sweep([tmp_path / "missing"]) == 0
