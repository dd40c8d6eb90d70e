"""The people heard in a recording, as every output shows them: speakers with words, numbered by first
speech, their voice files renamed or assembled to match, and the demo's details per person."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hubbub.pipeline.regions import RegionConfig
from hubbub.pipeline.result import Segment, SpeakerResult
from hubbub.pipeline.spans import read_span
from hubbub.pipeline.speakers import ClusterConfig, SegmentSpan, cluster_segments, one_person_overlaps
from hubbub.pipeline.turns import merge_intervals

__all__ = ["assemble_voices", "label_persons", "maps_of_speakers", "one_person", "people_heard", "relabel_details",
           "rename_streams"]


def relabel_details(extra: dict, speakers: list[SpeakerResult], streams: list[list[Segment]]) -> None:
    """Details (what the demo draws) per speaker rather than per stream, when the speakers are
    not the streams in order (clustering relabelled them, or :func:`people_heard` dropped or
    renumbered some): each speaker's regions are its segments."""
    if [spk.segments for spk in speakers] == streams:
        return  # one speaker per stream, in stream order: nothing changed
    extra["regions"] = [[(seg.start, seg.end) for seg in spk.segments] for spk in speakers]
    extra["leakage"] = [False] * len(speakers)


def maps_of_speakers(speakers: list[SpeakerResult], reads: list[dict]) -> dict[str, dict]:
    """Per speaker, the ASR maps (:func:`~hubbub.pipeline.maps.asr_details`) of the read that gave
    the most words of its first segment (ties: the earliest read), so that the map's tokens are
    the words on screen. Each chosen map gets ``kept``: per word of the read, whether it is in
    this speaker's transcript (in an overlap, a read of the recording also hears the other voice,
    whose words go to that speaker). A speaker none of whose first words came from a kept read
    has no map."""
    out = {}
    for spk in speakers:
        if not spk.segments:
            continue
        mine = {(w.word, w.start) for seg in spk.segments for w in seg.words}
        first = {(w.word, w.start) for w in spk.segments[0].words}
        scored = [(len(first & {(w, a) for w, a, _ in r["words"]}), -r["offset"], k)
                  for k, r in enumerate(reads)]
        best = max(scored, default=(0, 0.0, -1))
        if best[0] > 0:
            chosen = dict(reads[best[2]])
            chosen["kept"] = [(w, a) in mine for w, a, _ in chosen["words"]]
            out[spk.id] = chosen
    return out


def rename_streams(outs: list[Path], order: list[int]) -> list[Path]:
    """Speaker ``c``'s voice is stream ``order[c]``: rename the files to ``spk{c + 1}.wav``
    (streams that are no one's are removed). Returns the speakers' files."""
    tmp = [outs[k].with_name(f".speaker{c + 1}.wav.part") for c, k in enumerate(order)]
    for k, t in zip(order, tmp):
        outs[k].replace(t)
    for k, p in enumerate(outs):
        if k not in order:
            p.unlink(missing_ok=True)
    final = [outs[0].with_name(f"spk{c + 1}.wav") for c in range(len(order))]
    for t, f in zip(tmp, final):
        t.replace(f)
    return final


def people_heard(speakers: list[SpeakerResult]) -> list[SpeakerResult]:
    """The people heard, as every output shows them: a speaker with no words is no one (its voice
    file, if any, is removed), each speaker's segments (those with words) are in time order, and
    speakers are numbered ``spk1, spk2, ...`` in order of first speech (voice files renamed to match)."""
    kept = []
    for spk in speakers:
        segs = sorted((g for g in spk.segments if g.text.strip()), key=lambda g: (g.start, g.end))
        if segs:
            kept.append(SpeakerResult(spk.id, spk.waveform, segs, spk.audio))
        elif spk.audio:
            Path(spk.audio).unlink(missing_ok=True)
    kept.sort(key=lambda spk: (spk.segments[0].start, spk.segments[0].end))
    files = [Path(spk.audio) if spk.audio else None for spk in kept]
    parts = [f.with_name(f".speaker{c + 1}.wav.part") if f else None for c, f in enumerate(files)]
    for f, t in zip(files, parts):
        if f is not None:
            f.replace(t)
    out = []
    for c, (spk, t) in enumerate(zip(kept, parts)):
        final = None
        if t is not None:
            final = t.with_name(f"spk{c + 1}.wav")
            t.replace(final)
        out.append(SpeakerResult(f"spk{c + 1}", spk.waveform, spk.segments, str(final) if final else None))
    return out


def assemble_voices(outs: list[Path], spans_per_speaker: list[list]) -> list[Path]:
    """Write one voice file per speaker from the stream files ``outs``: each speaker's
    spans (``.stream``, ``.start``, ``.end``) copied from their streams, silence
    elsewhere, block by block. The files take the streams' names (``spk1.wav``, ...);
    the stream files are removed. Returns the speakers' files."""
    import soundfile as sf

    folder = outs[0].parent
    info = sf.info(str(outs[0]))
    sr, total = info.samplerate, info.frames
    tmp = [folder / f".speaker{c + 1}.wav.part" for c in range(len(spans_per_speaker))]
    sources = [sf.SoundFile(str(p)) for p in outs]
    block = 1 << 16
    try:
        for path, spans in zip(tmp, spans_per_speaker):
            with sf.SoundFile(str(path), "w", samplerate=sr, channels=1, subtype="FLOAT", format="WAV") as dst:
                pos = 0
                for sp in sorted(spans, key=lambda s: s.start):
                    a, b = max(pos, int(sp.start * sr)), min(total, int(sp.end * sr))
                    if b <= a:
                        continue
                    while pos < a:
                        dst.write(np.zeros(min(block, a - pos), dtype=np.float32))
                        pos = min(a, pos + block)
                    src = sources[sp.stream]
                    src.seek(a)
                    while pos < b:
                        x = src.read(min(block, b - pos), dtype="float32", always_2d=True)[:, 0]
                        if not len(x):
                            break
                        dst.write(x)
                        pos += len(x)
                while pos < total:
                    dst.write(np.zeros(min(block, total - pos), dtype=np.float32))
                    pos = min(total, pos + block)
    finally:
        for f in sources:
            f.close()
    for p in outs:
        p.unlink()
    final = [folder / f"spk{c + 1}.wav" for c in range(len(spans_per_speaker))]
    for t, f in zip(tmp, final):
        t.replace(f)
    return final


def one_person(encoder, clustering: ClusterConfig, regions: RegionConfig, outs: list[Path], sr: int,
               found: list[list[tuple[float, float]]], levels: torch.Tensor) -> list[list[tuple[float, float]]]:
    """The voice regions without the overlaps where the separator split one person
    across its streams (:func:`~hubbub.pipeline.speakers.one_person_overlaps`; needs
    the speaker ``encoder``; ``levels``: the streams' levels on ``regions.hop`` frames)."""
    if encoder is None or len(outs) < 2:
        return found
    hop = regions.hop

    def embed(k: int, start: float, end: float) -> torch.Tensor:
        return encoder.embed(read_span(outs[k], sr, start, end), sr)

    def level(k: int, start: float, end: float) -> float:
        a = min(int(start / hop), levels.shape[1] - 1)
        return float(torch.pow(10.0, levels[k, a : max(a + 1, int(end / hop))] / 10).sum())

    return one_person_overlaps(found, embed, level, clustering, regions.min_speech)


def label_persons(encoder, clustering: ClusterConfig, min_overlap: float, path, outs: list[Path], sr: int,
                  streams: list[list[Segment]], mixed: set, item: int, separated: bool) -> list[SpeakerResult]:
    """The recording's speakers from its streams' segments: one per stream, or, with a
    speaker ``encoder``, one per person (:func:`~hubbub.pipeline.speakers.cluster_segments`;
    a person heard in more than one stream gets a voice file of its own). A segment in ``mixed``
    (``(item, stream, start, end)``) or sharing ``min_overlap`` seconds with another stream is embedded
    from its separated stream, else from the recording ``path``."""
    plain = [SpeakerResult(f"spk{k + 1}", None, segs, audio=str(out))
             for k, (out, segs) in enumerate(zip(outs, streams))]
    if encoder is None or not separated or not any(streams):
        return plain  # nothing to relabel: no encoder, or no words
    # (words in one stream may still be two people: lone talkers of a conversation that the separator
    # put in the same output)
    spans, segs, embeddings = [], [], []
    for k, stream in enumerate(streams):
        # where another stream speaks too (an overlap read from the recording as well), the recording
        # holds two voices: the segment is embedded from its separated stream. 48 conversations of
        # training speakers: cpWER 40.2 % in all against 40.3 % from the recording, DER 18.2 against
        # 17.9 % (docs/notes/runs/conversation-tuning-embed.md)
        others = merge_intervals([(g.start, g.end) for j, st in enumerate(streams) if j != k for g in st])
        for seg in stream:
            span = SegmentSpan(k, seg.start, seg.end)
            shared = sum(max(0.0, min(seg.end, e) - max(seg.start, s)) for s, e in others)
            apart = (item, k, seg.start, seg.end) in mixed or shared >= min_overlap
            source = outs[k] if apart else path
            long = span.duration >= clustering.min_seconds
            embeddings.append(encoder.embed(read_span(source, sr, seg.start, seg.end), sr)
                              if long else None)
            spans.append(span)
            segs.append(seg)
    labels = cluster_segments(spans, embeddings, clustering)
    n = max(labels) + 1  # segments labelled DROPPED (leakage) are no one's
    if n <= 0 or (n == 1 and sum(bool(st) for st in streams) == 1):
        return plain  # one person, as the streams already say
    per = [[(spans[j], segs[j]) for j in range(len(spans)) if labels[j] == c] for c in range(n)]
    stream_of = [{sp.stream for sp, _ in members} for members in per]
    if all(len(s) == 1 for s in stream_of) and len({next(iter(s)) for s in stream_of}) == n:
        paths = rename_streams(outs, [next(iter(s)) for s in stream_of])  # one stream per person
    else:
        paths = assemble_voices(outs, [[sp for sp, _ in members] for members in per])
    return [SpeakerResult(f"spk{c + 1}", None, [g for _, g in members], audio=str(paths[c]))
            for c, members in enumerate(per)]
