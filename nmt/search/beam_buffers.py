"""Buffers of the batched beam search and their bookkeeping (see `nmt.search.beam`).

Live hypotheses, finished pools and candidates are kept per sentence; each buffer selects its
own rows, so that the sentences that are done can leave the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from nmt.search.penalties import coverage_penalty, length_penalty


def sentence_rows(sentences: torch.Tensor, beam_size: int) -> torch.Tensor:
    """Return the (n*K,) flat rows of the K beams of each of the (n,) `sentences`."""
    offsets = torch.arange(beam_size, device=sentences.device)  # (K,)
    return (sentences.unsqueeze(1) * beam_size + offsets).view(-1)  # (n*K,)


def _per_sentence(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Pick x[b, idx[b, k]] for x (B, N, ...) and idx (B, K) -> (B, K, ...)."""
    batch = torch.arange(x.shape[0], device=x.device).unsqueeze(1)  # (B, 1)
    return x[batch, idx]


@dataclass
class Alive:
    """The K live hypotheses of every sentence.

    Attributes:
        log_probs: (B, K) cumulative log P of each hypothesis; -inf for empty slots.
        tokens: (B*K, T) tokens emitted so far (columns beyond the current step unused).
        attn_sum: (B*K, S) attention summed over the steps taken so far.
        attn: (B*K, T, S) attention history, only when it is returned.
    """

    log_probs: torch.Tensor
    tokens: torch.Tensor
    attn_sum: torch.Tensor
    attn: torch.Tensor | None

    @classmethod
    def start(
        cls,
        batch: int,
        beam_size: int,
        shape: tuple[int, int],
        return_attn: bool,
        device: torch.device,
    ) -> Alive:
        """Start with K copies of the empty hypothesis, of which only the first is live.

        The other copies get log P = -inf so that the first step does not fill the beam
        with K duplicates of the same extensions.

        Args:
            shape: (T, S), the most steps of any sentence and the source length.
        """
        max_steps, src_len = shape
        rows = batch * beam_size
        log_probs = torch.full((batch, beam_size), float("-inf"), device=device)  # (B, K)
        log_probs[:, 0] = 0.0
        attn = torch.zeros(rows, max_steps, src_len, device=device) if return_attn else None
        return cls(
            log_probs,
            torch.zeros(rows, max_steps, dtype=torch.long, device=device),
            torch.zeros(rows, src_len, device=device),
            attn,
        )

    def record_attn(self, attn: torch.Tensor, step: int) -> Alive:
        """Add this step's attention (B*K, S) to every hypothesis' sum and history."""
        if self.attn is not None:
            self.attn[:, step - 1] = attn
        return replace(self, attn_sum=self.attn_sum + attn)

    def select(self, rows: torch.Tensor) -> Alive:
        """Keep the hypotheses of `rows` (n*K,), whole sentences of K beams each."""
        beam_size = self.log_probs.shape[1]
        log_probs = self.log_probs.view(-1)[rows].view(-1, beam_size)  # (n, K)
        attn = None if self.attn is None else self.attn[rows]
        return Alive(log_probs, self.tokens[rows], self.attn_sum[rows], attn)


@dataclass
class Pool:
    """The K best finished hypotheses of every sentence, sorted by GNMT score.

    Attributes:
        scores: (B, K) final scores; -inf for empty slots.
        tokens: (B, K, T) output tokens (eos excluded by `lengths`).
        lengths: (B, K) number of output tokens.
        attn: (B, K, T, S) attention history, only when it is returned.
        count: (B,) how many hypotheses of the sentence have finished so far.
    """

    scores: torch.Tensor
    tokens: torch.Tensor
    lengths: torch.Tensor
    attn: torch.Tensor | None
    count: torch.Tensor

    @classmethod
    def empty(
        cls,
        batch: int,
        beam_size: int,
        shape: tuple[int, int],
        return_attn: bool,
        device: torch.device,
    ) -> Pool:
        """Create an empty pool of K finished slots per sentence; `shape` is (T, S)."""
        max_steps, src_len = shape
        return cls(
            torch.full((batch, beam_size), float("-inf"), device=device),
            torch.zeros(batch, beam_size, max_steps, dtype=torch.long, device=device),
            torch.zeros(batch, beam_size, dtype=torch.long, device=device),
            torch.zeros(batch, beam_size, max_steps, src_len, device=device)
            if return_attn
            else None,
            torch.zeros(batch, dtype=torch.long, device=device),
        )

    def merge(self, finished: Pool) -> Pool:
        """Keep the K best of this pool and `finished` (B, N) per sentence; the counts add up."""
        beam_size = self.scores.shape[1]
        best, keep = torch.cat([self.scores, finished.scores], dim=1).topk(beam_size, dim=1)
        attn = None
        if self.attn is not None and finished.attn is not None:
            attn = _per_sentence(torch.cat([self.attn, finished.attn], dim=1), keep)
        return Pool(
            best,  # (B, K)
            _per_sentence(torch.cat([self.tokens, finished.tokens], dim=1), keep),  # (B, K, T)
            _per_sentence(torch.cat([self.lengths, finished.lengths], dim=1), keep),  # (B, K)
            attn,  # (B, K, T, S)
            self.count + finished.count,
        )

    def select(self, sentences: torch.Tensor) -> Pool:
        """Keep the pools of `sentences` ((n,) indices or (B,) bool)."""
        return Pool(
            self.scores[sentences],
            self.tokens[sentences],
            self.lengths[sentences],
            None if self.attn is None else self.attn[sentences],
            self.count[sentences],
        )

    def put(self, sentences: torch.Tensor, pool: Pool) -> None:
        """Write `pool`'s n sentences into the rows `sentences` (n,) of this pool, in place."""
        self.scores[sentences] = pool.scores
        self.tokens[sentences] = pool.tokens
        self.lengths[sentences] = pool.lengths
        self.count[sentences] = pool.count
        if self.attn is not None and pool.attn is not None:
            self.attn[sentences] = pool.attn


@dataclass
class Candidates:
    """The 2K best one-token extensions of every sentence, sorted by log P.

    Attributes:
        log_probs: (B, 2K) cumulative log P of the extension.
        parents: (B, 2K) flat row (in B*K) of the hypothesis being extended.
        tokens: (B, 2K) the appended token.
    """

    log_probs: torch.Tensor
    parents: torch.Tensor
    tokens: torch.Tensor


@dataclass(frozen=True)
class Scorer:
    """GNMT score s(Y, X) = log P(Y|X) / lp(Y) + cp(X; Y) of finished hypotheses."""

    len_alpha: float
    cov_beta: float
    src_mask: torch.Tensor  # (B, S), True at real source positions

    def __call__(
        self, log_probs: torch.Tensor, lengths: torch.Tensor, attn_sum: torch.Tensor
    ) -> torch.Tensor:
        """Score (B, N) hypotheses of lengths (B, N) with attention sums (B, N, S)."""
        coverage = coverage_penalty(attn_sum, self.src_mask.unsqueeze(1), self.cov_beta)
        return log_probs / length_penalty(lengths, self.len_alpha) + coverage

    def select(self, sentences: torch.Tensor) -> Scorer:
        """The scorer of `sentences` (n,) only."""
        return replace(self, src_mask=self.src_mask[sentences])


@dataclass(frozen=True)
class Active:
    """The sentences still being searched (B' of the B inputs).

    Attributes:
        orig: (B',) index of each active sentence in the input batch.
        max_lens: (B',) their step limits.
        scorer: the GNMT scorer restricted to their source masks.
    """

    orig: torch.Tensor
    max_lens: torch.Tensor
    scorer: Scorer

    def select(self, sentences: torch.Tensor) -> Active:
        """Keep the active sentences `sentences` (n,), indices among these B'."""
        return Active(self.orig[sentences], self.max_lens[sentences], self.scorer.select(sentences))
