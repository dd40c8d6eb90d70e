"""`hubbub data mix` + `hubbub evaluate separation` end to end on generated data."""

import csv
import json
from pathlib import Path

import pytest
import torch

from conftest import SHARED_DATA
from hubbub.__main__ import main
from hubbub.recipes.evaluate_separation import score_mixture


@pytest.mark.slow
def test_mix_then_evaluate(tmp_path, tiny_librispeech, tiny_separator_dir):
    data = tmp_path / "mixes"
    assert main(["data", "mix", "--librispeech", str(tiny_librispeech), "--out", str(data), "--n-mixtures", "3"]) == 0
    out_csv, out_json = tmp_path / "r.csv", tmp_path / "r.json"
    code = main(["evaluate", "separation", "--data", str(data), "--model", str(tiny_separator_dir),
                 "--csv", str(out_csv), "--json", str(out_json), "--quiet"])
    assert code == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 3 and {"si_snri", "sdri", "rtf"} <= set(rows[0])
    summary = json.loads(out_json.read_text())
    assert summary["mixtures"] == 3
    mean = sum(float(r["si_snri"]) for r in rows) / 3
    assert abs(summary["si_snri"] - mean) < 1e-2


@pytest.mark.slow
def test_noise_option_and_bad_data(tmp_path, tiny_librispeech, tiny_separator_dir):
    data = tmp_path / "mixes"
    main(["data", "mix", "--librispeech", str(tiny_librispeech), "--out", str(data), "--n-mixtures", "2"])
    noise_dir = tmp_path / "noise"
    noise_dir.mkdir()
    import numpy as np
    import soundfile as sf

    sf.write(noise_dir / "n.wav", np.random.default_rng(0).normal(0, 0.1, 8000).astype("float32"), 8000)
    assert main(["evaluate", "separation", "--data", str(data), "--model", str(tiny_separator_dir), "--quiet",
                 "--noise-dir", str(noise_dir), "--snr", "5"]) == 0
    assert main(["evaluate", "separation", "--data", str(tmp_path / "missing"), "--quiet"]) == 2


def test_scores_of_perfect_and_swapped_estimates():
    torch.manual_seed(0)
    src = torch.randn(2, 8000)
    mix = src.sum(0)
    perfect = score_mixture(mix, src, src[[1, 0]].clone())
    assert perfect["si_snr"] > 60 and perfect["si_snri"] > 55
    useless = score_mixture(mix, src, torch.stack([mix, mix]))
    assert abs(useless["si_snri"]) < 1e-3


@pytest.mark.skipif(not (SHARED_DATA / "speechbrain-samples").is_dir(), reason="../shared/data not present")
def test_speechbrain_sample_manifest_is_readable(tiny_separator_dir):
    manifest = SHARED_DATA / "speechbrain-samples" / "separation_manifest.jsonl"
    assert main(["evaluate", "separation", "--data", str(manifest), "--model", str(tiny_separator_dir),
                 "--quiet", "--limit", "1"]) == 0


@pytest.mark.slow
def test_evaluation_scores_what_hubbub_separate_writes(tmp_path):
    """`hubbub evaluate separation` and `hubbub separate` run the same separator: the figures
    of the evaluation equal those of the voices that `hubbub separate` writes, on a bundled
    example (4.8 s, 16 kHz) with the embedded default separator, windowed so that the
    stitching is part of it."""
    from hubbub.pipeline.audio import load_audio

    root = Path(__file__).resolve().parents[1] / "hubbub" / "demo"
    example = json.loads((root / "examples.json").read_text())[0]
    manifest = tmp_path / "one.jsonl"
    manifest.write_text(json.dumps({"mixture": str(root / example["audio"]),
                                    "sources": [str(root / s) for s in example["sources"]]}) + "\n")
    windows = ["--chunk-seconds", "2", "--overlap-seconds", "0.5"]
    assert main(["evaluate", "separation", "--data", str(manifest), "--csv", str(tmp_path / "r.csv"), "--quiet",
                 *windows]) == 0
    evaluated = next(csv.DictReader((tmp_path / "r.csv").open()))
    assert main(["separate", str(root / example["audio"]), "-o", str(tmp_path / "out"), "--quiet", *windows]) == 0
    mix, sr = load_audio(root / example["audio"])
    sources = torch.stack([load_audio(root / s, sample_rate=sr)[0] for s in example["sources"]])
    n = min(mix.shape[-1], sources.shape[-1])
    stem = Path(example["audio"]).stem
    written = torch.stack([load_audio(tmp_path / "out" / stem / f"spk{k}.wav")[0] for k in (1, 2)])
    scores = score_mixture(mix[:n], sources[:, :n], written[:, :n])
    assert float(evaluated["si_snri"]) > 1.0  # the default separator does separate this example
    for key in ("si_snri", "sdri"):
        assert abs(scores[key] - float(evaluated[key])) < 0.01, (key, scores[key], evaluated[key])
