"""Time of one demo request: the handler behind the Run button (``analyze``) on a bundled example.

Usage:
    python benchmarks/bench_demo_request.py --threads 1 --repeats 7 --out docs/notes/runs/demo-request.md

One warm-up request (first-call costs: lazy imports, allocator), then ``--repeats`` timed ones, each
reporting wall time and the CPU time of this process (the latter is steadier on a shared machine).
The handler does everything a browser request does except the HTTP round trip: separation, regions,
transcription, writing the WAVs/JSON/SRT and the zip, and drawing every figure.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import write_report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--example", type=int, default=0, help="index of the bundled example (default: the first)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="write the Markdown report here too")
    args = p.parse_args(argv)

    import torch

    from hubbub.demo import plots
    from hubbub.demo.app import MAX_PLAYERS, analyze, examples
    from hubbub.pipeline import Pipeline

    torch.set_num_threads(args.threads)
    pipe = Pipeline.from_pretrained()
    example = examples()[args.example]

    def request() -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        out = analyze(example["path"], 2, "global", 16, progress=None, pipeline=pipe)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        for fig in out[2 * MAX_PLAYERS : 2 * MAX_PLAYERS + 5]:  # the figures
            plots.close(fig)
        return wall, cpu

    request()
    runs = [request() for _ in range(args.repeats)]
    walls, cpus = [w for w, _ in runs], [c for _, c in runs]
    text = (
        f"`python benchmarks/bench_demo_request.py --threads {args.threads} --repeats {args.repeats}`: "
        f"`{example['name']}` ({example['duration']:.1f} s), embedded default models\n\n"
        "| | median (s) | min (s) | max (s) |\n|---|---:|---:|---:|\n"
        f"| wall time | {statistics.median(walls):.2f} | {min(walls):.2f} | {max(walls):.2f} |\n"
        f"| CPU time of the process | {statistics.median(cpus):.2f} | {min(cpus):.2f} | {max(cpus):.2f} |\n"
    )
    write_report(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
