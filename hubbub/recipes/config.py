"""Recipe configs: YAML files read as plain data into frozen dataclasses, with
every key overridable by a kebab-case command-line flag.

A YAML file holds the training keys at the top level and the model's keys under
``model:``. ``--batch-size 8`` overrides a training key and ``--model-d-model 96``
a model key. Nothing is ever constructed from YAML: it is parsed with
``yaml.safe_load`` and only known keys of known types are accepted.

:class:`LoopConfig`, the training loop's keys, lives here with the models' configs
(:mod:`hubbub.models.configs`) apart from torch: a recipe's parser, and so its
``--help``, is built without importing any model or training code.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["LoopConfig", "add_config_flags", "build_configs", "load_yaml", "recipe_parser"]

MODEL_PREFIX = "model-"


@dataclass(frozen=True)
class LoopConfig:
    """The settings of the training loop (:class:`~hubbub.recipes.trainer.Trainer`); each recipe's config
    carries these keys."""

    exp_dir: str = "exp/run"
    seed: int = 0
    batch_size: int = 4
    epoch_size: int = 2000  # items per epoch
    max_steps: int = 100_000
    max_minutes: float | None = None
    max_cpu_minutes: float | None = None  # process CPU time (all threads) of this run
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 500
    lr_decay: float = 0.5  # multiply the LR by this every `decay_steps`
    decay_steps: int = 20_000
    grad_clip: float = 5.0
    val_every: int = 500
    ckpt_every: int = 200
    log_every: int = 50
    max_bad_steps: int = 20
    device: str = "cpu"
    threads: int | None = None
    higher_is_better: bool = True  # for the validation score


def load_yaml(path: str | Path | None) -> dict:
    """Parse a recipe YAML into a dict (safe loader, data only)."""
    if path is None:
        return {}
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a recipe config must be a mapping, got {type(data).__name__}")
    return data


def _base_type(tp):
    """``int | None`` -> (int, True); ``tuple[float, float]`` -> (tuple, False)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0])[0], True
    return (origin or tp), False


def _parse(value, tp, name: str):
    base, optional = _base_type(tp)
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
        if optional:
            return None
        raise ValueError(f"{name} may not be None")
    if base is bool:
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{name}: not a boolean: {value!r}")
        return bool(value)
    if base in (tuple, list):
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if not isinstance(value, (list, tuple)):
            value = [value]
        args = typing.get_args(tp) or (float,)
        return tuple(_parse(v, args[0], name) for v in value)
    if base in (int, float, str):
        try:
            return base(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: expected {base.__name__}, got {value!r}") from None
    raise TypeError(f"{name}: unsupported config type {tp}")


def _fields(cls):
    hints = typing.get_type_hints(cls)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(cls)]


def add_config_flags(parser: argparse.ArgumentParser, train_cls, model_cls,
                     model_help: dict[str, str] | None = None, train_help: dict[str, str] | None = None) -> None:
    """Add ``--<key>`` for every training key and ``--model-<key>`` for every model key (with the
    ``train_help`` / ``model_help`` text of the key)."""
    group = parser.add_argument_group("training config overrides")
    for name, _ in _fields(train_cls):
        group.add_argument("--" + name.replace("_", "-"), dest=f"cfg_{name}", default=None, metavar="V",
                           help=(train_help or {}).get(name))
    if model_cls is None:  # the model's configuration comes with it (a Whisper checkpoint)
        return
    group = parser.add_argument_group("model config overrides (each sets that key only)")
    for name, _ in _fields(model_cls):
        flag = "--" + MODEL_PREFIX + name.replace("_", "-")
        group.add_argument(flag, dest=f"cfgm_{name}", default=None, metavar="V", help=(model_help or {}).get(name))


def recipe_parser(prog: str, description: str | None, train_cls, model_cls,
                  parser: argparse.ArgumentParser | None = None, model_help: dict[str, str] | None = None,
                  train_help: dict[str, str] | None = None) -> argparse.ArgumentParser:
    """The parser of a training recipe: ``--config``, ``--resume`` and every config key as a flag."""
    parser = parser or argparse.ArgumentParser(prog=prog, description=description,
                                               formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="recipe YAML (training keys, and model keys under `model:`)")
    parser.add_argument("--resume", action="store_true", help="continue from EXP_DIR/checkpoint.pt")
    add_config_flags(parser, train_cls, model_cls, model_help, train_help)
    return parser


def _build(cls, values: dict, where: str):
    known = dict(_fields(cls))
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    return cls(**{k: _parse(v, known[k], f"{where}.{k}") for k, v in values.items()})


def build_configs(args: argparse.Namespace, train_cls, model_cls, base: dict | None = None):
    """Merge YAML ``base`` and command-line overrides into ``(train_cfg, model_cfg)``; with ``model_cls``
    None the model config is None and a ``model:`` section is an error."""
    base = dict(base or {})
    model_values = dict(base.pop("model", None) or {})
    train_values = base
    for key, value in vars(args).items():
        if value is None:
            continue
        if key.startswith("cfgm_"):
            model_values[key[5:]] = value
        elif key.startswith("cfg_"):
            train_values[key[4:]] = value
    if model_cls is None:
        if model_values:
            raise ValueError(f"model: keys {sorted(model_values)} given, but this recipe's model brings its own "
                             "configuration")
        return _build(train_cls, train_values, "config"), None
    return _build(train_cls, train_values, "config"), _build(model_cls, model_values, "model")
