"""Saving and loading models as ``config.json`` + ``model.safetensors``.

No pickle: weights go through safetensors and the config is plain JSON read
back into a frozen dataclass.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import ClassVar

import torch
from safetensors.torch import load_file, save_file

__all__ = ["ADAPTER_TYPE", "PretrainedMixin", "pretrained_dir"]

#: ``model_type`` of a folder that :meth:`PretrainedMixin.save_adapter` writes
ADAPTER_TYPE = "hubbub-adapter"

PRETRAINED_ROOT = Path(__file__).parent / "pretrained"


def pretrained_dir(name: str) -> Path:
    """Folder of an embedded default model, e.g. ``pretrained_dir("separator-8k")``."""
    path = PRETRAINED_ROOT / name
    if not (path / "config.json").is_file():
        available = sorted(p.name for p in PRETRAINED_ROOT.iterdir() if (p / "config.json").is_file())
        raise FileNotFoundError(f"no embedded model {name!r}; available: {available}")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class PretrainedMixin:
    """Adds ``save_pretrained`` / ``from_pretrained`` to a model whose
    constructor takes one frozen dataclass ``config``.

    A model that needs more than its weights (e.g. the ASR tokenizer) overrides
    :meth:`save_extra_files` and :meth:`load_extra_files`; both default to
    doing nothing.
    """

    model_type: ClassVar[str]
    config_class: ClassVar[type]
    config: object

    def save_pretrained(self, directory: str | os.PathLike, extra: dict | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"model_type": self.model_type, **dataclasses.asdict(self.config), **(extra or {})}
        _atomic_write(directory / "config.json", lambda p: Path(p).write_text(json.dumps(meta, indent=2) + "\n"))
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        _atomic_write(directory / "model.safetensors", lambda p: save_file(state, p, metadata={"format": "pt"}))
        self.save_extra_files(directory)
        return directory

    def save_extra_files(self, directory: Path) -> None:
        """Hook: write files that travel with the weights (default: none)."""

    def load_extra_files(self, directory: Path) -> None:
        """Hook: read back what :meth:`save_extra_files` wrote (default: none)."""

    @classmethod
    def load_config(cls, directory: str | os.PathLike):
        meta = json.loads((Path(directory) / "config.json").read_text())
        if meta.get("model_type") != cls.model_type:
            raise ValueError(f"{directory}: model_type {meta.get('model_type')!r}, expected {cls.model_type!r}")
        names = {f.name for f in dataclasses.fields(cls.config_class)}
        return cls.config_class(**{k: v for k, v in meta.items() if k in names})

    def save_adapter(self, directory: str | os.PathLike, base: str, base_config, prefixes: tuple[str, ...],
                     extra: dict | None = None) -> Path:
        """Write only the parameters whose names start with ``prefixes`` and the fields of the
        configuration that differ from ``base_config``: a small folder that :meth:`from_adapter`
        lays over the model ``base`` (a name or folder that :mod:`hubbub.models.loading` resolves)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        ours, theirs = dataclasses.asdict(self.config), dataclasses.asdict(base_config)
        changes = {k: v for k, v in ours.items() if theirs.get(k) != v}
        meta = {"model_type": ADAPTER_TYPE, "base": str(base), "base_type": self.model_type, "changes": changes,
                "prefixes": list(prefixes), **(extra or {})}
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items() if k.startswith(tuple(prefixes))}
        if not state:
            raise ValueError(f"no parameter starts with {list(prefixes)}")
        _atomic_write(directory / "config.json", lambda p: Path(p).write_text(json.dumps(meta, indent=2) + "\n"))
        _atomic_write(directory / "model.safetensors", lambda p: save_file(state, p, metadata={"format": "pt"}))
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: str | torch.device = "cpu", **config):
        """Load a model saved by :meth:`save_pretrained` (in eval mode).

        Keywords change fields of the saved configuration that the weights do not
        depend on (e.g. an attention window); the model then saves the changed one.
        """
        return cls._build(Path(directory), {}, [Path(directory) / "model.safetensors"], device, config)

    @classmethod
    def from_adapter(cls, adapter: str | os.PathLike, base: str | os.PathLike, device: str | torch.device = "cpu",
                     **config):
        """The model folder ``base`` with an adapter written by :meth:`save_adapter` laid over it:
        the adapter's configuration changes, its weights replacing or adding to the base's (every
        parameter must be given by one of them). Keywords as in :meth:`from_pretrained`."""
        meta = json.loads((Path(adapter) / "config.json").read_text())
        if meta.get("model_type") != ADAPTER_TYPE or meta.get("base_type") != cls.model_type:
            raise ValueError(f"{adapter}: not an adapter of a {cls.model_type!r} model")
        files = [Path(base) / "model.safetensors", Path(adapter) / "model.safetensors"]
        return cls._build(Path(base), meta["changes"], files, device, config)

    @classmethod
    def _build(cls, directory: Path, changes: dict, weights: list[Path], device, config: dict):
        model = cls(dataclasses.replace(cls.load_config(directory), **{**changes, **config}))
        state: dict = {}
        for path in weights:
            state.update(load_file(str(path), device=str(device)))
        model.load_state_dict(state)
        model.load_extra_files(directory)
        return model.to(device).eval()
