"""Normalized Bahdanau (additive) attention, as in GNMT v2.

score(q, k_s) = g · (v / ‖v‖) · tanh(W_q q + W_k k_s + b)          (normalize=True)
score(q, k_s) = v · tanh(W_q q + W_k k_s)                           (normalize=False)

Bahdanau et al. 2015 eq. 6 with `v` reparametrised by weight normalisation (Salimans & Kingma
2016): the direction v/‖v‖ and the scale g (initialised to 1/sqrt(A)) are learned separately, as in
NVIDIA's GNMT v2. `W_k k + b` does not depend on the query, so `project_keys` computes it once per
batch and every decoding step reuses it.

The (B,T,S,A) tanh is the largest elementwise work, at a decoding step (T = 1) and more so in
training, where autograd would also keep it for the backward pass. With `chunk_bytes` set it is
computed a block at a time in one buffer that stays in the CPU's cache: the scores are the same
numbers as the one-pass computation's, and in training the backward pass recomputes each
block's tanh instead of keeping (B,T,S,A) activations (the gradients are equal up to the order
of summation).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn


class BahdanauAttention(nn.Module):
    """Additive attention over the encoder outputs with padding masked out.

    Args:
        query_size: Decoder hidden size of the query.
        key_size: Encoder output size of the keys.
        hidden_size: Scoring dimension A (`model.attention.hidden_size`).
        normalize: Use the weight-normalised score (`model.attention.normalize`).

    Attributes:
        chunk_bytes: size of the block of (rows, steps, S, A) scoring activations computed at
            a time, or None for one pass (`Translator` sets it from `attention_chunk_kib`,
            training from `optim.attention_chunk_kib`, both on the CPU only).
    """

    chunk_bytes: int | None = None

    def __init__(self, query_size: int, key_size: int, hidden_size: int, normalize: bool) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.normalize = normalize
        self.query_proj = nn.Linear(query_size, hidden_size, bias=False)
        self.key_proj = nn.Linear(key_size, hidden_size, bias=False)
        bound = 1.0 / math.sqrt(hidden_size)
        self.v = nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound))
        if normalize:
            self.scale = nn.Parameter(torch.empty(()))
            self.bias = nn.Parameter(torch.empty(hidden_size))
            self.reset_normalization()
        else:
            self.register_parameter("scale", None)
            self.register_parameter("bias", None)

    def reset_normalization(self) -> None:
        """Set g = 1/sqrt(A) and b = 0 (their GNMT v2 initial values); no-op without normalize."""
        if self.normalize:
            with torch.no_grad():
                self.scale.fill_(1.0 / math.sqrt(self.hidden_size))
                self.bias.zero_()

    def project_keys(self, enc_out: Tensor) -> Tensor:
        """Project the encoder outputs once per batch.

        Args:
            enc_out: Encoder outputs (B,S,D).

        Returns:
            Keys `W_k enc_out + b` (B,S,A).
        """
        keys = self.key_proj(enc_out)
        return keys + self.bias if self.normalize else keys

    def forward(
        self, query: Tensor, keys: Tensor, values: Tensor, src_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Attend from one query per sequence, or from T queries at once.

        Args:
            query: Decoder states (B,H) for one step or (B,T,H) for all steps.
            keys: Output of `project_keys` (B,S,A).
            values: Encoder outputs (B,S,D).
            src_mask: (B,S) bool, True on real source tokens.

        Returns:
            context (B,D) or (B,T,D), and attention weights (B,S) or (B,T,S); the weights are 0
            on padding and sum to 1 over S.
        """
        single_step = query.dim() == 2
        if single_step:
            query = query.unsqueeze(1)  # (B,1,H)
        q = self.query_proj(query)  # (B,T,A)
        vector = self._score_vector()
        if self.chunk_bytes is None:
            hidden = torch.tanh(q.unsqueeze(2) + keys.unsqueeze(1))  # (B,T,S,A)
            scores = hidden @ vector  # (B,T,S)
        elif torch.is_grad_enabled():
            scores = _ChunkedScores.apply(q, keys, vector, self.chunk_bytes)
        else:
            scores = chunked_scores(q, keys, vector, self.chunk_bytes)
        # finfo.min, not -inf: exp still gives exactly 0, and an all-padding row gives no NaN.
        scores = scores.masked_fill(~src_mask.unsqueeze(1), torch.finfo(scores.dtype).min)
        attn = torch.softmax(scores, dim=-1)  # (B,T,S)
        context = torch.bmm(attn, values)  # (B,T,D)
        if single_step:
            return context.squeeze(1), attn.squeeze(1)
        return context, attn

    def _score_vector(self) -> Tensor:
        """Return g · v/‖v‖ with normalize, else v; shape (A,)."""
        if self.normalize:
            return self.v * (self.scale / self.v.norm())
        return self.v


def chunked_scores(q: Tensor, keys: Tensor, vector: Tensor, chunk_bytes: int) -> Tensor:
    """Scores `vector · tanh(q[b,t] + keys[b,s])` (B,T,S) for q (B,T,A), keys (B,S,A), vector
    (A,), computed a block of at most `chunk_bytes` of (rows, steps, S, A) at a time (see
    `_blocks`), in the promoted dtype of q and keys, without autocast."""
    with torch.autocast(q.device.type, enabled=False):
        q, keys, vector = _common_dtype(q, keys, vector)
        scores = q.new_empty(q.shape[0], q.shape[1], keys.shape[1])
        for rows, steps, hidden in _tanh_blocks(q, keys, chunk_bytes):
            torch.matmul(hidden, vector, out=scores[rows, steps])
        return scores


class _ChunkedScores(torch.autograd.Function):
    """`chunked_scores` with a backward pass that recomputes each block's tanh.

    Only q, keys and the vector are kept for the backward pass, not the (B,T,S,A) tanh.
    """

    @staticmethod
    def forward(ctx: Any, q: Tensor, keys: Tensor, vector: Tensor, chunk_bytes: int) -> Tensor:
        ctx.save_for_backward(q, keys, vector)
        ctx.chunk_bytes = chunk_bytes
        return chunked_scores(q, keys, vector, chunk_bytes)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        saved = ctx.saved_tensors
        with torch.autocast(grad.device.type, enabled=False):
            q, keys, vector = _common_dtype(*saved)
            grad = grad.to(q.dtype)
            grad_q = torch.empty_like(q)  # every (b, t) is one block's
            grad_keys = torch.zeros_like(keys)  # summed over the blocks of each row
            grad_vector = torch.zeros_like(vector)
            size = vector.shape[0]
            for rows, steps, hidden in _tanh_blocks(q, keys, ctx.chunk_bytes):
                upstream = grad[rows, steps]  # (r,t,S)
                grad_vector += upstream.reshape(1, -1).mm(hidden.reshape(-1, size)).squeeze(0)
                # d score / d (q + k) = vector * (1 - tanh^2), times the upstream gradient
                hidden.square_().neg_().add_(1).mul_(upstream.unsqueeze(-1)).mul_(vector)
                torch.sum(hidden, 2, out=grad_q[rows, steps])
                grad_keys[rows] += hidden.sum(1)
        return (
            grad_q.to(saved[0].dtype),
            grad_keys.to(saved[1].dtype),
            grad_vector.to(saved[2].dtype),
            None,
        )


def _common_dtype(q: Tensor, keys: Tensor, vector: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """q, keys and vector in the promoted dtype of q and keys (fp32 ones unchanged)."""
    dtype = torch.promote_types(q.dtype, keys.dtype)
    return q.to(dtype), keys.to(dtype), vector.to(dtype)


def _blocks(shape: tuple[int, int, int, int], itemsize: int, chunk_bytes: int) -> tuple[int, int]:
    """(rows, steps) of a block of a (B,T,S,A) scoring tensor of at most `chunk_bytes`: as many
    whole rows of T steps as fit, else as many steps of one row as fit (at least one)."""
    batch, steps, src_len, size = shape
    per_step = src_len * size * itemsize
    rows = chunk_bytes // (steps * per_step)
    if rows >= 1:
        return min(rows, batch), steps
    return 1, max(1, min(chunk_bytes // per_step, steps))


def _tanh_blocks(
    q: Tensor, keys: Tensor, chunk_bytes: int
) -> Iterator[tuple[slice, slice, Tensor]]:
    """Yield (rows, steps, tanh(q[rows, steps] + keys[rows])) block by block, each (r,t,S,A)
    block written into the same buffer (it is overwritten by the next one)."""
    batch, steps, size = q.shape
    src_len = keys.shape[1]
    block_rows, block_steps = _blocks((batch, steps, src_len, size), q.element_size(), chunk_bytes)
    buffer = q.new_empty(block_rows * block_steps * src_len * size)
    for row in range(0, batch, block_rows):
        rows = slice(row, min(row + block_rows, batch))
        for step in range(0, steps, block_steps):
            span = slice(step, min(step + block_steps, steps))
            shape = (rows.stop - rows.start, span.stop - span.start, src_len, size)
            hidden = buffer[: math.prod(shape)].view(shape)
            torch.add(q[rows, span].unsqueeze(2), keys[rows].unsqueeze(1), out=hidden)
            yield rows, span, hidden.tanh_()
