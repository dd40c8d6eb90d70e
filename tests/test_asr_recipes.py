"""ASR recipes: `hubbub data synth`, the ASR data readers and sampler, `hubbub train asr`
and `hubbub evaluate asr`, on generated data and a tiny model (seconds each)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import SHARED_DATA, voice
from hubbub.__main__ import main
from hubbub.models.loading import load_model
from hubbub.models.whisper import WhisperASR
from hubbub.recipes.asr_data import (
    AsrBatches,
    AugmentConfig,
    augment,
    load_corpus,
    load_waveforms,
    parse_spec,
    read_fsdd,
    read_librispeech_asr,
    read_manifest,
    read_sentences,
    speed_perturb,
)

HAVE_TTS = shutil.which("flite") is not None and shutil.which("text2wave") is not None
SENTENCES = [
    ("utt-a", "Hello, world -- it's a test."),
    ("utt-b", "THE QUICK BROWN FOX"),
    ("utt-c", "she sells sea shells"),
]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one thread is faster


@pytest.fixture(scope="module")
def noise_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("noise")
    sf.write(folder / "hum.wav", np.random.default_rng(0).normal(0, 0.1, 16000).astype("float32"), 16000)
    return folder


def _synth(text: Path, out: Path, *extra: str) -> int:
    return main(["data", "synth", "--text", str(text), "--out", str(out), "--voices", "flite/kal",
                 "--held-out-voices", "festival/ked_diphone", "--test-every", "3", "--quiet", *extra])


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --------------------------------------------------------------------------------------------- synth


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_TTS, reason="flite and festival's text2wave are not installed")
def test_synth_renders_splits_resumes_and_reads_back(tmp_path, noise_dir):
    text = tmp_path / "text.tsv"
    text.write_text("".join(f"{u}\t{t}\n" for u, t in SENTENCES))
    out = tmp_path / "synth"
    aug = ["--noise-dir", str(noise_dir), "--noise-prob", "1", "--band-prob", "1", "--speed-prob", "1"]
    assert _synth(text, out, *aug) == 0

    train, test = _jsonl(out / "train.jsonl"), _jsonl(out / "test.jsonl")
    assert [r["speaker"] for r in train] == ["flite/kal", "flite/kal"]
    assert [r["speaker"] for r in test] == ["festival/ked_diphone"]  # the held-out voice, test split only
    assert test[0]["text"] == "SHE SELLS SEA SHELLS"
    assert {r["text"] for r in train} == {"HELLO WORLD IT'S A TEST", "THE QUICK BROWN FOX"}
    for r in train + test:
        assert set(r) == {"id", "audio", "text", "duration", "speaker", "sample_rate", "augment"}
        info = sf.info(str(out / r["audio"]))
        assert r["sample_rate"] == info.samplerate == 8000 and info.format == "FLAC"
        assert abs(r["duration"] - info.duration) < 1e-2 and r["duration"] > 0.3
        assert {"noise", "snr_db", "lowpass_hz", "speed"} <= set(r["augment"])
        assert 5 <= r["augment"]["snr_db"] <= 25
    assert (out / "train" / "flite" / "kal" / "utt-a.flac").is_file()
    assert (out / "test" / "festival" / "ked_diphone" / "utt-c.flac").is_file()

    # a rerun skips what exists; a lost file comes back identical (seeded augmentation)
    lost = out / "train" / "flite" / "kal" / "utt-b.flac"
    before = sf.read(str(lost))[0]
    kept = out / "train" / "flite" / "kal" / "utt-a.flac"
    mtime = kept.stat().st_mtime_ns
    lost.unlink()
    assert _synth(text, out, *aug) == 0
    assert kept.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(sf.read(str(lost))[0], before)
    assert _jsonl(out / "train.jsonl") == train
    assert not list(out.rglob("*.part"))

    # the manifests read back as ASR examples
    examples = read_manifest(out / "train.jsonl")
    assert len(examples) == 2 and all(Path(e.audio).is_file() for e in examples)
    assert load_corpus(f"manifest:{out / 'test.jsonl'}")[0].speaker == "festival/ked_diphone"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")
def test_synth_two_rates_and_plain_text(tmp_path):
    text = tmp_path / "lines.txt"
    text.write_text("one small step\n\nwith 2 digits is skipped\ngiant leap\n")
    assert read_sentences(text, limit=2) == [("lines-000001", "one small step"),
                                             ("lines-000003", "with 2 digits is skipped")]
    out = tmp_path / "synth"
    code = main(["data", "synth", "--text", str(text), "--out", str(out), "--voices", "flite/slt:2",
                 "--test-every", "0", "--sample-rate", "8000", "16000", "--no-augment", "--jobs", "2", "--quiet"])
    assert code == 0
    for rate in (8, 16):
        recs = _jsonl(out / f"{rate}k" / "train.jsonl")
        assert [r["text"] for r in recs] == ["ONE SMALL STEP", "GIANT LEAP"]  # sorted by file name
        assert all(r["sample_rate"] == rate * 1000 and r["augment"].keys() == {"level_db"} for r in recs)
    assert main(["data", "synth", "--text", str(text), "--out", str(out), "--voices", "nope/x", "--quiet"]) == 2


# ------------------------------------------------------------------------------------------ asr data


def test_librispeech_and_manifest_readers(tmp_path, tiny_librispeech):
    examples = read_librispeech_asr(tiny_librispeech)
    assert len(examples) == 16
    first = examples[0]
    assert first.id == "100-10-0000" and first.text == "HELLO SPEAKER ZERO NUMBER ZERO" and first.speaker == "100"
    assert abs(first.duration - 1.5) < 1e-3
    assert parse_spec(str(tiny_librispeech)) == ("librispeech", str(tiny_librispeech))
    assert load_corpus(f"librispeech:{tiny_librispeech}") == read_librispeech_asr(
        tiny_librispeech, corpus=f"librispeech:{tiny_librispeech}")

    # a generic {"audio", "text"} manifest: relative paths, a record without text skipped
    shutil.copy(first.audio, tmp_path / "a.flac")
    lines = [{"audio": "a.flac", "text": "hello, there!"}, {"audio": first.audio, "text": ""},
             {"audio": "missing.flac", "text": "x"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (ex,) = read_manifest(tmp_path / "m.jsonl")
    assert ex.id == "a" and ex.text == "HELLO THERE" and ex.audio == str((tmp_path / "a.flac").resolve())
    (tmp_path / "bad.jsonl").write_text('{"path": "a.flac"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        read_manifest(tmp_path / "bad.jsonl")

    # audio at the model's rate
    _, wavs = load_waveforms(examples[:2], 8000)
    assert [len(w) for w in wavs] == [12000, 16000]


def test_mixed_batches_are_deterministic_bucketed_and_weighted(tiny_librispeech, tmp_path):
    libri = read_librispeech_asr(tiny_librispeech)
    sf.write(tmp_path / "short.wav", voice(150, 0.5, 8000), 8000)
    (tmp_path / "m.jsonl").write_text(json.dumps({"audio": "short.wav", "text": "short one"}) + "\n")
    short = read_manifest(tmp_path / "m.jsonl")
    batches = AsrBatches([libri, short], weights=[3, 1], batch_size=4, seed=5, buckets=2)
    assert batches.examples(2, 7) == batches.examples(2, 7)  # a pure function of (seed, epoch, number)
    assert batches.examples(2, 7) != AsrBatches([libri, short], [3, 1], 4, seed=6, buckets=2).examples(2, 7) or \
        batches.examples(2, 8) != batches.examples(2, 7)
    drawn = [batches.examples(0, n) for n in range(400)]
    share = sum(e.id == "short" for b in drawn for e in b) / (4 * 400)
    assert 0.18 < share < 0.32  # weight 1 of 4, whatever the corpus sizes
    for b in drawn:  # two buckets by duration: the 0.5 s and the 2 s utterances never share a batch
        assert max(e.duration for e in b) - min(e.duration for e in b) <= 1.0 + 1e-6
    capped = AsrBatches([libri], batch_size=4, seed=0, max_batch_seconds=4.0)
    assert all(len(capped.examples(0, n)) * capped.examples(0, n)[0].duration <= 4.0 for n in range(20))
    with pytest.raises(ValueError, match="weights"):
        AsrBatches([libri, short], weights=[1.0])


def test_augmentation_is_seeded(noise_dir):
    wav = torch.from_numpy(voice(120, 1.0, 8000))
    noise = [np.random.default_rng(1).normal(0, 0.1, 3000).astype("float32")]
    cfg = AugmentConfig(speed_prob=1, reverb_prob=1, noise_prob=1, band_prob=1)
    a, info = augment(wav, 8000, np.random.default_rng(3), cfg, noise)
    b, _ = augment(wav, 8000, np.random.default_rng(3), cfg, noise)
    assert torch.equal(a, b) and torch.isfinite(a).all()
    assert {"speed", "reverb_rt60", "noise", "snr_db", "lowpass_hz"} <= set(info)
    assert abs(len(a) - len(wav) / info["speed"]) <= 2
    fast, factor = speed_perturb(wav, 8000, 1.1)
    assert factor == 1.1 and abs(len(fast) - 8000 / 1.1) <= 2
    assert augment(wav, 8000, np.random.default_rng(3), AugmentConfig())[1] == {}


def test_fsdd_names_and_split(tmp_path):
    for name in ("3_jackson_0", "3_jackson_4", "7_nicolas_5", "9_theo_49", "notes"):
        sf.write(tmp_path / f"{name}.wav", voice(150, 0.4, 8000), 8000)
    train = read_fsdd(tmp_path, "train")
    test = read_fsdd(tmp_path, "test")
    assert [(e.id, e.text, e.speaker) for e in train] == [("7_nicolas_5", "SEVEN", "nicolas"),
                                                          ("9_theo_49", "NINE", "theo")]
    assert [e.text for e in test] == ["THREE", "THREE"]
    assert len(load_corpus(f"fsdd-test:{tmp_path}")) == 2


@pytest.mark.skipif(not (SHARED_DATA / "fsdd" / "recordings").is_dir(), reason="../shared/data/fsdd is absent")
def test_shared_fsdd_official_split():
    folder = SHARED_DATA / "fsdd" / "recordings"
    test = read_fsdd(folder, "test")
    assert len(test) == 300 and len(read_fsdd(folder, "train")) == 2700
    by_id = {e.id: e for e in test}
    assert by_id["0_george_0"].text == "ZERO" and by_id["0_george_0"].speaker == "george"
    assert all(int(e.id.split("_")[2]) < 5 for e in test)
    assert {e.text for e in test} == {"ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"}


# --------------------------------------------------------------------------------- train / evaluate


def _train_args(data: Path, exp: Path, steps: int, init_from: Path) -> list[str]:
    return ["train", "asr", "--init-from", str(init_from), "--train-data", f"[librispeech:{data}]",
            "--val-speakers", "2", "--val-items", "4", "--exp-dir", str(exp), "--batch-size", "2", "--epoch-size", "8",
            "--max-steps", str(steps), "--val-every", "3", "--ckpt-every", "1", "--warmup-steps", "1", "--threads", "1",
            "--speed-prob", "0.5", "--input-padding", "1.0"]


@pytest.fixture(scope="module")
def trained_asr(tmp_path_factory, tiny_librispeech, tiny_asr_dir) -> Path:
    exp = tmp_path_factory.mktemp("asr-exp")
    assert main(_train_args(tiny_librispeech, exp, 3, tiny_asr_dir)) == 0
    return exp


@pytest.mark.slow
def test_train_asr_exports_a_loadable_model(trained_asr, tiny_librispeech, tiny_asr_dir):
    best = trained_asr / "best"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "README.md"):
        assert (best / name).is_file(), name
    model = load_model(best)
    start = load_model(tiny_asr_dir)
    assert isinstance(model, WhisperASR) and model.tokenizer is not None and model.config == start.config
    assert any(not torch.equal(v, start.state_dict()[k]) for k, v in model.state_dict().items())  # it learned
    meta = json.loads((best / "config.json").read_text())
    assert meta["training"]["step"] == 3 and meta["training"]["recipe"] == "hubbub train asr"
    assert meta["training"]["init_from"] == str(tiny_asr_dir)
    card = (best / "README.md").read_text()
    assert "validation WER" in card and "| steps | 3 " in card and "wall time" in card
    rows = list(csv.DictReader((trained_asr / "metrics.csv").open()))
    assert rows and "wer" in rows[0] and "wer_librispeech" in rows[0]

    # resume continues from the checkpoint
    assert main([*_train_args(tiny_librispeech, trained_asr, 4, tiny_asr_dir), "--resume"]) == 0
    assert torch.load(trained_asr / "checkpoint.pt", weights_only=True)["step"] == 4


def test_train_asr_refuses_a_model_that_is_not_whisper(tmp_path, tiny_librispeech, tiny_separator_dir, caplog):
    """Only Whisper models are fine-tuned: another model (or a model: section) is one clear error, no training."""
    exp = tmp_path / "exp"
    assert main(_train_args(tiny_librispeech, exp, 1, tiny_separator_dir)) == 2
    assert "fine-tunes Whisper models only" in caplog.text and not (exp / "checkpoint.pt").exists()
    config = tmp_path / "asr.yaml"
    config.write_text("model:\n  d_model: 32\n")
    assert main(["train", "asr", "--config", str(config), "--exp-dir", str(exp)]) == 2
    assert "brings its own configuration" in caplog.text


@pytest.mark.slow
def test_evaluate_asr_writes_csv_and_summary(trained_asr, tiny_librispeech, tmp_path):
    examples = read_librispeech_asr(tiny_librispeech)[:3]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"audio": e.audio, "text": e.text.lower()}) + "\n" for e in examples))
    out_csv, out_json = tmp_path / "r.csv", tmp_path / "r.json"
    code = main(["evaluate", "asr", "--data", str(manifest), "--model", str(trained_asr / "best"),
                 "--csv", str(out_csv), "--json", str(out_json), "--quiet"])
    assert code == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["id"] for r in rows] == [e.id for e in examples]
    assert set(rows[0]) == {"id", "duration", "ref", "hyp", "errors", "ref_words", "seconds"}
    assert rows[0]["ref"] == "HELLO SPEAKER ZERO NUMBER ZERO" and rows[0]["ref_words"] == "5"
    summary = json.loads(out_json.read_text())
    assert summary["utterances"] == 3 and summary["ref_words"] == 15
    assert summary["wer"] == pytest.approx(sum(int(r["errors"]) for r in rows) / 15)
    assert summary["rtf"] > 0

    # a LibriSpeech folder, the first 2, batched
    assert main(["evaluate", "asr", "--data", str(tiny_librispeech), "--model", str(trained_asr / "best"),
                 "--limit", "2", "--batch-size", "2", "--csv", str(out_csv), "--quiet"]) == 0
    assert len(list(csv.DictReader(out_csv.open()))) == 2
    assert main(["evaluate", "asr", "--data", str(tmp_path / "missing.jsonl"), "--quiet"]) == 2


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="gloo backend not built")
def test_train_asr_ddp_two_processes_hold_identical_weights(tmp_path, tiny_librispeech, tiny_asr_dir):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29534",
           "-m", "hubbub", *_train_args(tiny_librispeech, tmp_path / "ddp", 3, tiny_asr_dir)]
    proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=300)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-3000:]
    assert text.count("[rank 0] all 2 ranks hold identical weights") == 1, text[-3000:]  # rank 0 logs it
    assert torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)["step"] == 3


def test_train_asr_leaves_out_a_transcript_longer_than_the_model_reads(tmp_path, tiny_librispeech, caplog):
    """A transcript whose tokens do not fit the decoder's context is left out with a warning naming it (never
    cut short, never a crash); the rest of the batch trains."""
    from conftest import tiny_whisper_config, write_byte_tokenizer
    from hubbub.models.whisper import WhisperTokenizer

    write_byte_tokenizer(tmp_path / "tokenizer.json")
    cfg = tiny_whisper_config(n_text_ctx=32)
    WhisperASR(cfg, WhisperTokenizer(tmp_path / "tokenizer.json", cfg.eot)).save_pretrained(tmp_path / "whisper")
    audio = sorted(str(p) for p in tiny_librispeech.rglob("*.flac"))[:4]
    texts = ["yes", "no", "a long transcript " * 4, "ok"]
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps({"id": f"u{i}", "audio": a, "text": t}) + "\n"
                                for i, (a, t) in enumerate(zip(audio, texts))))
    args = ["train", "asr", "--init-from", str(tmp_path / "whisper"), "--train-data", f"[manifest:{manifest}]",
            "--val-speakers", "0", "--exp-dir", str(tmp_path / "exp"), "--batch-size", "4", "--epoch-size", "4",
            "--max-steps", "2", "--val-every", "2", "--ckpt-every", "2", "--warmup-steps", "1", "--threads", "1",
            "--input-padding", "1.0", "--buckets", "1"]
    assert main(args) == 0
    assert "over the model's 28 text tokens left out: u2" in caplog.text
    assert torch.load(tmp_path / "exp" / "checkpoint.pt", weights_only=True)["step"] == 2
