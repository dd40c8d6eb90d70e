"""Tune who-speaks-when on conversations of training speakers: the leakage test of the speech regions
(``RegionConfig.leak_db`` / ``smooth``) and the speaker clustering threshold (``ClusterConfig``).

Usage:
    hubbub data conversation --librispeech ../shared/data/LibriSpeech/train-clean-100 \
        --out data/train-conv2-16k --n-speakers 2 --n-recordings 4
    hubbub data conversation --librispeech ../shared/data/LibriSpeech/train-clean-100 \
        --out data/train-conv3-16k --n-speakers 3 --n-recordings 3
    python benchmarks/tune_conversation.py --data data/train-conv2-16k data/train-conv3-16k --threads 2 \
        --out docs/notes/runs/conversation-tuning.md

Each recording is separated once (the default separator, the pipeline's streaming path). Then, for
every setting of the grid, the speech regions of the streams are scored against the set's turns with
pyannote.metrics: missed speech + false alarm of DER (one label per stream; the speaker count of
each moment counts, so a leakage region is a false alarm). For the best region setting, the regions
are embedded (the recording where one voice speaks, the stream where voices overlap, as the pipeline
does) and clustered at each threshold; the table gives DER with speaker confusion.

``--cpwer LEAK_DB,SMOOTH,SAME_VOICE,THRESHOLD[,SAME_PERSON[,OVERLAP]] ...`` scores whole settings by what
users get instead: the overlap-aware pipeline (``hubbub transcribe``) run on the first ``--limit``
recordings of each ratio with those region and clustering settings (``SAME_PERSON``:
``ClusterConfig.same_person``, 1 turns the split test off; ``OVERLAP``: the overlap detector's
``RegionConfig.overlap_threshold``, a negative value runs without the detector), speaker-attributed
cpWER (meeteval) per overlap ratio:

    python benchmarks/tune_conversation.py --data data/train-conv2-16k data/train-conv3-16k --limit 2 \
        --cpwer 12,0.5,1,0.3 18,1,0.8,0.3 --out docs/notes/runs/conversation-tuning-cpwer.md

``--separate-everywhere`` adds a row for the default pipeline reading every voice from its separated
stream (``hubbub transcribe --separate-everywhere``), to choose the default path on training speakers.

``--turns MIN_OVERLAP,MIN_SINGLE,JOIN_GAP,READ_ON[,LONE_STRETCHES[,ATTRIBUTE[,MIN_EVIDENCE[,MIN_UNHELD]]]] ...``
scores settings of what each stretch is read from and how (:class:`hubbub.pipeline.turns.TurnConfig`;
``inf`` for an infinite ``MIN_SINGLE``, a negative ``JOIN_GAP`` decodes each lone piece apart, ``READ_ON`` 0
never reads on, ``LONE_STRETCHES`` ``recording`` or ``joined``, ``ATTRIBUTE`` ``sentence`` or ``word``,
``MIN_EVIDENCE`` the overlap detector's mean probability an overlap needs to be read from the separated
voices, ``MIN_UNHELD`` the shortest stretch of the recording's speech that no voice holds to become a region,
``inf`` for never) with the default regions, and ``--asr-alone`` adds the default ASR on the recording
(``--no-separation``) for comparison:

    python benchmarks/tune_conversation.py --data data/train-conv2-16k data/train-conv3-16k --limit 2 \
        --turns 0.5,inf,-1,0 0.5,inf,1,1 0.5,1,1,1 --asr-alone --out docs/notes/runs/conversation-tuning-turns.md
    python benchmarks/tune_conversation.py --data data/train-conv2-16k data/train-conv3-16k data/dev-conv2-16k \
        --limit 2 --turns 1,inf,1,1,joined,word 1,inf,1,1,recording,word 1,inf,1,1,recording,sentence \
        --asr-alone --out docs/notes/runs/conversation-tuning-lone.md
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch
from _common import write_report
from bench_conversation import load_set

log = logging.getLogger("tune_conversation")


def _der(metric, rec: dict, streams: list[list[tuple[float, float]]], labels=None) -> dict:
    from pyannote.core import Annotation, Segment

    ref, hyp = Annotation(uri=rec["id"]), Annotation(uri=rec["id"])
    for k, t in enumerate(rec["turns"]):
        ref[Segment(t["start"], t["end"]), k] = t["speaker"]
    j = 0
    for s, regions in enumerate(streams):
        for k, (a, b) in enumerate(regions):
            hyp[Segment(a, b), (s, k)] = f"spk{labels[j] if labels else s}"
            j += 1
    return metric(ref, hyp, detailed=True)


def _sum(rows: list[dict]) -> dict:
    total = sum(r["total"] for r in rows)
    return {k: 100 * sum(r[k] for r in rows) / total for k in ("missed detection", "false alarm", "confusion")}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--leak-db", type=float, nargs="+", default=[6, 9, 12, 15, 18])
    p.add_argument("--smooth", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    p.add_argument("--local-same-voice", type=float, nargs="+", default=[1.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
                   help="RegionConfig.local_same_voice values (1: the frame-wise same-voice test off)")
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.2, 0.25, 0.3, 0.35, 0.4, 0.5])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cpwer", nargs="+", default=None, metavar="LEAK_DB,SMOOTH,SAME_VOICE,THRESHOLD",
                   help="score these settings by the pipeline's cpWER instead of the region grid")
    p.add_argument("--limit", type=int, default=None, help="--cpwer: first N recordings of each ratio")
    p.add_argument("--separate-everywhere", action="store_true",
                   help="--cpwer: add a row for the default settings, every voice from its separated stream")
    p.add_argument("--turns", nargs="+", default=None,
                   metavar="MIN_OVERLAP,MIN_SINGLE,JOIN_GAP,READ_ON[,LONE_STRETCHES[,ATTRIBUTE[,MIN_EVIDENCE[,MIN_UNHELD]]]]",
                   help="score these TurnConfig settings by the pipeline's cpWER (default regions)")
    p.add_argument("--asr-alone", action="store_true", help="--cpwer/--turns: add the ASR on the recording")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.cpwer or args.turns:
        return cpwer_settings(args, argv)
    from pyannote.metrics.diarization import DiarizationErrorRate

    from hubbub.models.speaker import SpeakerEncoder
    from hubbub.pipeline.pipeline import _read_span
    from hubbub.pipeline.regions import RegionConfig, file_levels, regions_from_levels
    from hubbub.pipeline.separate import load_separator, separate_to_files
    from hubbub.pipeline.speakers import ClusterConfig, SegmentSpan, cluster_segments
    from hubbub.pipeline.turns import overlaps

    metric = DiarizationErrorRate(collar=0.5, skip_overlap=False)
    sep = load_separator(None)
    base = RegionConfig()
    records = [rec for d in args.data for rec in load_set(d, None)]
    work = Path(tempfile.mkdtemp(prefix="hubbub-tune-"))
    separated = []
    for rec in records:
        outs = [work / rec["id"] / f"spk{k + 1}.wav" for k in range(sep.n_src)]
        outs[0].parent.mkdir(parents=True)
        sr = separate_to_files(sep, rec["mixture"], outs)
        levels, duration, leakage, agreement = file_levels(outs, base)
        separated.append((outs, sr, levels, duration, leakage, agreement))
        log.info("separated %s", rec["id"])
    grid = []
    for leak_db, smooth, same in itertools.product(args.leak_db, args.smooth, args.local_same_voice):
        cfg = replace(base, leak_db=leak_db, smooth=smooth, local_same_voice=same)
        rows = [_der(metric, rec, regions_from_levels(lv, dur, cfg, lk, ag))
                for rec, (_, _, lv, dur, lk, ag) in zip(records, separated)]
        score = _sum(rows)
        grid.append((score["missed detection"] + score["false alarm"], leak_db, smooth, same, score))
        log.info("leak_db %g smooth %g same voice %g: missed %.1f%% false alarm %.1f%%", leak_db, smooth, same,
                 score["missed detection"], score["false alarm"])
    grid.sort(key=lambda g: g[0])
    best = replace(base, leak_db=grid[0][1], smooth=grid[0][2], local_same_voice=grid[0][3])
    encoder = SpeakerEncoder.load()
    spans_emb = []
    for rec, (outs, sr, lv, dur, lk, ag) in zip(records, separated):
        found = regions_from_levels(lv, dur, best, lk, ag)
        over = overlaps(found)
        spans, embs = [], []
        for k, regions in enumerate(found):
            for a, b in regions:
                mixed = any(min(b, e) - max(a, s) > 0.5 for s, e in over)
                src = outs[k] if mixed else rec["mixture"]
                spans.append(SegmentSpan(k, a, b))
                embs.append(encoder.embed(_read_span(src, sr, a, b), sr) if b - a >= 1.0 else None)
        spans_emb.append((found, spans, embs))
    clusters = []
    for th in args.thresholds:
        rows = []
        for rec, (found, spans, embs) in zip(records, spans_emb):
            labels = cluster_segments(spans, embs, ClusterConfig(threshold=th))
            rows.append(_der(metric, rec, found, labels))
        score = _sum(rows)
        clusters.append((th, score))
        log.info("threshold %g: DER %.1f%% (confusion %.1f%%)", th, sum(score.values()), score["confusion"])
    cmd = "python benchmarks/tune_conversation.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"`{cmd}` ({len(records)} recordings of training speakers)", "",
             "Speech regions of the separated streams (one label per stream): missed + false alarm of DER, %", "",
             "| leak_db | smooth (s) | local same voice | missed | false alarm | sum |", "|---|---|---|---|---|---|"]
    lines += [f"| {g[1]:g} | {g[2]:g} | {g[3]:g} | {g[4]['missed detection']:.1f} | {g[4]['false alarm']:.1f} | "
              f"{g[0]:.1f} |" for g in sorted(grid, key=lambda g: (g[1], g[2], g[3]))]
    lines += ["", f"Clustering of the regions of the best setting (leak_db {best.leak_db:g}, smooth {best.smooth:g}, "
              f"local same voice {best.local_same_voice:g}):",
              "", "| threshold | missed | false alarm | confusion | DER |", "|---|---|---|---|---|"]
    lines += [f"| {th:g} | {s['missed detection']:.1f} | {s['false alarm']:.1f} | {s['confusion']:.1f} | "
              f"{sum(s.values()):.1f} |" for th, s in clusters]
    write_report("\n".join(lines) + "\n", args.out)
    return 0


def cpwer_settings(args, argv) -> int:
    """cpWER per overlap ratio of the overlap-aware pipeline under each ``--cpwer`` setting."""
    from bench_conversation import run

    from hubbub.pipeline import Pipeline
    from hubbub.pipeline.regions import RegionConfig
    from hubbub.pipeline.speakers import ClusterConfig
    from hubbub.pipeline.turns import TurnConfig

    records = [rec for d in args.data for rec in load_set(d, args.limit)]
    base = Pipeline.from_pretrained()
    table = []
    for setting in args.turns or []:
        min_overlap, min_single, join_gap, read_on, *more = setting.split(",")
        names = dict(zip(("lone_stretches", "attribute"), more[:2]))
        evidence = dict(zip(("min_evidence", "min_unheld"), (float(v) for v in more[2:])))
        turns = TurnConfig(min_overlap=float(min_overlap), min_single=float(min_single), join_gap=float(join_gap),
                           read_on=float(read_on), **names, **evidence)
        pipe = base.replace(turns=turns)
        out = run(records, ["overlap-aware"], {"overlap-aware": pipe}, None)["overlap-aware"]
        table.append((f"turns {setting}", out))
    for setting in args.cpwer or []:
        leak_db, smooth, same, threshold, *more = (float(v) for v in setting.split(","))
        clustering = ClusterConfig(threshold=threshold, **({"same_person": more[0]} if more else {}))
        overlap = more[1] if len(more) > 1 else RegionConfig().overlap_threshold
        regions = RegionConfig(leak_db=leak_db, smooth=smooth, local_same_voice=same,
                               overlap_threshold=max(overlap, 0.0))
        pipe = base.replace(regions=regions, clustering=clustering,
                            overlap_detector=base.overlap_detector if overlap >= 0 else None)
        out = run(records, ["overlap-aware"], {"overlap-aware": pipe}, None)["overlap-aware"]
        table.append((setting, out))
    if args.separate_everywhere:
        pipe = base.replace(overlap_aware=False)
        out = run(records, ["separate-everywhere"], {"separate-everywhere": pipe}, None)["separate-everywhere"]
        table.append(("separate everywhere (default settings)", out))
    if args.asr_alone:
        out = run(records, ["asr-alone"], {"overlap-aware": base}, None)["asr-alone"]
        table.append(("the ASR alone on the recording (--no-separation)", out))
    ratios = sorted({str(r["overlap_ratio"]) for r in records}, key=lambda r: (float(r), r))
    cmd = "python benchmarks/tune_conversation.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"`{cmd}` ({len(records)} recordings of training speakers)", "",
             "Speaker-attributed cpWER (%) of the pipeline, per overlap ratio (ORC-WER, "
             "speaker labels not counted, in brackets)", "",
             "| leak_db, smooth, local same voice, threshold[, same person[, overlap]], or turns min_overlap, "
             "min_single, join_gap, read_on[, lone stretches[, attribute[, min_evidence[, min_unheld]]]] | "
             + " | ".join(f"{r} %" for r in ratios) + " | all | DER |", "|---|" + "---|" * (len(ratios) + 2)]
    for setting, out in table:
        errors = sum(out[r]["errors"] for r in ratios)
        words = sum(out[r]["words"] for r in ratios)
        der = (sum(out[r]["missed"] + out[r]["false_alarm"] + out[r]["confusion"] for r in ratios)
               / max(sum(out[r]["ref_speech"] for r in ratios), 1e-9))
        lines.append(f"| {setting} | " + " | ".join(f"{100 * out[r]['cpwer']:.1f} ({100 * out[r]['orcwer']:.1f})"
                                                    for r in ratios)
                     + f" | {100 * errors / max(words, 1):.1f} | {100 * der:.1f} |")
    write_report("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
