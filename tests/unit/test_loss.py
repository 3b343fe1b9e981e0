"""label_smoothed_nll against the explicit smoothed-target cross-entropy."""

import pytest
import torch
import torch.nn.functional as F

from nmt.training.loss import label_smoothed_nll


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.3])
def test_equals_cross_entropy_with_smoothed_targets(epsilon):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 11, generator=gen, dtype=torch.float64)
    target = torch.randint(0, 11, (7,), generator=gen)
    loss, nll = label_smoothed_nll(logits, target, epsilon)
    # q = (1 - eps) * onehot + eps / V; loss = -sum_v q_v log p_v per row, summed over rows.
    q = (1 - epsilon) * F.one_hot(target, 11).double() + epsilon / 11
    log_p = logits - logits.logsumexp(-1, keepdim=True)
    torch.testing.assert_close(loss.double(), -(q * log_p).sum(), rtol=1e-5, atol=1e-6)
    expected_nll = F.cross_entropy(logits, target, reduction="sum")
    torch.testing.assert_close(nll.double(), expected_nll, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("epsilon", "chunk"), [(0.0, 3), (0.1, 4), (0.2, 100)])
def test_projected_loss_equals_unfused_values_and_gradients(epsilon, chunk):
    from nmt.training.loss import projected_label_smoothed_nll

    gen = torch.Generator().manual_seed(1)
    hidden = torch.randn(10, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(13, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(13, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 13, (10,), generator=gen)
    loss, nll = projected_label_smoothed_nll(hidden, weight, bias, target, epsilon, chunk)
    (2.5 * loss).backward()
    fused = [t.grad.clone() for t in (hidden, weight, bias)]
    for t in (hidden, weight, bias):
        t.grad = None
    ref_loss, ref_nll = label_smoothed_nll(hidden @ weight.t() + bias, target, epsilon)
    (2.5 * ref_loss).backward()
    torch.testing.assert_close(loss.double(), ref_loss.double(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(nll.double(), ref_nll.double(), rtol=1e-5, atol=1e-5)
    for got, t in zip(fused, (hidden, weight, bias), strict=True):
        torch.testing.assert_close(got, t.grad, rtol=1e-5, atol=1e-6)
