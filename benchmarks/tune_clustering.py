"""Tune the speaker clustering (``ClusterConfig``) on conversations of training speakers, by cpWER.

Usage:
    hubbub data conversation --librispeech ../shared/data/LibriSpeech/train-clean-100 \
        --out data/dev-conv2-16k --n-speakers 2 --n-recordings 8 --sample-rate 16000 --seed 7
    hubbub data conversation --librispeech ../shared/data/LibriSpeech/train-clean-100 \
        --out data/dev-conv3-16k --n-speakers 3 --n-recordings 5 --sample-rate 16000 --seed 7
    hubbub data conversation --librispeech ../shared/data/LibriSpeech/train-clean-100 \
        --out data/dev-conv1-16k --n-speakers 1 --n-recordings 8 --overlap-ratios 0 --sample-rate 16000 --seed 7
    python benchmarks/tune_clustering.py --data data/dev-conv2-16k data/dev-conv3-16k data/train-conv2-16k \
        data/train-conv3-16k data/dev-conv1-16k --cache data/clustering-cache \
        --configs average,0,0.30,2 complete,4,0.30,2 complete,4,0.30,0.45 --out docs/notes/runs/clustering-tuning.md

Each recording goes once through the default overlap-aware pipeline (``Pipeline.__call__``, the path of
``hubbub transcribe``), and what its speaker labelling is given is kept in ``--cache`` (one pickle per
recording, reused by later runs): the segments of every stream (times and text), and the speaker
embedding of each (None when shorter than ``ClusterConfig.min_seconds``). Then every setting
``LINKAGE,LONG_SECONDS,THRESHOLD[,ASSIGN_THRESHOLD[,MIN_CLUSTER_SECONDS]]`` relabels the same segments with
:func:`hubbub.pipeline.speakers.cluster_segments`, in milliseconds, and is scored as the benchmark
scores the pipeline (``bench_conversation.score``: cpWER and ORC-WER with meeteval, DER with
pyannote.metrics, collar 0.5 s). ``LONG_SECONDS`` 0 clusters every embedded segment.

``data/train-conv2-16k`` and ``data/train-conv3-16k`` are built as in ``tune_conversation.py``'s Usage
(seed 0). Tune here only on training speakers; test-other is for ``bench_conversation.py``.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import sys
import warnings
from pathlib import Path

import torch
from _common import write_report
from bench_conversation import load_set, score

log = logging.getLogger("tune_clustering")


def capture(rec: dict, pipe) -> dict:
    """The segments and embeddings the pipeline's speaker labelling gets for ``rec``: ``streams``
    (per stream, ``(start, end, text)``), ``spans`` (``(stream, start, end)`` in the same order) and
    ``embeddings``; ``spans`` is absent when the pipeline had nothing to relabel."""
    from hubbub.pipeline import speakers
    from hubbub.pipeline.pipeline import Pipeline

    seen: dict = {}
    labelling, clustering = Pipeline._speakers, speakers.cluster_segments

    def keep_streams(self, path, outs, sr, streams, *rest):
        seen["streams"] = [[(s.start, s.end, s.text) for s in st] for st in streams]
        return labelling(self, path, outs, sr, streams, *rest)

    def keep_embeddings(spans, embeddings, cfg=None):
        seen["spans"] = [(s.stream, s.start, s.end) for s in spans]
        seen["embeddings"] = [None if e is None else e.clone() for e in embeddings]
        return clustering(spans, embeddings, cfg)

    Pipeline._speakers, speakers.cluster_segments = keep_streams, keep_embeddings
    try:
        pipe(rec["mixture"])
    finally:
        Pipeline._speakers, speakers.cluster_segments = labelling, clustering
    return seen


def relabel(seen: dict, cfg) -> list[list[tuple[float, float, str]]]:
    """Per speaker, its ``(start, end, text)`` segments under ``cfg``."""
    from hubbub.pipeline.speakers import SegmentSpan, cluster_segments

    if "spans" not in seen:
        return [list(st) for st in seen["streams"]]
    segments = [seg for st in seen["streams"] for seg in st]
    labels = cluster_segments([SegmentSpan(*s) for s in seen["spans"]], seen["embeddings"], cfg)
    return [[seg for seg, c in zip(segments, labels) if c == k] for k in range(max(labels) + 1)]


def parse_config(text: str):
    from hubbub.pipeline.speakers import ClusterConfig

    linkage, long_seconds, threshold, *more = text.split(",")
    extra = dict(zip(("assign_threshold", "min_cluster_seconds"), (float(v) for v in more)))
    return ClusterConfig(linkage=linkage, long_seconds=float(long_seconds), threshold=float(threshold), **extra)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--configs", nargs="+", required=True,
                   metavar="LINKAGE,LONG_SECONDS,THRESHOLD[,ASSIGN[,MIN_CLUSTER]]")
    p.add_argument("--cache", default="data/clustering-cache")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="'uem' was approximated")
    from pyannote.metrics.diarization import DiarizationErrorRate

    from hubbub.pipeline import Pipeline

    metric = DiarizationErrorRate(collar=0.5, skip_overlap=False)
    pipe = None
    sets = []
    for folder in args.data:
        cache = Path(args.cache) / Path(folder).name
        cache.mkdir(parents=True, exist_ok=True)
        records = []
        for rec in load_set(folder, None):
            path = cache / f"{rec['id']}.pkl"
            if not path.exists():
                pipe = pipe or Pipeline.from_pretrained()
                path.write_bytes(pickle.dumps(capture(rec, pipe)))
                log.info("%s: captured", rec["id"])
            records.append((rec, pickle.loads(path.read_bytes())))
        sets.append((Path(folder).name, records))
    cmd = "python benchmarks/tune_clustering.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"`{cmd}`", "",
             "cpWER % per overlap ratio (ORC-WER in brackets; speaker count wrong in n recordings), DER % over all "
             "ratios (collar 0.5 s)", ""]
    pooled: dict = {}
    for name, records in sets:
        ratios = sorted({rec["overlap_ratio"] for rec, _ in records})
        lines += [f"{name} ({len(records)} recordings):", "",
                  "| linkage, long (s), threshold[, assign threshold[, min cluster (s)]] | "
                  + " | ".join(f"{r:g} %" for r in ratios) + " | all | wrong count | DER |",
                  "|---" * (len(ratios) + 4) + "|"]
        for text in args.configs:
            cfg = parse_config(text)
            tot: dict = {}
            for rec, seen in records:
                s = score(rec, relabel(seen, cfg), metric)
                d = s["der"]
                for key in (rec["overlap_ratio"], "all"):
                    t = tot.setdefault(key, [0, 0, 0, 0, 0.0, 0.0])
                    t[0] += s["errors"]
                    t[1] += s["orc_errors"]
                    t[2] += s["words"]
                    t[3] += s["speakers"] != len(rec["speakers"])
                    t[4] += d["missed detection"] + d["false alarm"] + d["confusion"]
                    t[5] += d["total"]
            cells = [f"{100 * tot[r][0] / tot[r][2]:.1f} ({100 * tot[r][1] / tot[r][2]:.1f})" for r in ratios]
            a = tot["all"]
            p = pooled.setdefault(text, [0, 0, 0, 0])
            p[0], p[1], p[2], p[3] = p[0] + a[0], p[1] + a[2], p[2] + a[3], p[3] + len(records)
            whole = f"**{100 * a[0] / a[2]:.1f}** ({100 * a[1] / a[2]:.1f})"
            lines.append(f"| {text} | " + " | ".join(cells) + f" | {whole} | {a[3]}/{len(records)} | "
                         f"{100 * a[4] / a[5]:.1f} |")
            log.info("%s %s: cpWER %.1f%%", name, text, 100 * a[0] / a[2])
        lines.append("")
    lines += [f"All {len(sets)} sets together:", "", "| setting | cpWER | wrong count |", "|---|---|---|"]
    lines += [f"| {text} | {100 * p[0] / p[1]:.1f} | {p[2]}/{p[3]} |" for text, p in pooled.items()]
    lines.append("")
    write_report("\n".join(lines), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
