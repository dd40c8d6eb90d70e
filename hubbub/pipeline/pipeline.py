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

from hubbub.pipeline.audio import AudioError, check_waveform, load_audio, probe_audio, resample
from hubbub.pipeline.regions import RegionConfig, file_levels, regions_from_levels, speech_regions
from hubbub.pipeline.result import Result, Segment, SpeakerResult, Word
from hubbub.pipeline.separate import (
    DEFAULT_CHUNK_SECONDS,
    DEFAULT_OVERLAP_SECONDS,
    DEFAULT_SEPARATOR,
    SeparationResult,
    load_separator,
    separate_to_files,
    separate_waveform,
)

__all__ = ["DEFAULT_ASR", "Pipeline", "load_asr"]

log = logging.getLogger(__name__)

DEFAULT_ASR = "whisper-base"
#: regions decoded together in one ASR batch
ASR_BATCH = 8


def load_asr(name_or_path: str | os.PathLike | None = None, device: str = "cpu", int8: bool = False,
             **overrides):
    """The default ASR (None), an embedded name, a Whisper name (``whisper-base``,
    ``whisper-tiny.en``) or a model folder. ``int8``: dynamic int8 quantisation
    of a Whisper model's linear layers (faster on a CPU, a little less accurate).
    ``overrides``: config fields set when the model is built (Whisper's
    ``encoder_window``)."""
    from hubbub.models.loading import load_model, resolve_model_dir

    directory = resolve_model_dir(name_or_path or DEFAULT_ASR)
    return load_model(directory, device=device, int8=int8, **overrides)


def _read_span(stream, sample_rate: int, start: float, end: float) -> torch.Tensor:
    """Samples ``[start, end)`` seconds of a waveform or of a mono audio file."""
    a, b = int(start * sample_rate), int(end * sample_rate)
    if torch.is_tensor(stream):
        return stream[a:b]
    import soundfile as sf

    data, _ = sf.read(str(stream), start=a, stop=b, dtype="float32", always_2d=True)
    return torch.from_numpy(data.mean(axis=1))


class _Passthrough:
    """A one-voice stand-in separator at the file's own rate: the mixture itself (``speakers=1``)."""

    n_src = 1

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, None]


def _model_name(spec, default: str) -> str:
    return str(spec) if spec else default


class Pipeline:
    """Separate a recording into voices, find where each speaks, transcribe it.

    Args:
        separator: a :class:`~hubbub.models.separator.Separator`, or None to
            transcribe the input as one voice.
        asr: a :class:`~hubbub.models.asr.SpeechTransformer`, or None to separate only.
        chunk_seconds, overlap_seconds: windowing of long recordings (see
            :func:`~hubbub.pipeline.separate.separate_long`).
        beam_size: 1 for greedy decoding, more for joint CTC/attention beam search.
        ctc_weight: weight of the CTC score in decoding (beam search default: the
            model's training weight). With ``beam_size=1``, 1.0 decodes the CTC
            best path, 0.0 the attention decoder, and None the one the model's
            ``config.decoder`` names.
        lm: decode with the ASR's word language model (``asr.lm``); None: when it has one and
            the options above ask for nothing else (see :func:`~hubbub.models.decoding.decode`).
    """

    def __init__(
        self,
        separator=None,
        asr=None,
        device: str = "cpu",
        chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS,
        overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
        beam_size: int = 1,
        ctc_weight: float | None = None,
        lm: bool | None = None,
        regions: RegionConfig | None = None,
        max_seconds: float | None = None,
        names: dict[str, str] | None = None,
    ) -> None:
        self.separator = separator
        self.asr = asr
        self.device = device
        self.chunk_seconds = chunk_seconds
        self.overlap_seconds = overlap_seconds
        self.beam_size = beam_size
        if ctc_weight is not None and not 0.0 <= ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1], got {ctc_weight}")
        self.ctc_weight = ctc_weight
        self.lm = lm
        self.regions = regions or RegionConfig()
        self.max_seconds = max_seconds
        self.names = names or {}

    @classmethod
    def from_pretrained(
        cls, separator: str | os.PathLike | None = None, asr: str | os.PathLike | None = None,
        device: str = "cpu", load_asr_model: bool = True, **kwargs,
    ) -> Pipeline:
        """Load the embedded defaults, or saved models by folder or embedded name."""
        sep = load_separator(separator, device=device)
        rec = None
        if load_asr_model:
            try:
                rec = load_asr(asr, device=device)
            except FileNotFoundError:
                if asr is not None:
                    raise
                log.warning("no embedded ASR model yet: the pipeline separates only (pass asr=... to transcribe)")
        names = {"separator": _model_name(separator, DEFAULT_SEPARATOR)}
        if rec is not None:
            names["asr"] = _model_name(asr, DEFAULT_ASR)
        return cls(sep, rec, device=device, names=names, **kwargs)

    @property
    def n_speakers(self) -> int:
        return self.separator.n_src if self.separator is not None else 1

    def set_window(self, window: str | int | None) -> None:
        """Inter-chunk attention of the separator: "global", "local" or a window in chunks."""
        if self.separator is None:
            return
        w = {"global": None, "local": 16}.get(window, window) if isinstance(window, str) else window
        self.separator.set_inter_window(w)

    # ---- pieces ---------------------------------------------------------------------
    def _read(self, audio, sample_rate: int | None) -> tuple[torch.Tensor, int, str | None]:
        if isinstance(audio, (str, os.PathLike)):
            wav, sr = load_audio(audio, min_seconds=0.05, max_seconds=self.max_seconds)
            return wav, sr, str(audio)
        if sample_rate is None:
            raise ValueError("sample_rate is required when passing a waveform")
        wav = torch.as_tensor(np.asarray(audio, dtype=np.float32) if not torch.is_tensor(audio) else audio).float()
        if wav.dim() == 2:
            wav = wav.mean(dim=0 if wav.shape[0] < wav.shape[1] else 1)
        check_waveform(wav, sample_rate, None, min_seconds=0.05, max_seconds=self.max_seconds)
        return wav, sample_rate, None

    def separate(self, wav: torch.Tensor, sample_rate: int, progress=None) -> torch.Tensor:
        """``(T,) -> (n_src, T)`` at the same rate (or ``(1, T)`` without a separator)."""
        if self.separator is None:
            return wav[None]
        return separate_waveform(self.separator, wav, sample_rate, self.chunk_seconds, self.overlap_seconds,
                                 self.device, progress)

    def transcribe_regions(
        self, stream: torch.Tensor | str | os.PathLike, sample_rate: int, regions: list[tuple[float, float]]
    ) -> list[Segment]:
        """Decode each region of one voice (a waveform, or a file read region by
        region); times in the recording's seconds."""
        return [seg for seg in self._decode_spans([(stream, sample_rate, s, e) for s, e in regions]) if seg]

    def _decode_spans(self, spans: list[tuple]) -> list[Segment | None]:
        """Decode ``(stream, sample_rate, start, end)`` spans of any streams, ``ASR_BATCH`` at a time in
        order of length (little padding); one Segment per span, None where nothing was said."""
        from hubbub.models.decoding import decode

        if self.asr is None or not spans:
            return [None] * len(spans)
        asr_sr = self.asr.sample_rate
        order = sorted(range(len(spans)), key=lambda i: spans[i][3] - spans[i][2], reverse=True)
        out: list[Segment | None] = [None] * len(spans)
        for i in range(0, len(order), ASR_BATCH):
            group = order[i : i + ASR_BATCH]
            pieces = [resample(_read_span(*spans[j]), spans[j][1], asr_sr) for j in group]
            lengths = torch.tensor([len(p) for p in pieces])
            batch = torch.nn.utils.rnn.pad_sequence(pieces, batch_first=True).to(self.device)
            hyps = decode(self.asr, batch, lengths, beam_size=self.beam_size, ctc_weight=self.ctc_weight,
                          lm=self.lm)
            for j, hyp in zip(group, hyps):
                text = hyp.text.strip()
                if text:
                    start, end = spans[j][2], spans[j][3]
                    words = tuple(Word(w.word, round(start + w.start, 3), round(start + w.end, 3))
                                  for w in hyp.words)
                    out[j] = Segment(start, end, text, words)
        return out

    def transcribe_to_dir(self, path: str | os.PathLike, voices_dir: str | os.PathLike,
                          speakers: int | None = None, progress=None) -> Result:
        """Like calling the pipeline on ``path``, streaming: the voices go straight to
        ``voices_dir/spkN.wav``; regions and transcripts are computed from those
        files, so memory does not grow with the length of the recording.
        ``Result.speakers[k].waveform`` is None and ``.audio`` the file."""
        result = self.transcribe_many([(path, voices_dir)], speakers, progress)[0]
        if isinstance(result, Exception):
            raise result
        return result

    def transcribe_many(self, items: list[tuple[str | os.PathLike, str | os.PathLike]],
                        speakers: int | None = None, progress=None) -> list[Result | Exception]:
        """:meth:`transcribe_to_dir` for several ``(path, voices_dir)`` at once: each file is
        separated on its own (streamed to its folder), then the speech regions of all of
        them are decoded together, so short files share ASR batches.

        Returns one Result per item, or the error (AudioError, OSError, ValueError,
        RuntimeError) that stopped that item; the others are done all the same.
        """
        separate = speakers != 1 and self.separator is not None
        if separate and speakers not in (None, self.separator.n_src):
            raise ValueError(f"the separator splits {self.separator.n_src} voices, not {speakers}")
        models = {k: v for k, v in self.names.items() if (k != "separator" or separate)}
        results: list = [None] * len(items)
        voices: dict[int, tuple] = {}  # item -> (voice files, rate, duration, regions per voice)
        for i, (path, voices_dir) in enumerate(items):
            try:
                voices_dir = Path(voices_dir)
                voices_dir.mkdir(parents=True, exist_ok=True)
                model = self.separator if separate else _Passthrough(probe_audio(path).sample_rate)
                outs = [voices_dir / f"spk{k}.wav" for k in range(1, model.n_src + 1)]
                sr = separate_to_files(model, path, outs, self.chunk_seconds or 1e9, self.overlap_seconds,
                                       self.device, self.max_seconds, progress)
                levels, duration = file_levels(outs, self.regions)
                voices[i] = (outs, sr, duration, regions_from_levels(levels, duration, self.regions))
            except (AudioError, OSError, RuntimeError, ValueError) as err:
                results[i] = err
        spans, owners = [], []
        for i, (outs, sr, _, found) in voices.items():
            for k, (out, regions) in enumerate(zip(outs, found)):
                spans.extend((out, sr, s, e) for s, e in regions)
                owners.extend((i, k) for _ in regions)
        try:
            decoded = self._decode_spans(spans)
        except (OSError, RuntimeError, ValueError) as err:  # cannot tell which item: all of them failed
            for i in voices:
                results[i] = err
            return results
        segments: dict[tuple[int, int], list[Segment]] = {}
        for owner, seg in zip(owners, decoded):
            if seg is not None:
                segments.setdefault(owner, []).append(seg)
        for i, (outs, sr, duration, _) in voices.items():
            speakers_out = [
                SpeakerResult(f"spk{k + 1}", None, sorted(segments.get((i, k), []), key=lambda s: s.start),
                              audio=str(out))
                for k, out in enumerate(outs)
            ]
            results[i] = Result(str(items[i][0]), duration, sr, models, speakers_out)
        return results

    # ---- the whole thing ---------------------------------------------------------------
    def __call__(
        self,
        audio: str | os.PathLike | torch.Tensor | np.ndarray,
        sample_rate: int | None = None,
        speakers: int | None = None,
        progress=None,
    ) -> Result:
        """Separate and transcribe ``audio`` (a path, or a waveform with its rate).

        ``speakers=1`` skips separation; otherwise it must match the separator.
        """
        wav, sr, path = self._read(audio, sample_rate)
        separate = speakers != 1 and self.separator is not None
        if separate and speakers not in (None, self.separator.n_src):
            raise ValueError(f"the separator splits {self.separator.n_src} voices, not {speakers}")
        try:
            streams = self.separate(wav, sr, progress) if separate else wav[None]
        except AudioError as err:
            raise AudioError(path, err.problem) from None
        found = speech_regions(streams, sr, self.regions)
        speakers_out = []
        for k, (stream, regions) in enumerate(zip(streams, found), start=1):
            segments = self.transcribe_regions(stream, sr, regions)
            speakers_out.append(SpeakerResult(f"spk{k}", stream, segments))
        models = {k: v for k, v in self.names.items() if (k != "separator" or separate)}
        return Result(path, wav.shape[-1] / sr, sr, models, speakers_out)

    def separate_file(self, path: str | os.PathLike, progress=None) -> SeparationResult:
        """Separated voices of a file, at its sample rate."""
        wav, sr, _ = self._read(path, None)
        try:
            return SeparationResult(str(path), sr, self.separate(wav, sr, progress))
        except AudioError as err:
            raise AudioError(path, err.problem) from None

    def transcribe_file(self, path: str | os.PathLike, speakers: int | None = 1) -> str:
        """The text of a file: one voice by default; with ``speakers=None``,
        every voice as ``[spkN]: text`` lines in time order."""
        result = self(path, speakers=speakers)
        if speakers == 1:
            return result.speakers[0].text
        return "\n".join(f"[{spk}]: {seg.text}" for spk, seg in result.segments())
