"""The study's separator designs: time-frequency dual-path and multi-resolution U-Net."""

import csv
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import voice
from hubbub.models.losses import pit_si_snr_loss
from hubbub.models.separator import ARCHITECTURES, Separator, SeparatorOutput, separator_class
from hubbub.models.tf_separator import TFSeparator, TFSeparatorConfig
from hubbub.models.unet_separator import UNetSeparator, UNetSeparatorConfig

ROOT = Path(__file__).resolve().parents[1]

TINY_TF = TFSeparatorConfig(n_fft=64, hop=16, band_width=4, d_model=16, n_heads=2, d_ff=32, n_blocks=1)
TINY_UNET = UNetSeparatorConfig(enc_channels=16, kernel_size=16, stride=8, d_model=16, hidden=16, n_heads=2, d_ff=32,
                                n_blocks=1, depth=2, attn_levels=2, intra_window=5, inter_window=None)
DESIGNS = [(TFSeparator, TINY_TF), (UNetSeparator, TINY_UNET)]


@pytest.mark.parametrize("model_cls,cfg", DESIGNS)
@pytest.mark.parametrize("length", [1, 15, 64, 65, 801, 4000])
@pytest.mark.parametrize("n_src", [2, 3])
def test_shapes_for_any_length(model_cls, cfg, length, n_src):
    model = model_cls(dataclasses.replace(cfg, n_src=n_src)).eval()
    with torch.inference_mode():
        out = model(torch.randn(2, length))
        single = model(torch.randn(length))
    assert out.shape == (2, n_src, length)
    assert single.shape == (n_src, length)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("model_cls,cfg", DESIGNS)
def test_details_scale_and_permutation(model_cls, cfg):
    torch.manual_seed(0)
    model = model_cls(cfg).eval()
    x = torch.randn(1, 1600)
    src = torch.randn(1, 2, 1600)
    with torch.inference_mode():
        out = model(x)
        det = model(x, return_details=True)
        torch.testing.assert_close(model(3 * x), 3 * out, atol=1e-4, rtol=1e-3)  # scale-equivariant
    assert isinstance(det, SeparatorOutput)
    torch.testing.assert_close(det.sources, out, atol=1e-5, rtol=1e-4)
    assert det.masks.shape[:2] == (1, 2)
    assert det.inter_attention[-1] is not None and det.intra_attention[-1] is not None
    # the PIT loss of the output does not depend on the order of the references
    torch.testing.assert_close(pit_si_snr_loss(out, src), pit_si_snr_loss(out, src[:, [1, 0]]))


@pytest.mark.parametrize("model_cls,cfg", DESIGNS)
def test_local_window_is_respected(model_cls, cfg):
    """A local window gives banded attention (no key outside it); one that covers everything equals global."""
    from hubbub.models.attention import band_to_dense

    torch.manual_seed(0)
    model = model_cls(cfg).eval()
    x = torch.randn(1, 4000)
    with torch.inference_mode():
        ref = model(x, return_details=True)
        frames = ref.inter_attention[-1].shape[-1]  # global: (..., L, L)
        model.set_inter_window(3)
        local = model(x, return_details=True)
        model.set_inter_window(4 * frames)
        wide = model(x)
    band = local.inter_attention[-1]
    assert band.shape[-1] == 3 and band.shape[-2] == frames  # each query sees itself and one key each side
    dense = band_to_dense(band, frames)
    far = (torch.arange(frames)[:, None] - torch.arange(frames)[None, :]).abs() > 1
    assert float(dense[..., far].abs().max()) == 0.0
    torch.testing.assert_close(dense.sum(-1), torch.ones_like(dense.sum(-1)), atol=1e-4, rtol=0)
    assert not torch.allclose(local.sources, ref.sources, atol=1e-6)
    torch.testing.assert_close(wide, ref.sources, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("model_cls,cfg", DESIGNS)
def test_save_load_round_trip_through_the_separator_loader(tmp_path, model_cls, cfg):
    from hubbub.pipeline.separate import load_separator

    torch.manual_seed(0)
    model = model_cls(cfg).eval()
    model.save_pretrained(tmp_path)
    loaded = Separator.from_pretrained(tmp_path)  # dispatches on model_type
    assert type(loaded) is model_cls and loaded.config == model.config
    piped = load_separator(tmp_path)
    x = torch.randn(1, 900)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), model(x))
        torch.testing.assert_close(piped(x), model(x))
    with pytest.raises(ValueError, match="model_type"):
        TFSeparator.from_pretrained(tmp_path) if model_cls is UNetSeparator else UNetSeparator.from_pretrained(tmp_path)


def test_architectures_are_registered():
    assert separator_class("dualpath") is Separator
    assert {separator_class(a).model_type for a in ARCHITECTURES} == {
        "hubbub-separator", "hubbub-tf-separator", "hubbub-unet-separator"}
    with pytest.raises(ValueError, match="unknown separator architecture"):
        separator_class("sepformer")


@pytest.mark.parametrize("model_cls,cfg", DESIGNS)
def test_a_few_steps_reduce_the_loss(model_cls, cfg):
    torch.manual_seed(0)
    s1 = torch.from_numpy(voice(120, 0.5, 8000, 1))
    s2 = torch.from_numpy(voice(300, 0.5, 8000, 2))
    sources = torch.stack([s1, s2])[None]
    mix = sources.sum(1)
    model = model_cls(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = pit_si_snr_loss(model(mix), sources).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 5, losses[::10]


def test_recipe_trains_another_architecture_and_counts_cpu(tmp_path, tiny_librispeech):
    yaml_path = tmp_path / "unet.yaml"
    fields = dataclasses.asdict(TINY_UNET)
    model = "\n".join(f"  {k}: {'null' if v is None else v}" for k, v in fields.items())
    yaml_path.write_text(f"architecture: unet\nmodel:\n{model}\n")
    args = [
        "train", "separator", "--config", str(yaml_path), "--data-dir", str(tiny_librispeech),
        "--exp-dir", str(tmp_path / "exp"), "--batch-size", "2", "--epoch-size", "8", "--val-speakers", "2",
        "--val-mixtures", "2", "--val-seconds", "0.5", "--segment-seconds-start", "0.5", "--segment-seconds", "0.5",
        "--val-every", "2", "--max-steps", "4", "--threads", "1", "--model-hidden", "24",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "hubbub", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    best = Separator.from_pretrained(tmp_path / "exp" / "best")
    assert isinstance(best, UNetSeparator) and best.config.hidden == 24
    rows = list(csv.DictReader((tmp_path / "exp" / "metrics.csv").open()))
    assert [r["step"] for r in rows] == ["2", "4"]
    assert 0 < float(rows[0]["cpu_s"]) <= float(rows[1]["cpu_s"])
    assert "U-Net" in (tmp_path / "exp" / "best" / "README.md").read_text()
    assert torch.load(tmp_path / "exp" / "checkpoint.pt", weights_only=True)["cpu_s"] > 0

