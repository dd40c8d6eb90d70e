"""Build an ASR corpus offline: render text with the installed TTS engines, augment it, write FLAC + JSONL.

Usage:
    # every train-clean-100 sentence, one voice each, 8 kHz (what the separator writes), 2 processes
    hubbub data synth --out data/synth-8k --jobs 2

    # only the held-out test split of the first 11,000 sentences (220 utterances): the ASR benchmark's
    hubbub data synth --out data/synth-8k --limit 11000 --test-only --jobs 2

    # a quick look: the first 10 sentences
    hubbub data synth --out data/synth-smoke --limit 10

    # 8 and 16 kHz from the same renderings and augmentation: data/synth/8k/... and data/synth/16k/...
    hubbub data synth --out data/synth --sample-rate 8000 16000

    # other text (a plain file, one sentence a line), chosen voices and weights, clean test split
    hubbub data synth --text my-sentences.txt --out data/synth-mine \
        --voices flite/kal:1 festival/kal_diphone:1 espeak/en-us:0.2 --held-out-voices flite/slt --clean-test

    # then train the ASR on it (add manifest:data/synth-8k/train.jsonl to its train_data)
    hubbub train asr --config hubbub/recipes/configs/asr-whisper-separated.yaml

Voices are ``engine/name[:weight]``: ``flite/<voice>`` (``flite -lv``), ``festival/<voice>``
(``text2wave -eval '(voice_<voice>)'``), ``espeak/<voice>`` (``espeak-ng -v <voice>``). Every sentence is
spoken by one voice drawn by weight. Every ``--test-every``-th sentence goes to the ``test`` split instead,
spoken by one of ``--held-out-voices``, which never speak a training sentence. The default held-out voices,
``flite/rms`` and ``festival/ked_diphone``, are two real speakers that no training voice shares (flite's kal
and kal16 and festival's kal_diphone are one speaker, Kevin Lenzo; flite's slt and festival's HTS slt are
another, so holding those out would leave no female voice to train on).

Augmentation (seeded: a rerun gives the same audio): speed 0.9-1.1 by resampling, pitch (sox ``pitch``;
skipped without sox), a synthetic exponentially decaying room response, real noise from ``--noise-dir`` at
5-25 dB SNR, a telephone-like low-pass around 3.4 kHz, and a level of -28..-20 dBFS.

Layout (one rate; with several, each gets ``<out>/<rate>k/`` holding the same)::

    <out>/<split>/<engine>/<voice>/<utt_id>.flac     16-bit FLAC; its comment tag holds the record as JSON
    <out>/<split>.jsonl                              {"id", "audio" (relative), "text", "duration",
                                                      "speaker" (= engine/voice), "sample_rate", "augment"}

Resumable: sentences whose audio exists are skipped, files are written atomically, and the manifests are
rebuilt at the end from the audio that exists (each file carries its own record), so an interrupted run
loses nothing and ``--limit`` can grow between runs. Texts are normalised with ``normalize_text``;
sentences with digits are skipped (the engines would say words the transcript does not have).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from hubbub.models.text import normalize_text
from hubbub.pipeline.writers import atomic_path, write_text
from hubbub.recipes.asr_data import AugmentConfig, augment, read_sentences

if TYPE_CHECKING:  # torch and the audio front-end are imported where they run: --help imports neither
    import torch

__all__ = [
    "DEFAULT_HELD_OUT",
    "DEFAULT_VOICES",
    "SynthJob",
    "SynthRecord",
    "SynthSettings",
    "Voice",
    "build_parser",
    "main",
    "render_job",
    "synthesize",
    "write_manifests",
]

log = logging.getLogger(__name__)

DEFAULT_TEXT = "../shared/data/text/librispeech-train-clean-100.tsv"
DEFAULT_NOISE = "../shared/data/noise"
#: espeak-ng is weighted low: formant speech is far from human speech, and ASR on it is poor
DEFAULT_VOICES = (
    "flite/kal:0.5", "flite/kal16:0.5", "flite/awb:1", "flite/slt:1", "flite/rms:1",
    "festival/kal_diphone:0.5", "festival/ked_diphone:1", "festival/cmu_us_slt_arctic_hts:1",
    "espeak/en-us:0.15", "espeak/en-gb:0.15",
)
DEFAULT_HELD_OUT = ("flite/rms", "festival/ked_diphone")
SPLITS = ("train", "test")
ENGINES = {"flite": "flite", "festival": "text2wave", "espeak": "espeak-ng"}
#: voices that are recordings of one person (a held-out voice must share none with training)
SPEAKERS = {
    "flite/kal": "kal", "flite/kal16": "kal", "festival/kal_diphone": "kal",
    "flite/slt": "slt", "festival/cmu_us_slt_arctic_hts": "slt",
    "flite/awb": "awb", "flite/awb_time": "awb", "flite/rms": "rms", "festival/ked_diphone": "ked",
}
LEVEL_DB = (-28.0, -20.0)


# ---------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Voice:
    """A TTS voice: ``engine`` is flite, festival or espeak; ``weight`` its share of sentences."""

    engine: str
    name: str
    weight: float = 1.0

    @property
    def key(self) -> str:
        return f"{self.engine}/{self.name}"

    @property
    def speaker(self) -> str:
        """Who it is: voices of one recorded person share this."""
        return SPEAKERS.get(self.key, self.key)

    @classmethod
    def parse(cls, spec: str) -> Voice:
        """``engine/name[:weight]``."""
        body, _, weight = spec.partition(":")
        engine, _, name = body.partition("/")
        if engine not in ENGINES or not name:
            raise ValueError(f"voice {spec!r}: expected ENGINE/NAME[:WEIGHT] with ENGINE one of {sorted(ENGINES)}")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"voice {spec!r}: weight {weight!r} is not a number") from None
        if w < 0:
            raise ValueError(f"voice {spec!r}: negative weight")
        return cls(engine, name, w)

    def command(self, text: str, wav_path: Path) -> tuple[list[str], str | None]:
        """The command line that writes ``text`` spoken to ``wav_path``, and its stdin."""
        binary = ENGINES[self.engine]
        if self.engine == "flite":
            return [binary, "-voice", self.name, "-t", text, "-o", str(wav_path)], None
        if self.engine == "festival":
            return [binary, "-eval", f"(voice_{self.name})", "-o", str(wav_path)], text + "\n"
        return [binary, "-v", self.name, "-w", str(wav_path), "--", text], None

    def render(self, text: str, timeout: float = 60.0) -> tuple[np.ndarray, int]:
        """Speak ``text``: mono float32 samples and their rate. Raises RuntimeError on failure."""
        with tempfile.TemporaryDirectory(prefix="hubbub-tts-") as tmp:
            path = Path(tmp) / "out.wav"
            argv, stdin = self.command(text, path)
            try:
                proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
            except (OSError, subprocess.TimeoutExpired) as err:
                raise RuntimeError(f"{self.key}: {err}") from None
            if proc.returncode != 0 or not path.is_file() or path.stat().st_size == 0:
                msg = (proc.stderr or proc.stdout or "").strip().splitlines()
                raise RuntimeError(f"{self.key}: exit {proc.returncode}{': ' + msg[-1] if msg else ''}")
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        wav = data.mean(axis=1)
        if wav.size == 0 or float(np.abs(wav).max()) < 1e-4:
            raise RuntimeError(f"{self.key}: rendered silence")
        return wav, sr


@dataclass(frozen=True)
class SynthJob:
    """One sentence to speak: its index in the text, id, normalised text, voice and split."""

    index: int
    utt: str
    text: str
    voice: Voice
    split: str


@dataclass(frozen=True)
class SynthSettings:
    """What every job needs besides itself (picklable, for worker processes)."""

    out: str
    sample_rates: tuple[int, ...] = (8000,)
    seed: int = 0
    augmentation: AugmentConfig | None = AugmentConfig()
    noise_dir: str | None = None
    clean_test: bool = False
    timeout: float = 60.0

    def root(self, rate: int) -> Path:
        """Where the corpus at ``rate`` lives: ``out``, or ``out/<rate>k`` with several rates."""
        out = Path(self.out)
        return out if len(self.sample_rates) == 1 else out / f"{rate / 1000:g}k"

    def paths(self, job: SynthJob) -> list[Path]:
        return [self.root(r) / job.split / job.voice.engine / job.voice.name / f"{job.utt}.flac"
                for r in self.sample_rates]


@dataclass(frozen=True)
class SynthRecord:
    """One manifest line (lhotse-like: a cut's id, audio, text and provenance)."""

    id: str
    audio: str  # relative to the manifest's folder
    text: str
    duration: float
    speaker: str  # the voice, engine/name
    sample_rate: int
    augment: dict

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)


# ----------------------------------------------------------------------------------------------- work


@functools.lru_cache(maxsize=4)
def _noises(noise_dir: str | None, sample_rate: int) -> tuple[np.ndarray, ...]:
    """Noise recordings at ``sample_rate``, read once per process."""
    from hubbub.recipes.data import load_noises

    return tuple(load_noises(noise_dir, sample_rate)) if noise_dir else ()


def _write_flac(path: Path, wav: torch.Tensor, sample_rate: int, comment: str) -> None:
    data = np.clip(wav.detach().cpu().numpy().astype(np.float32), -1.0, 1.0)
    with atomic_path(path) as tmp, sf.SoundFile(str(tmp), "w", sample_rate, 1, format="FLAC",
                                                subtype="PCM_16") as f:
        f.comment = comment
        f.write(data)


def render_job(job: SynthJob, settings: SynthSettings) -> tuple[str, float, str | None]:
    """Speak, augment and write one sentence at every rate.

    Returns ``(utt, seconds of audio, error or None)``; never raises for a bad
    rendering, so one failure does not stop a run.
    """
    import torch

    from hubbub.pipeline.audio import resample
    from hubbub.recipes.data import rms_db

    try:
        raw, raw_sr = job.voice.render(job.text.lower(), settings.timeout)
    except RuntimeError as err:
        return job.utt, 0.0, str(err)
    work_sr = max(settings.sample_rates)
    wav = resample(torch.from_numpy(raw), raw_sr, work_sr)
    rng = np.random.default_rng([settings.seed, job.index, 1])
    info: dict = {}
    if settings.augmentation is not None and not (job.split == "test" and settings.clean_test):
        wav, info = augment(wav, work_sr, rng, settings.augmentation, _noises(settings.noise_dir, work_sr))
    level = rng.uniform(*LEVEL_DB)
    wav = wav * 10 ** ((level - rms_db(wav.numpy())) / 20)
    peak = float(wav.abs().max())
    if peak > 0.95:
        wav = wav * (0.95 / peak)
    info["level_db"] = round(rms_db(wav.numpy()), 1)
    meta = json.dumps({"text": job.text, "speaker": job.voice.key, "source": job.utt, "augment": info})
    for rate, path in zip(settings.sample_rates, settings.paths(job)):
        _write_flac(path, resample(wav, work_sr, rate), rate, meta)
    return job.utt, wav.shape[-1] / work_sr, None


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def plan_jobs(
    sentences: list[tuple[str, str]],
    voices: list[Voice],
    held_out: list[Voice],
    test_every: int = 50,
    seed: int = 0,
) -> list[SynthJob]:
    """Assign each sentence a split and a voice (a pure function of the seed and its index)."""
    train = [v for v in voices if v.key not in {h.key for h in held_out} and v.weight > 0]
    jobs = []
    for index, (utt, text) in enumerate(sentences):
        to_test = bool(test_every) and index % test_every == test_every - 1
        pool = held_out if to_test else train
        if not pool:
            continue
        weights = np.array([max(v.weight, 1e-9) for v in pool])
        voice = pool[int(np.random.default_rng([seed, index]).choice(len(pool), p=weights / weights.sum()))]
        jobs.append(SynthJob(index, utt, text, voice, "test" if to_test else "train"))
    return jobs


def usable_voices(voices: list[Voice], timeout: float = 60.0) -> list[Voice]:
    """The voices whose engine is installed and that speak a test word."""
    ok = []
    for v in voices:
        if shutil.which(ENGINES[v.engine]) is None:
            log.warning("voice %s: %s is not installed, dropped", v.key, ENGINES[v.engine])
            continue
        try:
            v.render("hello", timeout)
        except RuntimeError as err:
            log.warning("voice %s does not work, dropped (%s)", v.key, err)
            continue
        ok.append(v)
    return ok


def write_manifests(root: str | os.PathLike) -> dict[str, int]:
    """Rewrite ``<root>/<split>.jsonl`` from the FLAC files under ``<root>/<split>/``."""
    root = Path(root)
    counts = {}
    for split in SPLITS:
        folder = root / split
        if not folder.is_dir():
            continue
        records = []
        for path in sorted(folder.rglob("*.flac")):
            try:
                with sf.SoundFile(str(path)) as f:
                    meta = json.loads(f.comment or "{}")
                    frames, rate = f.frames, f.samplerate
                text = meta["text"]
            except (sf.LibsndfileError, RuntimeError, json.JSONDecodeError, KeyError) as err:
                log.warning("%s: not a synth file (%s), left out of the manifest", path, err)
                continue
            voice = meta.get("speaker") or path.parent.relative_to(folder).as_posix()
            records.append(SynthRecord(
                id=f"{voice.replace('/', '-')}_{path.stem}", audio=path.relative_to(root).as_posix(), text=text,
                duration=round(frames / rate, 3), speaker=voice, sample_rate=rate, augment=meta.get("augment", {}),
            ))
        write_text(root / f"{split}.jsonl", "".join(r.to_json() + "\n" for r in records))
        counts[split] = len(records)
    return counts


def synthesize(jobs: list[SynthJob], settings: SynthSettings, n_jobs: int = 1, progress: bool = True) -> dict:
    """Render the jobs whose audio is missing, then rewrite the manifests. Returns counts and timing."""
    from tqdm.auto import tqdm

    todo = [j for j in jobs if not all(p.is_file() for p in settings.paths(j))]
    log.info("%d sentences: %d already done, %d to render with %d process(es)",
             len(jobs), len(jobs) - len(todo), len(todo), n_jobs)
    failed, seconds = 0, 0.0
    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), desc="synth", disable=not progress, dynamic_ncols=True)

    def done(result: tuple[str, float, str | None]) -> None:
        nonlocal failed, seconds
        utt, dur, err = result
        if err:
            failed += 1
            log.warning("%s: %s", utt, err)
        seconds += dur
        bar.update(1)

    try:
        if n_jobs <= 1 or len(todo) <= 1:
            for job in todo:
                done(render_job(job, settings))
        else:
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(n_jobs, mp_context=ctx, initializer=_worker_init) as pool:
                for fut in as_completed([pool.submit(render_job, j, settings) for j in todo]):
                    done(fut.result())
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    counts = {}
    for rate in settings.sample_rates:
        counts[rate] = write_manifests(settings.root(rate))
    rendered = len(todo) - failed
    summary = {"planned": len(jobs), "skipped": len(jobs) - len(todo), "rendered": rendered, "failed": failed,
               "audio_seconds": seconds, "wall_seconds": wall, "manifests": counts}
    if todo:
        log.info("rendered %d sentences (%.1f min of audio) in %.1f s: %.2f sentences/s with %d process(es), "
                 "%d failed", rendered, seconds / 60, wall, rendered / max(wall, 1e-9), n_jobs, failed)
    for rate, c in counts.items():
        log.info("%s: %s", settings.root(rate), ", ".join(f"{k} {v} utterances" for k, v in c.items()))
    return summary


# ------------------------------------------------------------------------------------------------ CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hubbub data synth", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", default=DEFAULT_TEXT, help="utt_id<TAB>TEXT lines, or one sentence a line")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--voices", nargs="+", default=list(DEFAULT_VOICES), metavar="ENGINE/NAME[:W]",
                   help="voices and weights (default: %(default)s)")
    p.add_argument("--held-out-voices", nargs="*", default=list(DEFAULT_HELD_OUT), metavar="ENGINE/NAME",
                   help="voices of the test split only, never of train (default: %(default)s)")
    p.add_argument("--test-every", type=int, default=50,
                   help="every N-th sentence goes to the test split (0: no test split)")
    p.add_argument("--sample-rate", type=int, nargs="+", default=[8000], help="output rate(s)")
    p.add_argument("--limit", type=int, default=None, help="only the first N sentences")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise-dir", default=DEFAULT_NOISE, help="real noise recordings ('' for none)")
    p.add_argument("--no-augment", action="store_true", help="write the renderings as they are (level only)")
    p.add_argument("--clean-test", action="store_true", help="do not augment the test split")
    p.add_argument("--test-only", action="store_true",
                   help="render only the test split (the same audio a full run writes there): an evaluation set")
    p.add_argument("--speed-prob", type=float, default=0.5)
    p.add_argument("--speed", type=float, nargs=2, default=[0.9, 1.1], metavar=("MIN", "MAX"))
    p.add_argument("--pitch-prob", type=float, default=0.3)
    p.add_argument("--pitch-cents", type=float, default=300.0, help="shift drawn from [-x, x] cents")
    p.add_argument("--reverb-prob", type=float, default=0.3)
    p.add_argument("--noise-prob", type=float, default=0.5)
    p.add_argument("--snr", type=float, nargs=2, default=[5.0, 25.0], metavar=("MIN", "MAX"))
    p.add_argument("--band-prob", type=float, default=0.5, help="probability of the ~3.4 kHz low-pass")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per rendering")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """``hubbub data synth ...``: ``argv[0]`` is ``synth``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["synth"]:
        argv = argv[1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        voices = [Voice.parse(v) for v in args.voices]
        held_out = [Voice.parse(v) for v in args.held_out_voices]
    except ValueError as err:
        log.error("%s", err)
        return 2
    if any(r < 4000 for r in args.sample_rate):
        log.error("--sample-rate: at least 4000 Hz, got %s", args.sample_rate)
        return 2
    held_keys = {h.key for h in held_out}
    train_voices = usable_voices([v for v in voices if v.key not in held_keys], args.timeout)
    held_out = usable_voices(held_out, args.timeout) if args.test_every else []
    if not train_voices:
        log.error("no working training voice among %s (are flite, text2wave, espeak-ng installed?)", args.voices)
        return 1
    if args.test_every and not held_out:
        log.error("no working held-out voice among %s (use --test-every 0 for no test split)",
                  args.held_out_voices)
        return 1
    shared = {v.speaker for v in train_voices} & {h.speaker for h in held_out}
    if shared:
        log.warning("held-out voice(s) share a speaker with training voices: %s", sorted(shared))
    try:
        raw = read_sentences(args.text, limit=args.limit)
    except OSError as err:
        log.error("--text: %s", err)
        return 2
    sentences, with_digits = [], 0
    for utt, text in raw:
        norm = normalize_text(text)
        if any(c.isdigit() for c in text):  # the engine may read a number otherwise than num2words writes it
            with_digits += 1
        elif norm:
            sentences.append((utt, norm))
    if with_digits:
        log.info("%d sentences with digits skipped", with_digits)
    noise_dir = args.noise_dir or None
    if noise_dir and not Path(noise_dir).is_dir():
        log.warning("--noise-dir %s: not a folder, no noise added", noise_dir)
        noise_dir = None
    aug = None if args.no_augment else AugmentConfig(
        speed_prob=args.speed_prob, speed=tuple(args.speed), pitch_prob=args.pitch_prob,
        pitch_cents=args.pitch_cents, reverb_prob=args.reverb_prob, noise_prob=args.noise_prob if noise_dir else 0.0,
        snr_db=tuple(args.snr), band_prob=args.band_prob,
    )
    settings = SynthSettings(args.out, tuple(args.sample_rate), args.seed, aug, noise_dir, args.clean_test,
                             args.timeout)
    jobs = plan_jobs(sentences, train_voices, held_out, args.test_every, args.seed)
    if args.test_only:  # the same test split (sentences, voices, augmentation) without rendering train
        jobs = [job for job in jobs if job.split == "test"]
    log.info("voices: train %s; held out (test) %s",
             ", ".join(f"{v.key}:{v.weight:g}" for v in train_voices), ", ".join(v.key for v in held_out) or "-")
    summary = synthesize(jobs, settings, max(1, args.jobs), progress=not args.quiet)
    return 0 if summary["rendered"] + summary["skipped"] > 0 else 1
