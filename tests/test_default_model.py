"""The embedded default separator ships inside the package and runs on the bundled examples."""

import json
from pathlib import Path

import pytest
import soundfile as sf
import torch

import hubbub
from hubbub.models.hub import pretrained_dir
from hubbub.pipeline.separate import load_separator, separate_file

PACKAGE = Path(hubbub.__file__).parent


def test_embedded_separator_is_small_and_documented():
    path = pretrained_dir("separator-8k")
    assert (path / "model.safetensors").stat().st_size < 20 * 1024 * 1024
    card = (path / "README.md").read_text()
    assert "training data" in card and "steps" in card and "SI-SNRi" in card
    meta = json.loads((path / "config.json").read_text())
    assert meta["model_type"] == "hubbub-separator" and meta["sample_rate"] == 8000


def test_unknown_embedded_name():
    with pytest.raises(FileNotFoundError, match="no embedded model"):
        pretrained_dir("no-such-model")


def test_default_model_separates_a_bundled_example():
    examples = json.loads((PACKAGE / "demo" / "examples.json").read_text())
    first = PACKAGE / "demo" / examples[0]["audio"]
    torch.set_num_threads(1)
    result = separate_file(first, load_separator())
    assert result.sample_rate == 16000
    assert result.sources.shape == (2, sf.info(str(first)).frames)
    assert torch.isfinite(result.sources).all() and result.sources.abs().max() <= 0.99 + 1e-6
