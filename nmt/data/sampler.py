"""Token-budget, length-bucketed batch sampler with per-epoch shuffling, DDP sharding and resume."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nmt.data.mixing import EpochDraw
from nmt.data.permutation import permute
from nmt.data.widths import add_counts, index_dtype

# Examples per block when scanning the widths, to bound temporary memory.
_BLOCK = 1 << 18


class TokenBudgetBatchSampler:
    """Yield lists of example positions whose padded size stays within a token budget.

    An example's width is max(source length, target length + 1) (bos/eos add one to the
    target), and the padded size of a batch is B * its largest width: the larger of the
    padded source tensor (B, S) and the padded target tensors (B, T). An example whose width
    alone exceeds the budget forms a batch of its own.

    Batching: examples are sorted by width and cut greedily into batches. The cut points
    depend only on the sorted widths, so every epoch has the same number of batches (Lightning
    fixes the epoch length when the loader is built, and DDP ranks must agree on it).
    Shuffling (`shuffle=True`): examples of equal width are ordered randomly and the order of
    the batches is shuffled, both drawn from (seed, epoch). Without shuffling, ties keep their
    position order and batches come shortest first.

    Memory: a few bytes per batch, and no per-example array of its own when the widths come
    sorted (`ParallelDataset.kept_by_width`); otherwise one int32 order. Equal-width examples
    are shuffled by a keyed permutation (`nmt.data.permutation.permute`) evaluated for each
    batch as it is served, not by shuffling an order array.

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
        widths: np.ndarray,
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
            widths: (N,) padded width of each example (see above; `ParallelDataset.widths`).
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
        self._widths = np.asarray(widths)
        self._draw = None
        # Examples by width (ties by position): None when the positions already are.
        self._sorted: np.ndarray | None = None
        if epoch_counts is not None:
            self._draw = EpochDraw(corpus_ids, self._widths, epoch_counts)
            run_widths, run_counts = _width_counts(self._draw.sorted_widths)
        else:
            run_widths, run_counts = _width_counts(self._widths)
            if not _ascending(self._widths):
                order = np.argsort(self._widths, kind="stable")
                self._sorted = order.astype(index_dtype(len(widths)))
        # Runs of equal width in the sorted order, and the batch cut points (batch k holds
        # sorted places bounds[k]:bounds[k + 1]): fixed for all epochs.
        self._run_starts = np.cumsum(run_counts) - run_counts
        self._run_counts = run_counts
        self._bounds = _cut_points(run_widths, run_counts, max_tokens)
        self.max_tokens = max_tokens
        self.seed = seed
        self.shuffle = shuffle
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.position = 0
        self._batches: np.ndarray | None = None  # this rank's batch numbers in the epoch
        self._order: np.ndarray | None = None  # the epoch's examples by width (None: positions)
        self._run_keys = np.zeros(0, dtype=np.uint64)

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
            batch = self._batch(int(batches[self.position]))
            self.position = (self.position + 1) % len(batches)
            yield batch.tolist()
            if self.position == 0:
                return
        self.position = 0  # restored at the end of the epoch: nothing is left of it

    def _rank_batches(self) -> np.ndarray:
        """This rank's share of the epoch's batch numbers, drawn once per epoch."""
        if self._batches is None:
            count = len(self._bounds) - 1
            batches = np.arange(count)
            if self.shuffle:
                batches = np.random.default_rng([self.seed, self.epoch]).permutation(count)
                runs = len(self._run_counts)
                self._run_keys = np.random.default_rng([self.seed, self.epoch, 1]).integers(
                    0, 2**64, size=runs, dtype=np.uint64
                )
            padding = -count % self.num_replicas if count else 0
            batches = np.concatenate([batches, batches[np.arange(padding) % max(count, 1)]])
            self._order = self._epoch_order()
            self._batches = batches[self.rank :: self.num_replicas]
        return self._batches

    def _batch(self, number: int) -> np.ndarray:
        """The example positions of batch `number` of the epoch."""
        places = np.arange(self._bounds[number], self._bounds[number + 1])
        if self.shuffle:  # each run of equal widths in its own order for this epoch
            run = np.searchsorted(self._run_starts, places, side="right") - 1
            start = self._run_starts[run]
            places = start + permute(places - start, self._run_counts[run], self._run_keys[run])
        return places if self._order is None else self._order[places]

    def _epoch_order(self) -> np.ndarray | None:
        """The epoch's examples sorted by width (ties by position); None: the positions are."""
        if self._draw is None:
            return self._sorted
        chosen = self._draw.positions(self.seed, self.epoch)
        order = chosen[np.argsort(self._widths[chosen], kind="stable")].astype(np.int32)
        assert np.array_equal(self._widths[order], self._draw.sorted_widths)
        return order


def _ascending(widths: np.ndarray) -> bool:
    """Whether `widths` never decreases (checked a block at a time)."""
    for begin in range(0, len(widths), _BLOCK):
        block = widths[begin : begin + _BLOCK + 1]
        if (block[1:] < block[:-1]).any():
            return False
    return True


def _width_counts(widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct widths, ascending, and how many examples have each (block by block)."""
    counts = np.zeros(0, dtype=np.int64)
    for begin in range(0, len(widths), _BLOCK):
        counts = add_counts(counts, widths[begin : begin + _BLOCK])
    present = np.flatnonzero(counts)
    return present, counts[present]


def _cut_points(widths: np.ndarray, counts: np.ndarray, max_tokens: int) -> np.ndarray:
    """Where to cut the examples, sorted by width, into batches within the budget.

    With ascending widths, batch [i, j) has padded size (j - i) * width[j - 1], which grows
    with j, so each batch takes the longest prefix that fits (at least one example). The
    sorted widths are given as runs: `counts[k]` examples of width `widths[k]`.

    Args:
        widths: (K,) distinct widths, ascending.
        counts: (K,) examples of each.
        max_tokens: the budget.

    Returns:
        (batches + 1,) batch boundaries in the sorted order: 0, ..., number of examples.
    """
    ends = np.cumsum(counts).tolist()
    sizes = [int(w) for w in widths]
    bounds, start, run = [0], 0, 0
    while start < (ends[-1] if ends else 0):
        while ends[run] <= start:
            run += 1
        stop = start + 1
        for k in range(run, len(sizes)):
            # The batch may end anywhere in run k (its widest example then has width k's).
            last = min(ends[k], start + max_tokens // sizes[k])
            if last <= max(start, ends[k - 1] if k > run else start):
                break
            stop = last
            if last < ends[k]:
                break
        bounds.append(stop)
        start = stop
    return np.asarray(bounds, dtype=np.int64)
