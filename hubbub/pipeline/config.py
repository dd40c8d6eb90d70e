"""Every setting of a :class:`~hubbub.pipeline.pipeline.Pipeline`, given once: :class:`PipelineConfig`.

    >>> from hubbub.pipeline import Pipeline, PipelineConfig
    >>> pipe = Pipeline.from_pretrained(PipelineConfig(reading="whisper"))  # or from_pretrained(reading="whisper")
    >>> faster = pipe.replace(overlap_aware=False)                           # same models, another setting

The config names the models (loaded by :meth:`Pipeline.from_pretrained`) and holds how they are run.
The CLI, the demo, the evaluation commands and the benchmarks all build their pipeline from one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from hubbub.models.hypothesis import DecodingOptions
from hubbub.pipeline.defaults import DEFAULT_CHUNK_SECONDS, DEFAULT_OVERLAP_SECONDS
from hubbub.pipeline.reading import ReadingConfig
from hubbub.pipeline.regions import RegionConfig
from hubbub.pipeline.speakers import ClusterConfig
from hubbub.pipeline.turns import TurnConfig

__all__ = ["MODEL_FIELDS", "PRECISIONS", "READINGS", "RUN_FIELDS", "PipelineConfig"]

#: how a Whisper decoder's linear layers hold their weights (:func:`~hubbub.pipeline.loaders.load_asr`)
PRECISIONS = ("float16", "float32", "int8")
#: how a recording's voices are read
READINGS = ("turns", "whisper")


@dataclass(frozen=True)
class PipelineConfig:
    """Which models a pipeline loads and how it runs them; stored with nothing else, changed only by
    :func:`dataclasses.replace` (or :meth:`Pipeline.replace`, which keeps the loaded models).

    Models (read by :meth:`~hubbub.pipeline.pipeline.Pipeline.from_pretrained`):
        separator, asr, overlap_detector: an embedded name, an installed Whisper name (``asr``) or a model
            folder; None: the embedded default; ``overlap_detector="none"``: no detector (two separated
            streams speak at once wherever both have sound).
        separate: False reads the recording as one voice (no separator, speaker encoder or detector).
        transcribe: False separates only (no ASR model).
        label_speakers: load the speaker encoder, so that a label is one person throughout.
        window, asr_window: the separator's inter-chunk / the ASR encoder's time attention,
            ``"global"``, ``"local"`` or ``"local:W"``; None: as the model was saved.
        precision: the Whisper decoder's linear layers on a CPU (:data:`PRECISIONS`).
        device: ``"cpu"``, ``"cuda"``...

    Running:
        chunk_seconds, overlap_seconds: windowing of long recordings
            (:func:`~hubbub.pipeline.separate.separate_stream`); None or 0: one window.
        decoding: how the ASR decodes (:class:`~hubbub.models.decoding.DecodingOptions`).
        regions: where each voice speaks (:class:`~hubbub.pipeline.regions.RegionConfig`).
        overlap_aware: read a voice from the recording itself where it speaks alone and from its
            separated stream only where voices overlap; False: from its stream throughout.
        turns: how regions are cut at overlaps and joined (:class:`~hubbub.pipeline.turns.TurnConfig`).
        clustering: how segments are grouped into persons (:class:`~hubbub.pipeline.speakers.ClusterConfig`).
        max_seconds: longer recordings are refused.
        reading: ``"turns"`` or ``"whisper"`` (:data:`READINGS`, see :class:`~hubbub.pipeline.pipeline.Pipeline`).
        long_form: Whisper's long-form options for ``reading="whisper"``
            (:class:`~hubbub.models.whisper_longform.LongFormOptions`; None: its defaults).
        reading_config: how ``reading="whisper"`` gives words to voices
            (:class:`~hubbub.pipeline.reading.ReadingConfig`).
    """

    separator: str | None = None
    asr: str | None = None
    overlap_detector: str | None = None
    separate: bool = True
    transcribe: bool = True
    label_speakers: bool = True
    window: str | None = None
    asr_window: str | None = None
    precision: str = "float16"
    device: str = "cpu"
    chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS
    decoding: DecodingOptions = field(default_factory=DecodingOptions)
    regions: RegionConfig = field(default_factory=RegionConfig)
    overlap_aware: bool = True
    turns: TurnConfig = field(default_factory=TurnConfig)
    clustering: ClusterConfig = field(default_factory=ClusterConfig)
    max_seconds: float | None = None
    reading: str = "turns"
    long_form: object | None = None
    reading_config: ReadingConfig = field(default_factory=ReadingConfig)

    def __post_init__(self) -> None:
        from hubbub.models.attention import parse_window

        for name in ("separator", "asr", "overlap_detector"):  # a Path is kept as its string
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                object.__setattr__(self, name, str(value))
        if self.reading not in READINGS:
            raise ValueError(f"reading must be one of {READINGS}, got {self.reading!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: one of {', '.join(PRECISIONS)}")
        for name in ("window", "asr_window"):
            value = getattr(self, name)
            if value is not None and value != "local":
                parse_window(value)  # a misspelt window is refused before any model loads
        if not self.chunk_seconds:
            object.__setattr__(self, "chunk_seconds", None)
        if self.chunk_seconds is not None and (self.chunk_seconds < 0 or self.overlap_seconds <= 0):
            raise ValueError(f"windowed separation needs chunk_seconds >= 0 and overlap_seconds > 0, got "
                             f"{self.chunk_seconds} and {self.overlap_seconds}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {self.max_seconds}")

    def replace(self, **changes) -> PipelineConfig:
        """A copy with ``changes`` (an unknown name is a TypeError naming the known ones)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"PipelineConfig has no setting {sorted(unknown)}; settings: "
                            f"{', '.join(f.name for f in dataclasses.fields(self))}")
        return dataclasses.replace(self, **changes)


#: the fields that choose and load models (:meth:`Pipeline.from_pretrained` reads them)
MODEL_FIELDS = ("separator", "asr", "overlap_detector", "separate", "transcribe", "label_speakers", "window",
                "asr_window", "precision", "device")
#: the fields that say how loaded models run (:meth:`Pipeline.replace` changes them freely)
RUN_FIELDS = tuple(f.name for f in dataclasses.fields(PipelineConfig) if f.name not in MODEL_FIELDS)
