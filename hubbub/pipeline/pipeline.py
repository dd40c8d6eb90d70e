"""Separate, then transcribe each voice: the one code path behind the CLI and the demo.

    >>> from hubbub.pipeline import Pipeline
    >>> pipe = Pipeline.from_pretrained()            # embedded default models
    >>> result = pipe("meeting.wav")
    >>> for speaker, seg in result.segments():
    ...     print(f"[{speaker}] {seg.start:.1f}-{seg.end:.1f} {seg.text}")
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import numpy as np
import torch

from hubbub.models.decoding import DecodingOptions
from hubbub.pipeline.audio import AudioError, SilentAudio, check_waveform, probe_audio, resample
from hubbub.pipeline.heap import steady_heap, trim_heap
from hubbub.pipeline.joining import claim_unheld, drop_voice_echoes, join_pieces, share_spans
from hubbub.pipeline.loaders import (
    DEFAULT_ASR,
    DEFAULT_OVERLAP_DETECTOR,
    PRECISIONS,
    load_asr,
    load_overlap_detector,
    model_name,
)
from hubbub.pipeline.people import (
    assemble_voices,
    maps_of_speakers,
    people_heard,
    relabel_details,
    rename_streams,
)
from hubbub.pipeline.regions import RegionConfig, file_levels, file_overlap, regions_from_levels
from hubbub.pipeline.result import Result, Segment, SpeakerResult, Word
from hubbub.pipeline.separate import (
    DEFAULT_CHUNK_SECONDS,
    DEFAULT_OVERLAP_SECONDS,
    DEFAULT_SEPARATOR,
    SeparationResult,
    load_separator,
    separate_file,
    separate_to_files,
)
from hubbub.pipeline.speakers import ClusterConfig
from hubbub.pipeline.turns import (
    MIXTURE,
    Piece,
    TurnConfig,
    join_lone,
    merge_intervals,
    plan_pieces,
    recording_stretches,
    unheld,
)

__all__ = ["DEFAULT_ASR", "DEFAULT_OVERLAP_DETECTOR", "PRECISIONS", "Pipeline", "assemble_voices", "load_asr",
           "load_overlap_detector", "maps_of_speakers", "people_heard"]

log = logging.getLogger(__name__)

#: regions decoded together in one ASR batch
ASR_BATCH = 8
#: every constructor keyword of :class:`Pipeline`, kept as an attribute of that name (:meth:`Pipeline.replace`)
SETTINGS = ("separator", "asr", "device", "chunk_seconds", "overlap_seconds", "decoding", "regions", "overlap_aware",
            "turns", "speaker_encoder", "clustering", "overlap_detector", "max_seconds", "names", "reading",
            "long_form", "reading_config")
#: how a recording's voices are read (``Pipeline(reading=...)``)
READINGS = ("turns", "whisper")
#: with ``details``, the reads of each voice's first pieces keep their maps (the demo shows one per speaker)
MAP_PIECES = 3


def _read_span(path, sample_rate: int, start: float, end: float) -> torch.Tensor:
    """Samples ``[start, end)`` seconds of a mono audio file."""
    import soundfile as sf

    a, b = int(start * sample_rate), int(end * sample_rate)
    data, _ = sf.read(str(path), start=a, stop=b, dtype="float32", always_2d=True)
    return torch.from_numpy(data.mean(axis=1))


class _Passthrough:
    """A one-voice stand-in separator at the file's own rate: the mixture itself (``speakers=1``)."""

    n_src = 1

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, None]


def _seconds(path) -> float:
    """The duration of an input (0 when it cannot be read: its error comes later, where it is read)."""
    try:
        return probe_audio(path).duration
    except (AudioError, OSError, RuntimeError, ValueError):
        return 0.0


@contextlib.contextmanager
def _encoder_maps(asr, store: list):
    """While active, every encoder pass of ``asr`` also computes its 2D-attention maps
    (``store`` gets one list of :class:`~hubbub.models.asr.TwoDMaps` per pass): the
    Speech-Transformer's encoder, or a Whisper model's time-frequency block (none: no maps)."""
    block = getattr(asr, "tf", None) if hasattr(asr, "logmel") else asr.encoder
    flag, pick = ("return_maps", lambda out: out[2]) if block is asr.encoder else ("need_weights", lambda out: [out[1]])

    def ask(module, args, kwargs):
        return args, {**kwargs, flag: True}

    def keep(module, args, kwargs, output):
        store.append(pick(output))

    if block is None:
        yield
        return
    hooks = [block.register_forward_pre_hook(ask, with_kwargs=True),
             block.register_forward_hook(keep, with_kwargs=True)]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


class Pipeline:
    """Separate a recording into voices, find where each speaks, transcribe it.

    Every setting is given here, once; the models come with theirs (attention
    windows are part of their configurations, see :meth:`from_pretrained`).

    Args:
        separator: a :class:`~hubbub.models.separator.Separator`, or None to
            transcribe the input as one voice.
        asr: a :class:`~hubbub.models.asr.SpeechTransformer`, or None to separate only.
        chunk_seconds, overlap_seconds: windowing of long recordings (see
            :func:`~hubbub.pipeline.separate.separate_stream`).
        decoding: how the ASR decodes (:class:`~hubbub.models.decoding.DecodingOptions`:
            greedy or beam search, Whisper's encoder padding, a Speech-Transformer's CTC
            weight and word LM); default: greedy.
        regions: where each voice speaks (:class:`~hubbub.pipeline.regions.RegionConfig`).
        overlap_aware: read a voice from the recording itself where it speaks alone
            and from its separated stream only where voices overlap
            (:mod:`~hubbub.pipeline.turns`); False reads every voice from its
            separated stream throughout.
        turns: how regions are cut at overlaps, how the stretches read from the recording are joined,
            and when a decode that stopped early reads on (:class:`~hubbub.pipeline.turns.TurnConfig`).
        speaker_encoder: a :class:`~hubbub.models.speaker.SpeakerEncoder` to label
            speakers as persons across the streams, or None: one speaker per stream.
        clustering: how segments are grouped by speaker (:class:`~hubbub.pipeline.speakers.ClusterConfig`).
        overlap_detector: an :class:`~hubbub.models.overlap.OverlapDetector` run on the
            recording: two separated streams speak at once only where it hears two voices
            (see :func:`~hubbub.pipeline.regions.regions_from_levels`); None: wherever both
            streams have sound.
        max_seconds: longer recordings are refused.
        reading: ``"turns"``, each voice's speech regions decoded piece by piece and joined by
            :mod:`~hubbub.pipeline.turns`; ``"whisper"``, the recording read whole by Whisper's
            long-form transcription (``long_form``: its
            :class:`~hubbub.models.whisper_longform.LongFormOptions`), each word given to the
            dominant separated voice, and overlaps read from the separated voices
            (:mod:`~hubbub.pipeline.reading`, ``reading_config``: its
            :class:`~hubbub.pipeline.reading.ReadingConfig`). Whisper models only.
    """

    def __init__(
        self,
        separator=None,
        asr=None,
        device: str = "cpu",
        chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS,
        overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
        decoding: DecodingOptions | None = None,
        regions: RegionConfig | None = None,
        overlap_aware: bool = True,
        turns: TurnConfig | None = None,
        speaker_encoder=None,
        clustering: ClusterConfig | None = None,
        overlap_detector=None,
        max_seconds: float | None = None,
        names: dict[str, str] | None = None,
        reading: str = "turns",
        long_form=None,
        reading_config=None,
    ) -> None:
        if reading not in READINGS:
            raise ValueError(f"reading must be one of {READINGS}, got {reading!r}")
        self.reading = reading
        self.long_form = long_form
        self.reading_config = reading_config
        self.separator = separator
        self.asr = asr
        self.device = device
        self.chunk_seconds = chunk_seconds or None
        self.overlap_seconds = overlap_seconds
        self.decoding = decoding or DecodingOptions()
        self.regions = regions or RegionConfig()
        self.overlap_aware = overlap_aware
        self.turns = turns or TurnConfig()
        self.speaker_encoder = speaker_encoder
        self.clustering = clustering or ClusterConfig()
        self.overlap_detector = overlap_detector
        self.max_seconds = max_seconds
        self.names = names or {}

    @classmethod
    def from_pretrained(
        cls, separator: str | os.PathLike | None = None, asr: str | os.PathLike | None = None,
        device: str = "cpu", load_asr_model: bool = True, window: str | None = None,
        asr_window: str | None = None, label_speakers: bool = True,
        overlap_detector: str | os.PathLike | None = None, precision: str = "float16", separate: bool = True,
        **kwargs,
    ) -> Pipeline:
        """Load the embedded defaults, or saved models by folder or embedded name.

        ``window`` / ``asr_window``: the separator's inter-chunk / the ASR encoder's
        attention, ``"global"`` or ``"local:W"`` (None: as saved); ``label_speakers``:
        load the speaker encoder, so that a label is one person throughout;
        ``overlap_detector``: a name or folder, ``"none"``, or None for the embedded one
        (:func:`load_overlap_detector`); ``precision``: the Whisper decoder's (:func:`load_asr`);
        ``separate=False``: no separator (the recording is read as one voice, ``--no-separation``),
        hence no speaker encoder and no overlap detector; the rest of the keywords go to the constructor.
        """
        sep = load_separator(separator, device=device, window=window) if separate else None
        rec = None
        if load_asr_model:
            try:
                rec = load_asr(asr, device=device, window=asr_window, precision=precision)
            except FileNotFoundError:
                if asr is not None:
                    raise
                log.warning("no embedded ASR model yet: the pipeline separates only (pass asr=... to transcribe)")
        names = {"separator": model_name(separator, DEFAULT_SEPARATOR)} if sep is not None else {}
        if rec is not None:
            names["asr"] = model_name(asr, DEFAULT_ASR)
        if label_speakers and sep is not None and "speaker_encoder" not in kwargs:
            from hubbub.models.speaker import SpeakerEncoder

            kwargs["speaker_encoder"] = SpeakerEncoder.load(device)
        detector = load_overlap_detector(overlap_detector, device) if sep is not None else None
        if detector is not None:
            names["overlap_detector"] = model_name(overlap_detector, DEFAULT_OVERLAP_DETECTOR)
        return cls(sep, rec, device=device, names=names, overlap_detector=detector, **kwargs)

    def replace(self, **changes) -> Pipeline:
        """A new pipeline with the same models and settings but ``changes`` (constructor keywords), as
        :func:`dataclasses.replace` does for a config: the models are shared, nothing is changed in place."""
        unknown = set(changes) - set(SETTINGS)
        if unknown:
            raise TypeError(f"Pipeline has no setting {sorted(unknown)}; settings: {', '.join(SETTINGS)}")
        return Pipeline(**{**{k: getattr(self, k) for k in SETTINGS}, **changes})

    @property
    def n_speakers(self) -> int:
        return self.separator.n_src if self.separator is not None else 1

    def _decode_spans(self, spans: list[tuple], detail: set[int] = frozenset(), progress=None) -> list[tuple]:
        """Decode ``(voice file, sample_rate, start, end)`` spans (:meth:`_decode_once`), and read
        on where a decode stopped early: Whisper may end its text before the end of its audio,
        mostly after a change of voice, so a span whose words end ``turns.read_on`` seconds or
        more before its end is decoded again from its last word (as Whisper's long-form
        transcription seeks on from its last timestamp), at most three times. Returns one
        ``(Segment or None, details or None)`` per span. ``progress(seconds)``: called after each
        batch of the first pass with the seconds of the spans it decoded."""
        out = self._decode_once(spans, detail, progress)
        todo = list(range(len(spans))) if self.turns.read_on > 0 else []
        for _ in range(3):
            rest, where = [], []
            for j in todo:
                seg = out[j][0]
                source, sr, start, end = spans[j]
                if seg is not None and seg.words and end - seg.words[-1].end >= self.turns.read_on:
                    rest.append((source, sr, seg.words[-1].end, end))
                    where.append(j)
            if not rest:
                break
            todo = []
            for j, (more, _) in zip(where, self._decode_once(rest)):
                if more is None or not more.words:
                    continue
                seg = out[j][0]
                words = seg.words + more.words
                out[j] = (Segment(seg.start, seg.end, " ".join(w.word for w in words), words), out[j][1])
                todo.append(j)
        return out

    def _decode_once(self, spans: list[tuple], detail: set[int] = frozenset(), progress=None) -> list[tuple]:
        """Decode ``(voice file, sample_rate, start, end)`` spans, ``ASR_BATCH`` at a time in
        order of length (little padding).

        Returns one ``(Segment or None, details or None)`` per span: None where nothing
        was said; details (:func:`~hubbub.pipeline.maps.asr_details`) for the spans
        in ``detail``, from the same encoder and decoder passes.
        """
        from hubbub.models.asr import TwoDMaps
        from hubbub.models.decoding import decode

        if self.asr is None or not spans:
            return [(None, None)] * len(spans)
        asr_sr = self.asr.sample_rate
        order = sorted(range(len(spans)), key=lambda i: spans[i][3] - spans[i][2], reverse=True)
        out: list[tuple] = [(None, None)] * len(spans)
        for i in range(0, len(order), ASR_BATCH):
            group = order[i : i + ASR_BATCH]
            pieces = [resample(_read_span(*spans[j]), spans[j][1], asr_sr) for j in group]
            lengths = torch.tensor([len(p) for p in pieces])
            batch = torch.nn.utils.rnn.pad_sequence(pieces, batch_first=True).to(self.device)
            want = any(j in detail for j in group)
            maps: list = []
            with _encoder_maps(self.asr, maps) if want else contextlib.nullcontext():
                hyps = decode(self.asr, batch, lengths, self.decoding, return_cross_attention=want)
            for b, (j, hyp) in enumerate(zip(group, hyps)):
                start, end = spans[j][2], spans[j][3]
                seg = None
                text = hyp.text.strip()
                if text:
                    words = tuple(Word(w.word, round(start + w.start, 3), round(start + w.end, 3))
                                  for w in hyp.words)
                    seg = Segment(start, end, text, words)
                info = None
                if j in detail:
                    from hubbub.pipeline.maps import asr_details

                    one = [TwoDMaps(m.time[b : b + 1], m.freq[b : b + 1]) for m in (maps[0] if maps else [])]
                    info = asr_details(self.asr, one, hyp, hyp.cross_attention.shape[-1], offset=start)
                out[j] = (seg, info)
            del batch, hyps, maps, pieces
            trim_heap()
            if progress is not None:
                progress(sum(spans[j][3] - spans[j][2] for j in group))
        return out

    def _separator_view(self, path, store: dict):
        """The ``details`` hook of :func:`~hubbub.pipeline.separate.separate_to_files` that puts
        :func:`~hubbub.pipeline.maps.separator_details` of the first window into ``store["separator"]``;
        None when that window is too long for its attention weights."""
        from hubbub.pipeline.maps import separator_details, separator_seconds_limit

        cfg = self.separator.config
        if not all(hasattr(cfg, k) for k in ("chunk_size", "inter_window", "n_heads", "n_blocks")):
            return None  # not the dual-path separator: no maps to show
        limit = separator_seconds_limit(cfg)
        if limit is not None and min(self.chunk_seconds or float("inf"), probe_audio(path).duration) > limit:
            return None

        def keep(model, x, output) -> None:
            store["separator"] = separator_details(model, x, output)

        return keep

    def transcribe_to_dir(self, path: str | os.PathLike, voices_dir: str | os.PathLike,
                          speakers: int | None = None, progress=None, details: bool = False) -> Result:
        """Separate and transcribe ``path``, with the voices written to ``voices_dir/spkN.wav``
        (see :meth:`transcribe_many`). ``Result.speakers[k].waveform`` is None and ``.audio`` the file;
        digital silence gives an empty result (no speakers, nothing written)."""
        result = self.transcribe_many([(path, voices_dir)], speakers, progress, details)[0]
        if isinstance(result, Exception):
            raise result
        return result

    def transcribe_many(self, items: list[tuple[str | os.PathLike, str | os.PathLike]],
                        speakers: int | None = None, progress=None, details: bool = False
                        ) -> list[Result | Exception]:
        """The pipeline, for several ``(path, voices_dir)`` at once; every entry point ends here.

        Each file is separated on its own by the one streaming separator
        (:func:`~hubbub.pipeline.separate.separate_to_files`, voices written to its
        folder), speech regions are found from those files, then the regions of all
        files are decoded together, so short files share ASR batches. Memory does
        not grow with the length of a recording.

        ``details``: fill ``Result.details`` with what the demo draws, from the same
        forward passes (see :meth:`__call__`).

        ``progress(done, total)``: seconds of audio of the whole call, separation and reading
        together (separating a file earns half of its seconds, reading its speech the other
        half; without separation, a tenth and the rest).

        A file of digital silence is valid audio whose right transcript is empty: its
        Result has no speakers (and no voice files), with the file's duration and rate.

        Returns one Result per item, or the error (AudioError, OSError, ValueError,
        RuntimeError) that stopped that item; the others are done all the same.
        """
        steady_heap()
        separate = speakers != 1 and self.separator is not None
        if separate and speakers not in (None, self.separator.n_src):
            raise ValueError(f"the separator splits {self.separator.n_src} voices, not {speakers}")
        models = {k: v for k, v in self.names.items() if (k != "separator" or separate)}
        results: list = [None] * len(items)
        voices: dict[int, tuple] = {}  # item -> (voice files, rate, duration, regions per voice, frame levels)
        recorded: dict[int, list] = {}  # item -> the recording's own speech regions (overlap-aware)
        evidence: dict[int, torch.Tensor] = {}  # item -> the overlap detector's probability per level frame
        extra: dict[int, dict] = {i: {} for i in range(len(items))} if details else {}
        seconds = [_seconds(path) for path, _ in items]
        total, share, done = sum(seconds), (0.5 if separate else 0.1), [0.0]

        def report(at: float) -> None:
            done[0] = min(total, max(done[0], at))
            if progress is not None:
                progress(done[0], total)

        for i, (path, voices_dir) in enumerate(items):
            base = done[0]
            try:
                voices_dir = Path(voices_dir)
                voices_dir.mkdir(parents=True, exist_ok=True)
                model = self.separator if separate else _Passthrough(probe_audio(path).sample_rate)
                outs = [voices_dir / f"spk{k}.wav" for k in range(1, model.n_src + 1)]
                view = self._separator_view(path, extra[i]) if details and separate else None
                sr = separate_to_files(model, path, outs, self.chunk_seconds, self.overlap_seconds,
                                       self.device, self.max_seconds,
                                       lambda a, b, i=i, base=base: report(base + share * seconds[i] * a / max(b, 1)),
                                       view)
                levels, duration, leakage, agreement = file_levels(outs, self.regions)
                overlap = None
                if separate and len(outs) > 1 and self.overlap_detector is not None:
                    overlap = file_overlap(path, self.overlap_detector, levels.shape[-1], self.regions.hop)
                found = regions_from_levels(levels, duration, self.regions, leakage, agreement, overlap)
                if overlap is not None:
                    evidence[i] = overlap
                if separate:
                    found = self._one_person(outs, sr, found, levels)
                if separate and self.overlap_aware and len(outs) > 1 and self.turns.lone_stretches == "recording":
                    recorded[i] = self._recording_regions(path)
                    found = claim_unheld(found, unheld(found, recorded[i], self.turns), levels, self.regions.hop)
                voices[i] = (outs, sr, duration, found, levels)
                if details:
                    extra[i].update(regions=found, leakage=leakage)
                    if overlap is not None:
                        extra[i]["overlap"] = overlap
                    if "separator" in extra[i]:
                        extra[i]["separator"]["truncated"] = extra[i]["separator"]["seconds"] < duration - 1e-3
            except SilentAudio:
                results[i] = self._silent_result(path, models, details)
            except (AudioError, OSError, RuntimeError, ValueError) as err:
                results[i] = err
            if i not in voices:  # nothing to read: the whole file is done
                report(base + seconds[i])
        if self.reading == "whisper" and self.asr is not None:
            for i, (outs, sr, duration, _, levels) in voices.items():
                base = done[0]
                try:
                    persons = self._read_whole(items[i][0], outs, sr, duration, levels, i, separate,
                                               lambda a, b, i=i, base=base: report(base + (1 - share) * seconds[i]
                                                                                   * a / max(b, 1e-9)))
                except (AudioError, OSError, RuntimeError, ValueError) as err:
                    results[i] = err
                    continue
                heard = people_heard(persons)
                if details:
                    relabel_details(extra[i], heard, [])
                results[i] = Result(str(items[i][0]), duration, sr, models, heard, extra.get(i, {}))
            report(total)
            return results
        spans, members, others, pieces, owners, firsts = [], [], [], [], [], set()
        for i, (outs, sr, _, found, _) in voices.items():
            plan = self._plan(found, separate and len(outs) > 1, evidence.get(i))
            first = len(pieces)
            pieces += plan
            owners += [(i, piece.voice) for piece in plan]
            # the separated voices piece by piece; the recording in its own speech regions (or in
            # stretches that join its lone pieces)
            read_apart = [(piece.start, piece.end) for piece in plan if piece.source != MIXTURE]
            for j, piece in enumerate(plan):
                if piece.source != MIXTURE:
                    spans.append((outs[piece.voice], sr, piece.decode_start, piece.decode_end))
                    members.append([first + j])
                    others.append([])
            if i in recorded:
                stretches = recording_stretches(plan, recorded[i], self.turns)
            else:
                stretches = join_lone(plan, self.turns)
            for start, end, joined in stretches:
                spans.append((items[i][0], sr, start, end))
                members.append([first + j for j in joined])
                others.append(read_apart)
            for k in {p.voice for p in plan}:  # details: each voice's first pieces, for the maps of their reads
                firsts |= {first + j for j in [j for j, p in enumerate(plan) if p.voice == k][:MAP_PIECES]}
        detail = {n for n, m in enumerate(members) if firsts & set(m)} if details else set()
        reading = sum(seconds[i] for i in voices) * (1 - share)
        spoken = sum(end - start for _, _, start, end in spans)
        try:
            decoded = self._decode_spans(spans, detail, lambda s: report(done[0] + reading * s / spoken))
        except (OSError, RuntimeError, ValueError) as err:  # cannot tell which item: all of them failed
            for i in voices:
                results[i] = err
            return results
        reads: dict[int, list[dict]] = {}  # item -> the maps of its reads in ``detail``
        for n in sorted(detail):
            info = decoded[n][1]
            if info is not None:
                i = owners[members[n][0]][0]
                info["source"] = "recording" if spans[n][0] == items[i][0] else "separated voice"
                reads.setdefault(i, []).append(info)
        decoded = share_spans(decoded, members, pieces, others, self.turns.attribute == "sentence")
        segments: dict[tuple[int, int], list[Segment]] = {}
        for owner, seg in join_pieces(owners, pieces, [d[0] for d in decoded], voices):
            segments.setdefault(owner, []).append(seg)
        for i, (outs, _, _, _, levels) in voices.items():
            drop_voice_echoes(segments, i, len(outs), levels, self.regions.hop)
        mixed = {(i, p.voice, *voices[i][3][p.voice][p.region]) for (i, _), p in zip(owners, pieces)
                 if p.source != "mixture"}  # regions read (in part) from their separated stream
        for i, (outs, sr, duration, _, _) in voices.items():
            streams = [sorted(segments.get((i, k), []), key=lambda s: s.start) for k in range(len(outs))]
            try:
                speakers_out = self._speakers(items[i][0], outs, sr, streams, mixed, i, separate)
            except (OSError, RuntimeError, ValueError) as err:
                results[i] = err
                continue
            if self.asr is not None:  # without an ASR model there are no words: the voices are the streams
                speakers_out = people_heard(speakers_out)
            if details:
                relabel_details(extra[i], speakers_out, streams)
                extra[i]["asr"] = maps_of_speakers(speakers_out, reads.get(i, []))
            results[i] = Result(str(items[i][0]), duration, sr, models, speakers_out, extra.get(i, {}))
        report(total)
        return results

    def _read_whole(self, path, outs: list[Path], sr: int, duration: float, levels: torch.Tensor, item: int,
                    separate: bool, progress=None) -> list[SpeakerResult]:
        """``reading="whisper"``: the people heard, each with its words (:mod:`~hubbub.pipeline.reading`).

        The recording is read whole; each word goes to the separated stream that is loudest over it
        (``levels``), the streams' words become segments, and the segments are clustered into persons
        by the speaker encoder as in ``reading="turns"`` (:meth:`_speakers`), each person with a voice
        file. Where two persons' segments meet, their voice files are read around the overlap and the
        quieter one takes its words from there."""
        from hubbub.models.whisper_longform import transcribe_long
        from hubbub.pipeline.audio import load_audio
        from hubbub.pipeline.reading import (
            ReadingConfig,
            assign_words,
            dominant_stream,
            overlaps,
            segments_of,
            take_overlap_words,
        )

        if not hasattr(self.asr, "logmel"):
            raise ValueError("reading='whisper' needs a Whisper ASR model")
        cfg = self.reading_config or ReadingConfig()
        wav, _ = load_audio(path, sample_rate=self.asr.sample_rate)
        read = [list(seg.words) for seg in transcribe_long(self.asr, wav, self.long_form, progress)]
        hop = self.regions.hop
        streams: list[list[Word]] = [[] for _ in outs]
        for words, labels in zip(read, assign_words(read, levels, hop)):  # words to streams, streams to persons
            for w, k in zip(words, labels):
                streams[k].append(w)
        persons = self._speakers(path, outs, sr, [segments_of(ws, cfg.pause) for ws in streams], set(), item,
                                 separate)
        own = [[w for g in p.segments for w in g.words] for p in persons]
        files = [Path(p.audio) for p in persons]
        n = len(persons)
        if separate and n > 1:
            levels = file_levels(files, self.regions)[0]
            spans = overlaps([[(g.start, g.end) for g in p.segments] for p in persons], cfg.min_overlap)
            reads = [(files[k], sr, max(0.0, a - cfg.context), min(duration, b + cfg.context))
                     for a, b in spans for k in range(n)]
            decoded = self._decode_once(reads)
            for m, span in enumerate(spans):
                apart = {k: list(decoded[m * n + k][0].words) if decoded[m * n + k][0] else [] for k in range(n)}
                own = take_overlap_words(own, apart, span, dominant_stream(*span, levels, hop))
        return [SpeakerResult(p.id, None, segments_of(ws, cfg.pause), p.audio) for p, ws in zip(persons, own)]

    def _recording_regions(self, path) -> list[tuple[float, float]]:
        """The recording's own speech regions, found as for the ASR alone (``--no-separation``):
        from its levels, one stream."""
        levels, duration, _, _ = file_levels([path], self.regions)
        return regions_from_levels(levels, duration, self.regions)[0]

    def _one_person(self, outs: list[Path], sr: int, found: list[list[tuple[float, float]]],
                    levels: torch.Tensor) -> list[list[tuple[float, float]]]:
        """The voice regions without the overlaps where the separator split one person
        across its streams (:func:`~hubbub.pipeline.speakers.one_person_overlaps`; needs
        the speaker encoder)."""
        if self.speaker_encoder is None or len(outs) < 2:
            return found
        from hubbub.pipeline.speakers import one_person_overlaps

        hop = self.regions.hop

        def embed(k: int, start: float, end: float) -> torch.Tensor:
            return self.speaker_encoder.embed(_read_span(outs[k], sr, start, end), sr)

        def level(k: int, start: float, end: float) -> float:
            a = min(int(start / hop), levels.shape[1] - 1)
            return float(torch.pow(10.0, levels[k, a : max(a + 1, int(end / hop))] / 10).sum())

        return one_person_overlaps(found, embed, level, self.clustering, self.regions.min_speech)

    def _speakers(self, path, outs: list[Path], sr: int, streams: list[list[Segment]], mixed: set, item: int,
                  separated: bool) -> list[SpeakerResult]:
        """The recording's speakers from its streams' segments: one per stream, or, with a
        speaker encoder, one per person (:func:`~hubbub.pipeline.speakers.cluster_segments`;
        a person heard in more than one stream gets a voice file of its own)."""
        plain = [SpeakerResult(f"spk{k + 1}", None, segs, audio=str(out))
                 for k, (out, segs) in enumerate(zip(outs, streams))]
        if self.speaker_encoder is None or not separated or not any(streams):
            return plain  # nothing to relabel: no encoder, or no words
        # (words in one stream may still be two people: lone talkers of a conversation that the separator
        # put in the same output)
        from hubbub.pipeline.speakers import SegmentSpan, cluster_segments

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
                apart = (item, k, seg.start, seg.end) in mixed or shared >= self.turns.min_overlap
                source = outs[k] if apart else path
                long = span.duration >= self.clustering.min_seconds
                embeddings.append(self.speaker_encoder.embed(_read_span(source, sr, seg.start, seg.end), sr)
                                  if long else None)
                spans.append(span)
                segs.append(seg)
        labels = cluster_segments(spans, embeddings, self.clustering)
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

    def _plan(self, found: list[list[tuple[float, float]]], separated: bool, overlap: torch.Tensor | None = None):
        """The pieces to decode for one recording's voice regions: cut at overlaps when
        overlap-aware (``overlap``: the overlap detector's probability per level frame),
        else each region whole from its voice's stream."""
        if separated and self.overlap_aware:
            return plan_pieces(found, self.turns, overlap, self.regions.hop)
        return [Piece(k, r, s, e, "voice", s, e) for k, regions in enumerate(found) for r, (s, e) in enumerate(regions)]

    @staticmethod
    def _silent_result(path, models: dict[str, str], details: bool) -> Result:
        """The result of a file of digital silence: no speakers, the file's duration and rate."""
        log.info("%s: digital silence: no speakers", path)
        info = probe_audio(path)
        extra = {"regions": [], "leakage": []} if details else {}
        return Result(str(path), info.duration, info.sample_rate, dict(models), [], extra)

    # ---- the whole thing ---------------------------------------------------------------
    def __call__(
        self,
        audio: str | os.PathLike | torch.Tensor | np.ndarray,
        sample_rate: int | None = None,
        speakers: int | None = None,
        progress=None,
        details: bool = False,
    ) -> Result:
        """Separate and transcribe ``audio`` (a path, or a waveform with its rate).

        The same path as ``hubbub transcribe`` (:meth:`transcribe_many`), with the
        voices written to a temporary folder and read back into
        ``Result.speakers[k].waveform``. ``speakers=1`` skips separation; otherwise
        it must match the separator. Digital silence (a file, or a waveform of zeros)
        gives an empty result: no speakers.

        ``details=True`` fills ``Result.details`` from the same forward passes::

            regions    per voice, the speech regions [(start, end)] (s)
            leakage    per voice, True when its sound only followed another voice's (no speaker)
            separator  masks and attention of the first window (maps.separator_details;
                       absent when that window is too long for its attention weights)
            asr        {speaker id: maps.asr_details of the read that gave its first words,
                       with "source" (recording or separated voice) and "kept" (per word of
                       the read, whether the speaker's transcript has it)}
        """
        import tempfile

        import soundfile as sf

        with tempfile.TemporaryDirectory(prefix="hubbub-") as tmp:
            path = audio if isinstance(audio, (str, os.PathLike)) else self._waveform_file(audio, sample_rate, tmp)
            result = self.transcribe_to_dir(path, Path(tmp) / "voices", speakers, progress, details)
            for spk in result.speakers:
                spk.waveform = torch.from_numpy(sf.read(spk.audio, dtype="float32")[0])
                spk.audio = None
        if not isinstance(audio, (str, os.PathLike)):
            result.audio = None
        return result

    def _waveform_file(self, audio, sample_rate: int | None, folder: str) -> Path:
        """A checked mono waveform written losslessly (float WAV) into ``folder``."""
        import soundfile as sf

        if sample_rate is None:
            raise ValueError("sample_rate is required when passing a waveform")
        wav = torch.as_tensor(np.asarray(audio, dtype=np.float32) if not torch.is_tensor(audio) else audio).float()
        if wav.dim() == 2:
            wav = wav.mean(dim=0 if wav.shape[0] < wav.shape[1] else 1)
        try:
            check_waveform(wav, sample_rate, None, min_seconds=0.05, max_seconds=self.max_seconds)
        except SilentAudio:
            pass  # valid audio (its other checks passed): the file path gives it an empty result
        path = Path(folder) / "input.wav"
        sf.write(str(path), wav.numpy(), sample_rate, subtype="FLOAT")
        return path

    def separate_file(self, path: str | os.PathLike, progress=None) -> SeparationResult:
        """Separated voices of a file, at its sample rate (the same stream as everywhere)."""
        model = self.separator if self.separator is not None else _Passthrough(probe_audio(path).sample_rate)
        return separate_file(path, model, self.chunk_seconds, self.overlap_seconds, self.device, self.max_seconds,
                             progress)

    def transcribe_file(self, path: str | os.PathLike, speakers: int | None = 1) -> str:
        """The text of a file: one voice by default; with ``speakers=None``,
        every voice as ``[spkN]: text`` lines in time order."""
        result = self(path, speakers=speakers)
        if speakers == 1:
            return result.speakers[0].text
        return "\n".join(f"[{spk}]: {seg.text}" for spk, seg in result.segments())
