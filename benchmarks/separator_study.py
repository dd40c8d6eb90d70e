"""Which separator design learns fastest on this CPU: a budgeted training study.

Every candidate is trained from scratch by the separator recipe for the same
CPU budget (process CPU time, all threads: the machine is shared, so wall time
would be unfair), on 1 thread, niced, one candidate at a time, with the same
dynamic mixing of LibriSpeech train-clean-100 voices and the same validation
mixtures of 12 held-out training speakers (the recipe's ``val_*`` keys). The
candidates are the study configs ``hubbub/recipes/configs/separator-study-*.yaml``.
The report plots validation SI-SNRi against CPU minutes, with parameter counts
and CPU seconds per step, and adds the first part of the reference run's own
curve (``checkpoints/separator-default/metrics.csv``, against wall time on 1
thread: it has no CPU column) for comparison.

Usage:
    # train every candidate for 12 CPU minutes (resumable: a finished candidate is skipped,
    # an interrupted one resumes), then write docs/separator-study.{csv,png,md}
    python benchmarks/separator_study.py run --cpu-minutes 12
    python benchmarks/separator_study.py run --cpu-minutes 12 --only unet tf
    python benchmarks/separator_study.py report --out docs/separator-study
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("separator_study")

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "hubbub" / "recipes" / "configs"
#: candidates in the order they are trained: name -> (study config, what it is)
CANDIDATES = {
    "unet": ("separator-study-unet.yaml", "U-Net, attention at the 2 coarsest levels (c)"),
    "tf": ("separator-study-tf.yaml", "TF dual-path attention on the STFT, 8 ms hop (b)"),
    "ref": ("separator-study-ref.yaml", "reference dual-path, d64 x 4 blocks, stride 16"),
    "wide": ("separator-study-wide.yaml", "reference family, d128 x 6 blocks (a)"),
    "stride8": ("separator-study-stride8.yaml", "reference family, stride 8, chunk 100 (a)"),
}
REFERENCE_RUN = ROOT / "checkpoints" / "separator-default" / "metrics.csv"


def exp_dir(name: str) -> Path:
    return ROOT / "exp" / "study" / name


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def run(names: list[str], cpu_minutes: float, threads: int, nice: int) -> int:
    """Train each candidate in turn; a candidate whose run used its budget is skipped."""
    failed = 0
    for name in names:
        config, _ = CANDIDATES[name]
        rows = read_metrics(exp_dir(name) / "metrics.csv")
        used = float(rows[-1]["cpu_s"]) / 60 if rows and rows[-1].get("cpu_s") else 0.0
        if used >= cpu_minutes * 0.98:
            log.info("%s: done already (%.1f CPU minutes), skipped", name, used)
            continue
        cmd = [
            "nice", "-n", str(nice), sys.executable, "-m", "hubbub", "train", "separator",
            "--config", str(CONFIGS / config), "--exp-dir", str(exp_dir(name)), "--threads", str(threads),
            "--max-cpu-minutes", f"{cpu_minutes - used:.2f}", "--resume",
        ]
        log.info("%s: %s", name, " ".join(cmd))
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
        done = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
        if done.returncode:
            log.error("%s: training failed (exit %d)", name, done.returncode)
            failed += 1
    return 1 if failed else 0


def _n_params(directory: Path) -> int | None:
    if not (directory / "config.json").is_file():
        return None
    from hubbub.models.separator import Separator

    model = Separator.from_pretrained(directory)
    return sum(p.numel() for p in model.parameters())


def collect(cpu_minutes: float | None) -> tuple[list[dict], list[dict]]:
    """Per candidate: a summary row, and the curve rows ``(name, step, cpu_min, si_snri)``."""
    summary, curve = [], []
    for name, (config, what) in CANDIDATES.items():
        rows = read_metrics(exp_dir(name) / "metrics.csv")
        if not rows:
            continue
        points = [(int(r["step"]), float(r["cpu_s"]) / 60, float(r["si_snri"])) for r in rows]
        curve += [{"candidate": name, "step": s, "cpu_min": round(c, 2), "si_snri": round(v, 3)} for s, c, v in points]
        last_step, last_cpu, _ = points[-1]
        best = max(points, key=lambda p: p[2])
        summary.append({
            "candidate": name, "design": what, "config": config,
            "params_m": round((_n_params(exp_dir(name) / "best") or 0) / 1e6, 3),
            "cpu_s_per_step": round(last_cpu * 60 / max(last_step, 1), 2),
            "steps": last_step, "cpu_min": round(last_cpu, 1),
            "best_si_snri": round(best[2], 2), "best_at_cpu_min": round(best[1], 1),
            "last_si_snri": round(points[-1][2], 2),
        })
    ref = read_metrics(REFERENCE_RUN)
    limit = (cpu_minutes or max((s["cpu_min"] for s in summary), default=20)) * 60
    early = [r for r in ref if float(r["wall_s"]) <= limit * 1.5]
    curve += [{"candidate": "reference-run (wall)", "step": int(r["step"]),
               "cpu_min": round(float(r["wall_s"]) / 60, 2), "si_snri": round(float(r["si_snri"]), 3)} for r in early]
    return summary, curve


def plot(curve: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    for name in dict.fromkeys(r["candidate"] for r in curve):
        pts = [r for r in curve if r["candidate"] == name]
        style = dict(linestyle="--", color="grey") if "wall" in name else {}
        ax.plot([p["cpu_min"] for p in pts], [p["si_snri"] for p in pts], marker="o", ms=3, label=name, **style)
    ax.set_xlabel("CPU minutes (1 thread; the reference run: wall minutes)")
    ax.set_ylabel("validation SI-SNRi (dB), 48 mixtures of held-out speakers")
    ax.set_title("Separator designs trained from scratch on the same CPU budget")
    ax.set_ylim(bottom=max(-3.0, min(r["si_snri"] for r in curve) - 0.5))  # untrained starts far below
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def report(out: str, cpu_minutes: float | None) -> int:
    summary, curve = collect(cpu_minutes)
    if not summary:
        log.error("no study runs under %s: run `python benchmarks/separator_study.py run` first", exp_dir(""))
        return 1
    out_path = ROOT / out
    with out_path.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(curve[0]))
        writer.writeheader()
        writer.writerows(curve)
    plot(curve, out_path.with_suffix(".png"))
    # the budget every candidate reached: compare the best validation score each had by then
    common = min(max(r["cpu_min"] for r in curve if r["candidate"] == s["candidate"]) for s in summary)
    for s in summary:
        reached = [r["si_snri"] for r in curve if r["candidate"] == s["candidate"] and r["cpu_min"] <= common + 1e-6]
        s["best_within_common"] = round(max(reached), 2) if reached else None
    lines = [
        f"| candidate | design | parameters (M) | CPU s / step | steps | CPU min | best SI-SNRi (dB) | at CPU min "
        f"| best within {common:.1f} CPU min |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {s['candidate']} | {s['design']} | {s['params_m']} | {s['cpu_s_per_step']} | {s['steps']} | "
              f"{s['cpu_min']} | {s['best_si_snri']} | {s['best_at_cpu_min']} | {s['best_within_common'] or '-'} |"
              for s in summary]
    text = "\n".join(lines) + "\n"
    out_path.with_suffix(".md").write_text(text)
    sys.stdout.write(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="train the candidates")
    p.add_argument("--cpu-minutes", type=float, default=12.0)
    p.add_argument("--only", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--nice", type=int, default=5)
    p = sub.add_parser("report", help="write the CSV, the figure and the table")
    p.add_argument("--out", default="docs/separator-study")
    p.add_argument("--cpu-minutes", type=float, default=None, help="x range of the reference run's curve")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.only, args.cpu_minutes, args.threads, args.nice)
    return report(args.out, args.cpu_minutes)


if __name__ == "__main__":
    sys.exit(main())
