"""Label-smoothed cross-entropy (Szegedy et al. 2016), summed over real target tokens."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def label_smoothed_nll(
    logits: torch.Tensor, target: torch.Tensor, epsilon: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (smoothed loss sum, nll sum) over the given rows.

    The smoothed loss is (1 - eps) * nll + eps * mean_v(-log p_v): the target
    distribution puts 1 - eps on the reference and eps uniformly on the whole vocabulary.
    Callers pass only real (non-padding) rows and divide by their count.

    Args:
        logits: (N, V) unnormalised scores.
        target: (N,) reference ids.
        epsilon: smoothing mass in [0, 1).
    """
    log_probs = F.log_softmax(logits.float(), dim=-1)  # (N, V)
    nll = -log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (N,)
    if epsilon == 0.0:
        total = nll.sum()
        return total, total
    smooth = -log_probs.mean(dim=-1)  # (N,)
    loss = (1.0 - epsilon) * nll + epsilon * smooth
    return loss.sum(), nll.sum()
