import dataclasses
import json

import pytest
import torch

from conftest import TINY_SEPARATOR, voice
from hubbub.models.losses import pit_si_snr_loss, si_snr
from hubbub.models.separator import Separator, SeparatorConfig, SeparatorOutput


@pytest.mark.parametrize("length", [1, 15, 16, 17, 100, 801, 4000])
@pytest.mark.parametrize("n_src", [2, 3])
def test_shapes_for_any_length(length, n_src):
    model = Separator(dataclasses.replace(TINY_SEPARATOR, n_src=n_src)).eval()
    with torch.inference_mode():
        out = model(torch.randn(2, length))
        single = model(torch.randn(length))
    assert out.shape == (2, n_src, length)
    assert single.shape == (n_src, length)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("sample_rate,window", [(8000, None), (16000, None), (8000, 3)])
def test_configs_and_details(sample_rate, window):
    cfg = dataclasses.replace(TINY_SEPARATOR, sample_rate=sample_rate, inter_window=window, intra_window=window)
    model = Separator(cfg).eval()
    with torch.inference_mode():
        det = model(torch.randn(1, 1000), return_details=True)
    assert isinstance(det, SeparatorOutput)
    assert det.sources.shape == (1, 2, 1000)
    assert det.masks.shape[:3] == (1, 2, cfg.enc_channels)
    assert len(det.intra_attention) == cfg.n_blocks and det.intra_attention[0] is not None
    assert torch.allclose(det.inter_attention[0].sum(-1), torch.ones(1), atol=1e-4)


def test_attention_maps_do_not_change_sources():
    model = Separator(TINY_SEPARATOR).eval()
    x = torch.randn(1, 2000)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), model(x, return_details=True).sources, atol=1e-5, rtol=1e-4)


def test_local_inter_window_matches_global_when_window_covers_all_chunks():
    from hubbub.pipeline.separate import with_config

    torch.manual_seed(0)
    model = Separator(TINY_SEPARATOR).eval()
    x = torch.randn(1, 1200)  # 150 frames -> 16 chunks
    with torch.inference_mode():
        ref = model(x)
        torch.testing.assert_close(with_config(model, inter_window=64)(x), ref, atol=1e-5, rtol=1e-4)
        assert not torch.allclose(with_config(model, inter_window=3)(x), ref, atol=1e-6)


def test_window_is_set_at_load_and_saved_truthfully(tmp_path):
    import json

    import pytest

    from hubbub.pipeline.separate import load_separator

    torch.manual_seed(0)
    Separator(TINY_SEPARATOR).save_pretrained(tmp_path / "global")
    model = load_separator(tmp_path / "global", window="local:3")
    assert model.config.inter_window == 3
    assert all(layer.attn.window == 3 for block in model.masker.blocks for layer in block.inter)
    assert load_separator(tmp_path / "global", window="local").config.inter_window == 16
    assert load_separator(tmp_path / "global").config.inter_window is None  # as saved
    model.save_pretrained(tmp_path / "local")
    assert json.loads((tmp_path / "local" / "config.json").read_text())["inter_window"] == 3
    assert load_separator(tmp_path / "local", window="global").config.inter_window is None
    for bad in ("sideways", "local:0", "local:x", "global:3"):
        with pytest.raises(ValueError, match="window"):
            load_separator(tmp_path / "global", window=bad)


def test_scale_equivariance():
    model = Separator(TINY_SEPARATOR).eval()
    x = torch.randn(1, 1600)
    with torch.inference_mode():
        torch.testing.assert_close(model(3 * x), 3 * model(x), atol=1e-4, rtol=1e-3)


def test_pit_loss_is_permutation_invariant():
    torch.manual_seed(0)
    src = torch.randn(3, 2, 4000)
    est = src + 0.3 * torch.randn_like(src)
    a = pit_si_snr_loss(est, src)
    b = pit_si_snr_loss(est[:, [1, 0]], src)
    torch.testing.assert_close(a, b)
    assert (a < -5).all()  # about 10 dB SI-SNR
    three = torch.randn(2, 3, 4000)
    torch.testing.assert_close(pit_si_snr_loss(three[:, [2, 0, 1]], three), pit_si_snr_loss(three, three))


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = Separator(TINY_SEPARATOR).eval()
    model.save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["model_type"] == "hubbub-separator" and meta["d_model"] == TINY_SEPARATOR.d_model
    loaded = Separator.from_pretrained(tmp_path)
    assert loaded.config == model.config
    x = torch.randn(1, 900)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), model(x))
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob("*.bin"))  # no pickle


def test_from_pretrained_rejects_other_model_types(tmp_path):
    Separator(TINY_SEPARATOR).save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    meta["model_type"] = "something-else"
    (tmp_path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="model_type"):
        Separator.from_pretrained(tmp_path)


def test_bad_configs():
    with pytest.raises(ValueError):
        SeparatorConfig(chunk_size=7)
    with pytest.raises(ValueError):
        SeparatorConfig(n_src=0)


@pytest.mark.slow
def test_overfit_one_mixture_raises_si_snr():
    torch.manual_seed(0)
    s1 = torch.from_numpy(voice(120, 0.5, 8000, 1))
    s2 = torch.from_numpy(voice(300, 0.5, 8000, 2))
    sources = torch.stack([s1, s2])[None]
    mix = sources.sum(1)
    model = Separator(dataclasses.replace(TINY_SEPARATOR, enc_channels=32, d_model=32))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def score():
        with torch.no_grad():
            return -pit_si_snr_loss(model(mix), sources).item()

    before = score()
    for _ in range(60):
        loss = pit_si_snr_loss(model(mix), sources).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = score()
    baseline = si_snr(mix.expand(2, -1), sources[0]).mean().item()
    assert after > before + 5, (before, after)
    assert after > baseline + 3, (baseline, after)


def test_adapter_lays_its_parameters_over_the_base(tmp_path):
    """An adapter holds only the named parameters and the config fields it changes; loaded over its
    base it is the whole model again; an adapter of no parameter, or over a base of another kind, is
    refused."""
    from hubbub.models.loading import load_model

    torch.manual_seed(0)
    base = Separator(TINY_SEPARATOR)
    base.save_pretrained(tmp_path / "base")
    tuned = Separator(dataclasses.replace(TINY_SEPARATOR, dropout=0.1))
    tuned.load_state_dict(base.state_dict())
    with torch.no_grad():
        tuned.encoder.weight.add_(1.0)
    tuned.save_adapter(tmp_path / "adapter", str(tmp_path / "base"), base.config, ("encoder.",))
    meta = json.loads((tmp_path / "adapter" / "config.json").read_text())
    assert meta["changes"] == {"dropout": 0.1} and meta["base_type"] == "hubbub-separator"
    laid = load_model(tmp_path / "adapter")
    assert laid.config == tuned.config
    assert all(torch.equal(v, laid.state_dict()[k]) for k, v in tuned.state_dict().items())
    with pytest.raises(ValueError, match="no parameter"):
        tuned.save_adapter(tmp_path / "none", "x", base.config, ("no-such.",))
    meta["base_type"] = "hubbub-whisper"
    (tmp_path / "adapter" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="not an adapter"):
        Separator.from_adapter(tmp_path / "adapter", tmp_path / "base")


def test_loss_with_silence_keeps_a_lone_voice_whole():
    """Where every source speaks it is the PIT SI-SNR loss; where one is silent, a lone voice kept in one
    output (the other quiet) costs less than the same voice split across both, in either output order."""
    from hubbub.models.losses import pit_loss_with_silence

    torch.manual_seed(0)
    src = torch.randn(2, 2, 800)
    est = src + 0.1 * torch.randn(2, 2, 800)
    torch.testing.assert_close(pit_loss_with_silence(est, src, src.sum(1)), pit_si_snr_loss(est, src))
    voice = torch.randn(800)
    lone = torch.stack([voice, torch.zeros(800)])[None]
    heard = voice + 0.1 * torch.randn(800)
    whole = torch.stack([torch.zeros(800), heard])[None]  # swapped outputs
    split = torch.stack([0.5 * heard, 0.5 * heard])[None]  # the same SI-SNR for the voice, but no silence
    a = pit_loss_with_silence(whole, lone, lone.sum(1))
    b = pit_loss_with_silence(split, lone, lone.sum(1))
    assert torch.isfinite(a).all() and float(a) < float(b) - 10
    mixed = pit_loss_with_silence(torch.cat([est, whole]), torch.cat([src, lone]), torch.cat([src, lone]).sum(1))
    torch.testing.assert_close(mixed, torch.cat([pit_si_snr_loss(est, src), a]))


def test_dynamic_mixer_single_talker_share():
    import numpy as np

    from hubbub.recipes.data import DynamicMixer

    rng = np.random.default_rng(0)
    speakers = {f"s{k}": [rng.standard_normal(4000).astype(np.float32)] for k in range(4)}
    plain = DynamicMixer(speakers, 2, seed=3)
    single = DynamicMixer(speakers, 2, seed=3, single_prob=0.5)
    items = [single.item(0, i, 1000) for i in range(40)]
    lone = [(m, s) for m, s in items if float(s[1].abs().sum()) == 0]
    assert 8 < len(lone) < 32  # about half
    assert all(torch.allclose(m, s[0]) for m, s in lone)  # the mixture is the one voice
    assert all(float(s[0].abs().sum()) > 0 for _, s in items)
    same = DynamicMixer(speakers, 2, seed=3, single_prob=0.0)
    assert torch.equal(plain.item(0, 5, 1000)[0], same.item(0, 5, 1000)[0])  # no draw at 0: mixtures unchanged


def test_dynamic_mixer_speed_perturbation():
    import numpy as np

    from hubbub.recipes.data import DynamicMixer, VoiceAugment

    t = np.arange(16000) / 8000
    speakers = {f"s{k}": [np.sin(2 * np.pi * (200 + 50 * k) * t).astype(np.float32)] for k in range(4)}
    plain = DynamicMixer(speakers, 2, seed=3)
    off = DynamicMixer(speakers, 2, seed=3, augment=VoiceAugment(speed_prob=0.0))
    assert torch.equal(plain.item(0, 5, 2000)[0], off.item(0, 5, 2000)[0])
    fast = DynamicMixer(speakers, 2, seed=3, augment=VoiceAugment(speed_prob=1.0, speed=(1.1, 1.1)))
    mix, src = fast.item(0, 5, 2000)
    assert mix.shape == (2000,) and src.shape == (2, 2000) and torch.allclose(mix, src.sum(0))
    # played 1.1x faster: each source's tone is 1.1x higher
    for k in range(2):
        spectrum = np.abs(np.fft.rfft(src[k].numpy()))
        peak = np.argmax(spectrum) * 8000 / 2000
        assert min(abs(peak - 1.1 * f) for f in (200, 250, 300, 350)) < 8
