"""The demo under concurrent load: N gradio_client users, each sending M requests.

Usage:
    # 8 users x 5 requests against the embedded default models, on loopback
    python benchmarks/bench_demo_load.py --users 8 --requests 5 --out docs/notes/runs/demo-load.md

Every request must be answered, or refused cleanly by the queue; the server must
stay up; the peak resident memory of the process serving the demo is reported.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger("bench_demo_load")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def vm_hwm_mb() -> float:
    """Peak resident memory of this process (MiB)."""
    return _status_mb("VmHWM")


def vm_rss_mb() -> float:
    """Current resident memory of this process (MiB)."""
    return _status_mb("VmRSS")


def run_load(url: str, audio: str, users: int, requests: int) -> dict:
    """Drive ``/analyze`` from ``users`` threads, ``requests`` calls each."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    results: list[tuple[str, float, str]] = []
    rss: list[float] = []
    lock = threading.Lock()

    def user(k: int) -> None:
        client = Client(url, verbose=False)
        for _ in range(requests):
            t0 = time.perf_counter()
            try:
                client.predict(handle_file(audio), 2, "global", 16, api_name="/analyze")
                outcome, detail = "answered", ""
            except AppError as err:  # the app refused the request with a message
                outcome, detail = ("refused", str(err)) if "queue" in str(err).lower() else ("error", str(err))
            except Exception as err:  # noqa: BLE001 - anything else is a failure to report
                outcome, detail = "error", f"{type(err).__name__}: {err}"
            with lock:
                results.append((outcome, time.perf_counter() - t0, detail))
                rss.append(vm_rss_mb())  # the server runs in this process

    threads = [threading.Thread(target=user, args=(k,)) for k in range(users)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    latencies = [s for o, s, _ in results if o == "answered"]
    return {
        "users": users,
        "requests": users * requests,
        "answered": sum(o == "answered" for o, _, _ in results),
        "refused": sum(o == "refused" for o, _, _ in results),
        "errors": [d for o, _, d in results if o == "error"],
        "wall_s": wall,
        "latency_median_s": statistics.median(latencies) if latencies else None,
        "latency_max_s": max(latencies) if latencies else None,
        "rss_mb_after_first_8": max(rss[:8]) if rss else None,
        "rss_mb_after_last_8": max(rss[-8:]) if rss else None,
    }


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=8)
    p.add_argument("--requests", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    import torch

    from hubbub.demo import app
    from hubbub.pipeline import Pipeline

    torch.set_num_threads(args.threads)
    pipeline = Pipeline.from_pretrained()
    demo = app.build_demo(pipeline)
    demo.launch(server_port=free_port(), prevent_thread_lock=True, quiet=True)
    before = vm_hwm_mb()
    try:
        res = run_load(demo.local_url, app.examples()[0]["path"], args.users, args.requests)
        res["peak_rss_mb_before"] = before
        res["peak_rss_mb"] = vm_hwm_mb()
    finally:
        demo.close()
    log.info("%s", json.dumps(res, indent=2))
    cmd = "python benchmarks/bench_demo_load.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = (
        f"`{cmd}` (embedded default models, {args.threads} threads, queue concurrency 1)\n\n"
        "| users x requests | answered | refused by the queue | errors | wall (s) | median / max latency (s) "
        "| peak RSS before / after (MiB) | RSS after requests 1-8 / 33-40 (MiB) |\n|---|---|---|---|---|---|---|---|\n"
        f"| {args.users} x {args.requests} | {res['answered']} | {res['refused']} | {len(res['errors'])} "
        f"| {res['wall_s']:.1f} | {res['latency_median_s'] or float('nan'):.2f} / "
        f"{res['latency_max_s'] or float('nan'):.2f} | {before:.0f} / {res['peak_rss_mb']:.0f} "
        f"| {res['rss_mb_after_first_8']:.0f} / {res['rss_mb_after_last_8']:.0f} |\n"
    )
    sys.stdout.write(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0 if not res["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
