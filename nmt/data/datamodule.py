"""TranslationDataModule: SentencePiece, binarized splits, token-budget loaders, sampler resume."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
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
from nmt.data.dataset import ParallelDataset
from nmt.data.multilingual import lang_tag, resample_counts, resample_indices
from nmt.data.sampler import TokenBudgetBatchSampler
from nmt.data.shortlist import Shortlist, build_shortlist
from nmt.tokenizer import SpecialIds, SpmTokenizer

# data.spm keys and their defaults; vocab_size has none.
SPM_DEFAULTS: dict[str, Any] = {
    "joint": True,
    "model_type": "unigram",
    "character_coverage": 1.0,
    "input_sentence_size": 2_000_000,
    "user_defined_symbols": [],
}


def spm_settings(spm: Mapping[str, Any]) -> dict[str, Any]:
    """Return the data.spm settings with defaults filled in, rejecting unknown keys."""
    unknown = sorted(set(spm) - set(SPM_DEFAULTS) - {"vocab_size"})
    if unknown:
        raise ValueError(
            f"data.spm: unknown key(s) {unknown}; known: vocab_size, {list(SPM_DEFAULTS)}"
        )
    if "vocab_size" not in spm:
        raise ValueError("data.spm.vocab_size is required")
    settings = {**SPM_DEFAULTS, **spm}
    settings["user_defined_symbols"] = [str(s) for s in settings["user_defined_symbols"]]
    return settings


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
        self,
        train_src: str | Path,
        train_tgt: str | Path,
        valid_src: str | Path,
        valid_tgt: str | Path,
        work_dir: str | Path,
        spm: Mapping[str, Any],
        src_lang: str = "src",
        tgt_lang: str = "tgt",
        max_len: int | None = 100,
        max_len_ratio: float | None = 3.0,
        batch_tokens: int = 4096,
        valid_batch_tokens: int = 8192,
        num_workers: int = 0,
        seed: int = 1,
        groups: Sequence[int] | None = None,
        temperature: float = 1.0,
        tgt_langs: Sequence[str] = (),
        on_invalid_utf8: str = "error",
        shortlist: Mapping[str, int] | None = None,
    ):
        """Store the settings; nothing is read until `prepare_data`/`setup`.

        Args mirror the data config: file paths, `work_dir` for SentencePiece models and
        binarized arrays, `spm` (vocab_size, joint, model_type, character_coverage,
        input_sentence_size, user_defined_symbols), length filter, token budgets, DataLoader
        workers and the shuffling seed; `src_lang`/`tgt_lang` travel into checkpoints;
        `on_invalid_utf8` ("error" or "replace") is the policy for undecodable bytes.
        `groups`, `temperature` and `tgt_langs` describe a multilingual corpus (see above).
        `shortlist` ({per_source, frequent, max_pairs}, or None for none) builds the decoding
        shortlist (`nmt.data.shortlist`) from the first `max_pairs` filtered training pairs.
        """
        super().__init__()
        self.paths = {
            "train": (Path(train_src), Path(train_tgt)),
            "valid": (Path(valid_src), Path(valid_tgt)),
        }
        self.src_lang = src_lang
        self.tgt_lang = tgt_lang
        self.work_dir = Path(work_dir)
        self.bin_dir = self.work_dir / "bin"
        self.spm = spm_settings(spm)
        self.tgt_langs = list(tgt_langs)
        tags = [lang_tag(lang) for lang in self.tgt_langs]
        extra = self.spm["user_defined_symbols"]
        self.spm["user_defined_symbols"] = tags + [s for s in extra if s not in tags]
        self.groups = None if groups is None else [int(n) for n in groups]
        self.temperature = temperature
        self.max_len = max_len
        self.max_len_ratio = max_len_ratio
        self.batch_tokens = batch_tokens
        self.valid_batch_tokens = valid_batch_tokens
        self.num_workers = num_workers
        self.seed = seed
        self.on_invalid_utf8 = on_invalid_utf8
        self.shortlist_settings = None if shortlist is None else _shortlist_settings(shortlist)
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
        self.train_dataset, report = ParallelDataset(corpora["train"]).filtered(
            self.max_len, self.max_len_ratio
        )
        rank_zero_info(f"train {self.paths['train'][0]}: {report}")
        if len(self.train_dataset) == 0:
            raise ValueError(
                f"{self.paths['train'][0]}: no training pairs left after filtering "
                f"(data.max_len={self.max_len}, data.max_len_ratio={self.max_len_ratio})"
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
        if self.shortlist_settings is None:
            return None
        settings = self.shortlist_settings
        count = min(len(dataset), settings["max_pairs"])
        pairs = ((example.src, example.tgt) for example in map(dataset.__getitem__, range(count)))
        return build_shortlist(
            pairs,
            self.src_vocab_size,
            self.tgt_vocab_size,
            per_source=settings["per_source"],
            frequent=settings["frequent"],
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
        counts = resample_counts(kept, self.temperature)
        rng = np.random.default_rng([self.seed, len(self.groups)])
        shares = ", ".join(f"{n:,} -> {m:,}" for n, m in zip(kept, counts, strict=True))
        rank_zero_info(f"directions resampled (temperature {self.temperature}): {shares}")
        return dataset.select(resample_indices(group_of, counts, rng))

    def train_dataloader(self) -> DataLoader:
        """Token-budget batches, shuffled per epoch, sharded over DDP ranks, resumable."""
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        sampler = TokenBudgetBatchSampler(
            self.train_dataset.src_lengths,
            self.train_dataset.tgt_lengths,
            self.batch_tokens,
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
            self.valid_batch_tokens,
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
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
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
            clean_dir = self.work_dir / "utf8"
            self._text_paths = {
                split: (
                    utf8_text(src, self.on_invalid_utf8, clean_dir),
                    utf8_text(tgt, self.on_invalid_utf8, clean_dir),
                )
                for split, (src, tgt) in self.paths.items()
            }
        return self._text_paths

    def _tokenizers(self) -> tuple[SpmTokenizer, SpmTokenizer]:
        """One joint model on both training sides, or one model per side."""
        src, tgt = self._checked_paths()["train"]
        if self.spm["joint"]:
            joint = self._tokenizer([src, tgt])
            return joint, joint
        return self._tokenizer([src]), self._tokenizer([tgt])

    def _tokenizer(self, train_files: list[Path]) -> SpmTokenizer:
        settings = {key: value for key, value in self.spm.items() if key != "joint"}
        path = spm_model_path(self.work_dir, settings, train_files)
        if path.is_file():
            return SpmTokenizer.load(path)
        rank_zero_info(f"training SentencePiece on {[str(f) for f in train_files]} -> {path}")
        return SpmTokenizer.train(train_files, path, **settings, num_threads=os.cpu_count())


def _shortlist_settings(settings: Mapping[str, Any]) -> dict[str, int]:
    """Check `data.shortlist`: exactly per_source (>= 1), frequent (>= 0), max_pairs (>= 1)."""
    minimum = {"per_source": 1, "frequent": 0, "max_pairs": 1}
    unknown = sorted(set(settings) - set(minimum))
    if unknown:
        raise ValueError(f"data.shortlist.{unknown[0]}: unknown key (known: {', '.join(minimum)})")
    checked = {}
    for key, low in minimum.items():
        value = settings.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"data.shortlist.{key} must be an integer >= {low}, got {value!r}")
        checked[key] = value
    return checked
