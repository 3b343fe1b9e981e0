"""all_finite and NonFiniteGuard: which updates are dropped, counted, or stop the run."""

from __future__ import annotations

import pytest
import torch

from nmt.training.nonfinite import NonFiniteGuard, all_finite
from nmt.training.optim_config import OptimConfig


def params_with_grads(*grads: torch.Tensor) -> list[torch.Tensor]:
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    return params


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_all_finite_sees_one_bad_gradient_entry(bad):
    grad = torch.ones(3, 4)
    params = params_with_grads(torch.ones(5), grad)
    assert bool(all_finite(torch.tensor(1.0), params))
    grad[2, 1] = bad
    assert not bool(all_finite(torch.tensor(1.0), params))


def test_all_finite_checks_the_loss_and_survives_huge_finite_gradients():
    params = params_with_grads(torch.full((4,), 3e38))  # a 2-norm would overflow
    assert bool(all_finite(torch.tensor(2.0), params))
    assert not bool(all_finite(torch.tensor(float("nan")), params))
    assert not bool(all_finite(torch.tensor(float("inf")), []))


def test_skip_counts_and_stops_past_max_skipped():
    guard = NonFiniteGuard("skip", max_skipped=2)
    assert not guard.should_skip(True, step=0)
    assert guard.should_skip(False, step=1) and guard.should_skip(False, step=5)
    assert guard.skipped == 2
    with pytest.raises(ValueError, match=r"at step 9: 3 updates skipped, more than optim.max"):
        guard.should_skip(False, step=9)


def test_stop_raises_naming_the_step():
    guard = NonFiniteGuard("stop", max_skipped=100)
    assert not guard.should_skip(True, step=3)
    with pytest.raises(ValueError, match=r"^non-finite loss or gradients at step 4 \("):
        guard.should_skip(False, step=4)


@pytest.mark.parametrize(
    ("key", "value"), [("nonfinite", "ignore"), ("max_skipped", -1)], ids=["policy", "max"]
)
def test_bad_settings_name_the_key(key, value):
    with pytest.raises(ValueError, match=f"optim.{key}"):
        OptimConfig(**{key: value})
