"""Fake models following `nmt.search.StepModel`, for the search tests.

Every row's next-token distribution and attention are a pure function of the row's
source sentence (its real tokens) and the target prefix emitted so far, so the tests
can recompute them independently of the search and sentences are independent in a batch.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

PAD, UNK, BOS, EOS = 0, 1, 2, 3

Prefix = tuple[int, ...]
Source = tuple[int, ...]


@dataclass(frozen=True)
class FakeState:
    """Per row: which source sentence it decodes and the tokens fed so far (bos first)."""

    sources: tuple[Source, ...]
    fed: tuple[Prefix, ...]
    src_len: int

    def index_select(self, idx: torch.Tensor) -> FakeState:
        rows = idx.tolist()
        return FakeState(
            tuple(self.sources[r] for r in rows), tuple(self.fed[r] for r in rows), self.src_len
        )

    def reorder_beams(self, idx: torch.Tensor) -> FakeState:
        rows = idx.tolist()
        assert all(self.sources[r] == self.sources[n] for n, r in enumerate(rows)), (
            "beam search reordered across sentences"
        )
        return self.index_select(idx)


Distribution = Callable[[Source, Prefix], tuple[list[float], list[float]]]


class FakeModel:
    """Decode with `distribution(source, prefix) -> (V log-probs, len(source) attention)`.

    Counts its `step()` calls in `steps` and records the rows of each call in `rows`.
    """

    def __init__(self, vocab_size: int, distribution: Distribution) -> None:
        self.vocab_size = vocab_size
        self.distribution = distribution
        self.steps = 0
        self.rows: list[int] = []

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> FakeState:
        sources = tuple(
            tuple(row[:n]) for row, n in zip(src.tolist(), src_lengths.tolist(), strict=True)
        )
        return FakeState(sources, tuple(() for _ in sources), src.shape[1])

    def init_state(self, enc: FakeState) -> FakeState:
        return enc

    def step(
        self, prev_tokens: torch.Tensor, state: FakeState
    ) -> tuple[torch.Tensor, torch.Tensor, FakeState]:
        self.steps += 1
        self.rows.append(len(prev_tokens))
        fed = tuple(p + (t,) for p, t in zip(state.fed, prev_tokens.tolist(), strict=True))
        log_probs = torch.empty(len(fed), self.vocab_size)  # (N, V)
        attn = torch.zeros(len(fed), state.src_len)  # (N, S), 0 on padding
        for row, (source, prefix) in enumerate(zip(state.sources, fed, strict=True)):
            row_log_probs, row_attn = self.distribution(source, prefix[1:])
            log_probs[row] = torch.tensor(row_log_probs)
            attn[row, : len(source)] = torch.tensor(row_attn)
        return log_probs, attn, FakeState(state.sources, fed, state.src_len)


def scripted_model(
    vocab_size: int,
    probs: dict[tuple[Source, Prefix], dict[int, float]],
    attn: dict[tuple[Source, Prefix], list[float]] | None = None,
) -> FakeModel:
    """Build a model whose probabilities and attention are written by hand per (source, prefix).

    Tokens missing from a table row have probability 0 (log-prob -inf); a prefix missing
    from `probs` gives a uniform distribution, one missing from `attn` uniform attention.
    """
    attn = attn or {}

    def distribution(source: Source, prefix: Prefix) -> tuple[list[float], list[float]]:
        row_attn = attn.get((source, prefix), [1.0 / len(source)] * len(source))
        table = probs.get((source, prefix), dict.fromkeys(range(vocab_size), 1.0 / vocab_size))
        log_probs = [math.log(table[t]) if t in table else -math.inf for t in range(vocab_size)]
        return log_probs, row_attn

    return FakeModel(vocab_size, distribution)


def hash_model(vocab_size: int, seed: int = 0, eos_bias: float = 0.0) -> FakeModel:
    """Build a deterministic pseudo-random model: logits seeded by a hash of (source, prefix).

    The step depends on the whole prefix, like an RNN, so greedy and beam search can
    disagree and brute force is the only easy reference. `eos_bias` is added to the eos
    logit so that hypotheses end at various lengths.
    """

    def distribution(source: Source, prefix: Prefix) -> tuple[list[float], list[float]]:
        key = ",".join(map(str, (seed, *source, -1, *prefix))).encode()
        gen = torch.Generator().manual_seed(zlib.crc32(key))
        logits = 2.0 * torch.randn(vocab_size, generator=gen, dtype=torch.float64)  # (V,)
        logits[EOS] += eos_bias
        scores = torch.randn(len(source), generator=gen, dtype=torch.float64)  # (S_i,)
        return torch.log_softmax(logits, dim=0).tolist(), torch.softmax(scores, dim=0).tolist()

    return FakeModel(vocab_size, distribution)


def pad_batch(sources: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad source sentences: returns src (B, S) and src_lengths (B,)."""
    width = max(len(s) for s in sources)
    src = torch.full((len(sources), width), PAD, dtype=torch.long)
    for row, tokens in enumerate(sources):
        src[row, : len(tokens)] = torch.tensor(tokens)
    return src, torch.tensor([len(s) for s in sources])
