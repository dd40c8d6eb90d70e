"""Decoding: :func:`decode` reads a batch of audio with the ASR model the way a
:class:`DecodingOptions` says (Whisper's greedy or beam search,
:func:`hubbub.models.whisper_decoding.whisper_decode`). The pipeline, the
evaluation and the recipes' validation all decode through it.

Every utterance gives one :class:`Hypothesis` (text, tokens, score, word
timings from the alignment heads, optionally the cross-attention for display).
"""

from __future__ import annotations

import dataclasses

import torch

from hubbub.models.hypothesis import DecodingOptions, Hypothesis, WordTiming, inference
from hubbub.models.whisper import WhisperASR
from hubbub.models.whisper_decoding import whisper_decode

__all__ = ["DecodingOptions", "Hypothesis", "WordTiming", "decode", "inference"]


def decode(
    model: torch.nn.Module,
    wav: torch.Tensor,
    lengths: torch.Tensor | None = None,
    options: DecodingOptions | None = None,
    **fields,
) -> list[Hypothesis]:
    """Decode a batch ``wav (B, T)`` (or ``(T,)``; ``lengths (B,)`` in samples) the way
    ``options`` say; keyword ``fields`` replace fields of ``options``
    (``decode(m, wav, beam_size=5)``). Returns one :class:`Hypothesis` per utterance."""
    if not isinstance(model, WhisperASR):
        raise TypeError(f"decode: a {type(model).__name__} is not an ASR model (hubbub decodes Whisper models)")
    options = dataclasses.replace(options or DecodingOptions(), **fields)
    return whisper_decode(model, wav, lengths, options)
