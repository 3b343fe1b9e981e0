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


class _ProjectedNLL(torch.autograd.Function):
    """Output projection + label-smoothed NLL, computed in row chunks that stay in cache.

    The (N, V) logits of a whole batch (N ~ 4k tokens, V ~ 8k) are ~130 MB: writing them,
    the log-softmax and its gradient through memory costs more than the matmuls on a CPU.
    Here each chunk's logits are made, turned into the loss and the gradient
    d loss / d logits = softmax - q (q the smoothed target distribution), and dropped; the
    gradients of the hidden states and the projection are accumulated in the forward pass
    and scaled by the incoming gradient in the backward pass.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
        target: torch.Tensor,
        epsilon: float,
        chunk: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        vocab = weight.shape[0]
        grad_hidden = torch.empty_like(hidden)  # (N, H)
        grad_weight = torch.zeros_like(weight, dtype=torch.float32)  # (V, H)
        grad_bias = torch.zeros_like(bias, dtype=torch.float32)  # (V,)
        loss = hidden.new_zeros((), dtype=torch.float32)
        nll = hidden.new_zeros((), dtype=torch.float32)
        # float32 math whatever the autocast dtype of `hidden` (bf16/fp16 training).
        weight32, bias32 = weight.float(), bias.float()
        for start in range(0, hidden.shape[0], chunk):
            h = hidden[start : start + chunk].float()  # (n, H)
            y = target[start : start + chunk]  # (n,)
            logits = torch.addmm(bias32, h, weight32.t())  # (n, V)
            log_probs = F.log_softmax(logits.float(), dim=-1)  # (n, V)
            picked = -log_probs.gather(-1, y.unsqueeze(-1)).squeeze(-1)  # (n,)
            nll += picked.sum()
            loss += (1.0 - epsilon) * picked.sum() - epsilon / vocab * log_probs.sum()
            grad = log_probs.exp_()  # softmax, reusing the buffer: (n, V)
            grad.sub_(epsilon / vocab)
            grad.scatter_add_(-1, y.unsqueeze(-1), grad.new_full((len(y), 1), epsilon - 1.0))
            grad_hidden[start : start + chunk] = grad @ weight32
            grad_weight.addmm_(grad.t(), h)
            grad_bias += grad.sum(0)
        ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
        ctx.weight_dtype = weight.dtype
        return loss, nll

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad_loss: torch.Tensor, grad_nll: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        # Only the smoothed loss is differentiated; the nll is a reported figure.
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        grad_weight = (grad_weight * grad_loss).to(ctx.weight_dtype)
        grad_bias = (grad_bias * grad_loss).to(ctx.weight_dtype)
        return grad_hidden * grad_loss, grad_weight, grad_bias, None, None, None


def projected_label_smoothed_nll(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    target: torch.Tensor,
    epsilon: float,
    chunk: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`label_smoothed_nll(hidden @ weight.T + bias, target, epsilon)` without (N, V) in memory.

    Args:
        hidden: (N, H) decoder outputs of real target positions.
        weight: (V, H) output projection.
        bias: (V,) output bias.
        target: (N,) reference ids.
        epsilon: smoothing mass in [0, 1).
        chunk: rows projected at once.

    Returns:
        (smoothed loss sum, nll sum); only the first carries a gradient.
    """
    return _ProjectedNLL.apply(hidden, weight, bias, target, epsilon, chunk)
