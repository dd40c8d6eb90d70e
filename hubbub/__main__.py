"""The ``hubbub`` command: a thin dispatcher.

Each command lives with its own layer and is imported only when it runs, so
``hubbub --help`` is instant and the CLI, the demo and the recipes never import
one another:

* ``separate``, ``transcribe`` -> :mod:`hubbub.cli`
* ``train``, ``evaluate``, ``data``, ``models`` -> :mod:`hubbub.recipes.cli`
* ``demo`` -> :mod:`hubbub.demo.app`
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

from hubbub import __version__

COMMANDS = {
    "separate": ("hubbub.cli", "separate voices: write OUT/<stem>/spkN.wav"),
    "transcribe": ("hubbub.cli", "separate then transcribe: who said what and when"),
    "train": ("hubbub.recipes.cli", "train a model (separator, asr)"),
    "evaluate": ("hubbub.recipes.cli", "score a model on a corpus (separation, asr)"),
    "data": ("hubbub.recipes.cli", "prepare data (librimix, mix, synth)"),
    "models": ("hubbub.recipes.cli", "import a Whisper checkpoint into a hubbub model folder (import)"),
    "demo": ("hubbub.demo.app", "launch the Gradio demo in the browser"),
}

USAGE = "usage: hubbub [--version] [-v|-q] <command> [<args>]\n\ncommands:\n" + "".join(
    f"  {name:<11} {doc}\n" for name, (_, doc) in COMMANDS.items()
) + "\n'hubbub <command> --help' describes a command.\n"


def setup_logging(verbosity: int = 0) -> None:
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("speechbrain", "httpx", "matplotlib", "numba", "urllib3", "gradio"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbosity = 0
    while argv and argv[0] in ("-v", "--verbose", "-q", "--quiet-logs"):
        verbosity += 1 if argv.pop(0) in ("-v", "--verbose") else -1
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0
    if argv[0] in ("-V", "--version"):
        sys.stdout.write(f"hubbub {__version__}\n")
        return 0
    name = argv[0]
    if name not in COMMANDS:
        sys.stderr.write(f"hubbub: unknown command {name!r}\n\n{USAGE}")
        return 2
    setup_logging(verbosity)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    module = importlib.import_module(COMMANDS[name][0])
    return module.main(argv)


if __name__ == "__main__":
    sys.exit(main())
