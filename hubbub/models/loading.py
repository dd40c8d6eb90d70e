"""One loader for every kind of hubbub model folder.

A model folder holds ``config.json`` (whose ``model_type`` names the class),
``model.safetensors`` and what the class adds (a tokenizer).
:func:`load_model` takes such a folder, an experiment folder (its ``best/``),
the name of an embedded model (``separator-8k``) or of a Whisper checkpoint
installed as a Python package (``whisper-base``, ``whisper-tiny.en``,
converted once into a cache, see :mod:`hubbub.models.whisper_import`). An
adapter folder (``model_type`` ``hubbub-adapter``: a few trained parameters and
the configuration fields they change, see :meth:`PretrainedMixin.save_adapter`)
loads as its ``base`` model with those parameters laid over it.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import torch

from hubbub.models.hub import ADAPTER_TYPE, pretrained_dir

__all__ = ["MODEL_TYPES", "load_model", "model_type", "resolve_model_dir"]

#: ``model_type`` in config.json -> (module, class)
MODEL_TYPES = {
    "hubbub-separator": ("hubbub.models.separator", "Separator"),
    "hubbub-whisper": ("hubbub.models.whisper", "WhisperASR"),
    "hubbub-overlap": ("hubbub.models.overlap", "OverlapDetector"),
}


def resolve_model_dir(name_or_path: str | os.PathLike) -> Path:
    """The model folder that ``name_or_path`` stands for (see the module doc)."""
    path = Path(name_or_path)
    if (path / "config.json").is_file():
        return path
    if (path / "best" / "config.json").is_file():
        return path / "best"
    from hubbub.models.whisper_import import KNOWN_WHISPER, ensure_whisper

    if str(name_or_path) in KNOWN_WHISPER:
        return ensure_whisper(str(name_or_path))
    if path.exists():
        raise FileNotFoundError(f"{path}: not a model folder (no config.json, nor best/config.json)")
    if os.sep in str(name_or_path) or str(name_or_path).startswith("."):  # a path, not a name
        raise FileNotFoundError(f"{path}: no such model folder")
    return pretrained_dir(str(name_or_path))


def model_type(directory: str | os.PathLike) -> str:
    return json.loads((Path(directory) / "config.json").read_text()).get("model_type", "")


def load_model(name_or_path: str | os.PathLike, device: str | torch.device = "cpu", **overrides) -> torch.nn.Module:
    """Load any hubbub model in eval mode.

    ``overrides``: config fields set when the model is built (and saved with
    it): ``inter_window`` of a separator, ``encoder_window`` of an ASR,
    ``tf_channels`` of a Whisper model.
    """
    directory = resolve_model_dir(name_or_path)
    kind = model_type(directory)
    base = None
    if kind == ADAPTER_TYPE:
        base = resolve_model_dir(json.loads((directory / "config.json").read_text())["base"])
        kind = model_type(base)
    if kind not in MODEL_TYPES:
        raise ValueError(f"{directory}: unknown model_type {kind!r}; known: {sorted(MODEL_TYPES)}")
    module, name = MODEL_TYPES[kind]
    cls = getattr(importlib.import_module(module), name)
    if base is None:
        model = cls.from_pretrained(directory, device=device, **overrides)
    else:
        model = cls.from_adapter(directory, base, device=device, **overrides)
    return model
