"""What every decoder shares: the options it is given (:class:`DecodingOptions`), what it returns
(:class:`Hypothesis`, :class:`WordTiming`) and how it runs a model (:func:`inference`). Below both
searches (:mod:`hubbub.models.decoding`, :mod:`hubbub.models.whisper_decoding`), so neither imports the other's
users."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch

__all__ = ["DecodingOptions", "Hypothesis", "WordTiming", "inference"]


@dataclass(frozen=True)
class WordTiming:
    """One word and its time span in seconds from the start of the input."""

    word: str
    start: float
    end: float


@dataclass(frozen=True)
class Hypothesis:
    """A decoded utterance.

    tokens: token ids, without sos/eos.
    text: ``tokenizer.decode(tokens)`` ("" when the model has no tokenizer).
    score: the search score: greedy, the attention log-probability (eos
        included); beam, the joint score divided by ``(len(tokens) + 1) **
        length_penalty``.
    words: word timings (empty when not asked for or without a tokenizer).
    att_score, ctc_score: attention log-probability and CTC log-probability of
        the tokens (``ctc_score`` is nan where it was not computed).
    cross_attention: ``(len(tokens) + 1, T')`` last-layer decoder
        cross-attention averaged over heads; row ``u`` is the query that
        emitted token ``u`` (the last row emitted eos). None unless asked.
    """

    tokens: tuple[int, ...]
    text: str
    score: float
    words: tuple[WordTiming, ...] = ()
    att_score: float = math.nan
    ctc_score: float = math.nan
    cross_attention: torch.Tensor | None = None


@contextlib.contextmanager
def inference(model: torch.nn.Module):
    """Eval mode and no autograd, restoring the model's training flag afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class DecodingOptions:
    """How to decode, given once (Whisper's pattern): the CLI, the demo, the
    evaluation and the recipes build one and pass it down to the search.

    beam_size: 1 for greedy search, more for beam search.
    max_len: most tokens per utterance (None: the model's limit).
    length_penalty: finished beam hypotheses are ranked by
        ``score / length ** length_penalty`` (0: raw score).
    word_timestamps: time each word.
    return_cross_attention: keep the decoder's cross-attention (token x time) for display.
    input_padding: seconds of zero log-mel after the longest
        utterance of a batch in the encoder input; None pads to 30 s, as
        Whisper was trained. The default, 10 s, reads as well as 30 s and
        runs faster; 3 s costs words (docs/notes/benchmarks-history.md).
    """

    beam_size: int = 1
    max_len: int | None = None
    length_penalty: float = 1.0
    word_timestamps: bool = True
    return_cross_attention: bool = False
    input_padding: float | None = 10.0

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {self.beam_size}")
        if self.input_padding is not None and self.input_padding < 0:
            raise ValueError(f"input_padding must be >= 0 seconds, got {self.input_padding}")
        if self.max_len is not None and self.max_len < 1:
            raise ValueError(f"max_len must be at least 1, got {self.max_len}")
