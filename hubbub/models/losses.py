"""Training objectives and the signal metrics they are built on.

The permutation-invariant SI-SNR loss is SpeechBrain's (``get_si_snr_with_pitwrapper``),
not a rewrite; ``si_snr`` is the plain per-pair metric used for reporting.
"""

from __future__ import annotations

import torch

__all__ = ["best_permutation", "pit_si_snr_loss", "pit_loss_with_silence", "si_snr"]

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


def pit_loss_with_silence(estimates: torch.Tensor, sources: torch.Tensor, mixture: torch.Tensor,
                          snr_max: float = 30.0) -> torch.Tensor:
    """:func:`pit_si_snr_loss` for batches in which some sources are silent (all zeros: a mixture of
    fewer talkers than outputs). An example whose sources all speak gets exactly that loss; in one with
    a silent source, a speaking source costs its negative SI-SNR and a silent one the energy of the
    output given to it relative to the mixture, ``10 log10(|est|^2 / |mix|^2 + tau)`` with
    ``tau = 10^(-snr_max / 10)`` (the thresholded loss for zero references of MixIT, Wisdom et al. 2020),
    under the best permutation.

    Args:
        estimates, sources: ``(B, n_src, T)``; mixture: ``(B, T)``.

    Returns:
        ``(B,)`` losses (lower is better).
    """
    from itertools import permutations

    silent = sources.pow(2).sum(-1) == 0  # (B, n_src)
    loss = torch.empty(sources.shape[0], dtype=estimates.dtype, device=estimates.device)
    full = ~silent.any(-1)
    if full.any():
        loss[full] = pit_si_snr_loss(estimates[full], sources[full])
    some = ~full
    if some.any():
        est, src, mix = estimates[some], sources[some], mixture[some]
        n = src.shape[1]
        tau = 10 ** (-snr_max / 10)
        energy = 10 * torch.log10(est.pow(2).sum(-1) / (mix.pow(2).sum(-1, keepdim=True) + EPS) + tau)  # (b, est)
        pair = torch.where(silent[some][:, :, None], energy[:, None, :],
                           -si_snr(est[:, None, :, :], src[:, :, None, :]))  # (b, ref, est)
        per_perm = torch.stack([pair[:, torch.arange(n), torch.tensor(p)].mean(-1) for p in permutations(range(n))])
        loss[some] = per_perm.min(0).values
    return loss


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
