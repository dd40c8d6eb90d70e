"""Write docs/results.md: the current measured figures of each shipped model, taken from the files.

Usage:
    python benchmarks/make_results.py                       # (re)writes docs/results.md
    python benchmarks/make_results.py --check               # exit 1 if docs/results.md is not what it would write
    python benchmarks/make_results.py --out /tmp/results.md # write elsewhere

Sources, read from the repository (run it from anywhere; paths are relative to the repository root):

- ``benchmarks/results/*.json`` (what the benchmark scripts and ``hubbub evaluate`` wrote);
- the shipped model cards ``hubbub/models/pretrained/{separator-8k,overlap-8k,whisper-base-separated}/README.md``
  (the separator's test scores and the adapter's WERs are recorded there and nowhere else);
- the run reports in ``docs/notes/runs/`` for the exact command of a run (their first line) and for the two
  runs that wrote no JSON (ASR speed, one hour end to end).

Every row gives the command that produced it, the commit (``git log -1`` of the JSON or report that holds the
figure; for a model card, the commit that wrote that row of the card) and the machine. Which file is the
*current* figure of each shipped model is chosen in ``CURRENT`` below, with the reason; every other JSON is
listed under "Other recorded runs". The numbers themselves are never written in this script.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("make_results")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = "benchmarks/results"
RUNS = "docs/notes/runs"
CARDS = "hubbub/models/pretrained"
OUT = "docs/results.md"
MACHINE = "2-core AMD EPYC CPU (developer machine)"
RATIOS = ["0", "10", "20", "30", "40"]

# Which file holds the current figure of each shipped model, and why (docs/notes/benchmarks-history.md has the
# story). The separator's test scores are in its card only: the step embedded now (step 27,000 of the
# lone-talker run) was scored without --json, and separation-*.json hold earlier steps.
CURRENT = {
    "separator": f"{CARDS}/separator-8k/README.md",
    "asr_card": f"{CARDS}/whisper-base-separated/README.md",
    "asr_json": f"{RESULTS}/asr-int8-bench.json",  # whisper-base-separated as the default, with the int8 option
    "asr_reference": f"{RESULTS}/asr-bench.json",  # the same 60 test-other utterances read by other systems
    "asr_port": f"{RUNS}/whisper-port-bench.md",  # hubbub's Whisper against faster-whisper, same weights
    "asr_speed": f"{RUNS}/asr-speed-bench.md",
    "overlap": f"{CARDS}/overlap-8k/README.md",
    # the last full run of the default `hubbub transcribe` (every turn-reading and clustering change in, all
    # four systems, 2 and 3 speakers, training paused); matches the README
    "conversation2": f"{RESULTS}/conversation2-embed.json",
    "conversation3": f"{RESULTS}/conversation3-embed.json",
    # the last run that measured the pipeline with and without the overlap detector
    "detector2": f"{RESULTS}/conversation2-joined.json",
    "detector3": f"{RESULTS}/conversation3-joined.json",
    "cpwer": f"{RESULTS}/cpwer-step27000.json",  # the embedded separator on full overlaps
    "cpwer_reference": f"{RESULTS}/cpwer.json",  # the ASR on the mixture / on the true sources, faster-whisper
    "one_hour": f"{RUNS}/long-transcribe-evidence-bench.md",  # the last one-hour run
}

# What each recorded run measured, for the "Other recorded runs" table (files not named here are listed too).
OTHER_RUNS = {
    "separation-test-other-2mix-8k.json": "separator step 16,000 (an earlier embedded model)",
    "separation-test-other-2mix-noisy-8k.json": "separator step 16,000 (an earlier embedded model)",
    "separation-speechbrain-samples.json": "separator step 16,000 (an earlier embedded model)",
    "separation-test-other-2mix-8k-step39750.json": "separator step 39,750 (2-speaker training only)",
    "separation-test-other-2mix-noisy-8k-step39750.json": "separator step 39,750 (2-speaker training only)",
    "separation-speechbrain-samples-step39750.json": "separator step 39,750 (2-speaker training only)",
    "separation-test-other-2mix-8k-single250.json": "separator: step 250 of the lone-talker run",
    "separation-test-other-2mix-noisy-8k-single250.json": "separator: step 250 of the lone-talker run",
    "separation-speechbrain-samples-single250.json": "separator: step 250 of the lone-talker run",
    "conversation2.json": "overlap detector at threshold 0.5, before the joined lone stretches",
    "conversation3.json": "overlap detector at threshold 0.5, before the joined lone stretches",
    "conversation2-step39750.json": "separator step 39,750, before the overlap detector",
    "conversation2-joined.json": "lone stretches decoded together, reading on; with and without the detector",
    "conversation3-joined.json": "lone stretches decoded together, reading on; with and without the detector",
    "conversation2-cluster.json": "clustering of long segments only (a candidate, not kept)",
    "conversation3-cluster.json": "clustering of long segments only (a candidate, not kept)",
    "conversation2-relabel.json": "one-stream relabelling fix",
    "conversation3-relabel.json": "one-stream relabelling fix",
    "conversation2-sentence.json": "the recording's own regions for lone voices, a sentence to one voice",
    "conversation3-sentence.json": "the recording's own regions for lone voices, a sentence to one voice",
    "conversation2-evidence.json": "overlap evidence, speech no voice holds, min_overlap 1.5 s",
    "conversation3-evidence.json": "overlap evidence, speech no voice holds, min_overlap 1.5 s",
    "conversation2-reading.json": "`--reading whisper` beside the default, later code (machine shared with "
    "training: RTF not comparable)",
    "cpwer.json": "separator step 39,750, beside the reference systems",
    "cpwer-step39750.json": "separator step 39,750",
    "cpwer-single250.json": "separator: step 250 of the lone-talker run",
    "asr-bench.json": "Whisper base as imported (then the default) beside pocketsphinx and faster-whisper",
    "asr-int8-bench.json": "whisper-base-separated, float32 and int8 decoder",
    "conversation2-whole.json": "the whole-recording reading (`--reading whisper`: skipped speech read again, "
    "persons from pieces) beside the default, the ASR alone read whole, faster-whisper, and faster-whisper's words "
    "given to the whole reading's persons (the WhisperX way)",
    "conversation3-whole.json": "3 speakers: the whole-recording reading beside the default, the ASR alone read "
    "whole, faster-whisper, and the WhisperX way",
    "conversation2-embed.json": "the current default (the tables above)",
    "conversation3-embed.json": "the current default (the tables above)",
    "cpwer-step27000.json": "the embedded separator (the table above)",
}

SYSTEMS = {
    "overlap-aware": "`hubbub transcribe` (the default: overlap-aware)",
    "separate-everywhere": "`hubbub transcribe --separate-everywhere`",
    "overlap-aware-no-detector": "`hubbub transcribe --overlap-detector none`",
    "asr-alone": "the default ASR on the recording (`--no-separation`)",
    "faster-whisper": "faster-whisper base int8 on the recording",
    "faster-whisper-labelled": "faster-whisper base int8, each word to a person of `--reading whisper`",
    "whisper-reading": "`hubbub transcribe --reading whisper`",
    "hubbub": "hubbub",
    "unseparated": "the default ASR on the mixture",
    "oracle": "the default ASR on the true sources (ceiling)",
    "whisper": "faster-whisper base int8 on the mixture",
}


class ResultsError(RuntimeError):
    """A source file is missing or does not hold what the page needs."""


# --- reading the sources ---------------------------------------------------------------------------------------


def read_text(rel: str) -> str:
    path = ROOT / rel
    if not path.is_file():
        raise ResultsError(f"{rel}: missing")
    return path.read_text(encoding="utf-8")


def read_json(rel: str) -> dict:
    return json.loads(read_text(rel))


def git(*args: str) -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ResultsError(f"git {' '.join(args)}: {exc}") from exc
    return out.stdout.strip()


def commit_of(rel: str) -> str:
    """The commit that last wrote this file's content (a rename does not count)."""
    sha = git("log", "--follow", "--diff-filter=AM", "--format=%h", "-1", "--", rel)
    if not sha:
        raise ResultsError(f"{rel}: no commit wrote it (not committed yet?)")
    return sha


def commit_of_line(rel: str, line: str) -> str:
    """The commit that wrote this line of a file (git's pickaxe: the last commit that changed its count)."""
    sha = git("log", "--format=%h", "-1", "-S", line.strip(), "--", rel)
    if not sha:
        raise ResultsError(f"{rel}: no commit wrote the line {line.strip()!r}")
    return sha


def tables(text: str) -> list[list[list[str]]]:
    """Every markdown table of a text, as rows of cells (header first, the ---- row left out)."""
    found, rows = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not (any(cells) and all(re.fullmatch(r":?-+:?", c) for c in cells if c)):
                rows.append(cells)
        elif rows:
            found.append(rows)
            rows = []
    return found


def table_with(text: str, first_header: str, rel: str) -> list[list[str]]:
    for table in tables(text):
        if table[0][0] == first_header:
            return table
    raise ResultsError(f"{rel}: no table whose first column is {first_header!r}")


def raw_line(text: str, cells: list[str]) -> str:
    """The source line of a table row (for the pickaxe)."""
    for line in text.splitlines():
        if line.startswith("|") and [c.strip() for c in line.strip().strip("|").split("|")] == cells:
            return line
    raise ResultsError(f"row {cells!r} not found")


def report_command(rel: str) -> str:
    """A run report's first line: the exact command, in backquotes."""
    text = read_text(rel)
    found = re.search(r"`([^`]+)`", text)
    if not found:
        raise ResultsError(f"{rel}: no command in backquotes")
    command = found.group(1)
    if re.search(r"--json results/", command):
        # started inside benchmarks/ (its paths are relative to it); the report writes the script's path from the root
        command = "cd benchmarks && " + re.sub(r"^python benchmarks/", "python ", command)
    return command


def report_for_json(name: str) -> str | None:
    """The run report whose command wrote ``benchmarks/results/<name>``."""
    pattern = re.compile(r"--json \S*results/" + re.escape(name) + r"\b")
    for path in sorted((ROOT / RUNS).glob("*.md")):
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        if pattern.search(first):
            return f"{RUNS}/{path.name}"
    return None


def json_command(name: str, data: dict) -> str:
    report = report_for_json(name)
    if report:
        return report_command(report)
    if name.startswith("separation-"):
        # hubbub evaluate separation writes no report; the JSON names its data and model, and every separation
        # run of docs/notes/benchmarks-history.md was made with --threads 2
        model = data.get("model", "")
        model_arg = f" --model {model}" if model and model != "separator-8k" else ""
        return f"hubbub evaluate separation --data {data['data']} --threads 2{model_arg} --json {RESULTS}/{name}"
    raise ResultsError(f"{RESULTS}/{name}: no run report names it and no command is known")


def pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def cell(text: str) -> str:
    """A table cell: pipes escaped, percentages written as everywhere else on the page ("12.2 %")."""
    return re.sub(r"(\d)%", r"\1 %", text.replace("|", "\\|"))


def code(command: str) -> str:
    return f"`{cell(command)}`"


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]

    def render(self) -> list[str]:
        lines = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return lines


# --- the sections -----------------------------------------------------------------------------------------------


def separation_section() -> list[str]:
    rel = CURRENT["separator"]
    text = read_text(rel)
    scores = table_with(text, "test set", rel)
    commands = {
        "noise": "data/test-other-2mix-noisy-8k",
        "SpeechBrain": "../shared/data/speechbrain-samples/separation_manifest.jsonl",
        "": "data/test-other-2mix-8k",
    }
    rows = []
    for cells in scores[1:]:
        data = next(v for k, v in commands.items() if k in cells[0])
        command = f"hubbub evaluate separation --data {data} --threads 2 --model checkpoints/separator-single/best"
        rows.append([cells[0], cells[1], cells[2], code(command) + " (the step now shipped)",
                     commit_of_line(rel, raw_line(text, cells)), MACHINE])
    training = table_with(text, "", rel)
    train_cmd = re.search(r"\(`(hubbub train separator [^`]+)`\)", text)
    if not train_cmd:
        raise ResultsError(f"{rel}: no training command")
    own = []
    for cells in training[1:]:
        if cells[0].startswith("validation SI-SNRi") or cells[0].startswith("lone_leak_db"):
            own.append(
                [cell(cells[0]), cell(cells[1]), code(train_cmd.group(1)),
                 commit_of_line(rel, raw_line(text, cells)), MACHINE]
            )
    return [
        "## Separation: `separator-8k`",
        "",
        f"SI-SNRi and SDRi on speakers never trained on, from the model card (`{rel}`). The commands are those of",
        "[docs/benchmarks.md](benchmarks.md#separation); each test set is built there.",
        "",
        *Table(["test set", "SI-SNRi (dB), mean / median", "SDRi (dB)", "command", "commit", "machine"],
               rows).render(),
        "",
        "Validation during training (held-out training speakers; `checkpoints/separator-single/metrics.csv`):",
        "",
        *Table(["measure", "value", "command", "commit", "machine"], own).render(),
        "",
    ]


def asr_section() -> list[str]:
    rel = CURRENT["asr_card"]
    text = read_text(rel)
    measured = table_with(text, "test set", rel)
    commands = {
        "not used": "manifest:data/dev-separated-8k/unseen.jsonl",
        "selection": "data/dev-separated-8k/manifest.jsonl --limit 40",
        "test-other": "../shared/data/LibriSpeech/test-other --limit 60",
    }
    rows = []
    for cells in measured[1:]:
        data = next((v for k, v in commands.items() if k in cells[0]), None)
        if data is None:
            raise ResultsError(f"{rel}: no command known for the row {cells[0]!r}")
        command = (
            f"python benchmarks/bench_asr.py --data {data} --systems hubbub --asr whisper-base --threads 2, then "
            "--asr exp/asr-whisper-separated/best (now shipped as whisper-base-separated)"
        )
        rows.append([cell(cells[0]), cells[2], cells[1], code(command), commit_of_line(rel, raw_line(text, cells)),
                     MACHINE])
    lines = [
        "## ASR: `whisper-base-separated` (the default)",
        "",
        f"WER, greedy, hubbub's normaliser. From the model card (`{rel}`):",
        "",
        *Table(["test set", "whisper-base-separated", "Whisper base as imported", "command", "commit", "machine"],
               rows).render(),
        "",
    ]
    # the same model in a benchmark run that wrote a JSON (the card's figures again, with the int8 option)
    rel = CURRENT["asr_json"]
    data = read_json(rel)
    command, sha = report_command(report_for_json(Path(rel).name)), commit_of(rel)
    labels = {"hubbub": "whisper-base-separated (float32 decoder)", "hubbub-int8": "the same, `--asr-precision int8`"}
    rows = []
    for key, value in data.items():
        corpus, system = key.split("|")
        rows.append([f"`{corpus}`", labels.get(system, system), pct(value["wer"]), f"{value['rtf']:.3f}",
                     code(command), sha, MACHINE])
    lines += [
        f"The same model in a benchmark run (`{rel}`; the decoder's weights are float16 now, which gives the",
        "same transcripts as float32):",
        "",
        *Table(["corpus", "system", "WER", "RTF", "command", "commit", "machine"], rows).render(),
        "",
    ]
    rel = CURRENT["asr_reference"]
    data = read_json(rel)
    command, sha = report_command(report_for_json(Path(rel).name)), commit_of(rel)
    labels = {
        "hubbub": "Whisper base as imported, 10-s padding",
        "hubbub-int8": "the same, int8 encoder and decoder",
        "hubbub-full": "the same, 30-s padding",
        "pocketsphinx": "pocketsphinx",
        "fw-base-int8": "faster-whisper base int8",
        "fw-tiny.en-int8": "faster-whisper tiny.en int8",
    }
    rows = []
    for key, value in data.items():
        corpus, system = key.split("|")
        rows.append([f"`{corpus}`", labels.get(system, system), pct(value["wer"]), f"{value['rtf']:.3f}",
                     code(command), sha, MACHINE])
    lines += [
        f"Other systems on the same 60 utterances of each corpus (`{rel}`; 1 thread, a loaded machine):",
        "",
        *Table(["corpus", "system", "WER", "RTF", "command", "commit", "machine"], rows).render(),
        "",
    ]
    rel = CURRENT["asr_port"]
    text = read_text(rel)
    port = table_with(text, "corpus", rel)
    same = re.search(r"Identical transcripts, [^:]+: ([\d.]+%)", text)
    head, row = port[0], port[1]
    rows = []
    for label, system in (("hubbub's Whisper base, float32, 30-s input", "hubbub-fp32"),
                          ("faster-whisper base float32, same weights", "fw-base-float32")):
        rows.append([f"`{row[0]}`", label, cell(row[head.index(f"{system} WER")]), row[head.index(f"{system} RTF")],
                     code(report_command(rel)), commit_of(rel), MACHINE])
    lines += [
        "The port is exact: Whisper base in hubbub's layers against faster-whisper on the same weights "
        f"(`{rel}`; identical transcripts: {same.group(1) if same else 'not recorded'}):",
        "",
        *Table(["corpus", "system", "WER", "RTF", "command", "commit", "machine"], rows).render(),
        "",
    ]
    rel = CURRENT["asr_speed"]
    speed = table_with(read_text(rel), "system", rel)
    head = speed[0]
    labels = {
        "hubbub": "whisper-base-separated (`--asr-precision float16`, the default)",
        "hubbub-fp32": "the same, `--asr-precision float32`",
        "hubbub-int8": "the same, `--asr-precision int8`",
        "fw-base-int8": "faster-whisper base int8 (same weights)",
    }
    rows = [
        [labels.get(r[0], r[0]), r[head.index("files")], r[head.index("audio (s)")], r[head.index("RTF")],
         r[head.index("peak memory (MiB)")], code(report_command(rel)), commit_of(rel), MACHINE]
        for r in speed[1:]
    ]
    lines += [
        f"Speed: test-other utterances, greedy, 2 threads, each system in a fresh process (`{rel}`):",
        "",
        *Table(["system", "files", "audio (s)", "RTF", "peak memory (MiB)", "command", "commit", "machine"],
               rows).render(),
        "",
    ]
    return lines


def overlap_section() -> list[str]:
    rel = CURRENT["overlap"]
    text = read_text(rel)
    params = re.search(r"^([\d.,]+ k) parameters", text, re.MULTILINE)
    train = re.search(r"Reproduce: `([^`]+)`", text)
    if not params or not train:
        raise ResultsError(f"{rel}: no parameter count or no Reproduce command")
    rows = [["parameters", params.group(1), code(train.group(1)),
             commit_of_line(rel, text[params.start():text.index("\n", params.start())]), MACHINE]]
    for cells in table_with(text, "", rel)[1:]:
        if cells[0] in ("steps", "CPU time (all threads)") or cells[0].startswith("validation overlap"):
            rows.append([cell(cells[0]), cell(cells[1]), code(train.group(1)),
                         commit_of_line(rel, raw_line(text, cells)), MACHINE])
    lines = [
        "## Overlapped-speech detector: `overlap-8k`",
        "",
        f"From the model card (`{rel}`); validation on 64 clips of 12 held-out training speakers:",
        "",
        *Table(["measure", "value", "command", "commit", "machine"], rows).render(),
        "",
        "In the pipeline, with and without it (`--overlap-detector none`), test-other conversations, in the last",
        "run that measured both (the default reading has changed since; the current figures are the",
        "conversation tables below):",
        "",
    ]
    rows = []
    for n, key in ((2, "detector2"), (3, "detector3")):
        rel = CURRENT[key]
        data = read_json(rel)
        command, sha = json_command(Path(rel).name, data), commit_of(rel)
        for system in ("overlap-aware", "overlap-aware-no-detector"):
            for metric, name in (("der", "DER"), ("cpwer", "cpWER")):
                rows.append([str(n), SYSTEMS[system], name, *[pct(data[system][r][metric]) for r in RATIOS],
                             code(command), sha, MACHINE])
    lines += [
        *Table(["speakers", "system", "measure", *[f"{r} %" for r in RATIOS], "command", "commit", "machine"],
               rows).render(),
        "",
    ]
    return lines


def conversation_section() -> list[str]:
    lines = [
        "## Conversations: `hubbub transcribe` with every shipped model",
        "",
        "LibriCSS-like test-other conversations (16 kHz; 4 recordings per overlap ratio with 2 speakers, 3 with 3",
        "speakers), scored with meeteval (cpWER: speaker-attributed; ORC-WER: the words alone) and",
        "pyannote.metrics (DER, overlap scored, 0.25-s collar). Speakers found: the mean per recording.",
        "",
    ]
    for n, key in ((2, "conversation2"), (3, "conversation3")):
        rel = CURRENT[key]
        data = read_json(rel)
        command, sha = json_command(Path(rel).name, data), commit_of(rel)
        rows = []
        for system, values in data.items():
            metrics = [("cpwer", "cpWER"), ("orcwer", "ORC-WER"), ("der", "DER")]
            for metric, name in metrics:
                rows.append([SYSTEMS.get(system, system), name, *[pct(values[r][metric]) for r in RATIOS],
                             code(command), sha, MACHINE])
            if system == "overlap-aware":
                found = [sum(values[r]["speakers_found"]) / len(values[r]["speakers_found"]) for r in RATIOS]
                rows.append([SYSTEMS[system], "speakers found", *[f"{f:.1f}" for f in found], code(command), sha,
                             MACHINE])
            rows.append([SYSTEMS.get(system, system), "RTF", *[f"{values[r]['rtf']:.3f}" for r in RATIOS],
                         code(command), sha, MACHINE])
        words = data["overlap-aware"]["0"]["words"]
        lines += [
            f"### {n} speakers (`{rel}`; {words} reference words per ratio)",
            "",
            *Table(["system", "measure", *[f"{r} %" for r in RATIOS], "command", "commit", "machine"],
                   rows).render(),
            "",
        ]
    return lines


def cpwer_section() -> list[str]:
    rows = []
    for key, systems in (("cpwer", ["hubbub"]), ("cpwer_reference", ["unseparated", "oracle", "whisper"])):
        rel = CURRENT[key]
        data = read_json(rel)
        command, sha = json_command(Path(rel).name, data), commit_of(rel)
        for mixtures, by_system in data.items():
            for system in systems:
                value = by_system[system]
                label = "`hubbub transcribe` (embedded models)" if system == "hubbub" else SYSTEMS[system]
                rows.append([f"`{mixtures}` ({value['mixtures']})", label, pct(value["cpwer"]),
                             f"{value['rtf']:.3f}", code(command), sha, MACHINE])
    return [
        "## Full overlaps: cpWER on two-talker mixtures",
        "",
        "Fully overlapped (\"max\") test-other mixtures, whole utterances as references. The reference systems",
        f"(`{CURRENT['cpwer_reference']}`) ran in an earlier session, with an earlier separator for hubbub's own row",
        "(listed under other recorded runs).",
        "",
        *Table(["mixtures", "system", "cpWER", "RTF", "command", "commit", "machine"], rows).render(),
        "",
    ]


def one_hour_section() -> list[str]:
    rel = CURRENT["one_hour"]
    table = table_with(read_text(rel), "recording", rel)
    head = table[0]
    rows = [[*r, code(report_command(rel)), commit_of(rel), MACHINE] for r in table[1:]]
    return [
        "## Long recordings: `hubbub transcribe` end to end",
        "",
        "Concatenated test-other two-talker mixtures (8 kHz), each length in a fresh process that reports its own",
        f"peak resident memory (`{rel}`):",
        "",
        *Table([*head, "command", "commit", "machine"], rows).render(),
        "",
    ]


def headline(name: str, data: dict) -> str:
    if name.startswith("separation-"):
        return f"SI-SNRi {data['si_snri']:.2f} dB (median {data['si_snri_median']:.2f}), SDRi {data['sdri']:.2f} dB"
    if name.startswith("conversation"):
        parts = []
        for system in ("overlap-aware", "whisper-reading", "faster-whisper-labelled"):
            if system in data:
                parts.append(f"{system} cpWER " + " / ".join(pct(data[system][r]["cpwer"]) for r in RATIOS))
        for system in ("whisper-reading", "asr-alone", "faster-whisper"):
            if system in data and "faster-whisper-labelled" in data:
                parts.append(f"{system} ORC-WER " + " / ".join(pct(data[system][r]["orcwer"]) for r in RATIOS))
        return "; ".join(parts) + " (0-40 % overlap)"
    if name.startswith("cpwer"):
        return "; ".join(f"`{m}`: hubbub cpWER {pct(v['hubbub']['cpwer'])}" for m, v in data.items())
    if name.startswith("asr"):
        return "; ".join(f"`{k.split('|')[0]}`: {k.split('|')[1]} WER {pct(v['wer'])}" for k, v in data.items()
                         if k.split("|")[1] == "hubbub")
    return "see the file"


def other_runs_section() -> list[str]:
    current = {Path(v).name for v in CURRENT.values() if v.startswith(RESULTS)}
    rows = []
    for path in sorted((ROOT / RESULTS).glob("*.json")):
        if path.name in current:
            continue
        rel = f"{RESULTS}/{path.name}"
        data = read_json(rel)
        what = OTHER_RUNS.get(path.name, "not described in make_results.py")
        rows.append([f"`{path.name}`", cell(what), cell(headline(path.name, data)),
                     code(json_command(path.name, data)), commit_of(rel), MACHINE])
    return [
        "## Other recorded runs",
        "",
        "Earlier models and variants of the pipeline, kept as history; none of them is a current figure. What each",
        "changed is told in [docs/notes/benchmarks-history.md](notes/benchmarks-history.md), and each run's own",
        "report is in [docs/notes/runs/](notes/runs/).",
        "",
        *Table(["file", "what it measured", "headline", "command", "commit", "machine"], rows).render(),
        "",
    ]


def render() -> str:
    lines = [
        "# Results",
        "",
        "<!-- Written by benchmarks/make_results.py from benchmarks/results/*.json, the shipped model cards and the",
        "run reports in docs/notes/runs/; do not edit by hand: run `python benchmarks/make_results.py`. -->",
        "",
        "The current measured figures of each shipped model (`hubbub/models/pretrained/`: `separator-8k`,",
        "`overlap-8k`, `whisper-base-separated`). Every row names the command that produced it, the commit that",
        "wrote the figure and the machine. How to build each test set and what each benchmark measures:",
        "[docs/benchmarks.md](benchmarks.md). Test sets hold speakers no model was trained on.",
        "",
    ]
    lines += separation_section()
    lines += asr_section()
    lines += overlap_section()
    lines += conversation_section()
    lines += cpwer_section()
    lines += one_hour_section()
    lines += other_runs_section()
    return "\n".join(lines).rstrip("\n") + "\n"


def first_difference(old: str, new: str) -> str:
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---")):
            return line
    return "(whitespace only)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=OUT, help=f"the page to write or check, relative to the repository ({OUT})")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the page differs from what this script would write now")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug lines")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(name)s: %(message)s")
    try:
        text = render()
    except ResultsError as exc:
        log.error("%s", exc)
        return 2
    out = Path(args.out) if Path(args.out).is_absolute() else ROOT / args.out
    if args.check:
        old = out.read_text(encoding="utf-8") if out.is_file() else ""
        if old != text:
            log.error("%s is out of date (run python benchmarks/make_results.py); first difference: %s",
                      args.out, first_difference(old, text))
            return 1
        log.info("%s is up to date", args.out)
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
