"""The fused projection + label-smoothed loss against an unfused reference, with and without
gradients; the reference against the explicit smoothed-target cross-entropy."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from nmt.training.loss import projected_label_smoothed_nll


def label_smoothed_nll(
    logits: torch.Tensor, target: torch.Tensor, epsilon: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: (smoothed loss sum, nll sum) of (N, V) `logits` against (N,) `target`.

    Per row, (1 - eps) * nll + eps * mean_v(-log p_v), through the whole (N, V) log-softmax.
    """
    log_probs = F.log_softmax(logits.float(), dim=-1)  # (N, V)
    nll = -log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (N,)
    smooth = -log_probs.mean(dim=-1)  # (N,)
    loss = (1.0 - epsilon) * nll + epsilon * smooth
    return loss.sum(), nll.sum()


def random_inputs(seed: int, rows: int = 10, hidden: int = 6, vocab: int = 13):
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(rows, hidden, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(vocab, hidden, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(vocab, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, vocab, (rows,), generator=gen)
    return h, weight, bias, target


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
    hidden, weight, bias, target = random_inputs(1)
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


@pytest.mark.parametrize("no_grad", [torch.no_grad, torch.inference_mode])
@pytest.mark.parametrize(("epsilon", "chunk"), [(0.0, 3), (0.1, 4)])
def test_without_gradients_same_values_and_only_the_logits_matmul(no_grad, epsilon, chunk):
    hidden, weight, bias, target = random_inputs(2)
    with_grad = projected_label_smoothed_nll(hidden, weight, bias, target, epsilon, chunk)
    with no_grad(), FlopCounterMode(display=False) as flops:
        without = projected_label_smoothed_nll(hidden, weight, bias, target, epsilon, chunk)
    for got, expected in zip(without, with_grad, strict=True):
        assert not got.requires_grad
        torch.testing.assert_close(got, expected.detach(), rtol=0, atol=0)
    # Only the (N, H) x (H, V) logits: 2 N H V FLOPs; the gradients would add two more matmuls.
    assert flops.get_total_flops() == 2 * 10 * 6 * 13


class MatmulDtypes(TorchDispatchMode):
    """Records the input dtypes of every matmul run under it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[torch.dtype, ...]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in (torch.ops.aten.mm, torch.ops.aten.addmm):
            self.seen.append(tuple(a.dtype for a in args if isinstance(a, torch.Tensor)))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(
    ("autocast", "expected"),
    [(None, torch.float32), (torch.bfloat16, torch.bfloat16), (torch.float16, torch.float32)],
)
def test_matmuls_run_in_bf16_under_bf16_autocast_only(autocast, expected):
    """bf16 autocast: the three matmuls in bf16 and the result close to float32's; no
    autocast or fp16 autocast (whose unscaled gradients could underflow): float32."""
    *floats, target = random_inputs(3, 40)
    hidden, weight, bias = (t.detach().float().requires_grad_() for t in floats)
    ref_loss, _ = label_smoothed_nll(hidden @ weight.t() + bias, target, 0.1)
    ref_grads = torch.autograd.grad(ref_loss, (hidden, weight, bias))
    with (
        torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None),
        MatmulDtypes() as dtypes,
    ):
        loss, _ = projected_label_smoothed_nll(hidden, weight, bias, target, 0.1, chunk=16)
    grads = torch.autograd.grad(loss, (hidden, weight, bias))
    assert len(dtypes.seen) == 3 * 3  # 3 chunks: logits, hidden and weight gradients
    assert all(dtype == expected for call in dtypes.seen for dtype in call)
    tolerance = 3e-2 if expected == torch.bfloat16 else 1e-5
    torch.testing.assert_close(loss, ref_loss, rtol=tolerance, atol=tolerance)
    for got, ref in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, ref, rtol=tolerance, atol=tolerance)
