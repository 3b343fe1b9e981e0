"""Token-budget, length-bucketed batch sampler with per-epoch shuffling, DDP sharding and resume."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nmt.data.mixing import EpochDraw


class TokenBudgetBatchSampler:
    """Yield lists of example positions whose padded size stays within a token budget.

    The padded size of a batch is B * max_i(max(src_len_i, tgt_len_i + 1)): the larger of the
    padded source tensor (B, S) and the padded target tensors (B, T) (bos/eos add one).
    An example whose size alone exceeds the budget forms a batch of its own.

    Batching: examples are sorted by that width and cut greedily into batches. The cut points
    depend only on the sorted widths, so every epoch has the same number of batches (Lightning
    fixes the epoch length when the loader is built, and DDP ranks must agree on it).
    Shuffling (`shuffle=True`): examples of equal width are ordered randomly and the order of
    the batches is shuffled, both drawn from (seed, epoch). Without shuffling, ties keep their
    position order and batches come shortest first.

    Several corpora (`nmt.data.mixing`): with `corpus_ids` and `epoch_counts`, each epoch
    batches the examples `EpochDraw` picks for it from (seed, epoch) instead of every example
    once; the draw keeps the same sorted widths every epoch, so the cut points stay fixed.

    Sharding: rank r takes batches r, r + R, r + 2R, ... of the epoch. When the batch count is
    not a multiple of R, batches from the start of the epoch's order are repeated until it is,
    so every rank gets the same number of batches (DDP needs that) and none is dropped.

    Resume: `position` counts the batches this rank has taken in the current epoch;
    `state_dict()`/`load_state_dict()` save and restore it with the epoch and seed, and the
    next iteration starts at that position.
    """

    def __init__(
        self,
        src_lengths: np.ndarray,
        tgt_lengths: np.ndarray,
        max_tokens: int,
        *,
        seed: int,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        corpus_ids: np.ndarray | None = None,
        epoch_counts: list[int] | None = None,
    ):
        """Set up the sampler for epoch 0.

        Args:
            src_lengths: (N,) source lengths in pieces.
            tgt_lengths: (N,) target lengths in pieces (without bos/eos).
            max_tokens: token budget per batch, counted as padded size.
            seed: shuffling seed; the order depends only on (seed, epoch).
            shuffle: shuffle per epoch (training) or keep a fixed length order (inference).
            num_replicas: number of DDP ranks sharing the batches.
            rank: this process's rank in [0, num_replicas).
            corpus_ids: (N,) corpus of each example, with `epoch_counts`.
            epoch_counts: examples of each corpus per epoch; None: every example once.
        """
        if max_tokens < 1:
            raise ValueError(f"batch_tokens must be positive, got {max_tokens}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, num_replicas={num_replicas})")
        if len(src_lengths) != len(tgt_lengths):
            raise ValueError("src_lengths and tgt_lengths differ in length")
        # Per-example padded width: the target gets bos (tgt_in) or eos (tgt_out).
        self._sizes = np.maximum(
            np.asarray(src_lengths, dtype=np.int32), np.asarray(tgt_lengths, dtype=np.int32) + 1
        )
        self._draw = None
        if epoch_counts is not None:
            self._draw = EpochDraw(corpus_ids, self._sizes, epoch_counts)
        # Examples by width (ties by position), the start of each run of equal widths, and
        # the batch cut points: fixed for all epochs, so an epoch only reshuffles runs.
        self._sorted = np.argsort(self._sizes, kind="stable").astype(np.int32)
        sorted_sizes = self._sizes[self._sorted] if self._draw is None else self._draw.sorted_widths
        self._runs = np.flatnonzero(sorted_sizes[1:] != sorted_sizes[:-1]) + 1
        self._bounds = _cut_points(sorted_sizes, max_tokens)
        self.max_tokens = max_tokens
        self.seed = seed
        self.shuffle = shuffle
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.position = 0
        self._batches: list[np.ndarray] | None = None

    @property
    def sampler(self) -> TokenBudgetBatchSampler:
        """This sampler itself.

        Lightning calls `set_epoch` on `dataloader.sampler` and `dataloader.batch_sampler.sampler`
        (lightning_fabric.utilities.data._set_sampler_epoch), never on the batch sampler, so
        the batch sampler exposes itself there to receive the epoch.
        """
        return self

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order is produced; a new epoch starts at position 0."""
        if epoch != self.epoch:
            self.epoch = epoch
            self.position = 0
            self._batches = None

    def state_dict(self) -> dict[str, int]:
        """Return {"epoch", "position", "seed"}: enough to resume at the next batch."""
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume at `state["position"]` of `state["epoch"]` with `state["seed"]`."""
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self._batches = None

    def __len__(self) -> int:
        """Batches this rank gets in a whole epoch."""
        return len(self._rank_batches())

    def __iter__(self) -> Iterator[list[int]]:
        """Yield this rank's remaining batches of the epoch, advancing `position`.

        `position` returns to 0 as the last batch is handed out, so iterating again without
        `set_epoch` repeats the same epoch (as torch's DistributedSampler does), also when the
        consumer stops after `len(self)` batches without exhausting the generator (Lightning's
        validation loop does: a reset after the loop would never run, and every later pass
        would start at the end and yield nothing).
        """
        batches = self._rank_batches()
        while self.position < len(batches):
            batch = batches[self.position]
            self.position = (self.position + 1) % len(batches)
            yield batch.tolist()
            if self.position == 0:
                return
        self.position = 0  # restored at the end of the epoch: nothing is left of it

    def _rank_batches(self) -> list[np.ndarray]:
        """This rank's share of the epoch's batches, built once per epoch."""
        if self._batches is None:
            batches = self._epoch_batches()
            remainder = len(batches) % self.num_replicas
            if remainder:
                padding = self.num_replicas - remainder
                batches += [batches[i % len(batches)] for i in range(padding)]
            self._batches = batches[self.rank :: self.num_replicas]
        return self._batches

    def _epoch_batches(self) -> list[np.ndarray]:
        """All batches of the current epoch, in the order they are served."""
        order = self._epoch_order()
        if len(order) == 0:
            return []
        if not self.shuffle:
            return np.split(order, self._bounds)
        rng = np.random.default_rng([self.seed, self.epoch])
        for run in np.split(order, self._runs):  # views: shuffles equal widths in place
            rng.shuffle(run)
        batches = np.split(order, self._bounds)
        return [batches[i] for i in rng.permutation(len(batches))]

    def _epoch_order(self) -> np.ndarray:
        """The epoch's examples sorted by width (ties by position), before any shuffling."""
        if self._draw is None:
            return self._sorted.copy()
        chosen = self._draw.positions(self.seed, self.epoch)
        order = chosen[np.argsort(self._sizes[chosen], kind="stable")].astype(np.int32)
        assert np.array_equal(self._sizes[order], self._draw.sorted_widths)
        return order


def _cut_points(sizes: np.ndarray, max_tokens: int) -> list[int]:
    """Return where to cut examples sorted by ascending width into batches within the budget.

    With ascending widths, batch [i, j) has padded size (j - i) * sizes[j - 1], which grows
    with j, so each batch takes the longest prefix that fits (at least one example).

    Args:
        sizes: (N,) padded widths, ascending.
        max_tokens: the budget.

    Returns:
        Start positions of the batches after the first (for np.split).
    """
    starts: list[int] = []
    start = 0
    while start < len(sizes):
        # No batch starting here can hold more than max_tokens // sizes[start] examples.
        limit = max(1, max_tokens // max(int(sizes[start]), 1))
        window = sizes[start : start + limit]
        fits = np.arange(1, len(window) + 1) * window <= max_tokens
        start += max(1, int(fits.sum()))
        starts.append(start)
    return starts[:-1]
