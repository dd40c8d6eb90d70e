"""``hubbub data mix --hold-out`` and ``hubbub data separated`` (ASR training data behind the separator)."""

from __future__ import annotations

import json

import pytest
import torch

from hubbub.pipeline import Pipeline
from hubbub.pipeline.audio import load_audio
from hubbub.pipeline.separate import SeparationResult
from hubbub.recipes.asr_data import read_manifest as read_asr_manifest
from hubbub.recipes.cli import main as recipes_main
from hubbub.recipes.data import read_librispeech, split_speakers
from hubbub.recipes.librispeech_mixtures import make_test_mixtures
from hubbub.recipes.separated_voices import separate_for_asr


@pytest.fixture()
def mixset(tiny_librispeech, tmp_path):
    return make_test_mixtures(tiny_librispeech, tmp_path / "mix", n_mixtures=3, mode="max", seed=2, hold_out=2)


def test_hold_out_leaves_out_the_validation_speakers(tiny_librispeech, mixset, tmp_path):
    _, held = split_speakers(read_librispeech(tiny_librispeech), 2)
    held = {u.speaker for u in held}
    assert len(held) == 2
    assert all(not held & set(item.speakers) for item in mixset)
    dev = make_test_mixtures(tiny_librispeech, tmp_path / "dev", n_mixtures=3, mode="max", hold_out=2,
                             held_out_only=True)
    assert len(dev) == 3 and all(set(item.speakers) == held for item in dev)


def test_voices_get_the_transcript_of_the_source_they_match(mixset, tmp_path, monkeypatch):
    def swapped_sources(self, path, progress=None):  # a perfect separator that outputs s2 first
        item = next(it for it in mixset if it.mixture == str(path))
        wavs = [load_audio(p)[0] for p in item.sources]
        return SeparationResult(str(path), 8000, torch.stack(wavs[::-1]))

    monkeypatch.setattr(Pipeline, "separate_file", swapped_sources)
    out = tmp_path / "sep"
    records = separate_for_asr(tmp_path / "mix", out)
    assert len(records) == 6
    for rec in records:
        mix_id, k = rec["id"].rsplit("_s", 1)
        item = next(it for it in mixset if it.id == mix_id)
        assert rec["text"] == item.texts[int(k) - 1] and rec["speaker"] == item.speakers[int(k) - 1]
        assert rec["si_snr"] > 30  # the very source, read back from 16-bit PCM
        wav, sr = load_audio(out / rec["audio"])
        ref, _ = load_audio(item.sources[int(k) - 1])
        assert sr == 8000 and torch.allclose(wav, ref, atol=1e-3)
    examples = read_asr_manifest(out / "manifest.jsonl")
    assert sorted(e.id for e in examples) == sorted(r["id"] for r in records)

    def fail(self, path, progress=None):
        raise AssertionError("a rerun separates nothing again")

    monkeypatch.setattr(Pipeline, "separate_file", fail)
    assert len(separate_for_asr(out.parent / "mix", out)) == 6


def test_cli_with_a_tiny_separator_and_a_quality_floor(mixset, tiny_separator_dir, tmp_path):
    out = tmp_path / "sep"
    argv = ["data", "separated", "--mixtures", str(tmp_path / "mix"), "--out", str(out),
            "--separator", str(tiny_separator_dir), "--min-si-snr", "-1000"]
    assert recipes_main(argv) == 0
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == 6 and len((out / "mixtures.done").read_text().split()) == 3
    assert recipes_main([*argv[:-1], "1000", "--out", str(tmp_path / "none")]) == 0
    assert (tmp_path / "none" / "manifest.jsonl").read_text() == ""  # every voice below the floor
    assert recipes_main(["data", "separated", "--mixtures", str(tmp_path), "--out", str(out)]) == 1  # no manifest
