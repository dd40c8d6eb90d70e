"""Speaker labels that mean speakers: the same person is the same label throughout.

A separator gives streams, not persons: when more people take turns than it
has outputs, or when it puts one person's turns in different outputs, a stream
switches persons. :func:`cluster_segments` groups the segments of a recording by
speaker embedding (:class:`~hubbub.models.speaker.SpeakerEncoder`):
agglomerative clustering, average linkage on cosine distance, stopped at
``threshold`` (tuned on conversations of training speakers, docs/benchmarks.md)
or at ``num_speakers``. Two segments of different streams that overlap in time
are two people (they are kept apart). Segments too short for a reliable
embedding take the label of the nearest segment in time of their own stream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["ClusterConfig", "SegmentSpan", "cluster_segments"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterConfig:
    """Settings of :func:`cluster_segments`.

    threshold: cosine distance (1 - cosine similarity) above which clusters are not merged.
    num_speakers: the number of speakers when known (overrides ``threshold``).
    min_seconds: shorter segments are not embedded; they follow their stream.
    """

    threshold: float = 0.35
    num_speakers: int | None = None
    min_seconds: float = 1.0


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
    """Speaker labels ``0..M-1`` (in order of first appearance) for ``spans``.

    Args:
        spans: the segments.
        embeddings: per segment, a unit-norm ``(D,)`` embedding, or None when it is
            too short to embed.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    cfg = cfg or ClusterConfig()
    n = len(spans)
    if n == 0:
        return []
    long = [i for i in range(n) if embeddings[i] is not None]
    labels = [-1] * n
    if len(long) == 1:
        labels[long[0]] = 0
    elif long:
        e = torch.stack([embeddings[i] for i in long]).double()
        e = e / e.norm(dim=1, keepdim=True).clamp_min(1e-9)
        dist = (1 - e @ e.T).clamp_min(0).numpy()
        for a, i in enumerate(long):
            for b, j in enumerate(long):
                if spans[i].stream != spans[j].stream and _overlap(spans[i], spans[j]) > 0.2:
                    dist[a, b] = 2.0  # two people at once
        np.fill_diagonal(dist, 0.0)
        tree = linkage(squareform((dist + dist.T) / 2, checks=False), method="average")
        if cfg.num_speakers:
            found = fcluster(tree, t=cfg.num_speakers, criterion="maxclust")
        else:
            found = fcluster(tree, t=cfg.threshold, criterion="distance")
        for i, c in zip(long, found):
            labels[i] = int(c)
    for i in range(n):
        if labels[i] == -1:
            labels[i] = _nearest_label(i, spans, labels)
    return _by_first_appearance(spans, labels)


def _overlap(a: SegmentSpan, b: SegmentSpan) -> float:
    return max(0.0, min(a.end, b.end) - max(a.start, b.start))


def _nearest_label(i: int, spans: list[SegmentSpan], labels: list[int]) -> int:
    """The label of the nearest labelled segment of the same stream (a new one if none)."""
    def gap(j: int) -> float:
        return max(spans[j].start - spans[i].end, spans[i].start - spans[j].end, 0.0)

    same = [j for j in range(len(spans)) if labels[j] >= 0 and spans[j].stream == spans[i].stream]
    if same:
        return labels[min(same, key=gap)]
    return 1_000 + spans[i].stream  # a stream with no long segment: its own speaker


def _by_first_appearance(spans: list[SegmentSpan], labels: list[int]) -> list[int]:
    order: dict[int, int] = {}
    for i in sorted(range(len(spans)), key=lambda i: (spans[i].start, spans[i].stream)):
        order.setdefault(labels[i], len(order))
    return [order[c] for c in labels]
