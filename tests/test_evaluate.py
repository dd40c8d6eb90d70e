"""`hubbub data mix` + `hubbub evaluate separation` end to end on generated data."""

import csv
import json

import pytest
import torch

from conftest import SHARED_DATA
from hubbub.__main__ import main
from hubbub.recipes.evaluate_separation import score_mixture


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
