"""``hubbub data conversation``: the overlap ratio asked for, turns, references and RTTMs."""

import json

import numpy as np
import pytest
import soundfile as sf

from hubbub.recipes.conversation import Turn, main, make_conversations, overlap_ratio, place_turns


def test_overlap_ratio_of_a_known_layout():
    # speech 0-10 s, overlap 4-5 s: 1 s of 10
    turns = [Turn("a", "u1", 0.0, 5.0), Turn("b", "u2", 4.0, 10.0)]
    assert overlap_ratio(turns) == pytest.approx(0.1)
    assert overlap_ratio([Turn("a", "u1", 0.0, 2.0), Turn("b", "u2", 3.0, 4.0)]) == 0.0


@pytest.mark.parametrize("ratio", [0.1, 0.2, 0.3, 0.4])
def test_placed_turns_have_the_ratio_and_never_three_at_once(ratio):
    rng = np.random.default_rng(3)
    durations = list(rng.uniform(3, 12, size=8))
    spans = place_turns(durations, ratio, (0.1, 1.0), np.random.default_rng(1))
    turns = [Turn(str(k % 2), str(k), s, e) for k, (s, e) in enumerate(spans)]
    assert overlap_ratio(turns) == pytest.approx(ratio, abs=1e-9)
    for k in range(1, len(spans) - 1):  # turn k's overlaps with k-1 and k+1 do not touch
        assert spans[k - 1][1] < spans[k + 1][0]


def test_zero_overlap_leaves_silences_between_turns():
    spans = place_turns([2.0, 3.0, 1.5], 0.0, (0.2, 0.5), np.random.default_rng(0))
    gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:])]
    assert all(0.2 <= g <= 0.5 for g in gaps)


def test_turns_too_short_for_the_ratio_are_refused():
    assert place_turns([1.0, 1.0], 0.9, (0.1, 0.2), np.random.default_rng(0)) is None


@pytest.mark.parametrize("n_speakers, sr", [(2, 16000), (3, 8000)])
def test_built_conversations(tiny_librispeech, tmp_path, n_speakers, sr):
    out = tmp_path / "conv"
    records = make_conversations(tiny_librispeech, out, n_speakers=n_speakers, n_recordings=2, n_turns=4,
                                 ratios=(0, 20, 40), sample_rate=sr, seed=5)
    assert len(records) == 6
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["id"] for r in lines] == [r["id"] for r in records]
    for rec in records:
        assert rec["measured_overlap"] == pytest.approx(rec["overlap_ratio"] / 100, abs=2e-3)
        turns = [Turn(**t) for t in rec["turns"]]
        assert len({t.speaker for t in turns}) == n_speakers
        assert all(a.speaker != b.speaker for a, b in zip(turns, turns[1:]))
        assert len({t.utt for t in turns}) == len(turns)
        wav, rate = sf.read(out / rec["mixture"])
        assert rate == sr and len(wav) / sr == pytest.approx(rec["duration"], abs=1e-3)
        assert max(t.end for t in turns) <= rec["duration"] + 1e-3
        # per speaker, its turns' texts in time order
        for spk, texts in zip(rec["speakers"], rec["texts"]):
            assert texts == [t.text for t in sorted(turns, key=lambda t: t.start) if t.speaker == spk]
        rttm = (out / rec["rttm"]).read_text().splitlines()
        assert len(rttm) == len(turns)
        first = rttm[0].split()
        t0 = min(turns, key=lambda t: t.start)
        assert first[1] == rec["id"] and first[7] == t0.speaker
        assert float(first[3]) == pytest.approx(t0.start, abs=1e-3)
        assert float(first[4]) == pytest.approx(t0.end - t0.start, abs=1e-3)
    # the same utterances at every ratio; only the placement changes
    by_rec = {}
    for rec in records:
        by_rec.setdefault(rec["id"].rsplit("-ov", 1)[0], []).append([t["utt"] for t in rec["turns"]])
    assert all(all(u == utts[0] for u in utts) for utts in by_rec.values())


def test_a_monologue_is_one_speakers_turns_with_silences(tiny_librispeech, tmp_path):
    records = make_conversations(tiny_librispeech, tmp_path / "mono", n_speakers=1, n_recordings=1, n_turns=2,
                                 ratios=(0,), seed=1)
    turns = [Turn(**t) for t in records[0]["turns"]]
    assert len({t.speaker for t in turns}) == 1 and len({t.utt for t in turns}) == 2
    assert turns[1].start - turns[0].end >= 0.1  # a silence between them
    with pytest.raises(ValueError, match="cannot overlap"):
        make_conversations(tiny_librispeech, tmp_path / "x", n_speakers=1, ratios=(0, 20))


def test_the_same_seed_gives_the_same_set(tiny_librispeech, tmp_path):
    a = make_conversations(tiny_librispeech, tmp_path / "a", n_recordings=1, n_turns=4, ratios=(30,), seed=2)
    b = make_conversations(tiny_librispeech, tmp_path / "b", n_recordings=1, n_turns=4, ratios=(30,), seed=2)
    assert a == b
    assert np.array_equal(sf.read(tmp_path / "a" / a[0]["mixture"])[0], sf.read(tmp_path / "b" / b[0]["mixture"])[0])


def test_cli_refuses_a_bad_ratio_and_a_missing_folder(tmp_path, caplog):
    assert main(["--librispeech", str(tmp_path), "--out", str(tmp_path / "o"), "--overlap-ratios", "120"]) == 2
    assert main(["--librispeech", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 1
    assert "not a directory" in caplog.text
