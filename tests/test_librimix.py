"""LibriMix reading, generation from metadata, and ``data mix`` test sets, on tiny synthetic corpora."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from hubbub.recipes import librimix_generate
from hubbub.recipes.cli import main as recipes_main
from hubbub.recipes.librimix_generate import generate_librimix
from hubbub.recipes.librimix_reader import LibriMixSource, MixtureRecord, load_eval_set
from hubbub.recipes.librispeech_mixtures import make_test_mixtures
from hubbub.recipes.manifest import MixtureItem, read_manifest


def main(argv: list[str]) -> int:
    """``hubbub data <argv>`` through the recipes' dispatcher."""
    return recipes_main(["data", *argv])


SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SR = 16000
PCM_TOL = 2e-4  # 16-bit quantisation of a few summed signals

# speaker -> [(utterance index, seconds, frequency)]
SPEAKERS = {"11": [(0, 1.0, 220.0), (1, 0.8, 250.0)], "22": [(0, 1.5, 330.0), (1, 0.9, 360.0)],
            "33": [(0, 1.2, 440.0), (1, 0.7, 470.0)]}


def _utt_id(spk: str, idx: int) -> str:
    return f"{spk}-100-{idx:04d}"


def _make_librispeech(root: Path, subset: str = "test-clean") -> dict[str, np.ndarray]:
    """A LibriSpeech-layout subset of sines; returns utterance id -> audio."""
    rng = np.random.default_rng(0)
    audio = {}
    for spk, utts in SPEAKERS.items():
        chapter = root / subset / spk / "100"
        chapter.mkdir(parents=True)
        lines = []
        for idx, seconds, freq in utts:
            t = np.arange(int(seconds * SR)) / SR
            wav = (0.2 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)
            uid = _utt_id(spk, idx)
            sf.write(chapter / f"{uid}.flac", wav, SR)
            audio[uid] = sf.read(chapter / f"{uid}.flac", dtype="float32")[0]
            lines.append(f"{uid} TEXT OF {spk} NUMBER {idx}")
        (chapter / f"{spk}-100.trans.txt").write_text("\n".join(lines) + "\n")
    return audio


def _make_wham(root: Path) -> None:
    rng = np.random.default_rng(1)
    (root / "tt").mkdir(parents=True)
    sf.write(root / "tt" / "n1.wav", 0.05 * rng.standard_normal((int(1.2 * SR), 2)), SR)  # shorter: looped
    sf.write(root / "tt" / "n2.wav", 0.05 * rng.standard_normal((int(2.0 * SR), 2)), SR)


def _write_metadata(folder: Path, rows: list[tuple[str, str, float, str, float, str, float]],
                    subset: str = "test-clean") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"libri2mix_{subset}.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["mixture_ID", "source_1_path", "source_1_gain", "source_2_path", "source_2_gain",
                    "noise_path", "noise_gain"])
        for a, _, ga, b, gb, noise, gn in rows:
            w.writerow([f"{a}_{b}", f"{subset}/{a.split('-')[0]}/100/{a}.flac", ga,
                        f"{subset}/{b.split('-')[0]}/100/{b}.flac", gb, noise, gn])
    return path


ROWS = [  # (utt a, _, gain a, utt b, gain b, noise, noise gain); lengths 1.0/1.5 s and 1.2/0.9 s
    ("11-100-0000", "", 0.8, "22-100-0000", 1.2, "tt/n1.wav", 0.5),
    ("33-100-0000", "", 1.1, "22-100-0001", 0.7, "tt/n2.wav", 0.9),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("corpus")
    audio = _make_librispeech(root / "LibriSpeech")
    _make_wham(root / "wham")
    _write_metadata(root / "metadata", ROWS)
    return {"root": root, "ls": root / "LibriSpeech", "wham": root / "wham", "md": root / "metadata", "audio": audio}


@pytest.fixture(scope="module")
def libri2mix(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("Libri2Mix")
    counts = generate_librimix(corpus["ls"], corpus["md"], out, wham_dir=corpus["wham"],
                               sample_rates=(8000, 16000), modes=("min", "max"))
    assert counts == {"test": 2}
    return out


@pytest.fixture(scope="module")
def mixset(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mixset")
    make_test_mixtures(corpus["ls"] / "test-clean", out, n_mixtures=4, seed=3)
    return out


def _read(path: Path) -> tuple[np.ndarray, int]:
    return sf.read(path, dtype="float32")


# ------------------------------------------------------------------------------------------- generation


@pytest.mark.parametrize("sr", [8000, 16000])
@pytest.mark.parametrize("mode", ["min", "max"])
def test_generate_layout_lengths_and_mixing(libri2mix, corpus, sr, mode):
    split = libri2mix / f"wav{sr // 1000}k" / mode / "test"
    expected = {"11-100-0000_22-100-0000": (1.0, 1.5), "33-100-0000_22-100-0001": (0.9, 1.2)}
    for mix_id, (short, long) in expected.items():
        n = int((short if mode == "min" else long) * sr)
        wavs = {}
        for folder in ("s1", "s2", "noise", "mix_clean", "mix_both", "mix_single"):
            wavs[folder], rate = _read(split / folder / f"{mix_id}.wav")
            assert rate == sr and len(wavs[folder]) == n, (folder, len(wavs[folder]), n)
        assert sf.info(split / "s1" / f"{mix_id}.wav").subtype == "PCM_16"
        np.testing.assert_allclose(wavs["mix_clean"], wavs["s1"] + wavs["s2"], atol=PCM_TOL)
        np.testing.assert_allclose(wavs["mix_both"], wavs["s1"] + wavs["s2"] + wavs["noise"], atol=PCM_TOL)
        np.testing.assert_allclose(wavs["mix_single"], wavs["s1"] + wavs["noise"], atol=PCM_TOL)
        if sr == SR:  # no resampling: s1 is the gain-scaled utterance
            a, gain = mix_id.split("_")[0], ROWS[0][2] if mix_id.startswith("11") else ROWS[1][2]
            src = corpus["audio"][a][:n] * gain
            np.testing.assert_allclose(wavs["s1"][: len(src)], src, atol=PCM_TOL)
    with open(libri2mix / f"wav{sr // 1000}k" / mode / "metadata" / "mixture_test_mix_both.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["mixture_ID", "mixture_path", "source_1_path", "source_2_path", "noise_path", "length"]
    assert {r["mixture_ID"] for r in rows} == set(expected)
    assert all(Path(r["mixture_path"]).is_file() and int(r["length"]) > 0 for r in rows)
    with open(libri2mix / f"wav{sr // 1000}k" / mode / "metadata" / "mixture_test_mix_single.csv") as f:
        assert next(csv.reader(f)) == ["mixture_ID", "mixture_path", "source_1_path", "noise_path", "length"]


def test_generate_rerun_skips_existing(corpus, tmp_path, monkeypatch):
    kw = dict(wham_dir=corpus["wham"], sample_rates=(8000,), modes=("min",))
    generate_librimix(corpus["ls"], corpus["md"], tmp_path, **kw)
    target = tmp_path / "wav8k" / "min" / "test" / "s1" / "11-100-0000_22-100-0000.wav"
    before = target.read_bytes()

    def no_read(*args):
        raise AssertionError("existing mixture was read again")

    monkeypatch.setattr(librimix_generate, "_read_row", no_read)
    assert generate_librimix(corpus["ls"], corpus["md"], tmp_path, **kw) == {"test": 2}
    monkeypatch.undo()
    target.unlink()  # an interrupted run: the mixture is made again
    assert generate_librimix(corpus["ls"], corpus["md"], tmp_path, **kw) == {"test": 2}
    assert target.read_bytes() == before
    assert not list(tmp_path.rglob(".*.tmp"))
    with open(tmp_path / "wav8k" / "min" / "metadata" / "mixture_test_mix_clean.csv") as f:
        assert len(list(csv.DictReader(f))) == 2


def test_missing_sources_error_or_skip(corpus, tmp_path, caplog):
    md = tmp_path / "md"
    _write_metadata(md, [*ROWS, ("11-100-0009", "", 1.0, "22-100-0000", 1.0, "tt/n1.wav", 1.0)])
    missing = "test-clean/11/100/11-100-0009.flac"
    with pytest.raises(FileNotFoundError, match=missing):
        generate_librimix(corpus["ls"], md, tmp_path / "a", no_noise=True, sample_rates=(8000,), modes=("min",))
    argv = ["librimix", "--librispeech-dir", str(corpus["ls"]), "--metadata-dir", str(md), "--no-noise",
            "--out", str(tmp_path / "b"), "--sample-rate", "8000", "--mode", "min"]
    assert main(argv) == 1
    with caplog.at_level(logging.WARNING, logger="hubbub.recipes.librimix_generate"):
        assert main([*argv, "--skip-missing"]) == 0
    assert "skipped 1 of 3 mixtures" in caplog.text
    assert len(list((tmp_path / "b" / "wav8k" / "min" / "test" / "mix_clean").glob("*.wav"))) == 2
    assert main([*argv, "--skip-missing", "--limit", "1", "--out", str(tmp_path / "c")]) == 0
    assert len(list((tmp_path / "c" / "wav8k" / "min" / "test" / "mix_clean").glob("*.wav"))) == 1


def test_no_noise_and_missing_wham(corpus, tmp_path):
    generate_librimix(corpus["ls"], corpus["md"], tmp_path, no_noise=True, sample_rates=(8000,), modes=("max",))
    split = tmp_path / "wav8k" / "max" / "test"
    assert sorted(p.name for p in split.iterdir()) == ["mix_clean", "s1", "s2"]
    assert sorted(p.name for p in (tmp_path / "wav8k" / "max" / "metadata").iterdir()) == [
        "mixture_test_mix_clean.csv"]
    with pytest.raises(ValueError, match="--no-noise"):
        generate_librimix(corpus["ls"], corpus["md"], tmp_path / "x", sample_rates=(8000,))
    with pytest.raises(FileNotFoundError, match="libri2mix_dev-clean.csv"):
        generate_librimix(corpus["ls"], corpus["md"], tmp_path / "x", no_noise=True, splits=["dev"])


# ------------------------------------------------------------------------------------------- data mix


def test_data_mix_deterministic_and_consistent(corpus, mixset, tmp_path):
    argv = ["mix", "--librispeech", str(corpus["ls"] / "test-clean"), "--out", str(tmp_path / "again"),
            "--n-mixtures", "4", "--seed", "3"]
    assert main(argv) == 0
    first, second = read_manifest(mixset / "manifest.jsonl"), read_manifest(tmp_path / "again" / "manifest.jsonl")
    assert [m.id for m in first] == [m.id for m in second] and len(first) == 4
    assert len({frozenset(m.id.split("_")) for m in first}) == 4
    texts = {f"{_utt_id(s, i)}": f"TEXT OF {s} NUMBER {i}" for s, utts in SPEAKERS.items() for i, _, _ in utts}
    for a, b in zip(first, second):
        assert Path(a.mixture).read_bytes() == Path(b.mixture).read_bytes()
        utts = a.id.split("_")
        assert a.speakers == tuple(u.split("-")[0] for u in utts) and len(set(a.speakers)) == 2
        assert a.texts == tuple(texts[u] for u in utts)
        mix, sr = _read(Path(a.mixture))
        srcs = [_read(Path(p))[0] for p in a.sources]
        assert sr == 8000 == a.sample_rate and abs(a.duration - len(mix) / sr) < 1e-3
        np.testing.assert_allclose(mix, srcs[0] + srcs[1], atol=PCM_TOL)
        for s in srcs:  # -33..-25 dBFS RMS (no peak scaling at these levels)
            assert -33.2 < 10 * np.log10(np.mean(s.astype(np.float64) ** 2)) < -24.8
        assert abs(len(mix) - min(len(corpus["audio"][u]) for u in utts) // 2) <= 1  # mode min
    lines = (mixset / "manifest.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    assert set(rec) >= {"id", "mixture", "sources", "speakers", "texts", "sample_rate", "duration"}
    assert not Path(rec["mixture"]).is_absolute()
    with open(mixset / "wav8k" / "min" / "metadata" / "mixture_test_mix_clean.csv") as f:
        assert [r["mixture_ID"] for r in csv.DictReader(f)] == [m.id for m in first]
    other = make_test_mixtures(corpus["ls"] / "test-clean", tmp_path / "other", n_mixtures=2, seed=3)
    assert [m.id for m in other] == [m.id for m in first[:2]]  # a smaller count gives a prefix


def test_data_mix_with_noise(corpus, tmp_path):
    items = make_test_mixtures(corpus["ls"] / "test-clean", tmp_path, n_mixtures=2, noise_dir=corpus["wham"])
    for item in items:
        assert "/mix_both/" in item.mixture and item.noise
        both, clean, noise = (_read(Path(p))[0] for p in (item.mixture, item.mixture.replace("mix_both",
                                                                                              "mix_clean"), item.noise))
        np.testing.assert_allclose(both, clean + noise, atol=PCM_TOL)
        snr = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
        assert 9.8 < snr < 15.2
        assert np.abs(both).max() <= 0.9 + 1e-3
    assert (tmp_path / "wav8k" / "min" / "metadata" / "mixture_test_mix_both.csv").is_file()


# ------------------------------------------------------------------------------------------- reading


def test_librimix_source_batches(libri2mix):
    src = LibriMixSource(libri2mix, sample_rate=8000, n_src=2, mode="min", split="test", seed=5)
    assert len(src) == 2
    records = list(src.items())
    assert all(isinstance(r, MixtureRecord) and len(r.source_paths) == 2 and r.noise_path for r in records)
    with pytest.raises(dataclasses.FrozenInstanceError):
        records[0].id = "x"
    mix, sources = src.batch(0, [0, 1, 2, 3], 4000)
    assert mix.shape == (4, 4000) and sources.shape == (4, 2, 4000)
    assert mix.dtype == sources.dtype == torch.float32
    torch.testing.assert_close(mix, sources.sum(1), atol=PCM_TOL, rtol=0)
    again = src.batch(0, [0, 1, 2, 3], 4000)
    assert torch.equal(mix, again[0]) and torch.equal(sources, again[1])
    assert not torch.equal(mix, src.batch(1, [0, 1, 2, 3], 4000)[0])
    long_mix, long_src = src.batch(0, [0], 16000)  # longer than any file: zero-padded
    assert long_mix.shape == (1, 16000) and (long_mix == 0).sum() >= 16000 - 12000
    # a split folder as root, and 16 kHz files resampled to 8 kHz
    split = LibriMixSource(libri2mix / "wav16k" / "max" / "test", sample_rate=8000, mixture="mix_both")
    m, s = split.batch(0, [0, 1], 3000)
    assert m.shape == (2, 3000) and s.shape == (2, 2, 3000) and float(m.abs().max()) > 0


def test_librimix_source_train_and_errors(libri2mix, tmp_path):
    train = tmp_path / "wav8k" / "min" / "train-100"
    shutil.copytree(libri2mix / "wav8k" / "min" / "test", train)
    src = LibriMixSource(tmp_path, sample_rate=8000, split="train")
    assert len(src) == 2 and src.split_dirs == [train]
    with pytest.raises(FileNotFoundError, match="dev"):
        LibriMixSource(tmp_path, split="dev")
    with pytest.raises(FileNotFoundError, match="mix_both"):
        LibriMixSource(_without(train, "mix_both", tmp_path / "copy"), mixture="mix_both")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        LibriMixSource(tmp_path / "nowhere")


def _without(split: Path, folder: str, dest: Path) -> Path:
    shutil.copytree(split, dest)
    shutil.rmtree(dest / folder, ignore_errors=True)
    return dest


def test_load_eval_set_forms(libri2mix, mixset):
    from_file = load_eval_set(mixset / "manifest.jsonl")
    from_dir = load_eval_set(mixset)
    assert from_file == from_dir and all(isinstance(m, MixtureItem) and m.texts for m in from_dir)
    assert all(Path(p).is_file() for m in from_dir for p in (m.mixture, *m.sources))
    for path in (libri2mix, libri2mix / "wav8k" / "min" / "test"):
        items = load_eval_set(path)
        assert [m.id for m in items] == ["11-100-0000_22-100-0000", "33-100-0000_22-100-0001"]
        assert items[0].texts is None and items[0].speakers == ("11", "22") and items[0].sample_rate == 8000
        assert "/wav8k/min/test/mix_clean/" in items[0].mixture
    assert load_eval_set(libri2mix, sample_rate=16000, mode="max")[0].sample_rate == 16000


# ------------------------------------------------------------------------------------------- real metadata


@pytest.mark.skipif(not (SHARED / "LibriMix-metadata").is_dir(), reason="../shared/data is absent")
def test_official_metadata_over_shared_librispeech(tmp_path, caplog):
    """The shared LibriSpeech holds train-clean-100 and test-other only: no dev-clean/test-clean utterance
    that the official dev/test CSVs name is there, and 8 train-clean-100 Libri2Mix rows have both sources."""
    md = SHARED / "LibriMix-metadata" / "Libri2Mix"
    base = ["librimix", "--librispeech-dir", str(SHARED / "LibriSpeech"), "--metadata-dir", str(md),
            "--out", str(tmp_path), "--sample-rate", "8000", "--mode", "min", "--skip-missing", "--no-noise"]
    with caplog.at_level(logging.WARNING, logger="hubbub.recipes.librimix_generate"):
        counts = generate_librimix(SHARED / "LibriSpeech", md, tmp_path, splits=["dev"], sample_rates=(8000,),
                                   modes=("min",), skip_missing=True, no_noise=True, limit=2)
        assert counts == {"dev": 0}
        assert "skipped 3000 of 3000" in caplog.text and "nothing written" in caplog.text
        assert main([*base, "--splits", "test", "--limit", "2"]) == 1
    assert not (tmp_path / "wav8k").exists()
    assert main([*base, "--splits", "train-100", "--limit", "2"]) == 0
    items = load_eval_set(tmp_path / "wav8k" / "min" / "train-100")
    assert len(items) == 2
    for item in items:
        mix, sr = _read(Path(item.mixture))
        s1, s2 = (_read(Path(p))[0] for p in item.sources)
        assert sr == 8000 and len(mix) == len(s1) == len(s2) > sr
        np.testing.assert_allclose(mix, s1 + s2, atol=PCM_TOL)


# ------------------------------------------------------------------------------------------- training on LibriMix


def _tiny_model_flags() -> list[str]:
    from conftest import TINY_SEPARATOR

    flags = []
    for k in ("enc_channels", "kernel_size", "stride", "d_model", "n_heads", "d_ff", "n_blocks", "chunk_size"):
        flags += [f"--model-{k.replace('_', '-')}", str(getattr(TINY_SEPARATOR, k))]
    return flags


def _with_splits(libri2mix: Path, root: Path, splits: list[str]) -> Path:
    """A Libri2Mix root whose wav8k/min holds copies of the test split under other split names."""
    for split in splits:
        shutil.copytree(libri2mix / "wav8k" / "min" / "test", root / "wav8k" / "min" / split)
    return root


def _train_argv(root: Path, exp: Path, *extra: str) -> list[str]:
    return ["--librimix-dir", str(root), "--librimix-train-splits", "train-100", "--data-dir", str(exp / "none"),
            "--exp-dir", str(exp), "--batch-size", "2", "--epoch-size", "4", "--max-steps", "2", "--val-every", "2",
            "--segment-seconds-start", "0.5", "--segment-seconds", "0.5", "--warmup-steps", "1", "--threads", "1",
            "--val-mixtures", "0", *_tiny_model_flags(), *extra]


def test_train_on_named_splits_validates_on_dev_of_the_same_mixture_type(libri2mix, tmp_path, caplog):
    from hubbub.recipes import train_separator

    root = _with_splits(libri2mix, tmp_path / "Libri2Mix", ["train-100", "dev"])
    exp = tmp_path / "exp"
    argv = _train_argv(root, exp, "--librimix-mixture", "mix_both")
    args = train_separator.build_parser().parse_args(argv)
    cfg, model_cfg = train_separator.build_configs(args, train_separator.SeparatorTrainConfig,
                                                   train_separator.SeparatorConfig)
    _, task = train_separator.prepare(cfg, model_cfg)
    assert [d.name for d in task.source.split_dirs] == ["train-100"] and task.n_val == 2
    assert all("/dev/mix_both/" in r.mixture_path for r in task.val_source.records)  # no LibriSpeech folder read
    caplog.set_level(logging.INFO)
    assert train_separator.main(argv) == 0
    assert "training on train-100 (2 mixtures), validating on 2 whole mixtures of dev" in caplog.text
    card = (exp / "best" / "README.md").read_text()
    assert "splits train-100, mix_both" in card and "2 whole mix_both mixtures of dev" in card
    assert "validation included" in card
    assert f"Reproduce: `hubbub train separator --librimix-dir {root}" in card
    assert "1 dual-path blocks x (1 intra + 1 inter) transformer layers, d_model 16, d_ff 32" in card


def test_train_on_librimix_without_dev_is_one_line(libri2mix, tmp_path, caplog):
    from hubbub.recipes import train_separator

    root = _with_splits(libri2mix, tmp_path / "Libri2Mix", ["train-100"])
    with caplog.at_level(logging.ERROR):
        assert train_separator.main(_train_argv(root, tmp_path / "exp")) == 2
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "no LibriMix 'dev' split found" in errors[0].getMessage() and errors[0].exc_info is None
    caplog.clear()
    with caplog.at_level(logging.ERROR):  # a split named but absent
        assert train_separator.main(_train_argv(root, tmp_path / "exp", "--librimix-train-splits",
                                                "[train-100, train-360]")) == 2
    assert "train-360: LibriMix split folder not found" in caplog.text
    caplog.clear()
    config = Path(train_separator.__file__).parent / "configs" / "separator-libri2mix-8k.yaml"
    with caplog.at_level(logging.ERROR):  # the README's cluster command, where the data is not
        assert train_separator.main(["--config", str(config), "--librimix-dir", str(tmp_path / "none")]) == 2
    assert caplog.records[-1].getMessage() == f"{tmp_path / 'none'}: LibriMix folder not found"


def test_train_on_librimix_with_a_held_out_stand_in_for_dev(libri2mix, tmp_path):
    from hubbub.recipes import train_separator

    root = _with_splits(libri2mix, tmp_path / "Libri2Mix", ["train-100"])
    args = train_separator.build_parser().parse_args(_train_argv(root, tmp_path / "exp", "--librimix-val-hold-out",
                                                                 "1"))
    cfg, model_cfg = train_separator.build_configs(args, train_separator.SeparatorTrainConfig,
                                                   train_separator.SeparatorConfig)
    _, task = train_separator.prepare(cfg, model_cfg)
    train_ids = [r.id for r in task.source.records]
    val_ids = [r.id for r in task.val_source.records]
    assert train_ids == ["11-100-0000_22-100-0000"] and val_ids == ["33-100-0000_22-100-0001"]
    assert "held out" in task.describe_data()[1]


# ------------------------------------------------------------------------------------------- evaluation by part


def test_evaluate_separation_by_split_mode_and_mixture(libri2mix, tmp_path, tiny_separator_dir, caplog):
    from hubbub.__main__ import main as hubbub

    base = ["evaluate", "separation", "--data", str(libri2mix), "--model", str(tiny_separator_dir), "--quiet"]
    results = {}
    for mixture in ("mix_clean", "mix_both"):
        out = tmp_path / f"{mixture}.json"
        assert hubbub([*base, "--split", "test", "--mode", "min", "--mixture", mixture, "--json", str(out)]) == 0
        results[mixture] = json.loads(out.read_text())
        assert results[mixture]["part"].endswith(f"wav8k/min/test/{mixture}") and results[mixture]["mixtures"] == 2
    assert results["mix_clean"]["si_snri"] != results["mix_both"]["si_snri"]  # not the clean set scored twice
    exp = tmp_path / "exp"  # a training experiment: its best/ is used
    shutil.copytree(tiny_separator_dir, exp / "best")
    out = tmp_path / "exp.json"
    assert hubbub([*base[:-3], "--model", str(exp), "--mixture", "mix_both", "--json", str(out), "--quiet"]) == 0
    assert json.loads(out.read_text())["si_snri"] == pytest.approx(results["mix_both"]["si_snri"])
    caplog.clear()
    with caplog.at_level(logging.ERROR):  # a missing split, a 1-source mixture type, a bad model: one line each
        assert hubbub([*base, "--split", "dev"]) == 2
        assert hubbub([*base, "--mixture", "mix_single"]) == 2
        assert hubbub([*base[:-3], "--model", str(tmp_path / "nowhere"), "--quiet"]) == 2
        assert hubbub([*base, "--n-src", "3"]) == 2  # no Libri3Mix here
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 4 and all(r.exc_info is None for r in caplog.records), errors
    assert "no LibriMix 'dev' split found" in errors[0]
    assert "1 sources a mixture, but the model" in errors[1]
    assert errors[2] == f"--model {tmp_path / 'nowhere'}: no such model folder"
    assert "s3: source folder not found" in errors[3]


def test_generate_warns_when_loud_noise_clips(corpus, tmp_path, caplog):
    md = tmp_path / "md"
    loud = [(*ROWS[0][:6], 30.0), ROWS[1]]  # the first mixture's noise far above full scale
    _write_metadata(md, loud)
    with caplog.at_level(logging.WARNING, logger="hubbub.recipes.librimix_generate"):
        generate_librimix(corpus["ls"], md, tmp_path / "out", wham_dir=corpus["wham"], sample_rates=(8000,),
                          modes=("min",))
    clip = [r.getMessage() for r in caplog.records if "clip" in r.getMessage()]
    assert len(clip) == 1 and clip[0].startswith("test: 1 of 2 mixtures clip") and "11-100-0000_22-100-0000" in clip[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hubbub.recipes.librimix_generate"):
        generate_librimix(corpus["ls"], corpus["md"], tmp_path / "quiet", wham_dir=corpus["wham"],
                          sample_rates=(8000,), modes=("min",))
    assert "clip" not in caplog.text
