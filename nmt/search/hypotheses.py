"""Search output: the n-best list of each input sentence."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Hypothesis:
    """One candidate translation.

    Attributes:
        tokens: target token ids, without bos and eos.
        score: the search's ranking score (log P for greedy, GNMT score for beam).
        attn: (len(tokens), S_i) attention of each output token over the sentence's
            S_i real source positions, when requested; None otherwise.
    """

    tokens: list[int]
    score: float
    attn: torch.Tensor | None = None


@dataclass(frozen=True)
class Hypotheses:
    """Candidates of a batch: `nbest[b]` lists sentence b's hypotheses, best first."""

    nbest: list[list[Hypothesis]]

    def __len__(self) -> int:
        return len(self.nbest)

    def best_tokens(self) -> list[list[int]]:
        """Return the token ids of the top hypothesis of each sentence ([] if it has none)."""
        return [cands[0].tokens if cands else [] for cands in self.nbest]


def collect_hypotheses(
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    scores: torch.Tensor,
    valid: torch.Tensor,
    src_lengths: torch.Tensor,
    attn: torch.Tensor | None = None,
) -> Hypotheses:
    """Convert padded search buffers of N candidates per sentence into `Hypotheses`.

    Candidates keep their order along N (the caller sorts them); invalid ones are skipped.

    Args:
        tokens: (B, N, T) token ids; only the first `lengths` are meaningful.
        lengths: (B, N) number of output tokens of each candidate.
        scores: (B, N) candidate scores.
        valid: (B, N) True for candidates to keep.
        src_lengths: (B,) real source lengths, used to trim attention columns.
        attn: (B, N, T, S) attention history, or None.

    Returns:
        The n-best lists, on the CPU.
    """
    tokens_list = tokens.tolist()
    lengths_list = lengths.tolist()
    scores_list = scores.tolist()
    valid_list = valid.tolist()
    src_list = src_lengths.tolist()
    attn_cpu = attn.cpu() if attn is not None else None
    nbest: list[list[Hypothesis]] = []
    for b, src_len in enumerate(src_list):
        cands = []
        for n, length in enumerate(lengths_list[b]):
            if not valid_list[b][n]:
                continue
            rows = None if attn_cpu is None else attn_cpu[b, n, :length, :src_len].clone()
            cands.append(Hypothesis(tokens_list[b][n][:length], scores_list[b][n], rows))
        nbest.append(cands)
    return Hypotheses(nbest)
