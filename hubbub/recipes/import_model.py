"""``hubbub models import``: a Whisper checkpoint into a hubbub model folder.

Usage:
    # a CTranslate2 folder (as faster-whisper uses: model.bin, config.json, tokenizer.json)
    hubbub models import /models/faster-whisper-small -o models/whisper-small
    # an OpenAI checkpoint (dims + model_state_dict), with Whisper's tokenizer.json
    hubbub models import ~/.cache/whisper/small.en.pt --tokenizer tokenizer.json -o models/whisper-small.en
    # a Hugging Face folder (config.json, model.safetensors, tokenizer.json)
    hubbub models import /models/whisper-small-hf -o models/whisper-small
    # an installed weight package, by name (what the defaults use; converted once into the cache)
    hubbub models import whisper-tiny.en -o models/whisper-tiny.en
    # then, anywhere an ASR is taken:
    hubbub transcribe meeting.wav -o out/ --asr models/whisper-small

Options set at import are stored in the folder's config.json: ``--encoder-window W`` makes the
encoder's self-attention local (W frames of 20 ms), ``--tf-channels C`` adds the time-frequency
attention block ahead of the encoder (it starts as an identity: the model is Whisper until trained).
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

__all__ = ["build_parser", "main"]

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hubbub models import", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="CTranslate2 folder, OpenAI .pt file, Hugging Face folder, or whisper-base / "
                                  "whisper-tiny.en (an installed weight package)")
    p.add_argument("-o", "--out", required=True, help="the hubbub model folder to write")
    p.add_argument("--tokenizer", default=None, help="Whisper's tokenizer.json (default: beside the source)")
    p.add_argument("--encoder-window", type=int, default=None, help="local encoder attention, frames (default: global)")
    p.add_argument("--tf-channels", type=int, default=0, help="time-frequency attention block channels (0: none)")
    p.add_argument("--overwrite", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from hubbub.models.whisper_import import KNOWN_WHISPER, ensure_whisper, import_whisper

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        log.error("%s exists and is not empty (use --overwrite)", out)
        return 1
    overrides = {"encoder_window": args.encoder_window, "tf_channels": args.tf_channels}
    tmp = out.with_name(f".{out.name}.part")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        if args.source in KNOWN_WHISPER:
            from hubbub.models.loading import load_model

            model = load_model(ensure_whisper(args.source), **overrides)
            model.save_pretrained(tmp)
            shutil.copyfile(ensure_whisper(args.source) / "README.md", tmp / "README.md")
        else:
            import_whisper(args.source, tmp, tokenizer=args.tokenizer, **overrides)
    except (OSError, ValueError, KeyError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        log.error("%s: %s", args.source, err)
        return 1
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    log.info("wrote %s", out)
    return 0
