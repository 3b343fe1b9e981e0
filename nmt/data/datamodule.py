"""TranslationDataModule: SentencePiece, binarized splits, token-budget loaders, sampler resume."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info
from torch.utils.data import DataLoader

from nmt.data.batch import Batch, collate
from nmt.data.binarize import BinarizedCorpus, binarize, spm_model_path
from nmt.data.corpus import read_lines, utf8_text
from nmt.data.data_config import DataConfig
from nmt.data.dataset import ParallelDataset
from nmt.data.multilingual import lang_tag, resample_counts, resample_indices
from nmt.data.sampler import TokenBudgetBatchSampler
from nmt.data.shortlist import Shortlist, build_shortlist
from nmt.tokenizer import SpecialIds, SpmTokenizer


class TranslationDataModule(pl.LightningDataModule):
    """Owns the tokenizer(s), the binarized train/valid splits, the sampler and collate.

    After `setup()`: `src_tokenizer`, `tgt_tokenizer` (the same object when joint),
    `src_vocab_size`, `tgt_vocab_size`, `special_ids`, `valid_refs` and `valid_src_lines`
    (raw valid text, line i = example index i). Validation batches are length-sorted, so
    consumers restore file order with `Batch.indices`.

    The Trainer must run with `use_distributed_sampler=False`: the training sampler shards
    batches across DDP ranks itself.

    Multilingual training (`nmt.data.multilingual`): the training files concatenate several
    directions, `groups` gives their pair counts in file order and `tgt_langs` their target
    languages, whose tags become SentencePiece symbols. The training set is then resampled
    once per run (seeded) with `temperature` over the directions' sizes after filtering, so
    every epoch has the same number of batches, as Lightning needs.
    """

    def __init__(
        self, config: DataConfig, seed: int = 1, groups: Sequence[int] | None = None
    ) -> None:
        """Store the settings; nothing is read until `prepare_data`/`setup`.

        Args:
            config: the checked `data` settings; `src_lang`/`tgt_lang` travel into
                checkpoints, the target languages of `config.directions` become tags.
            seed: shuffling seed of the training batches.
            groups: the pair count of each direction of a multilingual corpus, in file order
                (see above); None for one pair.
        """
        super().__init__()
        self.config = config
        self.paths = {
            "train": (Path(config.train_src), Path(config.train_tgt)),
            "valid": (Path(config.valid_src), Path(config.valid_tgt)),
        }
        self.src_lang = config.src_lang
        self.tgt_lang = config.tgt_lang
        self.work_dir = Path(config.work_dir)
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
        self._text_paths: dict[str, tuple[Path, Path]] | None = None
        self.special_ids = SpecialIds()
        # Training batches consumed in the current epoch; saved in checkpoints.
        self._progress = {"epoch": 0, "position": 0, "seed": seed}

    def prepare_data(self) -> None:
        """Train SentencePiece if absent and binarize both splits (once, on rank 0)."""
        self._build()

    def setup(self, stage: str | None = None) -> None:
        """Load tokenizer(s) and datasets; print the training filter report once."""
        if hasattr(self, "train_dataset"):
            return
        (self.src_tokenizer, self.tgt_tokenizer), corpora = self._build()
        self.src_vocab_size = self.src_tokenizer.vocab_size
        self.tgt_vocab_size = self.tgt_tokenizer.vocab_size
        config = self.config
        self.train_dataset, report = ParallelDataset(corpora["train"]).filtered(
            config.max_len, config.max_len_ratio
        )
        rank_zero_info(f"train {self.paths['train'][0]}: {report}")
        if len(self.train_dataset) == 0:
            raise ValueError(
                f"{self.paths['train'][0]}: no training pairs left after filtering "
                f"(data.max_len={config.max_len}, data.max_len_ratio={config.max_len_ratio})"
            )
        self.shortlist = self._shortlist(self.train_dataset)
        if self.groups is not None:
            self.train_dataset = self._resampled(self.train_dataset, corpora["train"].num_pairs)
        self.valid_dataset = ParallelDataset(corpora["valid"])
        valid_src, valid_tgt = self._checked_paths()["valid"]
        self.valid_src_lines = read_lines(valid_src)
        self.valid_refs = read_lines(valid_tgt)

    def _shortlist(self, dataset: ParallelDataset) -> Shortlist | None:
        """The decoding shortlist of the filtered training pairs (None when not configured)."""
        settings = self.config.shortlist
        if settings is None:
            return None
        count = min(len(dataset), settings.max_pairs)
        pairs = ((example.src, example.tgt) for example in map(dataset.__getitem__, range(count)))
        return build_shortlist(
            pairs,
            self.src_vocab_size,
            self.tgt_vocab_size,
            per_source=settings.per_source,
            frequent=settings.frequent,
        )

    def _resampled(self, dataset: ParallelDataset, num_lines: int) -> ParallelDataset:
        """Draw each direction's share of an epoch by temperature (see the class doc)."""
        assert self.groups is not None
        if sum(self.groups) != num_lines:
            raise ValueError(
                f"{self.paths['train'][0]}: {num_lines} lines, but the directions hold "
                f"{sum(self.groups)} pairs (rebuild the multilingual corpus)"
            )
        group_of = np.searchsorted(np.cumsum(self.groups), dataset.line_numbers, side="right")
        kept = np.bincount(group_of, minlength=len(self.groups)).tolist()
        temperature = self.config.temperature
        counts = resample_counts(kept, temperature)
        rng = np.random.default_rng([self.seed, len(self.groups)])
        shares = ", ".join(f"{n:,} -> {m:,}" for n, m in zip(kept, counts, strict=True))
        rank_zero_info(f"directions resampled (temperature {temperature}): {shares}")
        return dataset.select(resample_indices(group_of, counts, rng))

    def train_dataloader(self) -> DataLoader:
        """Token-budget batches, shuffled per epoch, sharded over DDP ranks, resumable."""
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        sampler = TokenBudgetBatchSampler(
            self.train_dataset.src_lengths,
            self.train_dataset.tgt_lengths,
            self.config.batch_tokens,
            seed=self.seed,
            num_replicas=world,
            rank=rank,
        )
        sampler.load_state_dict(self._progress)
        return self._loader(self.train_dataset, sampler)

    def val_dataloader(self) -> DataLoader:
        """Every valid pair (unfiltered, unsharded) in length-sorted batches."""
        sampler = TokenBudgetBatchSampler(
            self.valid_dataset.src_lengths,
            self.valid_dataset.tgt_lengths,
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
        """Training sampler position: {"train_sampler": {"epoch", "position", "seed"}}."""
        return {"train_sampler": dict(self._progress)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume the training sampler at the saved epoch and position."""
        self._progress = {key: int(value) for key, value in state_dict["train_sampler"].items()}

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

    def _build(self) -> tuple[tuple[SpmTokenizer, SpmTokenizer], dict[str, BinarizedCorpus]]:
        """Train/load the tokenizer(s) and binarize both splits; cached by content hash."""
        tokenizers = self._tokenizers()
        corpora = {
            split: binarize(src, tgt, *tokenizers, self.bin_dir)
            for split, (src, tgt) in self._checked_paths().items()
        }
        return tokenizers, corpora

    def _checked_paths(self) -> dict[str, tuple[Path, Path]]:
        """The text files after the UTF-8 check, before anything (SentencePiece) reads them.

        With on_invalid_utf8="replace", a file holding invalid bytes is replaced by a cleaned
        copy under `work_dir/utf8/`.
        """
        if self._text_paths is None:
            clean_dir, policy = self.work_dir / "utf8", self.config.on_invalid_utf8
            self._text_paths = {
                split: (
                    utf8_text(src, policy, clean_dir),
                    utf8_text(tgt, policy, clean_dir),
                )
                for split, (src, tgt) in self.paths.items()
            }
        return self._text_paths

    def _tokenizers(self) -> tuple[SpmTokenizer, SpmTokenizer]:
        """One joint model on both training sides, or one model per side."""
        src, tgt = self._checked_paths()["train"]
        if self.config.spm.joint:
            joint = self._tokenizer([src, tgt])
            return joint, joint
        return self._tokenizer([src]), self._tokenizer([tgt])

    def _tokenizer(self, train_files: list[Path]) -> SpmTokenizer:
        settings = self.spm_settings
        path = spm_model_path(self.work_dir, settings, train_files)
        if path.is_file():
            return SpmTokenizer.load(path)
        rank_zero_info(f"training SentencePiece on {[str(f) for f in train_files]} -> {path}")
        return SpmTokenizer.train(train_files, path, **settings, num_threads=os.cpu_count())
