"""Usage:
    # full benchmark (speed, memory against length, 10-minute recording), report + JSON:
    .venv/bin/python benchmarks/bench_separator.py \\
        --out docs/notes/runs/separator-bench.md --json benchmarks/separator-bench.json

    # the same with every default spelled out:
    .venv/bin/python benchmarks/bench_separator.py --threads 2 --seconds 4 16 60 --repeats 3 \\
        --sepformer-max-seconds 60 --memory-seconds 15 30 60 120 240 --local-window 16 --long-seconds 600 \\
        --out docs/notes/runs/separator-bench.md --json benchmarks/separator-bench.json

    # smoke test (1-2 minutes on a loaded 2-core machine, most of it SepFormer):
    .venv/bin/python benchmarks/bench_separator.py --seconds 1 --memory-seconds 2 4 --long-seconds 5 --repeats 1

Benchmarks hubbub's default separator on the CPU against SpeechBrain's SepFormer
(``speechbrain.lobes.models.dual_path`` with the published LibriMix / WSJ0-2mix
hyper-parameters, random weights) in one run:

1. Speed: one warm-up, then the median of ``--repeats`` forwards per input length,
   with ``torch.set_num_threads(--threads)`` under ``torch.inference_mode()``.
2. Peak memory against length: every (model, length) runs in a fresh child
   process (this script with a hidden ``--child`` flag); the child reports its
   RSS after building the model and the input (baseline), then resets its
   high-water mark (``/proc/self/clear_refs``) and reports the peak RSS of the
   forward (``VmHWM``; ``ru_maxrss`` would include the parent's peak, see
   :func:`peak_rss_mib`). hubbub runs with global (``inter_window=None``) and local
   (``inter_window=--local-window``) inter-chunk attention.
3. A ``--long-seconds`` recording (default 10 minutes) in a fresh child, through
   ``hubbub.pipeline.separate.separate_waveform`` (the streaming separator that every
   command uses, with the voices kept in memory) when it exists, else the model
   called on the whole input with local inter-chunk attention.

hubbub's model is ``hubbub/models/pretrained/separator-8k`` when that folder
holds a model, else the ``model:`` section of
``hubbub/recipes/configs/separator-default.yaml`` with random weights (speed and
memory do not depend on the weights). Memory is in MiB (2**20 bytes).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import inspect
import json
import logging
import math
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

log = logging.getLogger("bench_separator")

PRETRAINED = REPO / "hubbub" / "models" / "pretrained" / "separator-8k"
DEFAULT_YAML = REPO / "hubbub" / "recipes" / "configs" / "separator-default.yaml"
SEPFORMER_RATE = 8000
SEPFORMER_PE_MAX_LEN = 2500  # speechbrain PositionalEncoding max_len: caps the number of chunks
RESULT_TAG = "BENCH_RESULT "
DEFAULT = "default"  # inter_window as stored in the model's config


# --------------------------------------------------------------------------- models


def _show(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def build_hubbub(inter_window=DEFAULT) -> tuple[nn.Module, str]:
    """The default separator (pretrained if embedded, else random weights), in eval mode."""
    from hubbub.models.separator import Separator, SeparatorConfig

    if (PRETRAINED / "config.json").is_file() and (PRETRAINED / "model.safetensors").is_file():
        model = Separator.from_pretrained(PRETRAINED)
        source = f"pretrained weights from {_show(PRETRAINED)}"
    else:
        import yaml

        section = yaml.safe_load(DEFAULT_YAML.read_text())["model"]
        names = {f.name for f in dataclasses.fields(SeparatorConfig)}
        model = Separator(SeparatorConfig(**{k: v for k, v in section.items() if k in names}))
        source = f"random weights, config from {_show(DEFAULT_YAML)} (no model in {_show(PRETRAINED)})"
    if inter_window != DEFAULT and inter_window != model.config.inter_window:
        state = model.state_dict()
        model = Separator(dataclasses.replace(model.config, inter_window=inter_window))
        model.load_state_dict(state)  # the attention window has no parameters
    return model.eval(), source


class SepFormer(nn.Module):
    """SpeechBrain's SepFormer as in recipes/LibriMix/separation/hparams/sepformer-libri2mix.yaml.

    ``forward`` follows the recipe's ``compute_forward``: encoder -> masknet ->
    mask * encoded -> decoder per speaker; returns ``(B, T, n_spks)``.
    """

    def __init__(self, num_spks: int = 2) -> None:
        super().__init__()
        from speechbrain.lobes.models.dual_path import Decoder, Dual_Path_Model, Encoder, SBTransformerBlock

        def transformer():
            return SBTransformerBlock(
                num_layers=8,
                d_model=256,
                nhead=8,
                d_ffn=1024,
                dropout=0,
                use_positional_encoding=True,
                norm_before=True,
            )

        self.num_spks = num_spks
        self.encoder = Encoder(kernel_size=16, out_channels=256)
        self.masknet = Dual_Path_Model(
            in_channels=256,
            out_channels=256,
            intra_model=transformer(),
            inter_model=transformer(),
            num_layers=2,
            norm="ln",
            K=250,
            num_spks=num_spks,
            skip_around_intra=True,
            linear_layer_after_inter_intra=False,
        )
        self.decoder = Decoder(in_channels=256, out_channels=1, kernel_size=16, stride=8, bias=False)

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        mix_w = self.encoder(mix)
        est_mask = self.masknet(mix_w)
        mix_w = torch.stack([mix_w] * self.num_spks)
        sep_h = mix_w * est_mask
        est_source = torch.cat([self.decoder(sep_h[i]).unsqueeze(-1) for i in range(self.num_spks)], dim=-1)
        t_origin, t_est = mix.size(1), est_source.size(1)
        if t_origin > t_est:
            return F.pad(est_source, (0, 0, 0, t_origin - t_est))
        return est_source[:, :t_origin, :]


def sepformer_skip_reason(seconds: float, max_seconds: float) -> str | None:
    """Why SepFormer is not run at this length, or None."""
    if seconds > max_seconds:
        return f"skipped (> --sepformer-max-seconds {max_seconds:g})"
    n_chunks = 2 * math.ceil(seconds * SEPFORMER_RATE / 8 / 250) + 1
    if n_chunks > SEPFORMER_PE_MAX_LEN:
        return f"skipped ({n_chunks} chunks > SpeechBrain positional-encoding max_len {SEPFORMER_PE_MAX_LEN})"
    return None


def build(name: str, local_window: int) -> tuple[nn.Module, int, str]:
    """``(model, sample_rate, description)`` for a variant name."""
    if name == "sepformer":
        return SepFormer().eval(), SEPFORMER_RATE, "SpeechBrain SepFormer, random weights"
    window = {"hubbub": DEFAULT, "hubbub-global": None, "hubbub-local": local_window}[name]
    model, source = build_hubbub(window)
    return model, model.config.sample_rate, source


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def make_input(seconds: float, sample_rate: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(1, round(seconds * sample_rate), generator=g)


# --------------------------------------------------------------------------- memory


def _status_mib(key: str) -> float:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def rss_mib() -> float:
    """Current resident set size (VmRSS) in MiB."""
    return _status_mib("VmRSS")


def peak_rss_mib() -> float:
    """Peak resident set size of this process's memory (VmHWM) in MiB.

    Not ``ru_maxrss``: that is max(VmHWM, signal->maxrss), and a child started by
    ``subprocess`` (vfork + exec) inherits the parent's peak in signal->maxrss, so
    every child would report at least the parent's peak.
    """
    return _status_mib("VmHWM")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def mark_baseline(out: dict) -> None:
    """Record the RSS before the forward, then restart the peak from it."""
    out["startup_peak_mib"] = peak_rss_mib()
    out["baseline_mib"] = rss_mib()
    out["peak_reset"] = reset_peak_rss()
    if not out["peak_reset"]:  # the peak then includes start-up; growth is measured against that
        out["baseline_mib"] = out["startup_peak_mib"]


def finish_peak(out: dict) -> None:
    out["peak_mib"] = peak_rss_mib()
    out["ru_maxrss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_child(spec: dict, args) -> dict:
    """Run one measurement in a fresh interpreter; returns the child's result dict."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec), "--threads", str(args.threads)]
    if args.child_mem_limit_mb:
        cmd += ["--child-mem-limit-mb", str(args.child_mem_limit_mb)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.child_timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.child_timeout:g} s (--child-timeout)"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    tail = proc.stderr.strip().splitlines()[-3:]
    hint = " (killed: out of memory?)" if proc.returncode in (-9, 137) else ""
    log.warning("child %s failed rc=%s after %.1f s: %s", spec, proc.returncode, time.perf_counter() - start, tail)
    return {"error": f"child exited rc={proc.returncode}{hint}: {' | '.join(tail)[-300:]}"}


def child_main(spec: dict) -> dict:
    """Body of a ``--child`` process: build, measure baseline and peak RSS around one forward."""
    out: dict = {"spec": spec, "rss_start_mib": rss_mib()}
    try:
        if spec["task"] == "long":
            return long_child(spec, out)
        model, rate, source = build(spec["model"], spec["local_window"])
        out.update(source=source, params=n_params(model))
        x = make_input(spec["seconds"], rate)
        mark_baseline(out)
        with torch.inference_mode():
            start = time.perf_counter()
            y = model(x)
            out["forward_s"] = round(time.perf_counter() - start, 3)
        out["output_shape"] = list(y.shape)
    except Exception as exc:  # report allocation failures instead of dying
        out["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    finish_peak(out)
    return out


def long_child(spec: dict, out: dict) -> dict:
    """Separate one long recording, through ``separate_waveform`` when it exists."""
    separate_waveform = None
    try:
        from hubbub.pipeline import separate as separate_mod

        separate_waveform = getattr(separate_mod, "separate_waveform", None)
    except ImportError as exc:
        out["import_note"] = f"{type(exc).__name__}: {exc}"
    if separate_waveform is not None:
        model, source = build_hubbub(DEFAULT)
        kwargs = {k: spec[k] for k in ("chunk_seconds", "overlap_seconds") if spec.get(k) is not None}
        params = inspect.signature(separate_waveform).parameters
        used = {
            k: kwargs.get(k, params[k].default if k in params else None) for k in ("chunk_seconds", "overlap_seconds")
        }
        kw = ", ".join(f"{k}={v}" for k, v in used.items())
        out["method"] = (f"hubbub.pipeline.separate.separate_waveform(model, wav, sr, {kw}) "
                         "with the model's inter_window")

        def run(x):
            return separate_waveform(model, x[0], model.sample_rate, **kwargs)
    else:
        model, source = build_hubbub(spec["local_window"])
        out["method"] = (
            f"fallback: no hubbub.pipeline.separate.separate_waveform; model called on the whole input "
            f"with inter_window={spec['local_window']}"
        )

        def run(x):
            return model(x)

    out.update(source=source, params=n_params(model), inter_window=model.config.inter_window)
    x = make_input(spec["seconds"], model.config.sample_rate)
    mark_baseline(out)
    try:
        with torch.inference_mode():
            start = time.perf_counter()
            y = run(x)
            out["wall_s"] = round(time.perf_counter() - start, 3)
        out["output_shape"] = list(getattr(y, "shape", ()))
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    finish_peak(out)
    return out


# --------------------------------------------------------------------------- speed


def time_model(model: nn.Module, x: torch.Tensor, repeats: int) -> list[float]:
    times = []
    with torch.inference_mode():
        model(x)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return times


def bench_speed(args) -> dict:
    variants = ["hubbub", "hubbub-local"]
    if any(sepformer_skip_reason(s, args.sepformer_max_seconds) is None for s in args.seconds):
        variants.append("sepformer")
    models = {}
    info = {}
    for name in variants:
        model, rate, source = build(name, args.local_window)
        models[name] = (model, rate)
        info[name] = {"source": source, "params": n_params(model)}
        if name.startswith("hubbub"):
            info[name]["inter_window"] = model.config.inter_window
        log.info("built %s: %s, %.2f M parameters", name, source, n_params(model) / 1e6)
    rows = []
    for seconds in args.seconds:
        row = {"seconds": seconds}
        for name in ("hubbub", "hubbub-local", "sepformer"):
            reason = sepformer_skip_reason(seconds, args.sepformer_max_seconds) if name == "sepformer" else None
            if reason or name not in models:
                row[name] = {"skipped": reason or "skipped"}
                continue
            model, rate = models[name]
            times = time_model(model, make_input(seconds, rate), args.repeats)
            med = statistics.median(times)
            row[name] = {"median_s": med, "rtf": med / seconds, "times_s": times}
            log.info("speed %-12s %6.1f s input: median %.3f s (RTF %.3f)", name, seconds, med, med / seconds)
        if "median_s" in row["sepformer"]:
            row["speedup"] = row["sepformer"]["median_s"] / row["hubbub"]["median_s"]
        rows.append(row)
    del models
    return {"models": info, "rows": rows}


# --------------------------------------------------------------------------- memory + long


def bench_memory(args) -> list[dict]:
    variants = ["hubbub-global", "hubbub-local", "sepformer"]
    rows = []
    for name in variants:
        for seconds in args.memory_seconds:
            row = {"model": name, "seconds": seconds}
            reason = sepformer_skip_reason(seconds, args.sepformer_max_seconds) if name == "sepformer" else None
            if reason:
                row["skipped"] = reason
            else:
                spec = {"task": "memory", "model": name, "seconds": seconds, "local_window": args.local_window}
                res = run_child(spec, args)
                row.update({k: res[k] for k in ("baseline_mib", "peak_mib", "forward_s", "error") if k in res})
                log.info("memory %-13s %6.1f s: %s", name, seconds, {k: v for k, v in row.items() if k != "model"})
            rows.append(row)
    add_growth(rows)
    return rows


def add_growth(rows: list[dict]) -> None:
    """Per model: growth = peak - baseline; growth factor per doubling between consecutive lengths."""
    for name in {r["model"] for r in rows}:
        prev = None
        for row in (r for r in rows if r["model"] == name):
            if "peak_mib" not in row or "baseline_mib" not in row or "error" in row:
                prev = None
                continue
            row["growth_mib"] = round(row["peak_mib"] - row["baseline_mib"], 1)
            if prev is not None and prev["growth_mib"] > 0 and row["growth_mib"] > 0:
                exponent = math.log(row["growth_mib"] / prev["growth_mib"]) / math.log(row["seconds"] / prev["seconds"])
                row["per_doubling"] = round(2**exponent, 2)
            prev = row


def scaling_fit(rows: list[dict], name: str) -> float | None:
    """Least-squares slope of log(growth) against log(length): ~1 linear, ~2 quadratic."""
    pts = [
        (math.log(r["seconds"]), math.log(r["growth_mib"]))
        for r in rows
        if r["model"] == name and r.get("growth_mib", 0) > 0
    ]
    if len(pts) < 2:
        return None
    mx = statistics.fmean(p[0] for p in pts)
    my = statistics.fmean(p[1] for p in pts)
    den = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / den if den else None


def bench_long(args) -> dict:
    spec = {
        "task": "long",
        "seconds": args.long_seconds,
        "local_window": args.local_window,
        "chunk_seconds": args.long_chunk_seconds,
        "overlap_seconds": args.long_overlap_seconds,
    }
    res = run_child(spec, args)
    if "wall_s" in res:
        res["rtf"] = res["wall_s"] / args.long_seconds
    if "peak_mib" in res:
        res["budget_gb"] = args.long_budget_gb
        res["within_budget"] = res["peak_mib"] * 2**20 < args.long_budget_gb * 1e9 and "error" not in res
    log.info("long %.0f s: %s", args.long_seconds, res)
    return res


# --------------------------------------------------------------------------- report


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fmt(value, spec: str = ".3f") -> str:
    return "—" if value is None else format(value, spec)


def render(results: dict) -> str:
    meta = results["meta"]
    lines = [
        "# Separator benchmark: hubbub vs SpeechBrain SepFormer (CPU)",
        "",
        f"- command: `{meta['command']}`",
        f"- date: {meta['date']}",
        f"- torch {meta['torch']}, speechbrain {meta['speechbrain']}, Python {meta['python']}",
        f"- threads: {meta['threads']} (torch.set_num_threads); CPU: {meta['cpu']} ({meta['cpu_count']} logical CPUs)",
        f"- load average at start: {meta['loadavg']}",
        f"- hubbub model: {meta['hubbub_source']}",
        "- SepFormer: speechbrain.lobes.models.dual_path, sepformer-libri2mix.yaml hyper-parameters, random weights",
        "",
    ]
    speed = results.get("speed")
    if speed:
        m = speed["models"]
        lines += [
            f"## Speed (one warm-up, median of {meta['repeats']}; RTF = seconds per second of audio)",
            "",
            f"hubbub {m['hubbub']['params'] / 1e6:.2f} M parameters (inter_window={m['hubbub']['inter_window']}); "
            + (f"SepFormer {m['sepformer']['params'] / 1e6:.2f} M." if "sepformer" in m else "SepFormer not run."),
            "",
            f"| input (s) | hubbub (s) | hubbub RTF | hubbub w={meta['local_window']} (s) | RTF "
            "| SepFormer (s) | SepFormer RTF | hubbub speed-up |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in speed["rows"]:
            cells = [f"{row['seconds']:g}"]
            for name in ("hubbub", "hubbub-local", "sepformer"):
                r = row[name]
                cells += [f"{r['median_s']:.3f}", f"{r['rtf']:.3f}"] if "median_s" in r else [r["skipped"], "—"]
            cells.append(f"{row['speedup']:.1f}×" if "speedup" in row else "—")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    memory = results.get("memory")
    if memory:
        lines += [
            "## Peak memory against length (fresh process per cell)",
            "",
            "baseline = RSS once imports, model and input are built; peak = absolute peak RSS during the "
            "forward (VmHWM, reset at the baseline); growth = peak − baseline; ×/doubling = growth factor per "
            "doubling of the length between this row and the previous one (2 = linear, 4 = quadratic); "
            "forward = one cold forward (no warm-up). hubbub's attention goes through "
            "scaled_dot_product_attention, whose CPU kernel never builds the S×S score matrix, so even global "
            "inter-chunk attention may grow about linearly in memory (its compute still grows quadratically); "
            "SepFormer's nn.MultiheadAttention returns its weights, so it builds them.",
            "",
            "| model | input (s) | baseline (MiB) | peak (MiB) | growth (MiB) | ×/doubling | forward (s, cold) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        names = {
            "hubbub-global": "hubbub, global inter",
            "hubbub-local": f"hubbub, local inter (w={meta['local_window']})",
            "sepformer": "SepFormer",
        }
        for row in memory:
            head = f"| {names[row['model']]} | {row['seconds']:g} | "
            if "skipped" in row or ("error" in row and "peak_mib" not in row):
                lines.append(head + (row.get("skipped") or f"failed: {row['error']}") + " | | | | |")
                continue
            note = f" (failed: {row['error'][:80]})" if "error" in row else ""
            lines.append(
                head
                + " | ".join(
                    [
                        fmt(row.get("baseline_mib"), ".0f"),
                        fmt(row.get("peak_mib"), ".0f") + note,
                        fmt(row.get("growth_mib"), ".0f"),
                        fmt(row.get("per_doubling"), ".2f"),
                        fmt(row.get("forward_s"), ".2f"),
                    ]
                )
                + " |"
            )
        lines += ["", "| model | log-log slope of growth vs length (1 = linear, 2 = quadratic) |", "|---|---:|"]
        for key, label in names.items():
            lines.append(f"| {label} | {fmt(scaling_fit(memory, key), '.2f')} |")
        lines.append("")
    long = results.get("long")
    if long:
        seconds = long["spec"]["seconds"] if "spec" in long else meta["long_seconds"]
        lines += [f"## A {seconds:g} s recording (fresh process, one cold run, peak RSS as above)", ""]
        lines.append(f"- method: {long.get('method', '—')}")
        if "error" in long:
            lines.append(f"- **failed**: {long['error']}")
        verdict = "yes" if long.get("within_budget") else "**no**"
        lines += [
            "",
            "| wall (s) | RTF | baseline (MiB) | peak RSS (MiB) | peak (GB) | under budget |",
            "|---:|---:|---:|---:|---:|---|",
            f"| {fmt(long.get('wall_s'), '.2f')} | {fmt(long.get('rtf'), '.3f')} | "
            f"{fmt(long.get('baseline_mib'), '.0f')} | {fmt(long.get('peak_mib'), '.0f')} | "
            f"{fmt(long['peak_mib'] * 2**20 / 1e9 if 'peak_mib' in long else None, '.2f')} | "
            f"{verdict} (< {meta['long_budget_gb']:g} GB) |",
            "",
        ]
    return "\n".join(lines)


def atomic_write(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- CLI


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--seconds", type=float, nargs="+", default=[4, 16, 60], help="speed: input lengths")
    p.add_argument("--repeats", type=int, default=3, help="speed: timed runs after one warm-up (median reported)")
    p.add_argument(
        "--sepformer-max-seconds",
        type=float,
        default=60,
        help="skip SepFormer (speed and memory) above this length (default 60; at 120 s its inter-chunk "
        "attention alone needs several GB)",
    )
    p.add_argument("--memory-seconds", type=float, nargs="+", default=[15, 30, 60, 120, 240], help="memory: lengths")
    p.add_argument("--local-window", type=int, default=16, help="inter_window (chunks) of the local variant")
    p.add_argument("--long-seconds", type=float, default=600, help="long recording length (0 skips it)")
    p.add_argument("--long-chunk-seconds", type=float, default=None, help="chunk_seconds for separate_waveform")
    p.add_argument("--long-overlap-seconds", type=float, default=None, help="overlap_seconds for separate_waveform")
    p.add_argument("--long-budget-gb", type=float, default=1.5, help="peak RSS budget, GB = 1e9 bytes (default 1.5)")
    p.add_argument("--child-timeout", type=float, default=1800, help="seconds per child process (default 1800)")
    p.add_argument(
        "--child-mem-limit-mb",
        type=int,
        default=None,
        help="RLIMIT_DATA for each child in MiB, so that a too-large cell fails cleanly instead of waking the "
        "OOM killer (default: 80%% of MemAvailable at start; 0 = no limit)",
    )
    p.add_argument("--skip-speed", action="store_true", help="skip the speed part")
    p.add_argument("--skip-memory", action="store_true", help="skip the memory-against-length part")
    p.add_argument("--out", type=Path, default=None, help="also write the Markdown report here (atomically)")
    p.add_argument("--json", type=Path, default=None, help="write machine-readable results here (atomically)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_mem_limit_mb is None and args.child is None:
        avail = mem_available_mib()
        args.child_mem_limit_mb = int(0.8 * avail) if avail else 0
    return args


def mem_available_mib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    if args.child is not None:
        if args.child_mem_limit_mb:
            limit = args.child_mem_limit_mb * 2**20
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        result = child_main(json.loads(args.child))
        sys.stdout.write(RESULT_TAG + json.dumps(result) + "\n")
        sys.stdout.flush()
        return 0 if "error" not in result else 1

    import speechbrain

    script = os.path.relpath(Path(__file__).resolve(), Path.cwd())
    python = os.path.relpath(sys.executable) if sys.executable.startswith(str(Path.cwd())) else sys.executable
    results: dict = {
        "meta": {
            "command": shlex.join([python, script, *argv]),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__,
            "speechbrain": speechbrain.__version__,
            "python": platform.python_version(),
            "threads": torch.get_num_threads(),
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "loadavg": " ".join(f"{v:.2f}" for v in os.getloadavg()),
            "hubbub_source": build_hubbub()[1],
            "repeats": args.repeats,
            "local_window": args.local_window,
            "long_seconds": args.long_seconds,
            "long_budget_gb": args.long_budget_gb,
            "child_mem_limit_mib": args.child_mem_limit_mb,
        }
    }
    log.info("hubbub model: %s", results["meta"]["hubbub_source"])
    start = time.perf_counter()
    if not args.skip_speed:
        results["speed"] = bench_speed(args)
    if not args.skip_memory:
        results["memory"] = bench_memory(args)
    if args.long_seconds > 0:
        results["long"] = bench_long(args)
    results["meta"]["total_s"] = round(time.perf_counter() - start, 1)
    log.info("done in %.1f s", results["meta"]["total_s"])

    report = render(results) + f"\nTotal benchmark time: {results['meta']['total_s']:.0f} s.\n"
    sys.stdout.write(report)
    if args.out:
        atomic_write(args.out, report)
        log.info("wrote %s", args.out)
    if args.json:
        atomic_write(args.json, json.dumps(results, indent=2) + "\n")
        log.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
