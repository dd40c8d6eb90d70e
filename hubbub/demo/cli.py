"""``hubbub demo``: parse the arguments, then start the app.

Kept apart from :mod:`hubbub.demo.app` so that ``hubbub demo --help`` and a
wrong argument answer at once, without importing gradio or torch.

    hubbub demo [--host 127.0.0.1] [--port 7860] [--share] [--max-seconds 600]
                [--separator DIR] [--asr DIR]
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import shutil
import sys
import tempfile

__all__ = ["build_parser", "main"]

log = logging.getLogger("hubbub.demo")

MISSING = "hubbub demo needs {name}, which is not installed: pip install 'hubbub[demo]' (or pip install {name})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hubbub demo", description="Launch the Gradio demo in the browser (http://127.0.0.1:7860 by default).")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    parser.add_argument("--share", action="store_true", help="also make a public gradio.live link")
    parser.add_argument("--max-seconds", type=float, default=600, help="longest recording accepted (default: 600)")
    parser.add_argument("--max-file-size", default="50mb", help="largest upload (default: 50mb)")
    parser.add_argument("--separator", default=None, help="separator folder or embedded name (default: embedded)")
    parser.add_argument("--asr", default=None, help="ASR folder or embedded name (default: embedded, if any)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``hubbub demo [...]``; ``argv[0]`` may be the command name."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "demo":
        argv = argv[1:]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_seconds <= 0:
        parser.error("--max-seconds must be positive")
    if not os.environ.get("GRADIO_TEMP_DIR"):  # Gradio's upload copies: a folder of this process, removed at exit
        folder = tempfile.mkdtemp(prefix="hubbub-demo-uploads-")
        atexit.register(shutil.rmtree, folder, True)
        os.environ["GRADIO_TEMP_DIR"] = folder
    try:
        from hubbub.demo import app
    except ModuleNotFoundError as err:
        if err.name in ("gradio", "matplotlib"):
            log.error(MISSING.format(name=err.name))
            return 1
        raise
    try:
        app.launch(args.host, args.port, args.share, args.max_seconds, args.max_file_size, args.separator, args.asr)
    except (FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
