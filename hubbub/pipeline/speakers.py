"""Speaker labels that mean speakers: the same person is the same label throughout.

A separator gives streams, not persons: when more people take turns than it
has outputs, or when it puts one person's turns in different outputs, a stream
switches persons. :func:`cluster_segments` groups the segments of a recording by
speaker embedding (:class:`~hubbub.models.speaker.SpeakerEncoder`):
agglomerative clustering (average linkage on cosine distance by default), stopped
at ``threshold`` (tuned on conversations of training speakers, docs/notes/benchmarks-history.md)
or at ``num_speakers``; with ``long_seconds`` set, only segments at least that long
are clustered and shorter ones join the nearest person found. Two segments of different streams that overlap in time
are two people (they are kept apart). Segments too short for a reliable
embedding take the label of the nearest segment in time of their own stream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["DROPPED", "ClusterConfig", "SegmentSpan", "cluster_segments", "one_person_overlaps"]

#: the label of a segment that is no one's: a short stretch of a stream with no long segment, heard
#: while another person speaks (the separator's leakage)
DROPPED = -2

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterConfig:
    """Settings of :func:`cluster_segments`.

    threshold: cosine distance (1 - cosine similarity) above which clusters are not merged.
    num_speakers: the number of speakers when known (overrides ``threshold``).
    min_seconds: shorter segments are not embedded; they follow their stream.
    same_person: see :func:`one_person_overlaps`.
    long_seconds: only segments at least this long are clustered; shorter embedded ones join the
        nearest person (see :func:`cluster_segments`).
    assign_threshold: a shorter segment farther than this (cosine distance) from every person's
        centroid is not theirs: the short segments no one claims are clustered into new persons.
    linkage: scipy's linkage method ("average", "complete", ...).
    min_cluster_seconds: a person found with less speech than this (when ``num_speakers``
        is not given) is merged into the nearest person (centroid cosine) not heard at the same time:
        a separator's leakage and artefacts split off small clusters, a talker of a conversation
        speaks longer.
    """

    # average linkage at 0.30 over every embedded segment (tuned on conversations of training speakers, 3 Dec).
    # Complete linkage at 0.30 over segments of 4 s and more (long_seconds=4, linkage="complete") is better on
    # 108 training-speaker recordings (cpWER 34.9 against 38.3 %, docs/notes/runs/clustering-tuning.md) but worse on
    # test-other (2 speakers 49.9 / 54.0 / 39.5 / 50.7 / 45.8 % against 26.1 / 47.0 / 43.4 / 49.7 / 63.1, 3
    # speakers far worse: unseen talkers merged), so it is not the default (docs/notes/benchmarks-history.md, 6 Dec)
    threshold: float = 0.30
    num_speakers: int | None = None
    min_seconds: float = 1.0
    min_cluster_seconds: float = 4.0
    long_seconds: float = 0.0
    # a shorter segment farther than this from every person is not theirs: on the training conversations
    # 0.45 and more change nothing (34.9 %; 0.40: 35.0, 0.35: 35.3), and a talker who never speaks for 4 s
    # can still be a person
    assign_threshold: float = 0.45
    linkage: str = "average"
    # two streams whose voices over a stretch where both speak (at least ``min_seconds``) are at least this
    # similar (cosine of speaker embeddings) are one person that the separator split: the quieter stream's
    # speech there is leakage (:func:`one_person_overlaps`); 1.0 (the default) turns the test off. On
    # conversations of training speakers (docs/notes/runs/conversation-tuning-split.md) 0.85 lowered cpWER by 0.2
    # points and 0.9 changed nothing, while the two talkers of the bundled two-talkers-2.flac overlap at a
    # cosine of 0.86: the test stays opt-in until the speaker encoder tells voices apart better
    same_person: float = 1.0


@dataclass(frozen=True)
class SegmentSpan:
    """One segment to label: its stream and time span (seconds)."""

    stream: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def cluster_segments(spans: list[SegmentSpan], embeddings: list[torch.Tensor | None],
                     cfg: ClusterConfig | None = None) -> list[int]:
    """Speaker labels ``0..M-1`` (in order of first appearance) for ``spans``; :data:`DROPPED`
    for a segment that is no one's.

    The segments of at least ``cfg.long_seconds`` are clustered first (:func:`_cluster`): the
    embedding of a second or two of speech is too noisy to found a person. A shorter embedded
    segment then joins the person whose centroid is nearest, among those it may be, if that
    centroid is within ``cfg.assign_threshold`` (:func:`_assign`); the short segments no one
    claims (a talker who never spoke for long) are clustered among themselves into new
    persons, and persons with less than ``cfg.min_cluster_seconds`` of speech are merged into
    the nearest (:func:`_merge_small`). When fewer than two segments are long, every embedded
    segment is clustered at once.

    Args:
        spans: the segments.
        embeddings: per segment, a unit-norm ``(D,)`` embedding, or None when it is
            too short to embed.
    """
    cfg = cfg or ClusterConfig()
    n = len(spans)
    if n == 0:
        return []
    embedded = [i for i in range(n) if embeddings[i] is not None]
    core = [i for i in embedded if spans[i].duration >= cfg.long_seconds]
    if len(core) < 2:
        core = embedded
    labels = [-1] * n
    if core:
        _cluster(spans, embeddings, core, labels, cfg)
        _assign(spans, embeddings, [i for i in embedded if i not in set(core)], labels, cfg.assign_threshold)
        left = [i for i in embedded if labels[i] == -1]
        if left:
            sub = [-1] * n
            _cluster(spans, embeddings, left, sub, cfg)
            first = max(labels) + 1
            for i in left:
                labels[i] = first + sub[i]
            if not cfg.num_speakers:
                e, dist = _distances(spans, embeddings, embedded)
                _merge_small(spans, labels, embedded, e, dist, cfg.min_cluster_seconds)
    for i in range(n):
        if labels[i] == -1:
            labels[i] = _nearest_label(i, spans, labels)
    return _by_first_appearance(spans, labels)


def _distances(spans: list[SegmentSpan], embeddings: list, which: list[int]) -> tuple[torch.Tensor, np.ndarray]:
    """The unit embeddings ``(len(which), D)`` of the segments ``which`` and their cosine
    distances, 2.0 between two segments heard at once from different streams (two people)."""
    e = torch.stack([embeddings[i] for i in which]).double()
    e = e / e.norm(dim=1, keepdim=True).clamp_min(1e-9)
    dist = (1 - e @ e.T).clamp_min(0).numpy()
    for a, i in enumerate(which):
        for b, j in enumerate(which):
            if _apart(spans[i], spans[j]):
                dist[a, b] = 2.0
    np.fill_diagonal(dist, 0.0)
    return e, dist


def _cluster(spans: list[SegmentSpan], embeddings: list, core: list[int], labels: list[int],
             cfg: ClusterConfig) -> None:
    """Label the segments ``core`` ``0..`` (in place): agglomerative clustering of their
    embeddings, ``cfg.linkage`` on cosine distance, two segments of different streams heard
    at once never together; then small clusters merged (:func:`_merge_small`)."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    if len(core) == 1:
        labels[core[0]] = 0
        return
    e, dist = _distances(spans, embeddings, core)
    tree = linkage(squareform((dist + dist.T) / 2, checks=False), method=cfg.linkage)
    if cfg.num_speakers:
        found = fcluster(tree, t=cfg.num_speakers, criterion="maxclust")
    else:
        found = fcluster(tree, t=cfg.threshold, criterion="distance")
    for i, c in zip(core, found):
        labels[i] = int(c) - 1
    if not cfg.num_speakers:
        _merge_small(spans, labels, core, e, dist, cfg.min_cluster_seconds)


def _apart(a: SegmentSpan, b: SegmentSpan) -> bool:
    """Two segments of different streams heard at once are two people."""
    return a.stream != b.stream and _overlap(a, b) > 0.2


def _assign(spans: list[SegmentSpan], embeddings: list, rest: list[int], labels: list[int],
            threshold: float = 2.0) -> None:
    """Give each segment of ``rest`` the label of the person whose centroid (the
    duration-weighted mean of its labelled segments' embeddings) is nearest, among the
    persons none of whose segments it is heard at once with, if its cosine distance to that
    centroid is below ``threshold`` (in place; it stays -1 otherwise)."""
    members: dict[int, list[int]] = {}
    for i, c in enumerate(labels):
        if c >= 0 and embeddings[i] is not None:
            members.setdefault(c, []).append(i)
    centroid = {}
    for c, m in members.items():
        v = sum(spans[i].duration * embeddings[i].double() for i in m)
        centroid[c] = v / v.norm().clamp_min(1e-9)
    for i in rest:
        options = [c for c, m in members.items() if not any(_apart(spans[i], spans[j]) for j in m)]
        if options:
            best = max(options, key=lambda c: float(centroid[c] @ embeddings[i].double()))
            if 1 - float(centroid[best] @ embeddings[i].double()) < threshold:
                labels[i] = best


def _merge_small(spans: list[SegmentSpan], labels: list[int], long: list[int], e: torch.Tensor,
                 dist: np.ndarray, min_seconds: float) -> None:
    """Merge, smallest first, clusters with less than ``min_seconds`` of speech into the cluster
    whose centroid is nearest, among those none of whose segments are two people with its own
    (``dist`` 2.0); in place."""
    pos = {i: a for a, i in enumerate(long)}
    while True:
        members: dict[int, list[int]] = {}
        for i in long:
            members.setdefault(labels[i], []).append(i)
        if len(members) < 2:
            return
        size = {c: sum(spans[i].duration for i in m) for c, m in members.items()}
        small = min(size, key=size.get)
        if size[small] >= min_seconds:
            return
        centroid = {c: torch.nn.functional.normalize(e[[pos[i] for i in m]].mean(0), dim=0)
                    for c, m in members.items()}
        apart = {c for c, m in members.items() if c != small
                 and any(dist[pos[i], pos[j]] >= 2.0 for i in members[small] for j in m)}
        options = [c for c in members if c != small and c not in apart]
        if not options:
            return
        target = max(options, key=lambda c: float(centroid[c] @ centroid[small]))
        for i in members[small]:
            labels[i] = target


def _overlap(a: SegmentSpan, b: SegmentSpan) -> float:
    return max(0.0, min(a.end, b.end) - max(a.start, b.start))


def _nearest_label(i: int, spans: list[SegmentSpan], labels: list[int]) -> int:
    """The label of the nearest labelled segment of the same stream (a new one if none)."""
    def gap(j: int) -> float:
        return max(spans[j].start - spans[i].end, spans[i].start - spans[j].end, 0.0)

    same = [j for j in range(len(spans)) if labels[j] >= 0 and spans[j].stream == spans[i].stream]
    if same:
        return labels[min(same, key=gap)]
    # a stream with no long segment: while another person speaks it is the separator's leakage
    # (dropped); otherwise it is the nearest person in time
    labelled = [j for j in range(len(spans)) if labels[j] >= 0]
    if any(_overlap(spans[i], spans[j]) > 0 for j in labelled):
        return DROPPED
    if labelled:
        return labels[min(labelled, key=gap)]
    return 1_000 + spans[i].stream  # no segment of the recording is long enough: one speaker per stream


def _by_first_appearance(spans: list[SegmentSpan], labels: list[int]) -> list[int]:
    order: dict[int, int] = {DROPPED: DROPPED}
    for i in sorted(range(len(spans)), key=lambda i: (spans[i].start, spans[i].stream)):
        if labels[i] != DROPPED:
            order.setdefault(labels[i], len(order) - 1)
    return [order[c] for c in labels]


def _minus(regions: list[tuple[float, float]], start: float, end: float,
           min_piece: float) -> list[tuple[float, float]]:
    """``regions`` without ``[start, end)``; pieces shorter than ``min_piece`` go."""
    out = []
    for a, b in regions:
        for s, e in ((a, min(b, start)), (max(a, end), b)) if a < end and b > start else ((a, b),):
            if e - s >= min_piece:
                out.append((s, e))
    return out


def one_person_overlaps(
    regions: list[list[tuple[float, float]]], embed, level, cfg: ClusterConfig | None = None,
    min_piece: float = 0.25,
) -> list[list[tuple[float, float]]]:
    """Speech regions without the overlaps that are one person split across two streams.

    A separator far from perfect (unseen voices) can put one talker in both of its
    outputs at comparable levels; read as an overlap, that stretch is transcribed
    twice, from two damaged copies. Wherever two streams' regions overlap for at least
    ``cfg.min_seconds``, the two streams are embedded over the overlap; if their cosine
    similarity is at least ``cfg.same_person``, the stretch is one person's and is cut
    from the quieter stream's regions (what is left of a region shorter than
    ``min_piece`` seconds goes too), so the louder stream's region reads as one voice.

    Args:
        regions: per stream, its speech regions ``[(start, end)]`` in seconds.
        embed: ``embed(stream, start, end) -> (D,)`` unit-norm embedding, or None.
        level: ``level(stream, start, end) -> float``: the stream's power over the stretch.

    Returns:
        The regions, per stream, in time order.
    """
    from hubbub.pipeline.turns import overlaps

    cfg = cfg or ClusterConfig()
    out = [list(r) for r in regions]
    if cfg.same_person >= 1.0:
        return out
    for k in range(len(regions)):
        for j in range(k + 1, len(regions)):
            for s, e in overlaps([regions[k], regions[j]]):
                if e - s < cfg.min_seconds:
                    continue
                a, b = embed(k, s, e), embed(j, s, e)
                if a is None or b is None or float(a @ b) < cfg.same_person:
                    continue
                quieter = k if level(k, s, e) < level(j, s, e) else j
                log.debug("%.2f-%.2f s: streams %d and %d are one person (cosine %.2f); stream %d's part is leakage",
                          s, e, k, j, float(a @ b), quieter)
                out[quieter] = _minus(out[quieter], s, e, min_piece)
    return out
