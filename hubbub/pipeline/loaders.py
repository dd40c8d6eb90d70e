"""Loading the pipeline's models by name or folder: the ASR (with its decoder precision) and the
overlapped-speech detector. The separator's loader is :func:`hubbub.pipeline.separate.load_separator`."""

from __future__ import annotations

import os

from hubbub.pipeline.config import PRECISIONS
from hubbub.pipeline.defaults import DEFAULT_ASR, DEFAULT_OVERLAP_DETECTOR

__all__ = ["load_asr", "load_overlap_detector"]



def load_asr(name_or_path: str | os.PathLike | None = None, device: str = "cpu", window: str | int | None = None,
             precision: str = "float16"):
    """The default ASR (None), an embedded name, a Whisper name (``whisper-base``,
    ``whisper-tiny.en``) or a model folder, ready to decode.

    ``window``: the encoder's time attention, ``"global"`` or ``"local:W"`` (``W``
    encoder frames of 20 ms);
    None keeps the saved one. It becomes part of the model's configuration (and
    of what it saves). ``precision``, on a CPU: the decoder
    blocks' linear layers with ``float16`` weights computed in float32 (the default,
    :func:`~hubbub.models.whisper.half_decoder`: exact for Whisper's released float16
    weights and about 1.8x faster per decoder step), ``float32``, or ``int8``
    (:func:`~hubbub.models.whisper.quantize_int8`: faster again at about the same WER,
    but an utterance's words then depend a little on the others decoded in its batch,
    whose activations share one int8 scale).
    """
    from hubbub.models.attention import parse_window
    from hubbub.models.loading import load_model
    from hubbub.models.whisper import WhisperASR, half_decoder, quantize_int8

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: one of {', '.join(PRECISIONS)}")
    changes = {} if window is None else {"encoder_window": parse_window(window)}
    model = load_model(name_or_path or DEFAULT_ASR, device=device, **changes)
    if not isinstance(model, WhisperASR):
        raise ValueError(f"{name_or_path}: a {type(model).__name__}, not an ASR model")
    if str(device) != "cpu":
        if precision == "int8":
            raise ValueError(f"{name_or_path}: int8 quantisation is for a CPU")
        return model
    if precision == "int8":
        return quantize_int8(model)
    return half_decoder(model) if precision == "float16" else model


def load_overlap_detector(name_or_path: str | os.PathLike | None = None, device: str = "cpu"):
    """The embedded overlapped-speech detector (None), an embedded name or a model folder;
    ``"none"`` gives None: the separated streams alone say where voices overlap."""
    from hubbub.models.loading import load_model
    from hubbub.models.overlap import OverlapDetector

    if name_or_path is not None and str(name_or_path).lower() == "none":
        return None
    model = load_model(name_or_path or DEFAULT_OVERLAP_DETECTOR, device=device)
    if not isinstance(model, OverlapDetector):
        raise ValueError(f"{name_or_path}: a {type(model).__name__}, not an overlapped-speech detector")
    return model
