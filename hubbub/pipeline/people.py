"""The people heard in a recording, as every output shows them: speakers with words, numbered by first
speech, their voice files renamed or assembled to match, and the demo's details per person."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hubbub.pipeline.result import Segment, SpeakerResult

__all__ = ["assemble_voices", "maps_of_speakers", "people_heard", "relabel_details", "rename_streams"]


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
