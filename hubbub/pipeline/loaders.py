"""Loading the pipeline's models by name or folder: the ASR (with its decoder precision) and the
overlapped-speech detector. The separator's loader is :func:`hubbub.pipeline.separate.load_separator`."""

from __future__ import annotations

import os

__all__ = ["DEFAULT_ASR", "DEFAULT_OVERLAP_DETECTOR", "PRECISIONS", "load_asr", "load_overlap_detector", "model_name"]

DEFAULT_ASR = "whisper-base-separated"  # Whisper base + the time-frequency block adapted to separated voices
#: the embedded overlapped-speech detector (:mod:`hubbub.models.overlap`)
DEFAULT_OVERLAP_DETECTOR = "overlap-8k"
#: how a Whisper decoder's linear layers hold their weights while decoding (see :func:`load_asr`)
PRECISIONS = ("float16", "float32", "int8")


def load_asr(name_or_path: str | os.PathLike | None = None, device: str = "cpu", window: str | int | None = None,
             precision: str = "float16"):
    """The default ASR (None), an embedded name, a Whisper name (``whisper-base``,
    ``whisper-tiny.en``) or a model folder, ready to decode.

    ``window``: the encoder's time attention, ``"global"`` or ``"local:W"`` (``W``
    encoder frames: 20 ms for Whisper, 40 ms for the small Speech-Transformer);
    None keeps the saved one. It becomes part of the model's configuration (and
    of what it saves). ``precision``, for a Whisper model on a CPU: the decoder
    blocks' linear layers with ``float16`` weights computed in float32 (the default,
    :func:`~hubbub.models.whisper.half_decoder`: exact for Whisper's released float16
    weights and about 1.8x faster per decoder step), ``float32``, or ``int8``
    (:func:`~hubbub.models.whisper.quantize_int8`: faster again at about the same WER,
    but an utterance's words then depend a little on the others decoded in its batch,
    whose activations share one int8 scale). Other models ignore ``float16``.
    """
    from hubbub.models.attention import parse_window
    from hubbub.models.loading import load_model
    from hubbub.models.whisper import WhisperASR, half_decoder, quantize_int8

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: one of {', '.join(PRECISIONS)}")
    changes = {} if window is None else {"encoder_window": parse_window(window)}
    model = load_model(name_or_path or DEFAULT_ASR, device=device, **changes)
    if not isinstance(model, WhisperASR) or str(device) != "cpu":
        if precision == "int8":
            raise ValueError(f"{name_or_path}: int8 quantisation is for Whisper models on a CPU")
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


def model_name(spec, default: str) -> str:
    return str(spec) if spec else default
