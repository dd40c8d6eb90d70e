"""The ``hubbub`` command: a thin dispatcher.

Each command lives with its own layer and is imported only when it runs, so
``hubbub --help`` and ``hubbub <command> --help`` are instant and the CLI, the
demo and the recipes never import one another:

* ``separate``, ``transcribe`` -> :mod:`hubbub.cli`
* ``train``, ``evaluate``, ``data``, ``models`` -> :mod:`hubbub.recipes.cli`
* ``demo`` -> :mod:`hubbub.demo.cli`

The common options (``-v``, ``-q``, ``--threads N``) are taken here, before or
after the command's name, and apply to whatever runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import sys

from hubbub import __version__

COMMANDS = {
    "separate": ("hubbub.cli", "separate voices: write OUT/<stem>/spkN.wav"),
    "transcribe": ("hubbub.cli", "separate then transcribe: who said what and when"),
    "train": ("hubbub.recipes.cli", "train a model"),
    "evaluate": ("hubbub.recipes.cli", "score a model on a corpus"),
    "data": ("hubbub.recipes.cli", "prepare data"),
    "models": ("hubbub.recipes.cli", "import a Whisper checkpoint into a hubbub model folder"),
    "demo": ("hubbub.demo.cli", "launch the Gradio demo in the browser"),
}

#: commands whose own parser also defines a common option: it is passed on to them as well
OWN_OPTIONS = {
    "separate": {"--quiet", "--threads"},
    "transcribe": {"--quiet", "--threads"},
    "train separator": {"--threads"},
    "train asr": {"--threads"},
    "evaluate separation": {"--quiet", "--threads"},
    "evaluate asr": {"--quiet", "--threads"},
    "data synth": {"--quiet"},
    "data separated": {"--threads"},
}

COMMON_HELP = """common options (before or after the command):
  -v, --verbose   more log lines (debug)
  -q, --quiet     warnings and errors only, no progress bars
  --threads N     torch CPU threads
"""


def _targets(group: str) -> str:
    """``(separator, asr, overlap)`` for a recipe group: read from the recipe table, never out of date."""
    from hubbub.recipes.cli import COMMANDS as RECIPES  # a table only: imports nothing heavy

    return ", ".join(name for g, name in RECIPES if g == group)


def usage() -> str:
    lines = []
    for name, (module, doc) in COMMANDS.items():
        if module == "hubbub.recipes.cli":
            doc = f"{doc} ({_targets(name)})"
        lines.append(f"  {name:<11} {doc}\n")
    return (
        "usage: hubbub [-v|-q] [--threads N] <command> [<args>]\n\ncommands:\n" + "".join(lines)
        + "\n" + COMMON_HELP + "\n'hubbub <command> --help' describes a command.\n"
    )


@dataclasses.dataclass
class Common:
    """The common options, wherever they were given."""

    verbosity: int = 0
    quiet: bool = False
    threads: int | None = None
    #: ``--quiet`` written after the command's name: that command's own flag where it has one
    quiet_after: bool = False


def split_common(argv: list[str]) -> tuple[Common, list[str]]:
    """Take ``-v``, ``-q`` and ``--threads N`` out of ``argv`` (up to a ``--``); the rest in order.

    Raises ValueError for a ``--threads`` without a positive whole number.
    """
    common, rest = Common(), []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in ("-v", "--verbose") or (len(arg) > 2 and arg.startswith("-v") and set(arg[1:]) == {"v"}):
            common.verbosity += max(1, len(arg) - 1) if arg.startswith("-v") else 1
        elif arg == "--quiet" and rest:
            common.quiet_after = True
        elif arg in ("-q", "--quiet", "--quiet-logs") or (arg.startswith("-q") and set(arg[1:]) == {"q"}):
            common.quiet = True
            common.verbosity -= len(arg) - 1 if not arg.startswith("--") else 1
        elif arg == "--threads" or arg.startswith("--threads="):
            value = arg.split("=", 1)[1] if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else "")
            i += 0 if "=" in arg else 1
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"--threads needs a positive whole number, got {value!r}")
            common.threads = int(value)
        else:
            rest.append(arg)
        i += 1
    return common, rest


def _own(rest: list[str]) -> tuple[int, set[str]]:
    """How many words name the command in ``rest``, and which common options its own parser defines."""
    words = 2 if rest[0] in ("train", "evaluate", "data") and len(rest) > 1 else 1
    return words, OWN_OPTIONS.get(" ".join(rest[:words]), set())


def _settle_quiet(common: Common, rest: list[str]) -> Common:
    """A ``--quiet`` after a command that has its own keeps that command's meaning (for
    ``evaluate``: no progress bar, the scores still logged); elsewhere it is ``-q``."""
    if common.quiet_after and "--quiet" not in _own(rest)[1] and not common.quiet:
        common = dataclasses.replace(common, quiet=True, verbosity=common.verbosity - 1)
    return common


def _pass_on(common: Common, rest: list[str]) -> list[str]:
    """``rest`` plus the common options the command's own parser defines too, after its name(s)."""
    words, own = _own(rest)
    extra = []
    if (common.quiet or common.quiet_after) and "--quiet" in own:
        extra.append("--quiet")
    if common.threads and "--threads" in own:
        extra += ["--threads", str(common.threads)]
    return [*rest[:words], *extra, *rest[words:]]


def setup_logging(verbosity: int = 0) -> None:
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger().setLevel(level)
    for noisy in ("speechbrain", "httpx", "matplotlib", "numba", "urllib3", "gradio"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


@contextlib.contextmanager
def _applied(common: Common):
    """Apply the common options for one command, then put things back (``main`` may run in a test)."""
    saved_env = {k: os.environ.get(k) for k in ("TQDM_DISABLE", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    torch_threads = None
    root_level = logging.getLogger().level
    setup_logging(common.verbosity)
    if common.quiet:
        os.environ["TQDM_DISABLE"] = "1"  # progress bars that use tqdm's defaults stay off
    if common.threads:
        if "torch" in sys.modules:  # already started (main called in-process): set it directly
            torch = sys.modules["torch"]
            torch_threads = torch.get_num_threads()
            torch.set_num_threads(common.threads)
        else:  # read by torch when it starts
            os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(common.threads)
    try:
        yield
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if torch_threads is not None:
            sys.modules["torch"].set_num_threads(torch_threads)
        logging.getLogger().setLevel(root_level)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        common, argv = split_common(argv)
    except ValueError as err:
        sys.stderr.write(f"hubbub: {err}\n")
        return 2
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        sys.stdout.write(f"hubbub {__version__}\n")
        return 0
    name = argv[0]
    if name not in COMMANDS:
        sys.stderr.write(f"hubbub: unknown command {name!r}\n\n{usage()}")
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    common = _settle_quiet(common, argv)
    with _applied(common):
        module = importlib.import_module(COMMANDS[name][0])
        return module.main(_pass_on(common, argv))


if __name__ == "__main__":
    sys.exit(main())
