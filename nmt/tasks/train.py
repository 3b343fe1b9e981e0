"""`train` task: corpus (prepared if missing) -> SentencePiece -> binarized batches -> fit."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.utilities import rank_zero_info, rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException

from nmt.checkpoint import load_meta
from nmt.data.datamodule import TranslationDataModule
from nmt.data.mixing import share_metrics
from nmt.model.config import Seq2SeqConfig
from nmt.search.strategy import SearchConfig
from nmt.tasks.data import build_datamodule, data_config, ensure_corpus
from nmt.tasks.hydra_setup import to_dict, typed_dict
from nmt.training.callbacks import last_checkpoint_path
from nmt.training.checkpoint_io import AtomicCheckpointIO
from nmt.training.module import TranslationModule
from nmt.training.optim_config import OptimConfig
from nmt.training.trainer_config import resolve_precision
from nmt.utils.io import remove_stale_temporaries
from nmt.utils.logging import rank_zero_print


def resume_checkpoint(cfg: DictConfig) -> str | None:
    """The checkpoint to continue from: `ckpt_path`, or the run dir's last.ckpt with resume."""
    if cfg.ckpt_path:
        if not Path(cfg.ckpt_path).is_file():
            raise ValueError(f"ckpt_path: {cfg.ckpt_path}: file not found")
        return str(cfg.ckpt_path)
    if not cfg.resume:
        return None
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise ValueError(f"resume=true but {last} does not exist (no earlier run to continue)")
    return str(last)


def check_resume_vocabulary(ckpt_path: str, datamodule: TranslationDataModule) -> None:
    """Stop unless the checkpoint to continue from was trained with these tokenizers.

    The data's SentencePiece model(s) come from the configured files and `data.spm`; a
    checkpoint trained on other data has other pieces behind the same ids (or another
    vocabulary size), and continuing from it would train on garbage.
    """
    meta = load_meta(ckpt_path, key="ckpt_path")
    trained = {"src": meta.src_spm, "tgt": meta.tgt_spm}
    tokenizers = {"src": datamodule.src_tokenizer, "tgt": datamodule.tgt_tokenizer}
    several = len(datamodule.train_sides) > 1
    for (side, tokenizer), text in zip(tokenizers.items(), datamodule.train_sides[0], strict=True):
        if trained[side] != tokenizer.model_bytes:
            key = f"data.train_{side}" if text.column is None else "data.train_tsv"
            files = "data.corpora" if several else f"{key} ({text})"
            raise ValueError(
                f"ckpt_path: {ckpt_path}: trained with another {side} SentencePiece model than "
                f"the one {files} and data.spm give; a checkpoint continues "
                "only on the data it was trained with"
            )


@rank_zero_only
def remove_stale_checkpoint_files(trainer: pl.Trainer) -> None:
    """Delete (and report) temporary files that a killed checkpoint write left behind.

    Runs before the fit writes anything; rank zero only (the ranks are known from the
    launcher's environment already), as only it writes checkpoints.
    """
    if trainer.checkpoint_callback is None or trainer.checkpoint_callback.dirpath is None:
        return
    directory = Path(trainer.checkpoint_callback.dirpath)
    removed = remove_stale_temporaries(directory)
    if removed:
        names = ", ".join(path.name for path in removed)
        rank_zero_info(
            f"{directory}: removed {len(removed)} temporary file(s) of interrupted writes: {names}"
        )


def set_threads(cfg: DictConfig) -> None:
    """One intra-op thread pool per process, sized so processes do not oversubscribe cores."""
    threads = cfg.threads
    if threads is None:
        trainer = cfg.trainer
        procs = trainer.devices if trainer.accelerator == "cpu" and trainer.devices > 0 else 1
        threads = max(1, (os.cpu_count() or 1) // procs)
    torch.set_num_threads(threads)


def module_configs(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """The model/optim/val.search nodes, type-checked and range-checked (ValueError names the key).

    Called first by `train`, so a bad value stops the run before any data is read; the
    checked dicts are what `TranslationModule` receives (and saves as hyper-parameters).
    """
    configs = {
        "model": typed_dict(cfg.model, Seq2SeqConfig, "model"),
        "optim": typed_dict(cfg.optim, OptimConfig, "optim"),
        "search": typed_dict(cfg.val.search, SearchConfig, "val.search"),
    }
    Seq2SeqConfig.from_dict(configs["model"])
    OptimConfig(**configs["optim"])
    SearchConfig(**configs["search"])
    return configs


def build_module(
    cfg: DictConfig,
    datamodule: TranslationDataModule,
    configs: dict[str, dict[str, Any]] | None = None,
) -> TranslationModule:
    """The LightningModule for `cfg`, sized by the set-up DataModule's vocabularies.

    `configs` are the checked `module_configs(cfg)` when the caller already has them.
    """
    module = TranslationModule(
        **(configs or module_configs(cfg)),
        src_vocab_size=datamodule.src_vocab_size,
        tgt_vocab_size=datamodule.tgt_vocab_size,
        special_ids=dataclasses.asdict(datamodule.special_ids),
        val_bleu_sentences=cfg.val.bleu_sentences,
        train_config=to_dict(cfg),
    )
    module.attach_vocabulary(datamodule)
    return module


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a training run leaves behind.

    Attributes:
        best_checkpoint: the checkpoint with the best validation BLEU (or the final one).
        valid_bleu: its validation BLEU (None when BLEU was not computed).
        steps: optimizer steps taken in all (including those of a resumed run).
        skipped_updates: updates dropped for a non-finite loss or gradient.
    """

    best_checkpoint: str
    valid_bleu: float | None
    steps: int
    skipped_updates: int


def train(cfg: DictConfig) -> TrainResult:
    """Train a model as configured; print `best_checkpoint: PATH` last; return the result."""
    configs = module_configs(cfg)
    data_config(cfg)  # a bad data key stops the run here too, before anything is printed
    set_threads(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    ckpt_path = resume_checkpoint(cfg)
    sizes = ensure_corpus(cfg)
    datamodule = build_datamodule(cfg, sizes)
    datamodule.prepare_data()
    datamodule.setup("fit")
    if ckpt_path is not None:
        check_resume_vocabulary(ckpt_path, datamodule)
    module = build_module(cfg, datamodule, configs)
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None]
    loggers = [instantiate(c) for c in cfg.logger.values() if c is not None]
    precision, reason = resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    if reason is not None:
        rank_zero_print(f"trainer.precision=auto: {precision} ({reason})")
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers,
        plugins=[AtomicCheckpointIO()],
        precision=precision,
    )
    remove_stale_checkpoint_files(trainer)
    for logger in loggers:  # rank-zero only; step 0: the figures of the whole run
        logger.log_metrics(share_metrics(datamodule.corpus_shares), step=0)
    rank_zero_print(f"model: {sum(p.numel() for p in module.parameters()):,} parameters")
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    except SIGTERMException:
        # Lightning exits with status 0 here; an interrupted run must not look finished.
        raise SystemExit(
            f"interrupted at step {trainer.global_step}: saved {last_checkpoint_path(trainer)}; "
            "continue with resume=true"
        ) from None
    if module.nonfinite.skipped:
        rank_zero_print(
            f"skipped_batches: {module.nonfinite.skipped} "
            "(updates dropped for a non-finite loss or gradient)"
        )
    best, bleu = finish(trainer, module, datamodule)
    rank_zero_print(f"best_checkpoint: {best}")
    return TrainResult(best, bleu, trainer.global_step, module.nonfinite.skipped)


def finish(
    trainer: pl.Trainer, module: TranslationModule, datamodule: TranslationDataModule
) -> tuple[str, float | None]:
    """Validate and save the final model if it was not; return the best checkpoint and BLEU.

    Training bounded by time usually stops between validations, so the final weights (often
    the best: the learning rate has decayed) are validated and saved as
    `final-stepN.ckpt`, which becomes the best checkpoint when its BLEU is the highest.
    `last.ckpt` stays the latest checkpoint written during the fit (at a validation or by
    `callbacks.last_checkpoint`): Lightning counts a stopped fit as a finished epoch, so
    only those resume exactly.
    """
    callback = trainer.checkpoint_callback
    best_path, best_score = callback.best_model_path, callback.best_model_score
    best = (best_path, None if best_score is None else float(best_score))
    step = trainer.global_step
    if module.last_validated_step == step and module.last_saved_step == step and best_path:
        return best
    metrics: dict[str, Any] = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    final_bleu = metrics.get("val/bleu")
    final = Path(callback.dirpath) / f"final-step{trainer.global_step:06d}.ckpt"
    trainer.save_checkpoint(final)
    if best_path and best[1] is not None and (final_bleu is None or best[1] > final_bleu):
        return best
    return str(final), final_bleu
