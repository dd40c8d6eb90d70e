"""The Gradio demo: `analyze`, the figures, the `/analyze` endpoint and a real browser.

The browser test drives Debian's Chromium (``/usr/bin/chromium``) with Python
Playwright and is skipped when either is missing. With ``HUBBUB_SCREENSHOT=PATH``
it runs the embedded default models and saves the page to ``PATH`` (e.g.
``docs/demo.png``; tests never write into the repository otherwise).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import voice
from hubbub.pipeline import Pipeline
from hubbub.pipeline.audio import resample
from hubbub.pipeline.maps import separator_details, spectrogram
from hubbub.pipeline.pipeline import load_asr
from hubbub.pipeline.separate import load_separator, with_config

gr = pytest.importorskip("gradio")
pytest.importorskip("matplotlib")
from hubbub.demo import app, plots  # noqa: E402
from hubbub.demo import cli as demo_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage",
]
N_OUT = 2 * app.MAX_PLAYERS + 8


@pytest.fixture()
def pipe(tiny_separator_dir, tiny_asr_dir):
    return Pipeline(load_separator(tiny_separator_dir), load_asr(tiny_asr_dir),
                    names={"separator": "tiny-sep", "asr": "tiny-asr"})


@pytest.fixture()
def sep_pipe(tiny_separator_dir):
    return Pipeline(load_separator(tiny_separator_dir), None, names={"separator": "tiny-sep"})


def _unpack(out):
    assert len(out) == N_OUT
    k = app.MAX_PLAYERS
    players, texts = out[:k], out[k : 2 * k]
    timeline, spec, sep, asr, cross, note, result, bundle = out[2 * k :]
    return players, texts, timeline, spec, sep, asr, cross, note, result, bundle


def _titles(fig) -> list[str]:
    titles = [fig._suptitle.get_text()] if fig._suptitle is not None else []
    for ax in fig.axes:
        titles += [ax.get_title(loc=loc) for loc in ("left", "center", "right")]
    return [t for t in titles if t]


def _check_figure(fig, *words):
    """A titled figure whose plotting axes all have a y label, and an x label somewhere."""
    from matplotlib.figure import Figure

    assert isinstance(fig, Figure)
    titles = " | ".join(_titles(fig))
    assert titles, "figure without a title"
    for word in words:
        assert word in titles, (word, titles)
    axes = [ax for ax in fig.axes if ax.axison and not hasattr(ax, "_colorbar")]
    assert axes
    assert all(ax.get_ylabel() for ax in axes), [ax.get_ylabel() for ax in axes]
    assert any(ax.get_xlabel() for ax in axes)
    assert any("(s)" in ax.get_xlabel() for ax in axes)  # drawn against the recording's seconds
    plots.close(fig)


# --------------------------------------------------------------------------- analyze


def test_analyze_returns_every_output(pipe, two_voice_mix):
    out = app.analyze(str(two_voice_mix), 2, "global", 16, pipeline=pipe)
    players, texts, timeline, spec, sep, asr, cross, note, result, bundle = _unpack(out)
    n = len(result["speakers"])  # the voices with words (the tiny ASR may hear words in one only)
    assert 1 <= n <= 2
    for k, (player, text) in enumerate(zip(players, texts), start=1):
        if k <= n:
            assert player["visible"] is True and player["label"] == f"spk{k}"
            assert Path(player["value"]).is_file() and sf.info(player["value"]).samplerate == 16000
            assert text["visible"] is True and text["value"]
        else:
            assert player["visible"] is False and player["value"] is None
            assert text["visible"] is False
    segs = [seg for spk in result["speakers"] for seg in spk["segments"]]
    assert segs, "the tiny ASR decodes something on this mixture"
    subs = [s for p in players[:n] for s in (p["subtitles"] or [])]
    assert len(subs) == len(segs) and all(len(s["timestamp"]) == 2 and "text" in s for s in subs)
    _check_figure(timeline, "Who spoke when")
    _check_figure(spec, "Spectrograms", "mixture")
    _check_figure(sep, "Separator attention", "intra-chunk", "inter-chunk (global)")
    _check_figure(asr, "ASR 2D attention", "time attention", "frequency attention")
    _check_figure(cross, "cross-attention", "read of")
    assert "tiny-asr" in note
    assert result["models"] == {"separator": "tiny-sep", "asr": "tiny-asr"}
    assert [s["id"] for s in result["speakers"]] == ["spk1", "spk2"][:n]
    assert result["audio"] == "mix.wav" and abs(result["duration"] - 2.0) < 1e-6
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        assert names == {*(f"mix.spk{k}.wav" for k in range(1, n + 1)), "mix.json", "mix.srt"}
        assert json.loads(zf.read("mix.json"))["speakers"][0]["audio"] == "mix.spk1.wav"
        assert "[spk" in zf.read("mix.srt").decode()
    tmp = Path(os.path.realpath(tempfile.gettempdir()))
    assert Path(os.path.realpath(bundle)).is_relative_to(tmp)  # outputs only in temporary folders


def test_analyze_one_speaker_local_window_and_no_asr(sep_pipe, two_voice_mix):
    out = app.analyze(str(two_voice_mix), 2, "local", 3, pipeline=sep_pipe)
    players, texts, timeline, spec, sep, asr, cross, note, result, bundle = _unpack(out)
    assert sep_pipe.separator.config.inter_window is None  # the demo's pipeline is not changed behind its back
    _check_figure(sep, "local, window 3 chunks")
    assert asr is None and cross is None and "No ASR model is loaded" in note
    assert "no ASR" in texts[0]["value"] and players[0]["subtitles"] is None
    assert all(s["segments"] == [] for s in result["speakers"])
    _check_figure(timeline, "Who spoke when")
    plots.close(spec)

    out = app.analyze(str(two_voice_mix), 1, "global", 16, pipeline=sep_pipe)
    players, texts, timeline, spec, sep, asr, cross, note, result, bundle = _unpack(out)
    assert players[0]["visible"] and "not separated" in players[0]["label"]
    assert not players[1]["visible"] and not players[2]["visible"]
    assert sep is None and "separator" not in result["models"] and len(result["speakers"]) == 1
    _check_figure(spec, "not separated")
    plots.close(timeline)


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {"empty": tmp_path / "empty.wav", "corrupt": tmp_path / "corrupt.wav", "silent": tmp_path / "silent.wav",
             "nan": tmp_path / "nan.wav"}
    files["empty"].write_bytes(b"")
    files["corrupt"].write_bytes(b"RIFF\x00\x01garbage, not audio at all" * 10)
    sf.write(files["silent"], np.zeros(16000, dtype=np.float32), 16000)
    bad = voice(120, 1.0, 16000)
    bad[100] = np.nan
    sf.write(files["nan"], bad, 16000, subtype="FLOAT")
    return files


@pytest.mark.parametrize(
    ("kind", "problem"),
    [("empty", "empty file"), ("corrupt", "not a readable audio file"), ("nan", "NaN"),
     ("too_long", "too long: 2.0 s (limit 1 s)")],
)
def test_bad_uploads_raise_gr_error_naming_the_file(sep_pipe, tmp_path, two_voice_mix, kind, problem):
    path = two_voice_mix if kind == "too_long" else _bad_files(tmp_path)[kind]
    with pytest.raises(gr.Error) as err:
        app.analyze(str(path), 2, "global", 16, pipeline=sep_pipe, max_seconds=1)
    message = err.value.message
    assert message.startswith(f"{path.name}: ") and problem in message, message
    assert sep_pipe.max_seconds is None  # the limit does not stick to the pipeline


def test_digital_silence_shows_an_empty_result_and_says_why(sep_pipe, tmp_path):
    path = _bad_files(tmp_path)["silent"]
    out = app.analyze(str(path), 2, "global", 16, pipeline=sep_pipe)  # no gr.Error: valid audio
    players, texts, timeline, spec, sep, asr, cross, note, result, bundle = _unpack(out)
    assert not any(p["visible"] for p in players) and not any(t["visible"] for t in texts)
    assert spec is None and sep is None and asr is None and cross is None
    assert "silent.wav is digital silence" in note
    assert result["speakers"] == [] and result["duration"] == 1.0 and result["audio"] == "silent.wav"
    _check_figure(timeline, "Who spoke when")
    plots.close(timeline)
    with zipfile.ZipFile(bundle) as zf:
        assert sorted(zf.namelist()) == ["silent.json", "silent.srt"]
        assert json.loads(zf.read("silent.json"))["speakers"] == []


def test_no_upload_and_bad_settings_raise_gr_error(sep_pipe, two_voice_mix):
    with pytest.raises(gr.Error, match="No audio"):
        app.analyze(None, 2, "global", 16, pipeline=sep_pipe)
    with pytest.raises(gr.Error, match="speakers must be one of"):
        app.analyze(str(two_voice_mix), 3, "global", 16, pipeline=sep_pipe)
    with pytest.raises(gr.Error, match="global' or 'local"):
        app.analyze(str(two_voice_mix), 2, "sideways", 16, pipeline=sep_pipe)


# --------------------------------------------------------------------------- inspect


def test_separator_details_axes(tiny_separator_dir):
    sep = load_separator(tiny_separator_dir)
    cfg = sep.config
    x = resample(torch.from_numpy(voice(110, 1.0, 16000, 1) + voice(230, 1.0, 16000, 2)), 16000, 8000)
    with torch.inference_mode():
        d = separator_details(sep, x, sep(x[None], return_details=True))
    assert d["seconds"] == pytest.approx(1.0)
    n_frames = d["masks"].shape[-1]
    assert d["masks"].shape == (cfg.n_src, cfg.enc_channels, n_frames)
    assert np.all(np.diff(d["mask_channel_hz"]) >= 0)
    assert d["mask_times"][1] == pytest.approx(cfg.stride / cfg.sample_rate)
    k = cfg.chunk_size
    assert d["chunk_starts"][0] == pytest.approx(-(k // 2) * d["frame_seconds"])
    assert d["chunk_centres"][1] - d["chunk_centres"][0] == pytest.approx(k // 2 * d["frame_seconds"])
    assert d["inter"].shape == (d["n_chunks"], d["n_chunks"]) and d["intra_chunk"].shape == (k, k)
    assert np.allclose(np.nansum(d["inter"], axis=1), 1.0, atol=1e-4)  # rows of attention weights
    rows = np.nansum(d["intra"], axis=1)
    assert np.all(rows <= 1.0 + 1e-4) and np.median(rows) > 0.9
    assert len(d["source_specs"]) == cfg.n_src and d["mixture_spec"]["db"].max() == pytest.approx(0.0)

    local = with_config(sep, inter_window=2)  # local: banded weights are expanded to chunk x chunk
    with torch.inference_mode():
        d = separator_details(local, x, local(x[None], return_details=True))
    off_band = np.abs(np.subtract.outer(np.arange(d["n_chunks"]), np.arange(d["n_chunks"]))) > 1
    assert d["inter_window"] == 2 and np.all(d["inter"][off_band] == 0)


def test_asr_details_axes(tiny_asr_dir):
    asr = load_asr(tiny_asr_dir)
    x = np.concatenate([np.zeros(8000, np.float32), voice(150, 1.2, 16000)])
    result = Pipeline(None, asr)(x, sample_rate=16000, details=True)
    start = result.details["regions"][0][0][0]
    assert start > 0.3  # the first region begins after the half second of silence...
    d = result.details["asr"]["spk1"]
    t = d["time_attention"].shape[0]
    assert d["time_attention"].shape == (t, t) and len(d["times"]) == t
    assert d["times"][0] == pytest.approx(start)  # ...and its maps are on the recording's time axis
    assert d["times"][1] - d["times"][0] == pytest.approx(asr.frame_shift)
    f = d["freq_attention"].shape[0]
    assert len(d["freq_hz"]) == f and np.all(np.diff(d["freq_hz"]) > 0)
    assert d["cross_attention"].shape == (len(d["tokens"]), t) and d["tokens"][-1] == "</s>"
    assert np.allclose(d["cross_attention"].sum(-1), 1.0, atol=1e-4)
    # the maps belong to the decoding that gave the transcript
    assert d["text"] == (result.speakers[0].segments[0].text if result.speakers[0].segments else "")
    spec = spectrogram(np.zeros(800, dtype=np.float32) + 0.1, 8000)
    assert spec["db"].shape[0] == len(spec["freqs"]) and spec["freqs"][-1] == pytest.approx(4000.0)


def _same_speakers_and_words(pipe, path, cli_models, tmp_path):
    from hubbub.__main__ import main

    api = pipe(path).to_dict(words=True)["speakers"]
    assert main(["transcribe", str(path), "-o", str(tmp_path), "-f", "json", "--word-timestamps", "--quiet",
                 *cli_models]) == 0
    cli = json.loads((tmp_path / f"{Path(path).stem}.json").read_text())["speakers"]
    demo = _unpack(app.analyze(str(path), 2, "global", 16, pipeline=pipe))[8]["speakers"]

    def said(speakers):
        return [(s["id"], [(g["start"], g["end"], g["text"], [w["word"] for w in g["words"]])
                           for g in s["segments"]]) for s in speakers]

    assert any(s["segments"] for s in api)  # something to compare
    assert said(api) == said(cli) == said(demo)


def test_api_cli_and_demo_give_the_same_speakers_and_words(pipe, tiny_separator_dir, tiny_asr_dir, two_voice_mix,
                                                           tmp_path):
    # the fixture's pipeline labels one speaker per stream (no speaker encoder): so does the CLI here
    _same_speakers_and_words(pipe, two_voice_mix, ["--model", str(tiny_separator_dir), "--asr", str(tiny_asr_dir),
                                                   "--no-speaker-labels"], tmp_path)


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_api_cli_and_demo_agree_on_a_bundled_example_with_the_default_models(tmp_path):
    _same_speakers_and_words(Pipeline.from_pretrained(), app.examples()[0]["path"], [], tmp_path)


@pytest.mark.slow
def test_demo_package_import_is_light_and_cli_arguments():
    code = "import sys, hubbub.demo; print(sorted(m for m in ('gradio', 'matplotlib', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
    with pytest.raises(SystemExit) as exc:
        demo_cli.main(["demo", "--max-seconds", "0"])
    assert exc.value.code == 2


# --------------------------------------------------------------------------- served


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(pipeline, max_seconds=600):
    demo = app.build_demo(pipeline, max_seconds=max_seconds)
    demo.launch(server_port=_free_port(), prevent_thread_lock=True, quiet=True)
    return demo


@pytest.mark.slow
def test_gradio_client_calls_the_analyze_endpoint(pipe):
    client_mod = pytest.importorskip("gradio_client")
    example = app.examples()[0]
    demo = _serve(pipe)
    try:
        assert demo.local_url.startswith("http://127.0.0.1:")  # loopback by default
        assert demo.max_file_size == 50 * 1024 * 1024
        client = client_mod.Client(demo.local_url, verbose=False)
        assert "/analyze" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        out = client.predict(client_mod.handle_file(example["path"]), 2, "global", 16, api_name="/analyze")
        players, texts, timeline, spec, sep, asr, cross, note, result, bundle = _unpack(out)
        n = len(result["speakers"])  # the voices with words (the tiny ASR may hear words in one only)
        assert n in (1, 2) and Path(players[0]["value"]).is_file() and texts[0]["value"]
        assert all(p["visible"] for p in players[:n]) and not any(p["visible"] for p in players[n:])
        for plot in (timeline, spec, sep, asr, cross):
            assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image/png;base64,")
        assert result["audio"] == Path(example["path"]).name
        assert abs(result["duration"] - example["duration"]) < 0.01
        assert zipfile.is_zipfile(bundle)
        with pytest.raises(client_mod.exceptions.AppError, match="No audio"):
            client.predict(None, 2, "global", 16, api_name="/analyze")
    finally:
        demo.close()


def _browser_ready() -> str | None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        return "chromium is not installed (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    return None


#: drive a demo that is already running there (``hubbub demo`` from an install) instead of serving one here
DEMO_URL = os.environ.get("HUBBUB_DEMO_URL")


@pytest.mark.slow
@pytest.mark.skipif(_browser_ready() is not None, reason=str(_browser_ready()))
def test_browser_runs_an_example(pipe, tmp_path):
    from playwright.sync_api import sync_playwright

    screenshot = os.environ.get("HUBBUB_SCREENSHOT")
    pipeline = Pipeline.from_pretrained() if screenshot else pipe
    shot = Path(screenshot) if screenshot else tmp_path / "demo.png"
    demo = None if DEMO_URL else _serve(pipeline)
    url = DEMO_URL or demo.local_url
    bad = tmp_path / "not-audio.wav"
    bad.write_text("hello, I am not audio\n" * 50)
    start = time.monotonic()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which(
                "chromium"), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url, wait_until="domcontentloaded")
                page.wait_for_selector("#run", timeout=60_000)
                example = page.locator("#examples button.gallery-item").first
                if example.count():
                    example.click()
                else:
                    page.locator("#audio-in input[type=file]").set_input_files(app.examples()[0]["path"])
                page.wait_for_selector("#audio-in audio", state="attached", timeout=30_000)
                page.locator("#run").click()
                page.wait_for_selector("#timeline img", timeout=300_000)
                page.wait_for_selector("#spectrograms img", timeout=60_000)
                page.wait_for_selector("#separator-attention img", timeout=60_000)

                shown = page.locator("#result-json").inner_text()
                both = '"spk2"' in shown  # the voices with words (the tiny ASR may hear words in one only)
                assert page.locator("#player-1 audio").count() >= 1
                assert (page.locator("#player-2 audio").count() >= 1) == both
                assert not page.locator("#player-3").is_visible()
                assert "spk1" in page.locator("#player-1").inner_text()
                transcript = page.locator("#transcript-1 textarea").input_value()
                assert transcript
                assert "Timeline" in page.locator("#timeline").inner_text()
                src = page.locator("#timeline img").get_attribute("src")
                assert src.startswith("data:image/png;base64,")
                width = page.evaluate("document.querySelector('#timeline img').naturalWidth")
                assert width > 500
                assert ".zip" in page.locator("#download").inner_text()
                assert '"spk1"' in shown and (both or not DEMO_URL)
                if "No ASR model is loaded" in page.locator("#asr-note").inner_text():
                    assert DEMO_URL or pipeline.asr is None
                    assert "no ASR model" in transcript
                else:
                    assert DEMO_URL or pipeline.asr is not None
                    page.wait_for_selector("#asr-attention img", timeout=60_000)
                    page.wait_for_selector("#cross-attention img", timeout=60_000)
                    assert "CC" in page.locator("#player-1").inner_text()  # the transcript as subtitles
                page.wait_for_timeout(500)  # let the waveforms settle before the picture
                shot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shot), full_page=True)

                # a bad upload: its message, and one "Error" badge (where progress shows), not one per panel
                page.locator("#audio-in button[aria-label='Clear']").first.click()
                page.locator("#audio-in input[type=file]").set_input_files(str(bad))
                page.locator("#run").click()
                page.get_by_text(f"{bad.name}: not a readable audio file").first.wait_for(timeout=60_000)
                page.wait_for_timeout(500)
                badges = page.locator("[data-testid='status-tracker'] span.error")
                shown = [badges.nth(i) for i in range(badges.count()) if badges.nth(i).is_visible()]
                assert len(shown) <= 1, f"{len(shown)} error badges"
                assert all(b.evaluate("e => !!e.closest('#timeline')") for b in shown)
            finally:
                browser.close()
    finally:
        if demo is not None:
            demo.close()
    assert shot.stat().st_size > 10_000
    print(f"browser test: {time.monotonic() - start:.1f} s ({url}), screenshot {shot}")


def test_start_up_lines_speak_of_the_command_line(sep_pipe, caplog, capsys):
    import logging

    caplog.set_level(logging.INFO, logger="hubbub")
    demo = app.launch(port=_free_port(), pipeline=sep_pipe, prevent_thread_lock=True)
    try:
        said = capsys.readouterr().out + caplog.text
        assert demo.local_url in said and "--share" in said
        assert "share=True" not in said and "launch()" not in said
    finally:
        demo.close()


def test_a_first_window_too_long_for_attention_maps_is_still_drawn(sep_pipe, tmp_path):
    """Global attention weights of a long first window would not fit in memory: the pass runs without
    them (no separator maps), the demo draws the voices' spectrograms instead; local attention has them."""
    from hubbub.pipeline.maps import separator_seconds_limit

    limit = separator_seconds_limit(sep_pipe.separator.config)
    path = tmp_path / "long.wav"
    sf.write(path, voice(110, limit + 1, 8000, 1) + voice(230, limit + 1, 8000, 2), 8000)
    assert "separator" not in sep_pipe(path, details=True).details
    players, texts, timeline, spec, sep, asr, cross, note, result, bundle = _unpack(
        app.analyze(str(path), 2, "global", 16, pipeline=sep_pipe))
    assert sep is None
    _check_figure(spec, "Spectrograms", "spk2 (separated)")
    plots.close(timeline)
    local = Pipeline(with_config(sep_pipe.separator, inter_window=4), None)
    assert local(path, details=True).details["separator"]["inter_window"] == 4
