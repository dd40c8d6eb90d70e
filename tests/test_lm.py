"""Word n-gram LM: Kneser-Ney estimation, ARPA output, lexicon-constrained CTC search, model folders."""

from __future__ import annotations

import gzip
import json
import math

import pytest
import soundfile as sf
import torch

from hubbub.models.asr import SpeechTransformer
from hubbub.models.decoding import decode
from hubbub.models.lm import NgramLM, write_lexicon
from hubbub.models.tokenizer import CharTokenizer
from hubbub.recipes.train_lm import BOS, EOS, UNK, kneser_ney, lm_sentences, main, write_arpa

CORPUS = ["HELLO WORLD", "HELLO THERE", "THE WORLD IS WIDE", "HELLO WIDE WORLD", "THE WORLD", "HELLO WORLD"]


def _prob(tables, history: tuple[str, ...], word: str) -> float:
    """p(word | history) from the ARPA tables, backing off as a decoder does."""
    for start in range(len(history) + 1):
        h = history[start:]
        if h + (word,) in tables[len(h)]:
            backoff = sum(tables[len(history[s:]) - 1][history[s:]][1] for s in range(start)
                          if history[s:] in tables[len(history[s:]) - 1])
            return 10 ** (tables[len(h)][h + (word,)][0] + backoff)
    raise AssertionError(f"{word} not even a unigram")


@pytest.mark.parametrize("min_count", [1, 2])
def test_every_distribution_sums_to_one(min_count):
    tables = kneser_ney([s.split() for s in CORPUS], order=3, min_count=min_count)
    vocab = [g[0] for g in tables[0] if g[0] != BOS]
    assert UNK in vocab and EOS in vocab
    contexts = [(), (BOS,), ("HELLO",), ("THE",), (BOS, "HELLO"), ("HELLO", "WORLD"), ("WIDE", "THE")]
    for h in contexts:
        assert math.isclose(sum(_prob(tables, h, w) for w in vocab), 1.0, abs_tol=1e-9), h
    if min_count == 2:  # seen once: pruned; seen twice: kept
        assert ("THE", "WORLD", "IS") not in tables[2] and (BOS, "HELLO", "WORLD") in tables[2]
    assert _prob(tables, (BOS,), "HELLO") > _prob(tables, (BOS,), "WIDE")


def test_arpa_file_and_sentence_selection(tmp_path):
    text = tmp_path / "text.tsv"
    text.write_text("".join(f"{spk}-1-{i:04d}\t{s.lower()}\n" for i, (spk, s) in
                            enumerate(zip(["7", "7", "8", "8", "9", "9"], CORPUS))))
    sentences, left_out = lm_sentences(text, exclude_every=3, exclude_speakers={"9"})
    assert left_out == 3 and sentences == [s.split() for s in CORPUS[:2]] + [CORPUS[3].split()]
    write_arpa(kneser_ney(sentences, 2), tmp_path / "lm.arpa.gz")
    lines = gzip.open(tmp_path / "lm.arpa.gz", "rt").read().splitlines()
    assert lines[0] == "\\data\\" and lines[-1] == "\\end\\"
    counts = {int(line[6]): int(line.split("=")[1]) for line in lines if line.startswith("ngram ")}
    one = lines.index("\\1-grams:")
    assert len([ln for ln in lines[one + 1 : one + 1 + counts[1]] if len(ln.split("\t")) == 3]) == counts[1]


def _char_model(tmp_path, corpus=CORPUS):
    torch.manual_seed(0)
    from hubbub.models.asr import ASRConfig

    cfg = ASRConfig(d_model=32, n_heads=2, d_ff=64, enc_layers=1, dec_layers=1, twod_channels=4, dropout=0.0,
                    tokenizer="char", vocab_size=CharTokenizer().vocab_size, decoder="ctc")
    model = SpeechTransformer(cfg, CharTokenizer())
    model.save_pretrained(tmp_path / "asr")
    text = tmp_path / "text.txt"
    text.write_text("\n".join(corpus) + "\n")
    return tmp_path / "asr", text


def _frames(tok, spelled: list[dict[str, float]]) -> torch.Tensor:
    """CTC log-probs ``(T, V)``: each frame's listed symbols get their probability, the rest share 1e-3."""
    index = {tok.id_to_piece(i): i for i in range(tok.vocab_size)}
    x = torch.full((len(spelled), tok.vocab_size), 1e-3)
    for t, frame in enumerate(spelled):
        for sym, p in frame.items():
            x[t, index[sym]] = p
    return (x / x.sum(-1, keepdim=True)).log()


def test_lexicon_search_spells_only_words_of_the_lm(tmp_path):
    folder, text = _char_model(tmp_path)
    assert main(["--asr", str(folder), "--text", str(text), "--min-count", "1"]) == 0
    model = SpeechTransformer.from_pretrained(folder)
    assert isinstance(model.lm, NgramLM) and model.lm.config.lm_weight == 1.0
    tok = model.tokenizer
    b = "<blank>"
    # "HXLLO WORLD" by the letters' argmax: X is a little likelier than E in the second frame
    frames = [{"H": 0.9}, {"X": 0.5, "E": 0.4}, {"L": 0.9}, {b: 0.9}, {"L": 0.9}, {"O": 0.9}, {"|": 0.9},
              {"W": 0.9}, {"O": 0.9}, {"R": 0.9}, {"L": 0.9}, {"D": 0.9}]
    lp = _frames(tok, frames)
    greedy = lp.argmax(-1)
    assert tok.decode([t for i, t in enumerate(greedy.tolist()) if t and (i == 0 or t != greedy[i - 1])]) == \
        "HXLLO WORLD"
    tokens, score = model.lm.search(lp)
    assert tok.decode(tokens) == "HELLO WORLD" and math.isfinite(score)


def test_model_folder_round_trip_and_decode_switch(tmp_path, monkeypatch):
    folder, text = _char_model(tmp_path)
    manifest = tmp_path / "tune.jsonl"
    for i, sentence in enumerate(CORPUS[:2]):
        sf.write(tmp_path / f"{i}.wav", torch.randn(8000).numpy() * 0.1, 8000)
        with open(manifest, "a") as f:
            f.write(json.dumps({"audio": f"{i}.wav", "text": sentence}) + "\n")
    assert main(["--asr", str(folder), "--text", str(text), "--tune", f"manifest:{manifest}"]) == 0
    meta = json.loads((folder / "lm" / "lm.json").read_text())
    rows = meta["tuning"]["rows"]
    assert len(rows) == 13 and rows[0]["lm_weight"] is None  # greedy first, then the grid
    best = min(rows[1:], key=lambda r: r["wer"])
    assert (meta["search"]["lm_weight"], meta["search"]["word_score"]) == (best["lm_weight"], best["word_score"])

    model = SpeechTransformer.from_pretrained(folder)
    model.save_pretrained(tmp_path / "copy")  # the LM travels with the weights
    assert SpeechTransformer.from_pretrained(tmp_path / "copy").lm is not None
    calls = []
    search = NgramLM.search
    monkeypatch.setattr(NgramLM, "search", lambda self, lp: calls.append(1) or search(self, lp))
    wav = torch.randn(2, 8000) * 0.1
    hyps = decode(model, wav)
    assert len(calls) == 2 and all(set(h.text.split()) <= {w for s in CORPUS for w in s.split()} for h in hyps)
    decode(model, wav, lm=False)
    decode(model, wav, ctc_weight=1.0)  # another search asked for: no LM
    assert len(calls) == 2
    model.lm = None
    with pytest.raises(ValueError, match="no language model"):
        decode(model, wav, lm=True)


def test_lexicon_skips_words_the_tokenizer_cannot_spell(tmp_path):
    n = write_lexicon(["HELLO", "ÉTÉ", "IT'S"], CharTokenizer(), tmp_path / "lexicon.txt")
    lines = (tmp_path / "lexicon.txt").read_text().splitlines()
    assert n == len(lines) == 2 and lines[0] == "HELLO\tH E L L O"


def test_transcribe_uses_the_lm_unless_told_not_to(tmp_path, monkeypatch, tiny_separator_dir, two_voice_mix):
    from hubbub.cli import main as cli_main

    folder, text = _char_model(tmp_path)
    assert main(["--asr", str(folder), "--text", str(text)]) == 0
    calls = []
    search = NgramLM.search
    monkeypatch.setattr(NgramLM, "search", lambda self, lp: calls.append(1) or search(self, lp))
    args = ["transcribe", str(two_voice_mix), "--model", str(tiny_separator_dir), "--asr", str(folder),
            "--quiet", "-f", "json"]
    assert cli_main([*args, "-o", str(tmp_path / "plain"), "--no-lm"]) == 0 and not calls
    assert cli_main([*args, "-o", str(tmp_path / "lm")]) == 0
    words = {w for s in CORPUS for w in s.split()}
    result = json.loads((tmp_path / "lm" / "mix.json").read_text())
    assert all(set(spk["text"].split()) <= words for spk in result["speakers"])
    assert calls
