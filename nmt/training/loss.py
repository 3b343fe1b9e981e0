"""Label-smoothed cross-entropy (Szegedy et al. 2016) fused with the output projection."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _chunked_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    target: torch.Tensor,
    epsilon: float,
    chunk: int,
    with_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...] | None]:
    """Return (smoothed loss sum, nll sum, gradients of the loss sum or None).

    With `with_grad`, the gradients are those of the smoothed loss sum with respect to
    (hidden, weight, bias), in float32 for weight and bias; without, no (n, V) gradient
    chunk nor gradient buffer is made.
    """
    vocab = weight.shape[0]
    grads = None
    if with_grad:
        grads = (
            torch.empty_like(hidden),  # (N, H)
            torch.zeros_like(weight, dtype=torch.float32),  # (V, H)
            torch.zeros_like(bias, dtype=torch.float32),  # (V,)
        )
    loss = hidden.new_zeros((), dtype=torch.float32)
    nll = hidden.new_zeros((), dtype=torch.float32)
    # The three matmuls in the GEMM dtype (see `_gemm_dtype`), softmax and loss in float32.
    dtype = _gemm_dtype(hidden)
    with torch.autocast(hidden.device.type, enabled=False):
        weight_g, bias_g = weight.to(dtype), bias.to(dtype)
        for start in range(0, hidden.shape[0], chunk):
            h = hidden[start : start + chunk].to(dtype)  # (n, H)
            y = target[start : start + chunk]  # (n,)
            logits = torch.addmm(bias_g, h, weight_g.t()).float()  # (n, V)
            log_probs = F.log_softmax(logits, dim=-1)  # (n, V)
            picked = -log_probs.gather(-1, y.unsqueeze(-1)).squeeze(-1)  # (n,)
            nll += picked.sum()
            loss += (1.0 - epsilon) * picked.sum() - epsilon / vocab * log_probs.sum()
            if grads is None:
                continue
            grad = log_probs.exp_()  # softmax, reusing the buffer: (n, V)
            grad.sub_(epsilon / vocab)
            grad.scatter_add_(-1, y.unsqueeze(-1), grad.new_full((len(y), 1), epsilon - 1.0))
            grads[2].add_(grad.sum(0))
            grad = grad.to(dtype)
            grads[0][start : start + chunk] = grad @ weight_g
            grads[1].add_(grad.t() @ h)
    return loss, nll, grads


def _gemm_dtype(hidden: torch.Tensor) -> torch.dtype:
    """bfloat16 under bf16 autocast (its matmuls are what bf16 training buys: on a CPU with
    AMX several times the float32 rate), else float32 - also under fp16 autocast, where the
    unscaled gradients made here could underflow."""
    device = hidden.device.type
    if torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == torch.bfloat16:
        return torch.bfloat16
    return torch.float32


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
        loss, nll, grads = _chunked_loss(hidden, weight, bias, target, epsilon, chunk, True)
        assert grads is not None
        ctx.save_for_backward(*grads)
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
    """Label-smoothed NLL of `hidden @ weight.T + bias` without (N, V) in memory.

    The smoothed loss of a row is (1 - eps) * nll + eps * mean_v(-log p_v): the target
    distribution puts 1 - eps on the reference and eps uniformly on the whole vocabulary.
    Callers pass only real (non-padding) rows and divide by their count. When nothing
    needs a gradient (validation under `torch.no_grad`, or inputs without `requires_grad`),
    only the loss is computed.

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
    if torch.is_grad_enabled() and any(t.requires_grad for t in (hidden, weight, bias)):
        return _ProjectedNLL.apply(hidden, weight, bias, target, epsilon, chunk)
    loss, nll, _ = _chunked_loss(hidden, weight, bias, target, epsilon, chunk, False)
    return loss, nll


def encoder_alignment_loss(
    src_out: torch.Tensor,
    src_mask: torch.Tensor,
    tgt_out: torch.Tensor,
    tgt_mask: torch.Tensor,
) -> torch.Tensor:
    """Mean over the batch of 1 - cos(pooled source encoding, pooled target encoding).

    The auxiliary loss of Arivazhagan et al. 2019 ("The Missing Ingredient in Zero-Shot
    NMT"): the encoder reads the target sentence too, and the two sentences' pooled encoder
    outputs are pulled together, so that sentences with one meaning are encoded alike
    whatever their language - what a zero-shot direction needs. A sentence is pooled by the
    mean of its encoder outputs over its real positions; the batch's mean pooled vector (over
    both sides) is subtracted before the cosine, so that a direction shared by every
    sentence (a bias) cannot make the loss small without aligning anything.

    Args:
        src_out: encoder outputs of the sources (B,S,D).
        src_mask: (B,S) bool, True on real source tokens.
        tgt_out: encoder outputs of the targets (B,T,D).
        tgt_mask: (B,T) bool, True on real target tokens.
    """
    pooled = []
    for out, mask in ((src_out, src_mask), (tgt_out, tgt_mask)):
        real = mask.unsqueeze(2).to(out.dtype)  # (B,L,1)
        pooled.append(((out * real).sum(1) / real.sum(1).clamp(min=1)).float())  # (B,D)
    center = torch.cat(pooled).mean(0)  # (D,)
    cosine = torch.nn.functional.cosine_similarity(pooled[0] - center, pooled[1] - center, dim=1)
    return (1.0 - cosine).mean()
