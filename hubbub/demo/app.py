"""``hubbub demo``: a Gradio app around the one :class:`~hubbub.pipeline.Pipeline`.

Upload or record a recording (or pick a bundled example), choose the number of
speakers and the separator's inter-chunk attention (global, or local with a
window in chunks), and get one player and transcript per voice, a timeline of
who spoke when, spectrograms and masks, the separator's and the ASR's
attention maps, the result as JSON and a zip of WAVs + JSON + SRT.

One handler, :func:`analyze` (API endpoint ``/analyze``), makes one call of
the same ``Pipeline`` the CLI uses, asking it for ``Result.details`` (masks,
attention maps, alignments, regions from the same forward passes), and draws
those; the demo runs no model itself. Requests are queued one at a
time; files are written only to per-request temporary folders; the server
listens on the loopback interface unless told otherwise; analytics are off.

    hubbub demo [--host 127.0.0.1] [--port 7860] [--share] [--max-seconds 600]
                [--separator DIR] [--asr DIR]

(the command line is parsed in :mod:`hubbub.demo.cli`, which imports this module only to launch;
this module does not import it).
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import atexit  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import weakref  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
import soundfile as sf  # noqa: E402

from hubbub.demo import plots  # noqa: E402
from hubbub.pipeline import Pipeline  # noqa: E402
from hubbub.pipeline.audio import AudioError  # noqa: E402
from hubbub.pipeline.formats import write_outputs  # noqa: E402
from hubbub.pipeline.maps import spectrogram  # noqa: E402
from hubbub.pipeline.separate import LOCAL_INTER_WINDOW  # noqa: E402  (the separator's default local window)

__all__ = ["EXAMPLES_DIR", "analyze", "build_demo", "examples", "launch"]

log = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parent
EXAMPLES_DIR = DEMO_DIR / "examples"
MAX_PLAYERS = 3
#: requests waiting in the queue at most (one runs at a time)
QUEUE_SIZE = 16
#: request folders and upload copies older than this are removed when a new request starts
KEEP_SECONDS = 3600.0
#: ... and the oldest of them go while the two together hold more than this
KEEP_BYTES = 2 * 1024**3
NO_ASR_NOTE = (
    "**No ASR model is loaded**: the demo separates the voices but cannot transcribe them, "
    "so there are no transcripts, subtitles or ASR attention maps. Start it with "
    "`hubbub demo --asr NAME|DIR` with a Whisper model (`whisper-base`, or a folder of `hubbub models import`)."
)
SILENT_NOTE = (
    "**{name} is digital silence** (every sample is zero or below -90 dBFS): valid audio in which "
    "nobody speaks, so there are no voices, transcripts or attention maps to show. "
    "`hubbub transcribe` gives the same empty result."
)

_work_root: Path | None = None
_work_lock = threading.Lock()


def examples() -> list[dict]:
    """The bundled example mixtures (``examples.json``) whose audio file is present."""
    meta = json.loads((DEMO_DIR / "examples.json").read_text(encoding="utf-8"))
    return [dict(e, path=str(DEMO_DIR / e["audio"])) for e in meta if (DEMO_DIR / e["audio"]).is_file()]


def _work_dir() -> Path:
    """This process's temporary folder (requests' outputs; Gradio's upload copies when started by
    :func:`launch`), removed at exit."""
    global _work_root
    if _work_root is None or not _work_root.is_dir():
        _work_root = Path(tempfile.mkdtemp(prefix="hubbub-demo-"))
        atexit.register(shutil.rmtree, _work_root, True)
    return _work_root


def sweep(folders: list[Path], keep_seconds: float = KEEP_SECONDS, keep_bytes: int = KEEP_BYTES) -> int:
    """Remove the entries (files or folders) of ``folders`` older than ``keep_seconds``, then the
    oldest of the rest while they hold more than ``keep_bytes``. Returns how many were removed."""
    entries = []
    for folder in folders:
        for entry in folder.iterdir() if folder.is_dir() else ():
            try:
                files = [entry] if entry.is_file() else [f for f in entry.rglob("*") if f.is_file()]
                size = sum(f.stat().st_size for f in files)
                entries.append((entry.stat().st_mtime, size, entry))
            except OSError:
                continue
    entries.sort(key=lambda e: e[0])
    now, held, removed = time.time(), sum(e[1] for e in entries), 0
    for mtime, size, entry in entries:
        if now - mtime <= keep_seconds and held <= keep_bytes:
            break
        shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
        held, removed = held - size, removed + 1
    return removed


def _request_dir() -> Path:
    """A fresh temporary folder for one request; old requests and upload copies are swept
    (:func:`sweep`), all removed at exit."""
    with _work_lock:
        root = _work_dir()
        uploads = Path(gr.utils.get_upload_folder())
        ours = uploads.name.startswith("hubbub-demo-") or uploads.parent == root  # set by hubbub demo or launch()
        sweep([root / "requests", *([uploads] if ours else [])])
        (root / "requests").mkdir(exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="req-", dir=root / "requests"))


def _speaker_choices(pipeline) -> list[int]:
    return sorted({1, pipeline.n_speakers})


def _subtitles(speaker) -> list[dict] | None:
    subs = [{"text": seg.text, "timestamp": [round(seg.start, 3), round(seg.end, 3)]} for seg in speaker.segments]
    return subs or None


def _zip(folder: Path, files: list[Path], name: str) -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            zf.write(f, arcname=f.name)
    return path


_default = None


def _default_pipeline():
    global _default
    if _default is None:
        _default = Pipeline.from_pretrained()
    return _default


def _check_request(pipeline, audio_path, n_speakers, window, window_size) -> tuple[str, int, int]:
    """The request's audio path, speaker count and window size, or :class:`gr.Error` naming what is wrong."""
    if audio_path is None or (isinstance(audio_path, str) and not audio_path.strip()):
        raise gr.Error("No audio: upload a file, record with the microphone, or pick an example.",
                       print_exception=False)
    audio_path = str(audio_path)
    try:
        n_speakers = int(n_speakers) if n_speakers not in (None, "") else pipeline.n_speakers
        window_size = int(window_size) if window_size not in (None, "") else LOCAL_INTER_WINDOW
    except (TypeError, ValueError):
        raise gr.Error(f"invalid settings: speakers={n_speakers!r}, window size={window_size!r}",
                       print_exception=False) from None
    if n_speakers not in _speaker_choices(pipeline):
        raise gr.Error(f"speakers must be one of {_speaker_choices(pipeline)}, not {n_speakers}",
                       print_exception=False)
    if window not in ("global", "local"):
        raise gr.Error(f"inter-chunk attention must be 'global' or 'local', not {window!r}",
                       print_exception=False)
    if window == "local" and window_size < 1:
        raise gr.Error(f"the local window must be at least 1 chunk, not {window_size}", print_exception=False)
    return audio_path, n_speakers, window_size


#: for each pipeline the demo serves, its variants by (window, length limit), built once
_variants: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _pipeline_for(pipeline, window: int | None, max_seconds: float | None):
    """``pipeline`` with the separator's inter-chunk attention ``window`` (None: global) and the
    length limit ``max_seconds``: the pipeline itself when it has both, else a variant built once,
    with a new separator of the same weights and the changed configuration (settings are given
    when an object is built, never poked into it afterwards)."""
    sep = pipeline.separator
    limit = pipeline.max_seconds if max_seconds is None else min(max_seconds, pipeline.max_seconds or max_seconds)
    if (sep is None or sep.config.inter_window == window) and limit == pipeline.max_seconds:
        return pipeline
    variants = _variants.setdefault(pipeline, {})
    if (window, limit) not in variants:
        changes = {"max_seconds": limit}
        if sep is not None and sep.config.inter_window != window:
            changes["window"] = "global" if window is None else f"local:{window}"
        variants[(window, limit)] = pipeline.replace(**changes)
    return variants[(window, limit)]


def analyze(
    audio_path,
    n_speakers,
    window,
    window_size,
    progress=gr.Progress(track_tqdm=True),  # noqa: B008
    *,
    pipeline=None,
    max_seconds: float | None = None,
):
    """Separate and transcribe one recording: every output of the demo (API ``/analyze``).

    One call of the pipeline (:meth:`Pipeline.transcribe_to_dir` with ``details``)
    does all the model work, the same as ``hubbub transcribe``; the figures are
    drawn from its ``Result`` and ``Result.details``, nothing is run twice.

    Args:
        audio_path: the recording (a file path; Gradio's upload or recording).
        n_speakers: 1 (no separation) or the separator's number of voices.
        window: the separator's inter-chunk attention, "global" or "local".
        window_size: the local window in chunks.
        pipeline, max_seconds: bound by :func:`build_demo` (default: the
            embedded :meth:`Pipeline.from_pretrained`, no length limit).

    Returns, in order: ``MAX_PLAYERS`` audio updates (with subtitles),
    ``MAX_PLAYERS`` transcript updates, the timeline, spectrogram, separator
    attention, ASR attention and cross-attention figures (None where there is
    nothing to show), the ASR note (Markdown), the result as a dict and the
    path of the zip. Raises :class:`gr.Error` for unusable input; digital
    silence is valid input: no voices, and a note that says why.
    """
    pipeline = pipeline if pipeline is not None else _default_pipeline()

    def report(fraction: float, desc: str) -> None:
        if progress is not None:
            try:
                progress(fraction, desc=desc)
            except Exception:  # progress is cosmetic; never fail a request on it
                log.debug("progress update failed", exc_info=True)

    audio_path, n_speakers, window_size = _check_request(pipeline, audio_path, n_speakers, window, window_size)
    name = Path(audio_path).name
    stem = Path(name).stem or "audio"
    folder = _request_dir()

    report(0.0, "starting")
    pipe = _pipeline_for(pipeline, None if window == "global" else window_size, max_seconds)
    try:
        result = pipe.transcribe_to_dir(
            audio_path, folder / "voices", speakers=n_speakers, details=True,
            progress=lambda done, total: report(0.8 * done / max(total, 1e-9),
                                                f"{done:.0f}/{total:.0f} s of audio separated and read"),
        )
    except AudioError as err:
        raise gr.Error(f"{name}: {err.problem}", print_exception=False) from None
    separated = n_speakers != 1 and pipe.separator is not None
    details = result.details
    silent = not result.speakers  # digital silence: the pipeline's empty result

    report(0.8, "writing outputs")
    wavs = []
    for spk in result.speakers:
        wavs.append(folder / f"{stem}.{spk.id}.wav")
        os.replace(spk.audio, wavs[-1])
        spk.audio = wavs[-1].name
    result.audio = name
    texts = write_outputs(result, folder, stem, ["json", "srt"], words=pipe.asr is not None)
    bundle = _zip(folder, [*wavs, *texts], f"{stem}.hubbub.zip")

    players, transcripts = [], []
    for k in range(MAX_PLAYERS):
        if k < len(result.speakers):
            spk = result.speakers[k]
            label = spk.id if separated else f"{spk.id} (not separated)"
            if details["leakage"][k]:
                label += " (leakage of another voice: no speaker)"
            players.append(gr.update(value=str(wavs[k]), visible=True, label=label, subtitles=_subtitles(spk)))
            if pipe.asr is None:
                text = "(no ASR model loaded: separation only)"
            else:
                text = "\n".join(f"[{s.start:6.2f}-{s.end:6.2f}] {s.text}" for s in spk.segments) or "(no speech)"
            transcripts.append(gr.update(value=text, visible=True, label=f"{spk.id} transcript"))
        else:
            players.append(gr.update(value=None, visible=False, subtitles=None))
            transcripts.append(gr.update(value="", visible=False))

    report(0.85, "drawing")
    timeline = plots.timeline_figure(result, activity=details["regions"])
    spec_fig = sep_fig = None
    if silent:
        pass  # no voices: nothing to draw but the empty timeline
    elif "separator" in details:
        spec_fig = plots.spectrogram_figure(details["separator"], names=[s.id for s in result.speakers])
        sep_fig = plots.separator_attention_figure(details["separator"])
    else:  # not separated (the one voice is the recording), or a first window too long for attention weights
        voices = [sf.read(str(w), dtype="float32")[0] for w in wavs]
        spec = {"mixture_spec": spectrogram(sum(voices), result.sample_rate)}
        if separated:
            spec["source_specs"] = [spectrogram(v, result.sample_rate, ref=spec["mixture_spec"]["ref"])
                                    for v in voices]
        spec_fig = plots.spectrogram_figure(spec, names=[s.id for s in result.speakers])

    asr_fig = cross_fig = None
    if silent:
        note = SILENT_NOTE.format(name=name)
    elif pipe.asr is None:
        note = NO_ASR_NOTE
    else:
        shown = [s.id for s in result.speakers[:MAX_PLAYERS] if s.id in details.get("asr", {})]
        if shown:
            maps = [details["asr"][i] for i in shown]
            asr_fig = plots.asr_attention_figure(maps, shown)
            cross_fig = plots.cross_attention_figure(maps, shown)
        note = (f"ASR: `{pipe.names.get('asr', 'asr')}`. Each speaker's maps are those of the read (one decoder "
                "pass over a stretch of the recording or of the separated voice) that gave its first words; "
                "each caption gives the stretch and the read's text.")
    report(1.0, "done")
    return (*players, *transcripts, timeline, spec_fig, sep_fig, asr_fig, cross_fig, note,
            result.to_dict(words=True), str(bundle))


def build_demo(pipeline=None, max_seconds: float = 600, max_file_size: str | int | None = "50mb") -> gr.Blocks:
    """The Blocks app around ``pipeline`` (default: :meth:`Pipeline.from_pretrained`).

    Recordings longer than ``max_seconds`` are refused. The returned app's
    ``launch()`` defaults to the loopback interface, uploads of at most
    ``max_file_size``, no server-side rendering, and may serve the bundled
    examples; any of these can still be overridden by keyword.
    """
    if pipeline is None:
        pipeline = Pipeline.from_pretrained()
    choices = _speaker_choices(pipeline)
    sep_name = pipeline.names.get("separator", "separator")
    asr_name = pipeline.names.get("asr")

    handler = functools.partial(analyze, pipeline=pipeline, max_seconds=max_seconds)
    functools.update_wrapper(handler, analyze)

    with gr.Blocks(title="hubbub: who said what", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# hubbub: separate overlapping talkers, then transcribe each voice\n"
            f"Separator `{sep_name}` ({pipeline.n_speakers} voices)"
            + (f", ASR `{asr_name}`." if asr_name else ", no ASR model (separation only).")
            + f" Recordings up to {max_seconds:g} s."
        )
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                audio_in = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Recording",
                                    elem_id="audio-in")
                n_speakers = gr.Radio(choices, value=choices[-1], label="Number of speakers",
                                      info="1 skips separation", elem_id="n-speakers")
                window = gr.Radio(["global", "local"], value="global", label="Inter-chunk attention",
                                  info="global: every chunk sees all chunks; local: a window of chunks",
                                  elem_id="window")
                window_size = gr.Slider(1, 64, value=LOCAL_INTER_WINDOW, step=1, label="Local window (chunks)",
                                        info="used when the attention is local", elem_id="window-size")
                run_btn = gr.Button("Run", variant="primary", elem_id="run")
                found = examples()
                if found:
                    gr.Examples(
                        examples=[[e["path"]] for e in found], inputs=[audio_in], cache_examples=False,
                        example_labels=[f"{e['name']} ({e['duration']:.1f} s)" for e in found],
                        label="Examples (two synthetic talkers)", elem_id="examples",
                    )
            with gr.Column(scale=2):
                players, transcripts = [], []
                for k in range(1, MAX_PLAYERS + 1):
                    with gr.Row(equal_height=True):
                        players.append(gr.Audio(label=f"spk{k}", type="filepath", interactive=False,
                                                visible=False, elem_id=f"player-{k}", buttons=["download"]))
                        transcripts.append(gr.Textbox(label=f"spk{k} transcript", lines=3, interactive=False,
                                                      visible=False, elem_id=f"transcript-{k}"))
                timeline = gr.Plot(label="Timeline", format="png", elem_id="timeline")
                bundle = gr.File(label="Download: WAVs + JSON + SRT (zip)", elem_id="download")
        sep_plot = gr.Plot(label="Separator attention", format="png", elem_id="separator-attention")
        spec_plot = gr.Plot(label="Spectrograms and masks", format="png", elem_id="spectrograms")
        asr_note = gr.Markdown(NO_ASR_NOTE if pipeline.asr is None else "", elem_id="asr-note")
        has_asr = pipeline.asr is not None
        asr_plot = gr.Plot(label="ASR 2D attention", format="png", elem_id="asr-attention", visible=has_asr)
        cross_plot = gr.Plot(label="ASR cross-attention", format="png", elem_id="cross-attention", visible=has_asr)
        result_json = gr.JSON(label="Result (JSON)", elem_id="result-json")

        run_btn.click(
            handler,
            inputs=[audio_in, n_speakers, window, window_size],
            outputs=[*players, *transcripts, timeline, spec_plot, sep_plot, asr_plot, cross_plot, asr_note,
                     result_json, bundle],
            api_name="analyze",
            concurrency_limit=1,
            # progress, and the one "Error" badge of a refused input, on the timeline only: not on every panel
            show_progress_on=[timeline],
        )
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    # safe defaults for any launch of this app: loopback, size limit, no SSR (node), the examples readable
    demo.launch = functools.partial(
        demo.launch, server_name="127.0.0.1", max_file_size=max_file_size, allowed_paths=[str(EXAMPLES_DIR)],
        ssr_mode=False, show_error=True,
    )
    return demo


def _stop(signum, frame) -> None:
    """SIGTERM stops the demo as Ctrl+C does, so that its temporary folder is removed at exit."""
    raise KeyboardInterrupt


def launch(
    host: str = "127.0.0.1",
    port: int | None = 7860,
    share: bool = False,
    max_seconds: float = 600,
    max_file_size: str | int | None = "50mb",
    separator: str | None = None,
    asr: str | None = None,
    pipeline=None,
    prevent_thread_lock: bool = False,
    quiet: bool = False,
) -> gr.Blocks:
    """Build the demo and serve it (blocks unless ``prevent_thread_lock``).

    Gradio keeps a copy of every upload; unless ``GRADIO_TEMP_DIR`` says where, those copies go
    into this process's temporary folder, swept while it runs (:data:`KEEP_SECONDS`,
    :data:`KEEP_BYTES`) and removed when it stops (Ctrl+C or SIGTERM)."""
    if not os.environ.get("GRADIO_TEMP_DIR"):
        os.environ["GRADIO_TEMP_DIR"] = str(_work_dir() / "uploads")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
    if pipeline is None:
        pipeline = Pipeline.from_pretrained(separator=separator, asr=asr)
    demo = build_demo(pipeline, max_seconds=max_seconds, max_file_size=max_file_size)
    # gradio's own start-up lines speak of launch(share=True); say it in this command's words instead
    demo.launch(server_name=host, server_port=port, share=share, quiet=True, prevent_thread_lock=True)
    if not quiet:
        log.info("the demo runs on %s (Ctrl+C stops it)", demo.local_url)
        if not share:
            log.info("hubbub demo --share would also make a public gradio.live link")
        elif demo.share_url is None:
            log.warning("no public link could be made (--share needs the internet); the local address still works")
    if not prevent_thread_lock:
        try:
            demo.block_thread()
        finally:  # however it stops (Ctrl+C, SIGTERM, an error), the server and its queue go with it
            demo.close()
    return demo
