"""docs/results.md is what benchmarks/make_results.py writes now, and every figure the README gives about a
shipped model is the one its model card or the current result file holds. Fast: reads text and JSON only."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CARDS = ROOT / "hubbub" / "models" / "pretrained"


@functools.cache
def _make_results():
    spec = importlib.util.spec_from_file_location("make_results", ROOT / "benchmarks" / "make_results.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_results", module)  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def _readme() -> str:
    # one line per paragraph, so that a figure's words may wrap anywhere
    return re.sub(r"\s*\n\s*", " ", (ROOT / "README.md").read_text(encoding="utf-8"))


def _card(name: str) -> str:
    return (CARDS / name / "README.md").read_text(encoding="utf-8")


def _find(pattern: str, text: str, where: str) -> re.Match:
    found = re.search(pattern, text)
    assert found, f"{where}: no match for {pattern!r}"
    return found


def _float(text: str) -> float:
    return float(text.replace(",", ""))


def _full_history() -> bool:
    """The page's commit column comes from git history: a shallow clone (or none) cannot rebuild it."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=ROOT, capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and out.stdout.strip() == "false"


needs_history = pytest.mark.skipif(not _full_history(), reason="no full git history (a shallow clone)")


@needs_history
def test_results_page_is_up_to_date():
    assert _make_results().main(["--check"]) == 0


@needs_history
def test_check_fails_when_the_page_differs(tmp_path):
    page = tmp_path / "results.md"
    page.write_text((ROOT / "docs" / "results.md").read_text(encoding="utf-8").replace("7.26", "7.27", 1))
    assert _make_results().main(["--check", "--out", str(page)]) == 1


def test_separator_figures_are_the_cards():
    card, readme = _card("separator-8k"), _readme()
    test_other = _find(r"LibriSpeech test-other, 2 speakers[^|]*\| ([\d.]+) / ([\d.]+) \|", card, "separator card")
    stated = _find(r"SI-SNRi on unseen speakers: ([\d.]+) dB on test-other mixtures", readme, "README")
    assert stated.group(1) == f"{float(test_other.group(1)):.1f}"
    leak = _find(r"lone_leak_db[^|]*\| (-[\d.]+) dB;.*?step 39,750: (-[\d.]+) dB", card, "separator card")
    said = _find(r"share of a lone held-out voice: (-[\d.]+) dB, against (-[\d.]+) dB before them", readme, "README")
    assert said.groups() == leak.groups()


def test_default_asr_figures_are_the_cards():
    card, readme = _card("whisper-base-separated"), _readme()
    unseen = _find(r"not used for validation or selection[^|]*\| ([\d.]+) % \| \*\*([\d.]+) %\*\*", card, "card")
    clean = _find(r"LibriSpeech test-other, 60 utterances[^|]*\| ([\d.]+) % \| ([\d.]+) %", card, "card")
    said = _find(r"WER on separated voices of held-out speakers ([\d.]+) % against ([\d.]+) % for Whisper base as "
                 r"imported; on 60 clean test-other utterances ([\d.]+) % against ([\d.]+) %", readme, "README")
    # the card's columns: Whisper base as imported, then the adapter
    assert said.groups() == (unseen.group(2), unseen.group(1), clean.group(2), clean.group(1))
    # faster-whisper on the same 60 utterances, from the run docs/results.md reads
    bench = json.loads((ROOT / "benchmarks" / "results" / "asr-bench.json").read_text())
    fw = bench["../shared/data/LibriSpeech/test-other|fw-base-int8"]["wer"]
    assert _find(r"where faster-whisper base int8 reads ([\d.]+) %", readme, "README").group(1) == f"{100 * fw:.1f}"


def _report_rows(name: str, first: str) -> dict[str, list[str]]:
    text = (ROOT / "docs" / "notes" / "runs" / name).read_text(encoding="utf-8")
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|")]
    header = next(r for r in rows if r[0] == first)
    return {r[0]: dict(zip(header, r)) for r in rows if r is not header and not r[0].startswith("-")}


def test_asr_speed_is_the_current_runs():
    readme, rows = _readme(), _report_rows("asr-speed-bench.md", "system")
    said = _find(r"Greedy decoding runs at RTF ([\d.]+) on 2 threads \(faster-whisper int8 on the same files, same "
                 r"run: ([\d.]+)\).*?`--asr-precision int8` is faster again \(([\d.]+)\)", readme, "README")
    assert said.groups() == (rows["hubbub"]["RTF"], rows["fw-base-int8"]["RTF"], rows["hubbub-int8"]["RTF"])


def test_port_figure_is_the_runs():
    readme = _readme()
    rows = _report_rows("whisper-port-bench.md", "corpus")
    (row,) = rows.values()
    said = _find(r"for every utterance \(([\d.]+) % WER both\)", readme, "README").group(1)
    assert f"{said}%" == row["hubbub-fp32 WER"] == row["fw-base-float32 WER"]


def test_overlap_detector_figures_are_the_cards():
    card, readme = _card("overlap-8k"), _readme()
    minutes = _find(r"CPU time \(all threads\) \| ([\d.]+) min", card, "overlap card").group(1)
    params = _find(r"(\d+) k parameters", card, "overlap card").group(1)
    said = _find(r"overlapped-speech detector trained here \((\d+) CPU minutes, (\d+) k parameters\)", readme, "README")
    assert said.group(1) == f"{float(minutes):.0f}" and said.group(2) == params


def _results(name: str) -> dict:
    return json.loads((ROOT / "benchmarks" / "results" / name).read_text())


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _range(values: list[float]) -> str:
    return f"{_pct(min(values))}-{_pct(max(values))}"


def _current(key: str) -> str:
    return Path(_make_results().CURRENT[key]).name


def test_detector_effect_is_the_runs():
    data = _results(_current("detector2"))
    with_it = [data["overlap-aware"][r]["der"] for r in ("0", "10", "20", "30", "40")]
    without = [data["overlap-aware-no-detector"][r]["der"] for r in ("0", "10", "20", "30", "40")]
    said = _find(r"DER on test-other 2-speaker conversations ([\d.]+-[\d.]+) % against ([\d.]+-[\d.]+) % without it",
                 _readme(), "README")
    assert said.groups() == (_range(with_it), _range(without))


def test_conversation_figures_are_the_current_runs():
    readme = _readme()
    two, three = _results(_current("conversation2")), _results(_current("conversation3"))
    said = _find(r"test-other 2-speaker conversations: cpWER ([\d.]+) % at 0 % overlap, the ASR alone's words "
                 r"exactly, ([\d.]+-[\d.]+) % at 10-40 %; 3 speakers ([\d.]+) / ([\d.]+-[\d.]+) %", readme, "README")
    cp2 = [two["overlap-aware"][r]["cpwer"] for r in ("0", "10", "20", "30", "40")]
    cp3 = [three["overlap-aware"][r]["cpwer"] for r in ("0", "10", "20", "30", "40")]
    assert said.groups() == (_pct(cp2[0]), _range(cp2[1:]), _pct(cp3[0]), _range(cp3[1:]))
    # "the ASR alone's words exactly": the same ORC-WER as the ASR alone at 0 % overlap
    assert two["overlap-aware"]["0"]["orcwer"] == pytest.approx(two["asr-alone"]["0"]["orcwer"])


def test_one_hour_figures_are_the_last_runs():
    rows = _report_rows(_current("one_hour"), "recording")
    said = _find(r"An hour on 2 cores takes (\d+) minutes at a peak of ([\d,]+) MiB \(([\d,]+) MiB for one minute\)",
                 _readme(), "README")
    assert said.group(1) == f"{_float(rows['60 min']['wall time (s)']) / 60:.0f}"
    assert _float(said.group(2)) == _float(rows["60 min"]["peak RSS (MiB)"])
    assert _float(said.group(3)) == _float(rows["1 min"]["peak RSS (MiB)"])


def test_readme_names_no_removed_model():
    readme = _readme()
    for gone in ("asr-8k", "train lm", "--no-lm", "--ctc-weight", "flashlight-text", "Kneser"):
        assert gone not in readme, gone
