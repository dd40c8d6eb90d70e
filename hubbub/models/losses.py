"""Training objectives and the signal metrics they are built on.

The permutation-invariant SI-SNR loss is SpeechBrain's (``get_si_snr_with_pitwrapper``),
not a rewrite; ``si_snr`` is the plain per-pair metric used for reporting.
"""

from __future__ import annotations

import torch

__all__ = ["best_permutation", "pit_si_snr_loss", "si_snr"]

EPS = 1e-8


def pit_si_snr_loss(estimates: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """Negative SI-SNR (dB) under the best permutation, per example.

    Args:
        estimates, sources: ``(B, n_src, T)``.

    Returns:
        ``(B,)`` losses (lower is better).
    """
    from speechbrain.nnet.losses import get_si_snr_with_pitwrapper

    return get_si_snr_with_pitwrapper(sources.transpose(1, 2), estimates.transpose(1, 2))


def si_snr(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Scale-invariant SNR in dB along the last axis: ``(..., T) -> (...)``."""
    estimate = estimate - estimate.mean(-1, keepdim=True)
    reference = reference - reference.mean(-1, keepdim=True)
    scale = (estimate * reference).sum(-1, keepdim=True) / (reference.pow(2).sum(-1, keepdim=True) + EPS)
    target = scale * reference
    noise = estimate - target
    return 10 * torch.log10((target.pow(2).sum(-1) + EPS) / (noise.pow(2).sum(-1) + EPS))


def best_permutation(estimates: torch.Tensor, sources: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Reorder ``estimates (n_src, T)`` to best match ``sources (n_src, T)`` by SI-SNR."""
    from itertools import permutations

    n = sources.shape[0]
    pair = si_snr(estimates[None, :, :], sources[:, None, :])  # (ref, est)
    best = max(permutations(range(n)), key=lambda p: sum(float(pair[i, p[i]]) for i in range(n)))
    return estimates[list(best)], list(best)
