"""Separate, then transcribe each voice: the one code path behind the CLI and the demo.

    >>> from hubbub.pipeline import Pipeline
    >>> pipe = Pipeline.from_pretrained()            # embedded default models
    >>> result = pipe("meeting.wav")
    >>> for speaker, seg in result.segments():
    ...     print(f"[{speaker}] {seg.start:.1f}-{seg.end:.1f} {seg.text}")
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from hubbub.pipeline.audio import AudioError, SilentAudio, check_waveform, probe_audio
from hubbub.pipeline.config import MODEL_FIELDS, RUN_FIELDS, PipelineConfig
from hubbub.pipeline.heap import steady_heap
from hubbub.pipeline.joining import claim_unheld, drop_voice_echoes, join_pieces, share_spans
from hubbub.pipeline.loaders import load_asr, load_overlap_detector
from hubbub.pipeline.people import (
    assemble_voices,
    label_persons,
    maps_of_speakers,
    one_person,
    people_heard,
    relabel_details,
)
from hubbub.pipeline.regions import file_levels, file_overlap, regions_from_levels
from hubbub.pipeline.result import Result, Segment, SpeakerResult
from hubbub.pipeline.separate import (
    SeparationResult,
    load_separator,
    separate_file,
    separate_to_files,
)
from hubbub.pipeline.spans import decode_spans, read_on
from hubbub.pipeline.turns import (
    MIXTURE,
    Piece,
    join_lone,
    plan_pieces,
    recording_stretches,
    unheld,
)

__all__ = ["Pipeline", "PipelineConfig", "assemble_voices", "load_asr", "load_overlap_detector", "maps_of_speakers",
           "people_heard"]

log = logging.getLogger(__name__)

#: with ``details``, the reads of each voice's first pieces keep their maps (the demo shows one per speaker)
MAP_PIECES = 3


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


class Pipeline:
    """Separate a recording into voices, find where each speaks, transcribe it.

    Every setting is given here, once, in a :class:`~hubbub.pipeline.config.PipelineConfig`
    (``config``, or its fields as keywords); the models come with theirs (attention windows are
    part of their configurations). :meth:`from_pretrained` loads the models a config names;
    :meth:`replace` gives the same models with other settings. Settings are read as attributes
    (``pipe.decoding``, ``pipe.turns``), never changed in place.

    Args:
        separator: a :class:`~hubbub.models.separator.Separator`, or None to
            transcribe the input as one voice.
        asr: a :class:`~hubbub.models.whisper.WhisperASR`, or None to separate only.
        config: how to run them (:class:`~hubbub.pipeline.config.PipelineConfig`); keyword
            ``settings`` replace its fields.
        overlap_detector: an :class:`~hubbub.models.overlap.OverlapDetector` run on the
            recording: two separated streams speak at once only where it hears two (see
            :func:`~hubbub.pipeline.regions.regions_from_levels`); None: wherever both
            streams have sound.
        speaker_encoder: a :class:`~hubbub.models.speaker.SpeakerEncoder` to label
            speakers as persons across the streams, or None: one speaker per stream.
        names: what each model is called in outputs (``{"separator": ..., "asr": ...}``).

    ``reading``: ``"turns"``, each voice's speech regions decoded piece by piece and joined by
    :mod:`~hubbub.pipeline.turns`; ``"whisper"``, the recording read whole by Whisper's long-form
    transcription, each word given to the dominant separated voice, and overlaps read from the
    separated voices (:mod:`~hubbub.pipeline.reading`).
    """

    def __init__(
        self,
        separator=None,
        asr=None,
        config: PipelineConfig | None = None,
        *,
        overlap_detector=None,
        speaker_encoder=None,
        names: dict[str, str] | None = None,
        **settings,
    ) -> None:
        self.config = (config or PipelineConfig()).replace(**settings) if settings else (config or PipelineConfig())
        self.separator = separator
        self.asr = asr
        self.overlap_detector = overlap_detector
        self.speaker_encoder = speaker_encoder
        self.names = dict(names or {})

    def __getattr__(self, name: str):
        if name in RUN_FIELDS or name == "device":  # the settings are the config's
            return getattr(self.__dict__["config"], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @classmethod
    def from_pretrained(cls, config: PipelineConfig | None = None, **settings) -> Pipeline:
        """Load the models ``config`` names (embedded defaults where it names none) and build the
        pipeline; keyword ``settings`` replace the config's fields first:
        ``Pipeline.from_pretrained(asr="whisper-base", reading="whisper")``.

        ``separate=False`` loads no separator (the recording is read as one voice), hence no speaker
        encoder and no overlap detector; ``transcribe=False`` loads no ASR.
        """
        from hubbub.pipeline.defaults import DEFAULT_ASR, DEFAULT_OVERLAP_DETECTOR, DEFAULT_SEPARATOR

        config = (config or PipelineConfig()).replace(**settings) if settings else (config or PipelineConfig())
        sep = load_separator(config.separator, device=config.device, window=config.window) if config.separate \
            else None
        rec = load_asr(config.asr, device=config.device, window=config.asr_window, precision=config.precision) \
            if config.transcribe else None
        names = {"separator": config.separator or DEFAULT_SEPARATOR} if sep is not None else {}
        if rec is not None:
            names["asr"] = config.asr or DEFAULT_ASR
        encoder = None
        if config.label_speakers and sep is not None:
            from hubbub.models.speaker import SpeakerEncoder

            encoder = SpeakerEncoder.load(config.device)
        detector = load_overlap_detector(config.overlap_detector, config.device) if sep is not None else None
        if detector is not None:
            names["overlap_detector"] = config.overlap_detector or DEFAULT_OVERLAP_DETECTOR
        return cls(sep, rec, config, overlap_detector=detector, speaker_encoder=encoder, names=names)

    def replace(self, **settings) -> Pipeline:
        """A new pipeline with the same models (shared, nothing changed in place) and ``settings``
        changed, as :func:`dataclasses.replace` does for a config. Of the model fields, ``window``
        builds a separator of the same weights with that inter-chunk window, and
        ``overlap_detector="none"`` drops the detector; any other model field (which would load a
        model) is refused: use :meth:`from_pretrained`."""
        from hubbub.models.attention import parse_window
        from hubbub.models.separator import LOCAL_INTER_WINDOW
        from hubbub.pipeline.separate import with_config

        loading = set(settings) & set(MODEL_FIELDS) - {"window", "overlap_detector"}
        if loading or str(settings.get("overlap_detector", "none")).lower() != "none":
            raise TypeError(f"Pipeline.replace keeps its models: {sorted(loading or {'overlap_detector'})} would load "
                            "one; use Pipeline.from_pretrained")
        config = self.config.replace(**settings)
        separator, detector, names = self.separator, self.overlap_detector, dict(self.names)
        if "window" in settings and separator is not None and settings["window"] is not None:
            separator = with_config(separator, inter_window=parse_window(settings["window"], LOCAL_INTER_WINDOW))
        if "overlap_detector" in settings:
            detector = None
            names.pop("overlap_detector", None)
        return Pipeline(separator, self.asr, config, overlap_detector=detector,
                        speaker_encoder=self.speaker_encoder, names=names)

    @property
    def n_speakers(self) -> int:
        return self.separator.n_src if self.separator is not None else 1

    def _decode_spans(self, spans: list[tuple], detail: set[int] = frozenset(), progress=None) -> list[tuple]:
        """:func:`~hubbub.pipeline.spans.read_on` with :meth:`_decode_once` and ``turns.read_on``."""
        return read_on(self._decode_once, spans, self.turns.read_on, detail, progress)

    def _decode_once(self, spans: list[tuple], detail: set[int] = frozenset(), progress=None) -> list[tuple]:
        """:func:`~hubbub.pipeline.spans.decode_spans` with this pipeline's ASR, decoding and device."""
        return decode_spans(self.asr, self.decoding, self.device, spans, detail, progress)

    def _separator_view(self, path, store: dict):
        """The ``details`` hook of :func:`~hubbub.pipeline.separate.separate_to_files` that puts
        :func:`~hubbub.pipeline.maps.separator_details` of the first window into ``store["separator"]``;
        None when that window is too long for its attention weights."""
        from hubbub.pipeline.maps import separator_details, separator_seconds_limit

        limit = separator_seconds_limit(self.separator.config)
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
            for i, (outs, sr, duration, found, levels) in voices.items():
                base = done[0]
                try:
                    persons = self._read_whole(items[i][0], outs, sr, duration, levels, found, i, separate,
                                               lambda a, b, i=i, base=base: report(base + (1 - share) * seconds[i]
                                                                                   * a / max(b, 1e-9)))
                except (AudioError, OSError, RuntimeError, ValueError) as err:
                    results[i] = err
                    continue
                heard = people_heard(persons)
                if details:
                    relabel_details(extra[i], heard, [])
                    extra[i]["asr"] = self._first_maps(items[i][0], sr, heard)
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

    def _first_maps(self, path, sr: int, speakers: list[SpeakerResult]) -> dict[str, dict]:
        """The demo's ASR maps for ``reading="whisper"``: per speaker, its first segment read again from
        the recording with the maps (:func:`~hubbub.pipeline.maps.asr_details`), ``kept`` marking the
        words of that read the speaker has (within half a second)."""
        heard = [spk for spk in speakers if spk.segments]
        spans = [(path, sr, spk.segments[0].start, spk.segments[0].end) for spk in heard]
        out = {}
        for spk, (_, info) in zip(heard, self._decode_once(spans, set(range(len(spans))))):
            if info is not None:
                mine = [(w.word, w.start) for g in spk.segments for w in g.words]
                kept = [any(w == m and abs(a - t) <= 0.5 for m, t in mine) for w, a, _ in info["words"]]
                out[spk.id] = {**info, "source": "recording", "kept": kept}
        return out

    def _read_whole(self, path, outs: list[Path], sr: int, duration: float, levels: torch.Tensor,
                    found: list[list[tuple[float, float]]], item: int, separate: bool,
                    progress=None) -> list[SpeakerResult]:
        """:func:`~hubbub.pipeline.whole.read_whole` of one recording."""
        from hubbub.pipeline.whole import read_whole

        return read_whole(self, path, outs, sr, duration, levels, found, item, separate, progress)

    def _recording_regions(self, path) -> list[tuple[float, float]]:
        """The recording's own speech regions, found as for the ASR alone (``--no-separation``):
        from its levels, one stream."""
        levels, duration, _, _ = file_levels([path], self.regions)
        return regions_from_levels(levels, duration, self.regions)[0]

    def _one_person(self, outs: list[Path], sr: int, found: list[list[tuple[float, float]]],
                    levels: torch.Tensor) -> list[list[tuple[float, float]]]:
        """:func:`~hubbub.pipeline.people.one_person` with this pipeline's encoder and settings."""
        return one_person(self.speaker_encoder, self.clustering, self.regions, outs, sr, found, levels)

    def _speakers(self, path, outs: list[Path], sr: int, streams: list[list[Segment]], mixed: set, item: int,
                  separated: bool) -> list[SpeakerResult]:
        """:func:`~hubbub.pipeline.people.label_persons` with this pipeline's encoder and settings."""
        return label_persons(self.speaker_encoder, self.clustering, self.turns.min_overlap, path, outs, sr, streams,
                             mixed, item, separated)

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
