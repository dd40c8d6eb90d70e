"""Overlap-aware transcription: where voices overlap, what each piece is read from,
words at piece boundaries, echoes, speaker labels, per-speaker voice files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from hubbub.models.decoding import WordTiming as Word
from hubbub.pipeline.formats import render
from hubbub.pipeline.regions import RegionConfig, speech_regions
from hubbub.pipeline.result import Result, Segment, SpeakerResult
from hubbub.pipeline.speakers import ClusterConfig, SegmentSpan, cluster_segments, one_person_overlaps
from hubbub.pipeline.turns import (
    Piece,
    TurnConfig,
    drop_echoes,
    join_lone,
    keep_words,
    overlaps,
    plan_pieces,
    recording_stretches,
    share_words,
    unheld,
)

SR = 8000


def _voice(start: float, end: float, total: float, level: float = 0.3, freq: float = 220.0) -> torch.Tensor:
    """A harmonic 'voice' between ``start`` and ``end`` seconds, silence elsewhere."""
    t = torch.arange(int(total * SR)) / SR
    x = sum(torch.sin(2 * math.pi * freq * h * t + h) / h for h in range(1, 6))
    on = (t >= start) & (t < end)
    return level * x * on * (1 + 0.3 * torch.sin(2 * math.pi * 3 * t))


def test_overlaps_and_pieces_of_two_turns():
    regions = [[(0.0, 10.0)], [(8.0, 20.0)]]
    assert overlaps(regions) == [(8.0, 10.0)]
    pieces = plan_pieces(regions, TurnConfig(min_overlap=0.5, min_single=1.0, context=1.0))
    assert pieces == [
        Piece(0, 0, 0.0, 8.0, "mixture", 0.0, 9.0),
        Piece(0, 0, 8.0, 10.0, "voice", 7.0, 10.0),
        Piece(1, 0, 8.0, 10.0, "voice", 8.0, 11.0),
        Piece(1, 0, 10.0, 20.0, "mixture", 9.0, 20.0),
    ]


def test_short_overlaps_and_short_lone_stretches_do_not_cut():
    cfg = TurnConfig(min_overlap=0.5, min_single=1.0)
    # the padding of two turns that follow each other: 0.2 s of overlap
    assert [p.source for p in plan_pieces([[(0.0, 5.1)], [(4.9, 9.0)]], cfg)] == ["mixture", "mixture"]
    # a 0.5-s lone stretch between two overlaps is read from the voice with them
    pieces = plan_pieces([[(0.0, 10.0)], [(2.0, 5.0), (5.5, 8.0)]], cfg)
    assert [(p.start, p.end, p.source) for p in pieces if p.voice == 0] == [
        (0.0, 2.0, "mixture"), (2.0, 8.0, "voice"), (8.0, 10.0, "mixture")]


def test_by_default_a_region_with_an_overlap_is_read_whole_from_its_voice():
    pieces = plan_pieces([[(0.0, 10.0), (12.0, 15.0)], [(8.0, 11.5)]])
    assert pieces == [Piece(0, 0, 0.0, 10.0, "voice", 0.0, 10.0), Piece(0, 1, 12.0, 15.0, "mixture", 12.0, 15.0),
                      Piece(1, 0, 8.0, 11.5, "voice", 8.0, 11.5)]


def test_an_overlap_the_detector_does_not_hear_is_read_from_the_recording():
    regions = [[(0.0, 10.0), (12.0, 15.0)], [(8.0, 11.5)]]  # they overlap over 8-10 s
    probability = torch.zeros(1500)  # 10-ms frames
    cfg = TurnConfig(min_evidence=0.3)
    assert {p.source for p in plan_pieces(regions, cfg, probability, 0.01)} == {"mixture"}
    probability[800:1000] = 0.5  # two voices heard where the streams overlap
    assert [p.source for p in plan_pieces(regions, cfg, probability, 0.01)] == ["voice", "mixture", "voice"]
    probability[800:900] = 0.0  # mean 0.25 over the overlap: too little
    assert {p.source for p in plan_pieces(regions, cfg, probability, 0.01)} == {"mixture"}
    # without the detector, or with the test off, every overlap is read apart
    assert [p.source for p in plan_pieces(regions, cfg)] == ["voice", "mixture", "voice"]
    assert [p.source for p in plan_pieces(regions, TurnConfig(min_evidence=0.0), probability, 0.01)] == [
        "voice", "mixture", "voice"]


def test_one_voice_is_one_piece_from_the_recording():
    assert plan_pieces([[(1.0, 4.0), (6.0, 9.0)], []]) == [
        Piece(0, 0, 1.0, 4.0, "mixture", 1.0, 4.0), Piece(0, 1, 6.0, 9.0, "mixture", 6.0, 9.0)]


def test_boundary_words_are_kept_exactly_once():
    regions = [[(0.0, 10.0)], [(8.0, 20.0)]]
    a, b = [p for p in plan_pieces(regions, TurnConfig(min_single=1.0)) if p.voice == 0]
    # both pieces of voice 0 decode the word that straddles 8.0 s (context): exactly one keeps it
    words = [Word("before", 6.0, 6.5), Word("straddles", 7.7, 8.2), Word("after", 8.5, 9.0)]
    in_a = [w.word for w in keep_words(a, [w for w in words if a.decode_start <= w.start < a.decode_end])]
    in_b = [w.word for w in keep_words(b, [w for w in words if b.decode_start <= w.start < b.decode_end])]
    assert in_a + in_b == ["before", "straddles", "after"]
    assert not set(in_a) & set(in_b)


def test_uncut_sides_keep_every_word():
    piece = Piece(0, 0, 1.0, 4.0, "mixture", 1.0, 4.0)
    words = [Word("early", 0.9, 1.05), Word("late", 3.9, 4.2)]  # timings a little outside the region
    assert keep_words(piece, words) == words


def test_lone_pieces_of_all_voices_are_decoded_as_stretches():
    # a talker split across both streams: its regions alternate between the voices within one sentence
    pieces = plan_pieces([[(0.0, 2.0), (4.1, 6.0), (20.0, 24.0)], [(2.3, 4.0), (6.8, 9.0)]])
    assert [p.source for p in pieces] == ["mixture"] * 5
    assert join_lone(pieces) == [(0.0, 9.0, [0, 3, 1, 4]), (20.0, 24.0, [2])]
    # at most join_max seconds a stretch; a negative join_gap decodes each piece apart
    assert join_lone(pieces, TurnConfig(join_max=6.0)) == [(0.0, 6.0, [0, 3, 1]), (6.8, 9.0, [4]), (20.0, 24.0, [2])]
    assert [m for _, _, m in join_lone(pieces, TurnConfig(join_gap=-1))] == [[0], [3], [1], [4], [2]]
    # pieces read from a separated voice are not joined
    overlapped = plan_pieces([[(0.0, 10.0), (12.0, 15.0)], [(8.0, 11.5)]])
    assert join_lone(overlapped) == [(12.0, 15.0, [1])]


def test_words_of_a_stretch_go_to_the_piece_they_fall_in():
    pieces = [Piece(0, 0, 0.0, 2.0, "mixture", 0.0, 2.0), Piece(1, 0, 2.3, 4.0, "mixture", 2.3, 4.0),
              Piece(0, 1, 4.1, 6.0, "mixture", 4.1, 6.0)]
    words = [Word("one", 0.2, 0.6), Word("two", 1.8, 2.4), Word("three", 2.5, 3.0), Word("pause", 4.0, 4.15),
             Word("four", 5.0, 5.5), Word("late", 6.1, 6.4)]
    shared = share_words(pieces, words)
    # "two" (middle 2.1 s, in the pause) goes to the nearer piece; every word is kept once
    assert [[w.word for w in ws] for ws in shared] == [["one", "two"], ["three"], ["pause", "four", "late"]]


def test_words_past_a_cut_side_are_left_to_the_separated_voices():
    # voice 0 is cut at an overlap (8-10 s): its lone piece keeps no word of the overlap
    pieces = plan_pieces([[(0.0, 10.0)], [(8.0, 20.0)]], TurnConfig(min_single=1.0))
    lone = [p for p in pieces if p.source == "mixture"]
    words = [Word("mine", 6.0, 6.5), Word("overlap", 8.6, 9.0), Word("theirs", 15.0, 15.5)]
    assert [[w.word for w in ws] for ws in share_words(lone, words)] == [["mine"], ["theirs"]]


def test_lone_pieces_are_decoded_in_the_recordings_own_regions():
    # the separator splits one talker into fragments across both streams; the recording itself has two
    # regions (0-9 s, 12-30 s, split at a pause the streams do not show): each is decoded whole, as the
    # ASR alone would read it, and a piece across both regions is a member of both
    pieces = plan_pieces([[(0.0, 2.0), (4.1, 6.0)], [(2.3, 4.0), (6.8, 20.0)]])
    assert recording_stretches(pieces, [(0.0, 9.0), (9.5, 30.0)]) == [(0.0, 9.0, [0, 1, 2, 3]), (9.5, 30.0, [3])]
    # a lone piece that no region of the recording holds is decoded as join_lone would
    assert recording_stretches(pieces, [(0.0, 9.0)]) == [(0.0, 9.0, [0, 1, 2, 3])]
    assert recording_stretches(pieces, [(6.5, 30.0)]) == [(0.0, 6.0, [0, 2, 1]), (6.5, 30.0, [3])]
    # pieces read from a separated voice are not the recording's
    overlapped = plan_pieces([[(0.0, 10.0), (12.0, 15.0)], [(8.0, 11.5)]])
    assert recording_stretches(overlapped, [(0.0, 16.0)]) == [(0.0, 16.0, [1])]


def test_speech_that_no_voice_holds_becomes_a_region_of_the_loudest_stream():
    # the recording speaks over 10-17 s and 20-24.5 s, where the separated streams hold little (the
    # separator put that talker in a stream found to be leakage): those stretches become regions, of
    # the stream loudest there, so that they are read from the recording and not lost
    from hubbub.pipeline.joining import claim_unheld

    found = [[(0.0, 4.0), (20.0, 24.0)], [(5.0, 9.0)]]
    recording = [(0.0, 4.0), (5.0, 9.2), (10.0, 17.0), (19.8, 25.5)]
    stretches = unheld(found, recording)
    assert stretches == [(10.0, 17.0), (24.0, 25.5)]  # 9.0-9.2 and 19.8-20.0 are too short
    assert unheld(found, recording, TurnConfig(min_unheld=math.inf)) == []
    levels = torch.full((2, 2600), -60.0)
    levels[1, 1000:1700] = -20.0  # stream 2 is the louder over 10-17 s, stream 1 over 24-25.5 s
    levels[0, 2400:2550] = -30.0
    claimed = claim_unheld(found, stretches, levels, 0.01)
    assert claimed == [[(0.0, 4.0), (20.0, 24.0), (24.0, 25.5)], [(5.0, 9.0), (10.0, 17.0)]]
    # the claimed region is read from the recording like any lone region
    assert [(p.voice, p.start, p.end, p.source) for p in plan_pieces(claimed)][-1] == (1, 10.0, 17.0, "mixture")


def test_words_of_a_stretch_read_from_a_separated_voice_are_not_repeated():
    # voice 1 is read from its separated stream over 4-20 s (it overlaps somewhere); a short fragment of
    # voice 0 inside it (leakage) is no lone voice: the recording's words there are voice 1's
    lone = [Piece(0, 0, 0.0, 3.9, "mixture", 0.0, 3.9), Piece(0, 1, 8.9, 9.5, "mixture", 8.9, 9.5)]
    words = [Word("mine", 1.0, 1.5), Word("theirs", 9.0, 9.4), Word("after", 3.8, 4.2)]
    shared = share_words(lone, words, others=[(4.0, 20.0)])
    assert [[w.word for w in ws] for ws in shared] == [["mine", "after"], []]


def test_a_sentence_goes_wholly_to_the_voice_that_holds_most_of_it():
    # the separator put one talker's sentence in both streams; the second talker's sentence is voice 1's
    pieces = [Piece(0, 0, 0.0, 2.0, "mixture", 0.0, 2.0), Piece(1, 0, 2.0, 2.8, "mixture", 2.0, 2.8),
              Piece(0, 1, 2.8, 4.0, "mixture", 2.8, 4.0), Piece(1, 1, 4.2, 8.0, "mixture", 4.2, 8.0)]
    words = [Word("Something", 0.2, 0.8), Word("is", 0.8, 1.0), Word("going", 1.0, 1.4), Word("to", 1.4, 1.6),
             Word("occur", 2.1, 2.6), Word("he", 2.9, 3.2), Word("said.", 3.2, 3.8), Word("Why?", 4.4, 5.0),
             Word("Because.", 5.2, 6.0)]
    by_word = share_words(pieces, words)
    assert [w.word for w in by_word[1]] == ["occur"]
    by_sentence = share_words(pieces, words, by_sentence=True)
    assert [[w.word for w in ws] for ws in by_sentence] == [
        ["Something", "is", "going", "to", "occur"], [], ["he", "said."], ["Why?", "Because."]]
    # without punctuation (an ASR that writes none) each word stays where it lies
    bare = [Word(w.word.strip(".?"), w.start, w.end) for w in words]
    assert [len(ws) for ws in share_words(pieces, bare, by_sentence=True)] == [len(ws) for ws in by_word]
    # punctuated words with no sentence end yet (a stretch that stops mid-sentence) are one sentence
    unfinished = [Word("Something,", 0.2, 0.8), *words[1:5]]
    assert [[w.word for w in ws] for ws in share_words(pieces, unfinished, by_sentence=True)] == [
        ["Something,", "is", "going", "to", "occur"], [], [], []]


def test_turn_settings_are_checked_when_given():
    with pytest.raises(ValueError, match="attribute"):
        TurnConfig(attribute="sentences")
    with pytest.raises(ValueError, match="lone_stretches"):
        TurnConfig(lone_stretches="apart")


def test_a_piece_in_two_stretches_gets_the_words_of_both():
    from hubbub.pipeline.joining import share_spans

    pieces = [Piece(0, 0, 1.0, 20.0, "mixture", 1.0, 20.0), Piece(1, 0, 21.0, 25.0, "mixture", 21.0, 25.0)]
    first = Segment(0.0, 12.0, "a b", (Word("a", 2.0, 3.0), Word("b", 10.0, 11.0)))
    second = Segment(12.0, 25.0, "c d", (Word("c", 14.0, 15.0), Word("d", 22.0, 23.0)))
    out = share_spans([(first, None), (second, None)], [[0], [0, 1]], pieces, [[], []])
    assert [seg.text for seg, _ in out] == ["a b c", "d"]
    assert (out[0][0].start, out[0][0].end) == (1.0, 20.0)


def test_a_decode_that_stops_early_reads_on(monkeypatch):
    from hubbub.pipeline import Pipeline

    calls = []

    def decode_once(spans, detail=frozenset(), progress=None):  # an ASR that stops 3 s into every span
        calls.append([(round(a, 2), round(b, 2)) for _, _, a, b in spans])
        out = []
        for _, _, a, b in spans:
            words = tuple(Word(f"w{a:g}", a + 0.5, min(b, a + 3.0)) for _ in range(1))
            out.append((Segment(a, b, words[0].word, words), None))
        return out

    pipe = Pipeline(turns=TurnConfig(read_on=1.0))
    monkeypatch.setattr(pipe, "_decode_once", decode_once)
    (seg, _), = pipe._decode_spans([("x.wav", 16000, 0.0, 9.5)])
    assert calls == [[(0.0, 9.5)], [(3.0, 9.5)], [(6.0, 9.5)]]  # 9 s reached: less than 1 s is left
    assert seg.text == "w0 w3 w6" and (seg.start, seg.end) == (0.0, 9.5)
    calls.clear()
    off = Pipeline(turns=TurnConfig(read_on=0.0))
    monkeypatch.setattr(off, "_decode_once", decode_once)
    assert off._decode_spans([("x.wav", 16000, 0.0, 10.0)])[0][0].text == "w0" and len(calls) == 1


def test_echoes_go_from_the_quieter_stream():
    words = [[Word("the", 1.0, 1.2), Word("medical", 1.3, 1.8)], [Word("medical", 1.35, 1.75), Word("man", 2.0, 2.3)]]
    levels = [[-20.0, -20.0], [-35.0, -18.0]]
    assert drop_echoes(words, levels) == [[False, False], [True, False]]
    # the same word far apart in time is two words
    far = [[Word("yes", 1.0, 1.2)], [Word("yes", 5.0, 5.2)]]
    assert drop_echoes(far, [[-20.0], [-30.0]]) == [[False], [False]]


def test_a_silent_stream_has_no_regions():
    streams = torch.stack([_voice(0.5, 3.0, 4.0), torch.zeros(4 * SR)])
    regions = speech_regions(streams, SR, RegionConfig())
    assert regions[1] == [] and regions[0]


def test_leakage_below_the_threshold_makes_no_second_speaker():
    voice = _voice(0.5, 3.5, 4.0)
    other = _voice(0.5, 3.5, 4.0, freq=310.0)
    for leak_db in (8.0, 18.0):
        cfg = RegionConfig(leak_db=leak_db, smooth=1.0)
        faint = 10 ** (-(leak_db + 6) / 20) * other  # another voice's faint copy, below the threshold
        assert speech_regions(torch.stack([voice, faint]), SR, cfg)[1] == []
        loud = 10 ** (-(leak_db - 6) / 20) * other  # above it: a second talker
        assert speech_regions(torch.stack([voice, loud]), SR, cfg)[1]


def test_clustering_joins_turns_of_one_person_across_streams():
    rng = np.random.default_rng(0)
    a, b, c = (torch.from_numpy(rng.normal(size=16)).float() for _ in range(3))
    unit = [v / v.norm() for v in (a, b, c)]

    def near(v: torch.Tensor) -> torch.Tensor:
        w = v + 0.1 * torch.from_numpy(rng.normal(size=16)).float() / 4
        return w / w.norm()

    # three people taking turns on two streams: A (stream 0), B (1), C (0), A (1), short B (1)
    spans = [SegmentSpan(0, 0, 5), SegmentSpan(1, 4, 9), SegmentSpan(0, 9, 14), SegmentSpan(1, 14, 19),
             SegmentSpan(1, 19.2, 19.6)]
    emb = [near(unit[0]), near(unit[1]), near(unit[2]), near(unit[0]), None]
    assert cluster_segments(spans, emb, ClusterConfig(threshold=0.5)) == [0, 1, 2, 0, 0]
    assert cluster_segments(spans, emb, ClusterConfig(num_speakers=2))[:4] in ([0, 1, 1, 0], [0, 1, 0, 0])


def test_overlapping_segments_of_two_streams_are_two_people():
    e = torch.ones(4) / 2
    spans = [SegmentSpan(0, 0, 5), SegmentSpan(1, 1, 6)]
    assert cluster_segments(spans, [e, e], ClusterConfig(threshold=0.5)) == [0, 1]


def test_assembled_voices_take_each_persons_spans(tmp_path):
    from hubbub.pipeline.pipeline import assemble_voices

    n = 4 * SR
    s0, s1 = np.full(n, 0.1, dtype=np.float32), np.full(n, 0.2, dtype=np.float32)
    outs = [tmp_path / "spk1.wav", tmp_path / "spk2.wav"]
    for p, x in zip(outs, (s0, s1)):
        sf.write(str(p), x, SR, subtype="FLOAT")
    # person 1: stream 0 for 0-1 s and stream 1 for 2-3 s; person 2: stream 1 for 0.5-1.5 s; person 3: stream 0 3-4 s
    paths = assemble_voices(outs, [[SegmentSpan(0, 0, 1), SegmentSpan(1, 2, 3)], [SegmentSpan(1, 0.5, 1.5)],
                                   [SegmentSpan(0, 3, 4)]])
    assert [p.name for p in paths] == ["spk1.wav", "spk2.wav", "spk3.wav"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spk1.wav", "spk2.wav", "spk3.wav"]
    x = sf.read(str(paths[0]), dtype="float32")[0]
    assert len(x) == n
    assert np.allclose(x[:SR], 0.1) and np.allclose(x[SR : 2 * SR], 0) and np.allclose(x[2 * SR : 3 * SR], 0.2)
    assert np.allclose(sf.read(str(paths[2]), dtype="float32")[0][3 * SR :], 0.1)


def test_rttm_of_a_known_layout():
    result = Result("talk.wav", 20.0, 16000, {}, [
        SpeakerResult("spk1", None, [Segment(0.0, 10.0, "hello there"), Segment(15.0, 18.5, "bye")]),
        SpeakerResult("spk2", None, [Segment(8.0, 14.0, "hi")]),
    ])
    assert render(result, "rttm").splitlines() == [
        "SPEAKER talk 1 0.000 10.000 <NA> <NA> spk1 <NA> <NA>",
        "SPEAKER talk 1 8.000 6.000 <NA> <NA> spk2 <NA> <NA>",
        "SPEAKER talk 1 15.000 3.500 <NA> <NA> spk1 <NA> <NA>",
    ]


@pytest.mark.slow
def test_speaker_encoder_tells_two_voices_apart():
    from hubbub.models.speaker import SpeakerEncoder

    enc = SpeakerEncoder.load()
    low, high = _voice(0, 3, 3, freq=110.0), _voice(0, 3, 3, freq=330.0)
    e_low, e_low2, e_high = enc.embed(low[: 2 * SR], SR), enc.embed(low[SR:], SR), enc.embed(high, SR)
    assert e_low.shape == (256,) and abs(float(e_low.norm()) - 1) < 1e-3
    assert float(e_low @ e_low2) > float(e_low @ e_high)


def test_short_segments_of_a_leakage_stream_are_no_ones():
    from hubbub.pipeline.speakers import DROPPED

    a = torch.nn.functional.normalize(torch.randn(16), dim=0)
    spans = [SegmentSpan(0, 0.0, 6.0), SegmentSpan(1, 2.0, 2.6), SegmentSpan(1, 8.0, 8.5)]
    labels = cluster_segments(spans, [a, None, None])
    # stream 1 has no segment long enough to embed: during person 0's speech it is leakage,
    # alone it is the nearest person
    assert labels == [0, DROPPED, 0]


def test_a_small_cluster_joins_the_nearest_person():
    torch.manual_seed(0)
    a, b = (torch.nn.functional.normalize(torch.randn(16), dim=0) for _ in range(2))
    near_a = torch.nn.functional.normalize(a + 0.9 * torch.nn.functional.normalize(torch.randn(16), dim=0), dim=0)
    spans = [SegmentSpan(0, 0.0, 5.0), SegmentSpan(1, 5.5, 10.0), SegmentSpan(0, 11.0, 12.5)]
    every = {"long_seconds": 0.0}  # cluster every embedded segment (the default)
    assert cluster_segments(spans, [a, b, near_a], ClusterConfig(threshold=0.05, min_cluster_seconds=0.0,
                                                                 **every)) == [0, 1, 2]
    assert cluster_segments(spans, [a, b, near_a], ClusterConfig(threshold=0.05, **every)) == [0, 1, 0]


def _at_distance(v: torch.Tensor, d: float, seed: int) -> torch.Tensor:
    """A unit vector at cosine distance ``d`` from the unit vector ``v``."""
    torch.manual_seed(seed)
    w = torch.randn(v.shape)
    w = torch.nn.functional.normalize(w - (w @ v) * v, dim=0)
    return (1 - d) * v + (1 - (1 - d) ** 2) ** 0.5 * w


def test_a_short_segment_joins_the_nearest_person_it_can_be():
    a = _at_distance(torch.nn.functional.normalize(torch.ones(16), dim=0), 0.0, 0)
    b = _at_distance(a, 0.9, 1)
    near_a = _at_distance(a, 0.3, 2)
    spans = [SegmentSpan(0, 0.0, 5.0), SegmentSpan(1, 5.5, 10.0), SegmentSpan(0, 11.0, 12.5)]
    # too short to found a person (long_seconds 4), near a (0.3 < assign_threshold 0.45): a's
    cfg = ClusterConfig(threshold=0.05, min_cluster_seconds=0.0, long_seconds=4.0)
    assert cluster_segments(spans, [a, b, near_a], cfg) == [0, 1, 0]
    # ... unless it is heard at once with a's segment from another stream: then it is no one's that is
    # near, and becomes a person of its own (labels in order of first appearance)
    spans[2] = SegmentSpan(1, 3.0, 4.5)
    assert cluster_segments(spans, [a, b, near_a], cfg) == [0, 2, 1]


def test_short_segments_no_one_claims_are_a_new_person():
    a = _at_distance(torch.nn.functional.normalize(torch.ones(16), dim=0), 0.0, 0)
    b = _at_distance(a, 0.7, 1)
    # one talker speaks long (a, 6 s), the other only in short turns (b, 4 x 2 s): b's turns are far from
    # a's centroid, so they do not join a but make a person of their own (8 s of speech)
    spans = [SegmentSpan(0, 0.0, 6.0)] + [SegmentSpan(0, 6.5 + 3 * k, 8.5 + 3 * k) for k in range(4)]
    emb = [a] + [_at_distance(b, 0.1, 10 + k) for k in range(4)]
    cfg = ClusterConfig(long_seconds=4.0, linkage="complete")
    assert cluster_segments(spans, emb, cfg) == [0, 1, 1, 1, 1]
    # with less than min_cluster_seconds of speech the new person merges into the nearest one
    assert cluster_segments(spans[:2], emb[:2], cfg) == [0, 0]


def test_one_person_split_across_two_streams_reads_as_one_voice():
    """Where two streams overlap and sound like one person, the quieter stream's part is cut
    (one voice there, read from the recording); two people who overlap keep both streams."""
    torch.manual_seed(0)
    a, b = (torch.nn.functional.normalize(torch.randn(16), dim=0) for _ in range(2))
    # stream 0: A throughout; stream 1: a copy of A at 2-6 s (split), then B at 10-14 s (a real overlap)
    regions = [[(0.0, 15.0)], [(2.0, 6.0), (10.0, 14.0)]]

    def embed(k, s, e):
        return a if k == 0 or s < 8 else b

    def level(k, s, e):
        return 1.0 if k == 0 else 0.5

    cfg = ClusterConfig(same_person=0.85)
    assert one_person_overlaps(regions, embed, level, cfg) == [[(0.0, 15.0)], [(10.0, 14.0)]]
    assert one_person_overlaps(regions, embed, level, ClusterConfig(same_person=1.0)) == regions  # off
    # the louder of the two keeps the stretch; what is left of a region shorter than min_piece goes
    assert one_person_overlaps(regions, embed, lambda k, s, e: 2.0 - k, cfg, min_piece=0.25)[1] == [(10.0, 14.0)]
    assert one_person_overlaps([[(0.0, 6.1)], [(2.0, 6.0)]], embed, lambda k, s, e: float(k), cfg) == \
        [[(0.0, 2.0)], [(2.0, 6.0)]]
    assert one_person_overlaps([[(1.9, 6.1)], [(2.0, 6.0)]], embed, lambda k, s, e: float(k), cfg) == \
        [[], [(2.0, 6.0)]]
    # an overlap shorter than min_seconds is not embedded, nor judged
    assert one_person_overlaps([[(0.0, 3.0)], [(2.5, 5.0)]], embed, level, cfg) == [[(0.0, 3.0)], [(2.5, 5.0)]]


def test_two_people_in_one_stream_become_two_speakers(tmp_path):
    """Lone talkers that the separator put in the same output are told apart by the clustering;
    one person in one stream keeps the streams as they are."""
    from hubbub.pipeline.pipeline import Pipeline

    sr = 8000
    mix = np.concatenate([np.full(sr * 5, 0.1), np.full(sr * 5, -0.1)]).astype("float32")
    path, outs = tmp_path / "mix.wav", [tmp_path / "spk1.wav", tmp_path / "spk2.wav"]
    sf.write(path, mix, sr)
    sf.write(outs[0], mix, sr)
    sf.write(outs[1], np.zeros_like(mix), sr)
    a, b = torch.eye(4)[0], torch.eye(4)[1]

    class Voices:  # a "speaker encoder" that hears the sign of the signal
        def embed(self, wav, sample_rate):
            return a if float(torch.as_tensor(wav).mean()) > 0 else b

    pipe = Pipeline(speaker_encoder=Voices())
    two = [[Segment(0.0, 4.9, "first talker"), Segment(5.1, 10.0, "second talker")], []]
    speakers = pipe._speakers(path, outs, sr, two, set(), 0, True)
    assert [[s.text for s in spk.segments] for spk in speakers] == [["first talker"], ["second talker"]]
    sf.write(outs[1], np.zeros_like(mix), sr)  # the files were reassembled per person
    sf.write(outs[0], mix, sr)
    one = [[Segment(0.0, 2.0, "first talker"), Segment(2.5, 4.9, "again")], []]
    speakers = pipe._speakers(path, outs, sr, one, set(), 0, True)
    assert len(speakers) == 2 and [s.text for s in speakers[0].segments] == ["first talker", "again"]
    assert not speakers[1].segments


def test_a_segment_another_voice_speaks_over_is_embedded_from_its_separated_stream(tmp_path):
    """Where two streams speak at once, the recording holds both voices even where the overlap
    was read from the recording: each segment is then embedded from its own separated stream,
    so the mixture does not come out as more persons."""
    from hubbub.pipeline.pipeline import Pipeline

    sr = 8000
    first, second = np.zeros(sr * 30, dtype="float32"), np.zeros(sr * 30, dtype="float32")
    first[: 10 * sr] = first[12 * sr : 20 * sr] = 0.1
    second[2 * sr : 8 * sr] = second[22 * sr :] = -0.1
    path, outs = tmp_path / "mix.wav", [tmp_path / "spk1.wav", tmp_path / "spk2.wav"]
    sf.write(path, first + second, sr)
    sf.write(outs[0], first, sr)
    sf.write(outs[1], second, sr)
    a, b, both = torch.eye(4)[0], torch.eye(4)[1], torch.eye(4)[2]

    class Voices:  # a "speaker encoder" that hears the sign of the signal, and a mixture as neither
        def embed(self, wav, sample_rate):
            mean = float(torch.as_tensor(wav).mean())
            return a if mean > 0.05 else b if mean < -0.05 else both

    pipe = Pipeline(speaker_encoder=Voices())
    streams = [[Segment(0.0, 10.0, "first talker"), Segment(12.0, 20.0, "first again")],
               [Segment(2.0, 8.0, "second talker"), Segment(22.0, 30.0, "second again")]]
    speakers = pipe._speakers(path, outs, sr, streams, set(), 0, True)
    assert [[s.text for s in spk.segments] for spk in speakers] == [
        ["first talker", "first again"], ["second talker", "second again"]]
