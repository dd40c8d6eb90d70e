"""Tests of the Speech-Transformer ASR model, its tokenizers and its decoders.

Tiny configs throughout (d_model 32, one layer) so the file runs in seconds.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import json
import math

import pytest
import torch

from hubbub.models.asr import (
    ASRConfig,
    FilterbankFrontend,
    SpecAugment,
    SpeechTransformer,
    TwoDAttention,
    subsampled_length,
)
from hubbub.models.attention import MultiHeadAttention, local_attention_mask
from hubbub.models.decoding import (
    CTCPrefixScorer,
    beam_search,
    ctc_forced_align,
    ctc_greedy_decode,
    decode,
    greedy_decode,
)
from hubbub.models.tokenizer import (
    BLANK_ID,
    EOS_ID,
    PAD_ID,
    SOS_ID,
    UNK_ID,
    CharTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    load_tokenizer,
    normalize_text,
)

SR = 8000
SENTENCE = "HI BOB"


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one thread is faster


def tiny_config(**kw) -> ASRConfig:
    base = dict(
        d_model=32,
        n_heads=2,
        d_ff=64,
        enc_layers=1,
        dec_layers=1,
        twod_channels=4,
        dropout=0.0,
        tokenizer="char",
        vocab_size=CharTokenizer().vocab_size,
    )
    return ASRConfig(**{**base, **kw})


def tones(seconds: float = 1.0, seed: int = 1) -> torch.Tensor:
    """Fixed synthetic "speech": eight tone segments plus a little noise, ``(T,)``."""
    n = int(seconds * SR)
    t = torch.arange(n) / SR
    freqs = [300, 700, 1200, 500, 1800, 900, 2500, 400]
    seg = math.ceil(n / len(freqs))
    wav = torch.cat([0.5 * torch.sin(2 * math.pi * f * t[:seg]) for f in freqs])[:n]
    return wav + 0.05 * torch.randn(n, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- tokenizers


def test_normalize_text():
    assert normalize_text("  Hello, world -- it's 2 o\u2019clock!  ") == "HELLO WORLD IT'S TWO O'CLOCK"
    assert normalize_text("James' 'tis ' x_y\tz\n") == "JAMES' 'TIS X Y Z"
    assert normalize_text("") == ""
    assert normalize_text(normalize_text("Déjà vu, 42%")) == normalize_text("Déjà vu, 42%") == "DÉJÀ VU FORTY TWO"


def test_numbers_are_spelled_out():
    # Whisper writes "5" where FSDD and LibriSpeech references say "five": both must score the same
    assert normalize_text("5") == normalize_text("five") == "FIVE"
    assert normalize_text("1,000 men, the 21st, 3.5") == "ONE THOUSAND MEN THE TWENTY FIRST THREE POINT FIVE"
    assert normalize_text("mp3 007") == "MP THREE ZERO ZERO SEVEN"
    assert normalize_text("9" * 80) == " ".join(["NINE"] * 80)  # past num2words' range: digit by digit


def test_char_tokenizer_round_trip(tmp_path):
    tok = CharTokenizer()
    assert (tok.blank_id, tok.pad_id, tok.sos_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 2, 3)
    assert tok.symbols == CharTokenizer().symbols  # deterministic
    text = "don't stop, 2 Believin'!"
    ids = tok.encode(text)
    assert min(ids) > UNK_ID
    assert tok.decode(ids) == normalize_text(text) == "DON'T STOP TWO BELIEVIN'"
    assert tok.decode([SOS_ID, *ids, EOS_ID, PAD_ID]) == tok.decode(ids)
    assert [w for w, _ in tok.words(ids)] == ["DON'T", "STOP", "TWO", "BELIEVIN'"]
    assert tok.encode("ü") == [UNK_ID]

    tok.save(tmp_path)
    loaded = Tokenizer.load(tmp_path)
    assert isinstance(loaded, CharTokenizer)
    assert loaded.symbols == tok.symbols and loaded.encode(text) == ids

    extra = CharTokenizer(extra="éü")
    assert extra.vocab_size == tok.vocab_size + 2
    assert extra.decode(extra.encode("über café")) == "ÜBER CAFÉ"
    extra.save(tmp_path / "x")
    assert load_tokenizer(tmp_path / "x").symbols == extra.symbols


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_sentencepiece_round_trip(tmp_path, model_type):
    words = "the quick brown fox jumps over a lazy dog while she sells sea shells by shore".split()
    texts = [" ".join(words[(i + j) % len(words)] for j in range(3 + i % 5)) for i in range(50)]
    tok = SentencePieceTokenizer.train(texts, tmp_path / "spm", vocab_size=48, model_type=model_type)
    assert 10 < tok.vocab_size <= 48
    for text in ["The lazy dog sells shells.", "brown fox 12"]:
        ids = tok.encode(text)
        assert min(ids) >= UNK_ID
        assert tok.decode(ids) == normalize_text(text)
        assert " ".join(w for w, _ in tok.words(ids)) == normalize_text(text)
    tok.save(tmp_path / "copy")
    loaded = load_tokenizer(tmp_path / "copy")
    assert isinstance(loaded, SentencePieceTokenizer)
    assert loaded.vocab_size == tok.vocab_size
    assert loaded.encode("the quick dog") == tok.encode("the quick dog")
    assert SentencePieceTokenizer(tmp_path / "spm" / "tokenizer.model").encode("a dog") == tok.encode("a dog")


# --------------------------------------------------------------------------- model pieces


@pytest.mark.parametrize("n", [1, 2, 79, 80, 81, 400, 1601, 8000])
def test_shape_sweep(n):
    """Any non-empty length works, down to one sample (below the conv receptive field)."""
    torch.manual_seed(0)
    cfg = tiny_config()
    model = SpeechTransformer(cfg).eval()
    frames = n // cfg.hop_length + 1
    feats, flen = model.frontend(torch.randn(n))
    assert feats.shape == (1, frames, cfg.n_mels) and flen.tolist() == [frames]
    wav = torch.randn(2, n)
    lengths = torch.tensor([n, max(1, n // 3)])
    memory, mlen, maps = model.encode(wav, lengths, return_maps=True)
    expect = subsampled_length(lengths // cfg.hop_length + 1)
    assert memory.shape == (2, int(expect.max()), cfg.d_model)
    assert torch.equal(mlen, expect)
    assert maps[0].time.shape == (2, cfg.twod_channels, memory.shape[1], memory.shape[1])
    assert maps[0].freq.shape == (2, cfg.twod_channels, cfg.n_freq, cfg.n_freq)
    model.train()
    out = model(wav, lengths, torch.tensor([[5, 6, 7], [8, 9, 0]]), torch.tensor([3, 2]))
    assert out["loss"].isfinite() and out["loss"] > 0
    out["loss"].backward()
    hyps = greedy_decode(model, wav, lengths, max_len=3)
    assert len(hyps) == 2 and all(len(h.tokens) <= 3 for h in hyps)


def test_empty_input_raises():
    model = SpeechTransformer(tiny_config())
    with pytest.raises(ValueError, match="empty"):
        model.encode(torch.zeros(1, 0))
    with pytest.raises(ValueError, match="empty"):
        model.encode(torch.zeros(2, 100), torch.tensor([100, 0]))


@pytest.mark.parametrize("window", [None, 5])
def test_padded_batch_equals_single(window):
    torch.manual_seed(0)
    model = SpeechTransformer(tiny_config(enc_layers=2, encoder_window=window)).eval()
    wav = torch.randn(2, 8000)
    memory, mlen, _ = model.encode(wav, torch.tensor([8000, 5003]))
    alone, alen, _ = model.encode(wav[1, :5003])
    assert alen.item() == mlen[1].item()
    torch.testing.assert_close(memory[1, : mlen[1]], alone[0], atol=1e-5, rtol=1e-5)
    assert memory[1, mlen[1] :].abs().max() == 0


@pytest.mark.parametrize("window", [None, 4])
def test_twod_attention_maps_sum_to_one(window):
    torch.manual_seed(0)
    block = TwoDAttention(channels=3, n_freq=20, window=window).eval()
    x = torch.randn(2, 3, 12, 20)
    lengths = torch.tensor([12, 7])
    y, maps = block(x, lengths, need_weights=True)
    assert y.shape == x.shape and y[1, :, 7:].abs().max() == 0
    assert maps.time.shape == (2, 3, 12, 12) and maps.freq.shape == (2, 3, 20, 20)
    torch.testing.assert_close(maps.time.sum(-1), torch.ones(2, 3, 12))
    torch.testing.assert_close(maps.freq.sum(-1), torch.ones(2, 3, 20))
    assert maps.time[1, :, :7, 7:].abs().max() == 0  # valid frames never attend to padding
    if window is not None:
        outside = ~local_attention_mask(12, window)
        assert maps.time[..., outside].abs().max() == 0
    assert block(x, lengths)[1] is None


def test_local_encoder_equals_masked_global():
    """The whole encode path with window W == global attention under the band mask."""
    torch.manual_seed(0)
    window = 5
    local = SpeechTransformer(tiny_config(enc_layers=2, encoder_window=window)).eval()
    wav = torch.randn(1, 8000)
    memory, mlen, maps = local.encode(wav, return_maps=True)
    t = memory.shape[1]
    assert t > window
    mask = local_attention_mask(t, window)

    masked = copy.deepcopy(local)
    for mod in masked.modules():
        if isinstance(mod, MultiHeadAttention) and mod.window is not None:
            mod.window = None
            mod.forward = functools.partial(mod.forward, attn_mask=mask)
        if isinstance(mod, TwoDAttention):
            mod.attend.window = None
            mod.forward = functools.partial(mod.forward, attn_mask=mask)
    ref, _, ref_maps = masked.encode(wav, return_maps=True)
    torch.testing.assert_close(memory, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(maps[0].time, ref_maps[0].time, atol=1e-6, rtol=1e-5)


def test_encoder_window_is_set_at_load_and_saved_truthfully(tmp_path):
    """A model trained global runs local when loaded so (the weights are the same), and says so."""
    import json

    from hubbub.pipeline.pipeline import load_asr

    torch.manual_seed(0)
    model = SpeechTransformer(tiny_config(enc_layers=2)).eval()
    model.save_pretrained(tmp_path / "global")
    local = load_asr(tmp_path / "global", window="local:5")
    assert local.config.encoder_window == 5
    reference = SpeechTransformer(tiny_config(enc_layers=2, encoder_window=5)).eval()
    reference.load_state_dict(model.state_dict())
    wav = torch.randn(1, 8000)
    with torch.inference_mode():
        torch.testing.assert_close(local.encode(wav)[0], reference.encode(wav)[0])
        assert not torch.allclose(load_asr(tmp_path / "global").encode(wav)[0], reference.encode(wav)[0])
    local.save_pretrained(tmp_path / "local")
    assert json.loads((tmp_path / "local" / "config.json").read_text())["encoder_window"] == 5
    assert load_asr(tmp_path / "local", window="global").config.encoder_window is None
    with pytest.raises(ValueError, match="local:W"):
        load_asr(tmp_path / "global", window="local")  # frames: no default width


def test_specaugment_only_in_training():
    aug = SpecAugment(freq_masks=2, freq_width=10, time_masks=2, time_width=20, time_ratio=0.2)
    feats = torch.randn(3, 50, 40) + 5.0
    lengths = torch.tensor([50, 30, 1])
    assert aug.eval()(feats, lengths) is feats
    torch.manual_seed(0)
    out = aug.train()(feats, lengths)
    assert out.shape == feats.shape and (out == 0).any()
    assert (out != 0).float().mean() > 0.3
    time_masked = (out == 0).all(-1)  # (B, F): whole frames zeroed
    assert time_masked[0].any() and not time_masked[1, 30:].any()  # time masks stay inside the utterance
    assert not time_masked[2].any()  # one frame: at most 20 % of it may be masked, i.e. none


def test_frontend_normalises_each_utterance():
    cfg = tiny_config()
    fe = FilterbankFrontend(cfg)
    wav = torch.randn(2, 4000) * torch.tensor([[0.01], [3.0]])
    feats, frames = fe(wav, torch.tensor([4000, 2000]))
    for i, n in enumerate(frames.tolist()):
        torch.testing.assert_close(feats[i, :n].mean(0), torch.zeros(cfg.n_mels), atol=1e-4, rtol=0)
        assert feats[i, n:].abs().sum() == 0


def test_config_checks():
    with pytest.raises(ValueError):
        ASRConfig(ctc_weight=1.5)
    with pytest.raises(ValueError):
        ASRConfig(tokenizer="bytes")
    with pytest.raises(ValueError, match="decoder"):
        ASRConfig(decoder="rnnt")
    with pytest.raises(ValueError, match="tokenizer has"):
        SpeechTransformer(tiny_config(vocab_size=50), CharTokenizer())
    with pytest.raises(ValueError, match="attn_dropout"):
        ASRConfig(attn_dropout=1.0)


@pytest.mark.parametrize(("attn_dropout", "expected"), [(None, 0.2), (0.0, 0.0)])
def test_attention_dropout_defaults_to_dropout(attn_dropout, expected):
    """``attn_dropout`` sets the dropout on attention weights only; the residual and
    feed-forward dropout stay at ``dropout``."""
    model = SpeechTransformer(tiny_config(dropout=0.2, attn_dropout=attn_dropout))
    attn = [m.dropout for m in model.modules() if isinstance(m, (MultiHeadAttention, TwoDAttention))]
    assert len(attn) == 4 and set(attn) == {expected}  # 2D, encoder, decoder self and cross attention
    assert {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {0.2}


# --------------------------------------------------------------------------- CTC scoring and alignment


def _brute_force_prefix(lp: torch.Tensor, prefix: tuple[int, ...]) -> float:
    """log P(label sequence starts with ``prefix``) by summing every frame path."""
    t, v = lp.shape
    total = []
    for path in itertools.product(range(v), repeat=t):
        labels = [c for i, c in enumerate(path) if c != BLANK_ID and (i == 0 or c != path[i - 1])]
        if tuple(labels[: len(prefix)]) == prefix:
            total.append(sum(lp[i, c] for i, c in enumerate(path)))
    return torch.stack(total).logsumexp(0).item() if total else -math.inf


def test_ctc_prefix_score_matches_brute_force():
    torch.manual_seed(0)
    lp = torch.randn(5, 4, dtype=torch.float64).log_softmax(-1)  # rows must sum to one exactly
    scorer = CTCPrefixScorer(lp, eos=99)  # no eos among the real labels
    r, _ = scorer.initial_state()
    cands = torch.tensor([[1, 2, 3]])
    # empty prefix -> (1,) -> (1, 3) -> (1, 3, 3): includes a repeated label
    prefix, last = (), torch.tensor([SOS_ID])
    for step, choice in enumerate([0, 2, 2]):
        new_psi, new_r = scorer.score(r, last, cands, empty=torch.tensor([step == 0]))
        for j, c in enumerate(cands[0].tolist()):
            assert new_psi[0, j].item() == pytest.approx(_brute_force_prefix(lp, (*prefix, c)), abs=1e-9)
        c = cands[0, choice].item()
        prefix, last = (*prefix, c), torch.tensor([c])
        r = new_r[:, choice]

    # eos: the full-sequence CTC probability of the prefix
    scorer = CTCPrefixScorer(lp, eos=EOS_ID)
    r, _ = scorer.initial_state()
    _, r1 = scorer.score(r, torch.tensor([SOS_ID]), torch.tensor([[3]]), empty=torch.tensor([True]))
    psi_eos, _ = scorer.score(r1[:, 0], torch.tensor([3]), torch.tensor([[EOS_ID]]), empty=torch.tensor([False]))
    expect = -torch.nn.functional.ctc_loss(lp[:, None], torch.tensor([[3]]), [5], [1], reduction="sum")
    assert psi_eos.item() == pytest.approx(expect.item(), abs=1e-9)


def test_ctc_forced_align():
    torch.manual_seed(0)
    lp = torch.randn(30, 6).log_softmax(-1)
    tokens = [4, 4, 5, 1]
    spans = ctc_forced_align(lp, tokens)
    assert len(spans) == 4
    assert all(a < b for a, b in spans) and all(spans[i][1] <= spans[i + 1][0] for i in range(3))
    assert ctc_forced_align(lp[:4], tokens) is None  # 4 tokens + 1 repeat need 5 frames
    assert ctc_forced_align(lp[:5], tokens) is not None
    assert ctc_forced_align(lp, []) == []
    # the best path, found by trying every frame labelling that collapses to the tokens
    short, tokens = lp[:8], [4, 4, 5]
    best, best_path = -math.inf, None
    for path in itertools.product([BLANK_ID, 4, 5], repeat=short.shape[0]):
        collapsed = [c for t, c in enumerate(path) if c != BLANK_ID and (t == 0 or c != path[t - 1])]
        score = float(sum(short[t, c] for t, c in enumerate(path)))
        if collapsed == tokens and score > best:
            best, best_path = score, path
    expect, u = [], -1
    for t, c in enumerate(best_path):
        if c != BLANK_ID and (t == 0 or c != best_path[t - 1]):
            u += 1
            expect.append([t, t + 1])
        elif c != BLANK_ID:
            expect[u][1] = t + 1
    assert ctc_forced_align(short, tokens) == [tuple(e) for e in expect]


# --------------------------------------------------------------------------- overfit, decode, save/load


@pytest.fixture(scope="module")
def overfit():
    """A tiny model trained on one synthetic utterance until it knows it by heart."""
    torch.manual_seed(0)
    tok = CharTokenizer()
    cfg = tiny_config(specaug_freq_masks=0, specaug_time_masks=0, label_smoothing=0.0)
    model = SpeechTransformer(cfg, tok)
    wav = tones()
    ids = torch.tensor([tok.encode(SENTENCE)])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        out = model(wav[None], None, ids, torch.tensor([ids.shape[1]]))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    return model.eval(), wav, losses


@pytest.mark.slow
def test_overfit_loss_falls_and_greedy_decodes(overfit):
    model, wav, losses = overfit
    assert losses[-1] < 0.1 * losses[0]
    hyp = greedy_decode(model, wav, return_cross_attention=True)[0]
    assert hyp.text == SENTENCE
    assert hyp.tokens == tuple(model.tokenizer.encode(SENTENCE))
    assert [w.word for w in hyp.words] == SENTENCE.split()
    duration = wav.numel() / SR
    assert all(0 <= w.start < w.end <= duration for w in hyp.words)
    assert hyp.words[0].end <= hyp.words[1].start
    n_frames = model.encode(wav)[1].item()
    assert hyp.cross_attention.shape == (len(hyp.tokens) + 1, n_frames)
    torch.testing.assert_close(hyp.cross_attention.sum(-1), torch.ones(len(hyp.tokens) + 1))
    assert math.isfinite(hyp.ctc_score) and hyp.score == hyp.att_score

    # batched with a padded neighbour: same answer
    batch = torch.stack([torch.cat([wav, torch.zeros(1000)]), torch.cat([wav, 0.1 * torch.randn(1000)])])
    hyps = greedy_decode(model, batch, torch.tensor([wav.numel(), wav.numel() + 1000]))
    assert hyps[0].text == SENTENCE
    assert hyps[0].score == pytest.approx(hyp.score, abs=1e-4)


def test_ctc_greedy_decodes_and_batches():
    # a CTC-only model (ctc_weight 1: the decoder is never trained) learns its sentence
    torch.manual_seed(0)
    tok = CharTokenizer()
    model = SpeechTransformer(tiny_config(specaug_freq_masks=0, specaug_time_masks=0, ctc_weight=1.0), tok)
    wav = tones()
    ids = torch.tensor([tok.encode(SENTENCE)])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        loss = model(wav[None], None, ids, torch.tensor([ids.shape[1]]))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    hyp = ctc_greedy_decode(model, wav, return_cross_attention=True)[0]
    assert hyp.text == SENTENCE
    assert [w.word for w in hyp.words] == SENTENCE.split()
    assert math.isnan(hyp.att_score) and hyp.ctc_score <= 0.0
    assert hyp.score <= hyp.ctc_score + 1e-4  # one path, the best, vs. the sum over all its paths
    assert hyp.cross_attention.shape[0] == len(hyp.tokens) + 1
    batch = torch.stack([wav, torch.zeros_like(wav)])
    hyps = ctc_greedy_decode(model, torch.cat([batch, torch.zeros(2, 500)], 1), torch.tensor([wav.numel()] * 2))
    assert hyps[0].text == SENTENCE and hyps[0].score == pytest.approx(hyp.score, abs=1e-3)
    assert len(hyps) == 2 and model.training is False


@pytest.mark.slow
def test_beam_search_at_least_greedy(overfit):
    model, wav, _ = overfit
    greedy = greedy_decode(model, wav)[0]
    # same scoring as greedy (attention only, raw score): the beam can only do better
    beam = beam_search(model, wav, beam=4, ctc_weight=0.0, length_penalty=0.0)[0]
    assert beam.text == SENTENCE
    assert beam.score >= greedy.score - 1e-5
    for ctc_weight in (0.3, 1.0):
        joint = beam_search(model, wav, beam=4, ctc_weight=ctc_weight, length_penalty=1.0, return_cross_attention=True)
        hyp = joint[0]
        assert hyp.text == SENTENCE and [w.word for w in hyp.words] == SENTENCE.split()
        assert hyp.ctc_score == pytest.approx(greedy.ctc_score, abs=1e-3)
        assert hyp.cross_attention is not None
    assert beam_search(model, wav, beam=1, ctc_weight=0.0, length_penalty=0.0)[0].tokens == greedy.tokens
    assert model.training is False


@pytest.mark.slow
def test_decode_dispatches_on_beam_and_ctc_weight(overfit):
    model, wav, _ = overfit
    tokens = lambda hyps: [h.tokens for h in hyps]  # noqa: E731
    assert tokens(decode(model, wav)) == tokens(greedy_decode(model, wav))
    assert tokens(decode(model, wav, ctc_weight=1.0)) == tokens(ctc_greedy_decode(model, wav))
    beam = beam_search(model, wav, beam=3, ctc_weight=0.3)
    assert tokens(decode(model, wav, beam_size=3, ctc_weight=0.3)) == tokens(beam)
    for bad in ({"beam_size": 0}, {"ctc_weight": 1.5}, {"beam_size": 2, "ctc_weight": -0.1}):
        with pytest.raises(ValueError):
            decode(model, wav, **bad)
    # without a ctc_weight, greedy decoding follows the model's config.decoder
    attention = model.config
    try:
        model.config = dataclasses.replace(attention, decoder="ctc")
        assert tokens(decode(model, wav)) == tokens(ctc_greedy_decode(model, wav))
        assert tokens(decode(model, wav, ctc_weight=0.0)) == tokens(greedy_decode(model, wav))
    finally:
        model.config = attention


@pytest.mark.slow
def test_save_load_round_trip(overfit, tmp_path):
    model, wav, _ = overfit
    path = model.save_pretrained(tmp_path / "asr")
    assert {p.name for p in path.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json"}
    assert json.loads((path / "config.json").read_text())["model_type"] == "hubbub-asr"
    loaded = SpeechTransformer.from_pretrained(path)
    assert loaded.config == model.config and not loaded.training
    assert isinstance(loaded.tokenizer, CharTokenizer)
    with torch.inference_mode():
        a, alen, _ = model.encode(wav)
        b, blen, _ = loaded.encode(wav)
    assert torch.equal(a, b) and torch.equal(alen, blen)
    assert greedy_decode(loaded, wav)[0] == greedy_decode(model, wav)[0]


def test_save_load_with_sentencepiece(tmp_path):
    texts = [f"number {i} is {'odd' if i % 2 else 'even'} today" for i in range(50)]
    tok = SentencePieceTokenizer.train(texts, tmp_path / "tok", vocab_size=64, model_type="bpe")
    torch.manual_seed(0)
    model = SpeechTransformer(tiny_config(tokenizer="sentencepiece", vocab_size=tok.vocab_size), tok).eval()
    model.save_pretrained(tmp_path / "asr")
    loaded = SpeechTransformer.from_pretrained(tmp_path / "asr")
    assert isinstance(loaded.tokenizer, SentencePieceTokenizer)
    assert loaded.tokenizer.encode("number 7 is odd") == tok.encode("number 7 is odd")
    wav = tones(0.5)
    assert greedy_decode(loaded, wav, max_len=5)[0] == greedy_decode(model, wav, max_len=5)[0]


def test_separator_still_round_trips(tmp_path):
    from hubbub.models.separator import Separator, SeparatorConfig

    torch.manual_seed(0)
    sep = Separator(SeparatorConfig(enc_channels=16, d_model=16, n_heads=2, d_ff=32, n_blocks=1, chunk_size=10)).eval()
    loaded = Separator.from_pretrained(sep.save_pretrained(tmp_path / "sep"))
    mix = torch.randn(1, 800)
    with torch.inference_mode():
        assert torch.equal(sep(mix), loaded(mix))
    assert not (tmp_path / "sep" / "tokenizer.json").exists()


@pytest.mark.parametrize("decoder", ["ctc", "attention"])
def test_decode_gives_cross_attention_over_its_own_tokens(decoder):
    """The demo's alignment plot: cross-attention over the tokens the default decoder chose."""
    model = SpeechTransformer(tiny_config(decoder=decoder), CharTokenizer()).eval()
    hyp = decode(model, tones(1.0)[None], max_len=8, return_cross_attention=True)[0]
    if decoder == "ctc":
        expected = ctc_greedy_decode(model, tones(1.0)[None])[0]
    else:
        expected = greedy_decode(model, tones(1.0)[None], max_len=8)[0]
    assert hyp.tokens == expected.tokens
    assert hyp.cross_attention is not None and hyp.cross_attention.shape[0] == len(hyp.tokens) + 1
