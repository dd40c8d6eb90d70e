"""Typed results of the separate-then-transcribe pipeline.

Times are seconds in the original recording. ``Result.to_dict()`` is the JSON
schema the CLI writes::

    {"audio", "duration", "sample_rate", "models",
     "speakers": [{"id", "audio", "text", "segments": [{"start", "end", "text", "words"?}]}]}
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from hubbub.models.hypothesis import WordTiming as Word  # one word with its start and end (s)

__all__ = ["Result", "Segment", "SpeakerResult", "Word"]


@dataclass(frozen=True)
class Segment:
    """A stretch of one speaker's speech and what was said in it."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()

    def to_dict(self, words: bool = False) -> dict:
        d = {"start": round(self.start, 3), "end": round(self.end, 3), "text": self.text}
        if words:
            d["words"] = [{"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3)} for w in self.words]
        return d


@dataclass
class SpeakerResult:
    """One separated voice: its waveform ``(T,)`` at ``Result.sample_rate``, text and segments.

    ``audio`` is the path the waveform was written to, when it was.
    """

    id: str
    waveform: torch.Tensor | None
    segments: list[Segment] = field(default_factory=list)
    audio: str | None = None

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text).strip()


@dataclass
class Result:
    """Everything the pipeline found in one recording."""

    audio: str | None
    duration: float
    sample_rate: int
    models: dict[str, str]
    speakers: list[SpeakerResult]
    # what the demo draws (regions, leakage, separator masks and attention, ASR maps), filled by
    # ``Pipeline(..., details=True)`` from the same forward passes; not part of to_dict()
    details: dict = field(default_factory=dict)

    def segments(self) -> list[tuple[str, Segment]]:
        """All segments of all speakers, as ``(speaker id, segment)`` in time order."""
        pairs = [(s.id, seg) for s in self.speakers for seg in s.segments]
        return sorted(pairs, key=lambda p: (p[1].start, p[1].end, p[0]))

    def to_dict(self, words: bool = False) -> dict:
        return {
            "audio": self.audio,
            "duration": round(self.duration, 3),
            "sample_rate": self.sample_rate,
            "models": dict(self.models),
            "speakers": [
                {"id": s.id, "audio": s.audio, "text": s.text, "segments": [g.to_dict(words) for g in s.segments]}
                for s in self.speakers
            ],
        }
