"""Skip or stop on optimizer steps whose loss or gradients are NaN or infinite."""

from __future__ import annotations

from collections.abc import Iterable

import torch

NONFINITE_POLICIES = ("skip", "stop")


def all_finite(loss: torch.Tensor | None, parameters: Iterable[torch.Tensor]) -> torch.Tensor:
    """Whether `loss` and every gradient of `parameters` are finite, as a 0-dim bool tensor.

    The max-norm of the gradients is finite exactly when every entry is (a 2-norm could
    overflow on large but finite gradients), and it costs one reduction per tensor.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    finite = torch.tensor(True)
    if grads:
        max_norm = torch.nn.utils.get_total_norm(grads, norm_type=float("inf"))
        finite = torch.isfinite(max_norm).cpu()
    if loss is not None:
        finite = finite & torch.isfinite(loss).cpu()
    return finite


class NonFiniteGuard:
    """Count and bound the skipped updates of a run, or stop at the first one.

    Args:
        policy: "skip" (drop the update, count it, train on) or "stop" (raise).
        max_skipped: with "skip", raise once more than this many updates were dropped:
            a run that keeps producing NaN has diverged and should not burn its budget.
    """

    def __init__(self, policy: str, max_skipped: int) -> None:
        self.policy = policy
        self.max_skipped = max_skipped
        self.skipped = 0

    def should_skip(self, finite: bool, step: int) -> bool:
        """Return True when the update of optimizer step `step` must be dropped.

        Raises:
            ValueError: the policy is "stop", or more than `max_skipped` were dropped.
        """
        if finite:
            return False
        if self.policy == "stop":
            raise ValueError(f"non-finite loss or gradients at step {step} (optim.nonfinite=stop)")
        self.skipped += 1
        if self.skipped > self.max_skipped:
            raise ValueError(
                f"non-finite loss or gradients at step {step}: {self.skipped} updates skipped, "
                f"more than optim.max_skipped={self.max_skipped}"
            )
        return True
