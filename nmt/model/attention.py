"""Normalized Bahdanau (additive) attention, as in GNMT v2.

score(q, k_s) = g · (v / ‖v‖) · tanh(W_q q + W_k k_s + b)          (normalize=True)
score(q, k_s) = v · tanh(W_q q + W_k k_s)                           (normalize=False)

Bahdanau et al. 2015 eq. 6 with `v` reparametrised by weight normalisation (Salimans & Kingma
2016): the direction v/‖v‖ and the scale g (initialised to 1/sqrt(A)) are learned separately, as in
NVIDIA's GNMT v2. `W_k k + b` does not depend on the query, so `project_keys` computes it once per
batch and every decoding step reuses it.

At a decoding step (one query per row, no autograd) the (B,S,A) tanh is the largest
elementwise work; with `step_chunk_bytes` set, it is done a block of rows at a time in one
buffer that stays in the CPU's cache, with the same numbers as the one-pass computation.
"""

from __future__ import annotations

import math

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
        step_chunk_bytes: size of the block of (rows, S, A) scoring activations computed at
            a time at a decoding step, or None for one pass over all rows (`Translator`
            sets it from `attention_chunk_kib`).
    """

    step_chunk_bytes: int | None = None

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
        if self.step_chunk_bytes is not None and q.shape[1] == 1 and not torch.is_grad_enabled():
            scores = self._chunked_step_scores(q.squeeze(1), keys).unsqueeze(1)  # (B,1,S)
        else:
            hidden = torch.tanh(q.unsqueeze(2) + keys.unsqueeze(1))  # (B,T,S,A)
            scores = hidden @ self._score_vector()  # (B,T,S)
        # finfo.min, not -inf: exp still gives exactly 0, and an all-padding row gives no NaN.
        scores = scores.masked_fill(~src_mask.unsqueeze(1), torch.finfo(scores.dtype).min)
        attn = torch.softmax(scores, dim=-1)  # (B,T,S)
        context = torch.bmm(attn, values)  # (B,T,D)
        if single_step:
            return context.squeeze(1), attn.squeeze(1)
        return context, attn

    def _chunked_step_scores(self, q: Tensor, keys: Tensor) -> Tensor:
        """Scores (B,S) of one query per row, q (B,A), a block of rows at a time.

        Each block's `tanh(q + keys)` is written into one reused buffer of at most
        `step_chunk_bytes` (one row if a row is larger) and reduced with the score vector
        before the next block starts.
        """
        batch, src_len, size = keys.shape
        assert self.step_chunk_bytes is not None
        rows = max(1, self.step_chunk_bytes // (src_len * size * keys.element_size()))
        scores = keys.new_empty(batch, src_len)
        buffer = keys.new_empty(min(rows, batch), src_len, size)
        vector = self._score_vector()
        for start in range(0, batch, rows):
            stop = min(start + rows, batch)
            hidden = buffer[: stop - start]  # (rows,S,A)
            torch.add(q[start:stop].unsqueeze(1), keys[start:stop], out=hidden)
            hidden.tanh_()
            torch.matmul(hidden, vector, out=scores[start:stop])
        return scores

    def _score_vector(self) -> Tensor:
        """Return g · v/‖v‖ with normalize, else v; shape (A,)."""
        if self.normalize:
            return self.v * (self.scale / self.v.norm())
        return self.v
