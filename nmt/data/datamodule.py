"""TranslationDataModule: SentencePiece, binarized splits, token-budget loaders, sampler resume."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info
from torch.utils.data import DataLoader

from nmt.data.batch import Batch, collate
from nmt.data.binarize import BinarizedCorpus, binarize, spm_model_path
from nmt.data.clean import clean_pairs
from nmt.data.corpus import utf8_text
from nmt.data.data_config import DataConfig
from nmt.data.dataset import MixedDataset, ParallelDataset
from nmt.data.mixing import (
    corpus_shares,
    empty_but_drawn,
    epoch_counts,
    temperature_weights,
    write_combined,
)
from nmt.data.multilingual import lang_tag
from nmt.data.reader import TextSide, read_side, write_sample
from nmt.data.sampler import TokenBudgetBatchSampler
from nmt.data.shortlist import Shortlist, build_shortlist
from nmt.tokenizer import SpecialIds, SpmTokenizer


class TranslationDataModule(pl.LightningDataModule):
    """Owns the tokenizer(s), the binarized train/valid splits, the sampler and collate.

    After `setup()`: `src_tokenizer`, `tgt_tokenizer` (the same object when joint),
    `src_vocab_size`, `tgt_vocab_size`, `special_ids`, `valid_refs` and `valid_src_lines`
    (raw valid text, line i = example index i), `valid_segments` ((name, start, stop) line
    ranges of the valid set, one per corpus or direction it holds) and `corpus_shares` (per
    training corpus: pairs after filtering, examples per epoch). Validation batches are
    length-sorted, so consumers restore file order with `Batch.indices`.

    The Trainer must run with `use_distributed_sampler=False`: the training sampler shards
    batches across DDP ranks itself.

    Multilingual training (`nmt.data.multilingual`): the training files concatenate several
    directions, `groups` gives their pair counts in file order and `tgt_langs` their target
    languages, whose tags become SentencePiece symbols; `valid_groups` does the same for the
    valid files. Several corpora (`config.corpora`) are binarized one by one and mixed.
    A corpus side is a file or a TSV column (`nmt.data.reader.TextSide`): `train_sides` holds
    the (source, target) sides of each training corpus, `valid_sides` those of the valid set.
    Directions and corpora are drawn per epoch by weight (`nmt.data.mixing`): the weights
    of directions come from `temperature` over their sizes after filtering.
    """

    def __init__(
        self,
        config: DataConfig,
        seed: int = 1,
        groups: Sequence[int] | None = None,
        valid_groups: Sequence[int] | None = None,
    ) -> None:
        """Store the settings; nothing is read until `prepare_data`/`setup`.

        Args:
            config: the checked `data` settings; `src_lang`/`tgt_lang` travel into
                checkpoints, the target languages of `config.directions` become tags.
            seed: shuffling seed of the training batches.
            groups: the pair count of each direction of a multilingual corpus, in file order
                (see above); None for one pair.
            valid_groups: the same for the valid files of a multilingual corpus.
        """
        super().__init__()
        self.config = config
        corpora = config.corpora or []
        self.train_sides = [c.sides("train") for c in corpora] or [config.sides("train")]
        self.corpus_names = [str(c.name) for c in corpora] or [
            f"{d.src_lang}-{d.tgt_lang}" for d in config.directions or []
        ]
        self.work_dir = Path(config.work_dir)
        # Corpora with valid sets of their own: validated on the concatenation of those.
        self._valid_parts = [(*c.sides("valid"), str(c.name)) for c in corpora if c.has_valid]
        combined = self.work_dir / "valid"
        self.valid_sides = (
            (TextSide(combined / "valid.src"), TextSide(combined / "valid.tgt"))
            if self._valid_parts
            else config.sides("valid")
        )
        self._valid_groups = None if valid_groups is None else [int(n) for n in valid_groups]
        self._valid_sizes: list[int] | None = None  # of the corpora's valid sets, once written
        self.src_lang = config.src_lang
        self.tgt_lang = config.tgt_lang
        self.bin_dir = self.work_dir / "bin"
        self.tgt_langs = config.tgt_langs
        tags = [lang_tag(lang) for lang in self.tgt_langs]
        extra = config.spm.user_defined_symbols
        # The SentencePiece settings: the language tags first, then the configured symbols.
        self.spm_settings = {
            **config.spm.model_settings(),
            "user_defined_symbols": tags + [s for s in extra if s not in tags],
        }
        self.groups = None if groups is None else [int(n) for n in groups]
        self.seed = seed
        self.shortlist: Shortlist | None = None
        self._checked: dict[str, list[tuple[TextSide, TextSide]]] | None = None
        self._mix: tuple[np.ndarray, list[int]] | None = None  # (corpus ids, epoch counts)
        self.special_ids = SpecialIds()
        # Training batches consumed in the current epoch; saved in checkpoints.
        self._progress = {"epoch": 0, "position": 0, "seed": seed}
        self._resumed_digest: str | None = None  # `_batching_digest` of a resumed run

    def prepare_data(self) -> None:
        """Train SentencePiece if absent and binarize both splits (once, on rank 0)."""
        self._build()

    def setup(self, stage: str | None = None) -> None:
        """Load tokenizer(s) and datasets; print the filter report and corpus shares once."""
        if hasattr(self, "train_dataset"):
            return
        (self.src_tokenizer, self.tgt_tokenizer), corpora = self._build()
        self.src_vocab_size = self.src_tokenizer.vocab_size
        self.tgt_vocab_size = self.tgt_tokenizer.vocab_size
        train = list(zip(corpora["train"], self.train_sides, strict=True))
        parts = [self._filtered(corpus, sides[0]) for corpus, sides in train]
        self.train_dataset = parts[0] if len(parts) == 1 else MixedDataset(parts)
        self._mix = self._mixture(parts, corpora["train"][0].num_pairs)
        self._train_digest = self._batching_digest(parts)
        self.shortlist = self._shortlist(parts)
        self.valid_dataset = ParallelDataset(corpora["valid"])
        valid_src, valid_tgt = self._checked_sides()["valid"][0]
        self.valid_src_lines = read_side(valid_src)
        self.valid_refs = read_side(valid_tgt)
        self.valid_segments = self._segments(len(self.valid_refs))

    def _filtered(self, corpus: BinarizedCorpus, src: TextSide) -> ParallelDataset:
        """The pairs of one training corpus within the length limits and cleaned (`data.clean`),
        ordered by width (`ParallelDataset.kept_by_width`), with the report printed."""
        config = self.config
        dataset, report = ParallelDataset.kept_by_width(
            corpus, config.max_len, config.max_len_ratio
        )
        tokenizers = (self.src_tokenizer, self.tgt_tokenizer)
        dataset, report = clean_pairs(dataset, report, config.clean, tokenizers)
        rank_zero_info(f"train {src}: {report}")
        return dataset

    def _mixture(
        self, parts: list[ParallelDataset], num_lines: int
    ) -> tuple[np.ndarray, list[int]] | None:
        """Corpus of each example and examples per epoch; None when each is drawn once.

        Prints (and keeps in `corpus_shares`) every corpus's pairs and share of the epoch.
        """
        config = self.config
        if sum(map(len, parts)) == 0:
            raise ValueError(
                f"{self.train_sides[0][0]}: no training pairs left after filtering "
                f"(data.max_len={config.max_len}, data.max_len_ratio={config.max_len_ratio})"
            )
        corpus_ids = None  # of each example, only when the epochs are drawn
        if self.groups is not None:
            corpus_ids = self._direction_of(parts[0].line_numbers, num_lines)
            sizes = np.bincount(corpus_ids, minlength=len(self.corpus_names)).tolist()
        else:
            sizes = [len(part) for part in parts]
        if config.corpora:
            weights = [c.weight for c in config.corpora]
        else:
            weights = temperature_weights(sizes, config.temperature)
        counts = epoch_counts(sizes, weights)
        empty = empty_but_drawn(sizes, counts)
        if empty is not None:
            raise ValueError(
                f"data.corpora[{empty}] ({self.corpus_names[empty]}): no training pairs left "
                f"after filtering (data.max_len={config.max_len}, "
                f"data.max_len_ratio={config.max_len_ratio})"
            )
        names = self.corpus_names or [config.name]
        self.corpus_shares = corpus_shares(names, sizes, counts)
        for share in self.corpus_shares:
            rank_zero_info(
                f"corpus {share.name}: {share.pairs:,} pairs, {share.per_epoch:,} per epoch "
                f"({share.share:.1%})"
            )
        if counts == sizes:
            return None
        if corpus_ids is None:  # several corpora (one alone is drawn whole)
            corpus_ids = self.train_dataset.corpus_ids
        return corpus_ids, counts

    def _direction_of(self, line_numbers: np.ndarray, num_lines: int) -> np.ndarray:
        """The direction of each example of a multilingual corpus, from its line number."""
        assert self.groups is not None
        if sum(self.groups) != num_lines:
            raise ValueError(
                f"{self.train_sides[0][0]}: {num_lines} lines, but the directions hold "
                f"{sum(self.groups)} pairs (rebuild the multilingual corpus)"
            )
        return np.searchsorted(np.cumsum(self.groups), line_numbers, side="right")

    def _batching_digest(self, parts: list[ParallelDataset]) -> str:
        """A digest of what makes up the epochs' batches besides the seed: every training
        example's line and width, the examples per corpus per epoch and the token budget."""
        digest = hashlib.blake2b(digest_size=16)
        for part in parts:
            for array in (part.line_numbers, part.widths):
                digest.update(memoryview(np.ascontiguousarray(array)))
        counts = None if self._mix is None else self._mix[1]
        digest.update(repr((counts, self.config.batch_tokens)).encode())
        return digest.hexdigest()

    def _segments(self, num_lines: int) -> list[tuple[str, int, int]]:
        """(name, start, stop) of each corpus or direction in the valid set, else one range."""
        sizes = self._valid_sizes if self._valid_parts else self._valid_groups
        if sizes is None:
            return [(self.config.name, 0, num_lines)]
        names = [name for *_, name in self._valid_parts] or self.corpus_names
        stops = np.cumsum(sizes).tolist()
        return [
            (name, stop - size, stop) for name, size, stop in zip(names, sizes, stops, strict=True)
        ]

    def _shortlist(self, parts: list[ParallelDataset]) -> Shortlist | None:
        """The decoding shortlist of the first `max_pairs` training pairs, corpus after corpus
        in file order (None when not configured)."""
        settings = self.config.shortlist
        if settings is None:
            return None

        def pairs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            left = settings.max_pairs
            for part in parts:
                if left >= len(part):  # all of them: counts do not depend on the order
                    examples = map(part.__getitem__, range(len(part)))
                else:
                    examples = map(part.example, part.first_lines(left).tolist())
                left -= min(left, len(part))
                for example in examples:
                    yield example.src, example.tgt

        return build_shortlist(
            pairs(),
            self.src_vocab_size,
            self.tgt_vocab_size,
            per_source=settings.per_source,
            frequent=settings.frequent,
        )

    def train_dataloader(self) -> DataLoader:
        """Token-budget batches, shuffled per epoch, sharded over DDP ranks, resumable."""
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        if self._resumed_digest not in (None, self._train_digest):
            raise ValueError(
                "resume: the training batches differ from the checkpoint's (data.max_len, "
                "data.max_len_ratio, data.clean, data.batch_tokens, the corpus weights or the "
                "training files changed), so its position in the epoch would not continue it; "
                "resume with the data settings of the interrupted run"
            )
        corpus_ids, counts = self._mix or (None, None)
        sampler = TokenBudgetBatchSampler(
            self.train_dataset.widths,
            self.config.batch_tokens,
            seed=self.seed,
            num_replicas=world,
            rank=rank,
            corpus_ids=corpus_ids,
            epoch_counts=counts,
        )
        sampler.load_state_dict(self._progress)
        return self._loader(self.train_dataset, sampler)

    def val_dataloader(self) -> DataLoader:
        """Every valid pair (unfiltered, unsharded) in length-sorted batches."""
        sampler = TokenBudgetBatchSampler(
            self.valid_dataset.widths,
            self.config.valid_batch_tokens,
            seed=self.seed,
            shuffle=False,
        )
        return self._loader(self.valid_dataset, sampler)

    def on_before_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        """Count training batches as the loop consumes them.

        The sampler's own position runs ahead of training (DataLoader workers and
        Lightning's fetcher prefetch), so the resume position is counted here instead.
        """
        trainer = self.trainer
        if trainer is not None and trainer.training:
            if trainer.current_epoch != self._progress["epoch"]:
                self._progress = {"epoch": trainer.current_epoch, "position": 0, "seed": self.seed}
            self._progress["position"] += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        """Training sampler position and what it is a position in: {"train_sampler": {"epoch",
        "position", "seed"}, "batching": `_batching_digest`} (after `setup`)."""
        state: dict[str, Any] = {"train_sampler": dict(self._progress)}
        if hasattr(self, "_train_digest"):
            state["batching"] = self._train_digest
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume the training sampler at the saved epoch and position.

        The training loader then refuses to start (ValueError) when the saved batching digest
        differs from this run's: the position would silently skip or repeat examples.
        Checkpoints without a digest resume unchecked.
        """
        self._progress = {key: int(value) for key, value in state_dict["train_sampler"].items()}
        self._resumed_digest = state_dict.get("batching")

    def _loader(self, dataset: ParallelDataset, sampler: TokenBudgetBatchSampler) -> DataLoader:
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=functools.partial(collate, special_ids=self.special_ids),
            num_workers=self.config.num_workers,
            persistent_workers=self.config.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            # Its own generator: creating an iterator must not draw from the global RNG,
            # or a resumed run's dropout masks would shift by one draw.
            generator=torch.Generator().manual_seed(self.seed),
        )

    def _build(
        self,
    ) -> tuple[tuple[SpmTokenizer, SpmTokenizer], dict[str, Any]]:
        """Train/load the tokenizer(s), binarize every training corpus and the valid set.

        Returns:
            The tokenizers and {"train": [one per `train_sides`], "valid": corpus}; every
            array is cached by content hash.
        """
        tokenizers = self._tokenizers()
        sides = self._checked_sides()
        train = [binarize(src, tgt, *tokenizers, self.bin_dir) for src, tgt in sides["train"]]
        valid = binarize(*sides["valid"][0], *tokenizers, self.bin_dir)
        return tokenizers, {"train": train, "valid": valid}

    def _checked_sides(self) -> dict[str, list[tuple[TextSide, TextSide]]]:
        """The corpus sides after the UTF-8 check, before anything (SentencePiece) reads them.

        Each file is checked once (both columns of a TSV file then read the checked file).
        With on_invalid_utf8="replace", a file holding invalid bytes is replaced by a cleaned
        copy under `work_dir/utf8/`. Per-corpus valid sets are checked, then concatenated
        into `valid_sides`.
        """
        if self._checked is None:
            checked: dict[Path, Path] = {}

            def check(side: TextSide) -> TextSide:
                if side.path not in checked:
                    clean_dir, policy = self.work_dir / "utf8", self.config.on_invalid_utf8
                    checked[side.path] = utf8_text(side.path, policy, clean_dir)
                return TextSide(checked[side.path], side.column)

            if self._valid_parts:
                parts = [(check(src), check(tgt), None) for src, tgt, _ in self._valid_parts]
                out = (self.valid_sides[0].path, self.valid_sides[1].path)
                self._valid_sizes = write_combined(parts, out)
            sides = {"train": self.train_sides, "valid": [self.valid_sides]}
            self._checked = {
                split: [(check(src), check(tgt)) for src, tgt in pairs]
                for split, pairs in sides.items()
            }
        return self._checked

    def _tokenizers(self) -> tuple[SpmTokenizer, SpmTokenizer]:
        """One joint model on both training sides (of every corpus), or one model per side."""
        pairs = self._checked_sides()["train"]
        srcs, tgts = [src for src, _ in pairs], [tgt for _, tgt in pairs]
        if self.config.spm.joint:
            joint = self._tokenizer(srcs + tgts)
            return joint, joint
        return self._tokenizer(srcs), self._tokenizer(tgts)

    def _tokenizer(self, sides: list[TextSide]) -> SpmTokenizer:
        settings = self.spm_settings
        path = spm_model_path(self.work_dir, settings, sides)
        if path.is_file():
            return SpmTokenizer.load(path)
        rank_zero_info(f"training SentencePiece on {[str(side) for side in sides]} -> {path}")
        # Finite plain files of the (sampled) lines: SentencePiece reads nothing else.
        samples = [path.with_suffix(f".input{i}.txt") for i in range(len(sides))]
        try:
            write_sample(sides, samples, settings["input_sentence_size"], seed=0)
            return SpmTokenizer.train(samples, path, **settings, num_threads=os.cpu_count())
        finally:
            for sample in samples:
                sample.unlink(missing_ok=True)
