"""Overlapped-speech detection on conversation sets: where two or more people speak at once, found
from the recording (the overlap detector) against the reference turns, per overlap ratio.

Usage:
    hubbub data conversation --librispeech ../shared/data/LibriSpeech/test-other \
        --out data/test-other-conv2-16k --n-speakers 2 --n-recordings 10 --sample-rate 16000
    python benchmarks/bench_overlap.py --data data/test-other-conv2-16k --limit 4 --thresholds 0.3 0.5 0.7 \
        --out docs/notes/runs/overlap-bench.md

The reference overlap is where two turns' spans intersect (what the set's overlap ratio counts). The
hypothesis is where the detector's probability of two or more voices is at least the threshold
(10-ms frames, as the pipeline reads it through ``hubbub.pipeline.regions.file_overlap``).
Precision, recall and F1 of overlapped time by pyannote.metrics (``DetectionPrecisionRecallFMeasure``,
no collar), summed over the recordings of a ratio; "false alarm" is the detected overlap time at 0 %.
"""

from __future__ import annotations

import argparse
import logging
import sys

import torch
from _common import write_report
from bench_conversation import load_set

log = logging.getLogger("bench_overlap")


def _intervals(mask: torch.Tensor, hop: float) -> list[tuple[float, float]]:
    from hubbub.pipeline.regions import _runs

    return [(s * hop, e * hop) for s, e in _runs(mask)]


def reference_overlap(turns: list[dict]) -> list[tuple[float, float]]:
    from hubbub.pipeline.turns import overlaps

    return overlaps([[(t["start"], t["end"])] for t in turns])


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a `hubbub data conversation` folder")
    p.add_argument("--detector", default=None, help="overlap detector (default: the embedded one)")
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.5])
    p.add_argument("--limit", type=int, default=None, help="first N recordings of each ratio")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    import soundfile as sf
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.detection import DetectionPrecisionRecallFMeasure

    from hubbub.pipeline.pipeline import load_overlap_detector
    from hubbub.pipeline.regions import file_overlap

    detector = load_overlap_detector(args.detector)
    hop = 0.010
    records = load_set(args.data, args.limit)
    metrics = {(th, str(r["overlap_ratio"])): DetectionPrecisionRecallFMeasure() for th in args.thresholds
               for r in records}
    detected = {key: 0.0 for key in metrics}
    for rec in records:
        n = int(sf.info(rec["mixture"]).frames / sf.info(rec["mixture"]).samplerate / hop) + 1
        prob = file_overlap(rec["mixture"], detector, n, hop)
        ref = Annotation(uri=rec["id"])
        for k, (s, e) in enumerate(reference_overlap(rec["turns"])):
            ref[Segment(s, e), k] = "overlap"
        for th in args.thresholds:
            hyp = Annotation(uri=rec["id"])
            found = _intervals(prob >= th, hop)
            for k, (s, e) in enumerate(found):
                hyp[Segment(s, e), k] = "overlap"
            key = (th, str(rec["overlap_ratio"]))
            metrics[key](ref, hyp, uem=Segment(0, rec["duration"]))
            detected[key] += sum(e - s for s, e in found)
        log.info("%s: reference overlap %.1f s", rec["id"], sum(e - s for s, e in reference_overlap(rec["turns"])))
    ratios = sorted({str(r["overlap_ratio"]) for r in records}, key=float)
    cmd = "python benchmarks/bench_overlap.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"`{cmd}`", "", "Overlapped time: precision / recall / F1 (%), detected overlap (s), per overlap ratio:",
             "", "| threshold | " + " | ".join(f"{float(r):g} %" for r in ratios) + " |",
             "|---" * (len(ratios) + 1) + "|"]
    for th in args.thresholds:
        cells = [_cell(metrics[(th, r)], detected[(th, r)]) for r in ratios]
        lines.append(f"| {th:g} | " + " | ".join(cells) + " |")
    write_report("\n".join(lines) + "\n", args.out)
    return 0


def _cell(metric, detected: float) -> str:
    """``precision / recall / F1 (detected s)`` from a pyannote detection metric's accumulated totals."""
    totals = metric.accumulated_
    hit = totals.get("relevant retrieved", 0.0)
    precision = hit / max(totals.get("retrieved", 0.0), 1e-12)
    recall = hit / max(totals.get("relevant", 0.0), 1e-12)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return f"{100 * precision:.0f} / {100 * recall:.0f} / {100 * f1:.0f} ({detected:.0f} s)"


if __name__ == "__main__":
    sys.exit(main())
