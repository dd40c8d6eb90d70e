"""The separator studies on the voice pool (issue 35): validation SI-SNRi against CPU minutes, one curve a run.

Usage:
    # the size study: two designs from scratch on the pool
    hubbub train separator --config hubbub/recipes/configs/separator-size-ref.yaml --threads 1 --max-cpu-minutes 90
    hubbub train separator --config hubbub/recipes/configs/separator-size-2m.yaml --threads 1 --max-cpu-minutes 90
    python benchmarks/separator_curves.py --study size --out docs/separator-size

    # the voice ablation: the 0.47 M design from scratch, 120 CPU minutes an arm (ARM: libri pool shift eq reverb)
    hubbub train separator --config hubbub/recipes/configs/separator-ablation-ARM.yaml --threads 1 --max-cpu-minutes 120
    hubbub evaluate separation --data data/test-other-2mix-8k --model checkpoints/ablation/ARM/best --threads 1 \
        --json checkpoints/ablation/ARM/test-other-2mix-8k.json
    hubbub evaluate separation --data data/test-other-2mix-noisy-8k --model checkpoints/ablation/ARM/best \
        --threads 1 --json checkpoints/ablation/ARM/test-other-2mix-noisy-8k.json
    python benchmarks/separator_curves.py --study ablation --out docs/separator-ablation

Reads each run's ``metrics.csv`` (the recipe's ``cpu_s`` column: CPU time of all threads, fair on
a shared machine) and its ``best/config.json``; writes ``<out>.csv`` (the curves), ``<out>.png``
(the figure) and ``<out>.md`` (the table: parameters, CPU seconds per step, best validation on each
corpus, the slope over the last 15 CPU minutes, and SI-SNRi on the test-other mixtures where the run's
folder holds ``test-other-2mix-8k.json`` / ``test-other-2mix-noisy-8k.json`` from ``hubbub evaluate separation``).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("separator_curves")

ROOT = Path(__file__).resolve().parent.parent
#: study -> (folder of its runs, {run name: what it is}, figure title)
STUDIES = {
    "size": ("exp/size", {"ref": "0.47 M: d_model 64, 4 blocks, d_ff 256",
                          "2m": "2.14 M: d_model 128, 5 blocks, d_ff 512"},
             "Separator size on the voice pool (from scratch)"),
    "ablation": ("checkpoints/ablation", {"libri": "train-clean-100 alone", "pool": "+ speechocean762",
                                          "shift": "+ speechocean762, + pitch/formant shifts",
                                          "eq": "+ speechocean762, + equalisation",
                                          "reverb": "+ speechocean762, + rooms"},
                 "Separator voices, 0.47 M from scratch (ablation)"),
}


def _params(folder: Path) -> float | None:
    cfg = folder / "best" / "config.json"
    if not cfg.is_file():
        return None
    from hubbub.models.separator import Separator

    model = Separator.from_pretrained(folder / "best")
    return sum(p.numel() for p in model.parameters()) / 1e6


def _slope(rows: list[dict], key: str, minutes: float = 15.0) -> float | None:
    """dB per CPU hour over the last ``minutes`` CPU minutes (least squares), or None."""
    if not rows:
        return None
    end = rows[-1]["cpu_min"]
    tail = [r for r in rows if r["cpu_min"] >= end - minutes]
    if len(tail) < 2:
        return None
    xs, ys = [r["cpu_min"] for r in tail], [r[key] for r in tail]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else None


def _test_other(folder: Path) -> str:
    """``clean / noisy`` test-other SI-SNRi (dB) of the run's best model, where scored."""
    parts = []
    for name in ("test-other-2mix-8k.json", "test-other-2mix-noisy-8k.json"):
        path = folder / name
        parts.append(f"{json.loads(path.read_text())['si_snri']:.2f}" if path.is_file() else "-")
    return " / ".join(parts)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", choices=sorted(STUDIES), default="size")
    p.add_argument("--out", default=None, help="output stem (default: docs/separator-STUDY)")
    args = p.parse_args(argv)
    folder, runs, title = STUDIES[args.study]
    args.out = args.out or f"docs/separator-{args.study}"
    curves, table = [], []
    for name, what in runs.items():
        path = ROOT / folder / name / "metrics.csv"
        if not path.is_file():
            log.warning("%s: no metrics yet", path)
            continue
        with path.open(newline="") as f:
            rows = [{"step": int(r["step"]), "cpu_min": float(r["cpu_s"]) / 60, "score": float(r["score"]),
                     "librispeech": float(r["si_snri_librispeech"]),
                     "speechocean762": float(r["si_snri_speechocean762"])} for r in csv.DictReader(f)]
        curves += [{"run": name, **r} for r in rows]
        best = max(rows, key=lambda r: r["score"])
        last = rows[-1]
        table.append((name, what, _params(path.parent), last["cpu_min"] * 60 / max(last["step"], 1), last["step"],
                      last["cpu_min"], best["librispeech"], best["speechocean762"], best["cpu_min"],
                      _slope(rows, "score"), _test_other(path.parent)))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{out}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["run", "step", "cpu_min", "score", "librispeech", "speechocean762"])
        writer.writeheader()
        writer.writerows(curves)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    for name in runs:
        pts = [c for c in curves if c["run"] == name]
        if pts:
            ax.plot([c["cpu_min"] for c in pts], [c["score"] for c in pts], marker="o", ms=3,
                    label=f"{name}: {runs[name]}")
    ax.set_xlabel("CPU minutes (1 thread)")
    ax.set_ylabel("validation SI-SNRi (dB), mean of both corpora")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(f"{out}.png")
    lines = ["| run | design | parameters (M) | CPU s / step | steps | CPU min | best validation LibriSpeech / "
             "speechocean762 (dB) | at CPU min | slope, last 15 CPU min (dB / CPU h) | test-other clean / noisy (dB) |",
             "|---|---|---:|---:|---:|---:|---|---:|---:|---|"]
    for name, what, params, per_step, steps, cpu, ls, so, at, slope, test in table:
        lines.append(f"| {name} | {what} | {params:.2f} | {per_step:.2f} | {steps} | {cpu:.1f} | {ls:.2f} / {so:.2f} "
                     f"| {at:.1f} | {'' if slope is None else f'{slope:+.2f}'} | {test} |")
    Path(f"{out}.md").write_text("\n".join(lines) + "\n")
    log.info("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
