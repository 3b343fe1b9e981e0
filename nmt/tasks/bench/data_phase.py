"""Data side of `nmt-bench`: binarization throughput, epoch iteration speed, memory, padding.

Each measured phase runs in a fresh process, so its peak RSS is its own and not what an
earlier phase left behind.
"""

from __future__ import annotations

import dataclasses
import itertools
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from nmt.data.binarize import binarize, spm_model_path
from nmt.data.corpus import utf8_text
from nmt.data.data_config import DataConfig, SpmConfig
from nmt.data.datamodule import TranslationDataModule
from nmt.data.reader import TextSide, write_sample
from nmt.tasks.bench.process import RssMonitor, in_fresh_process, peak_rss_mb
from nmt.tasks.hydra_setup import to_dict
from nmt.tokenizer import SpmTokenizer

_VALID_LINES = 1000


def data_phase(cfg: DictConfig, threads: int, out_dir: Path) -> dict[str, Any]:
    """Binarization and epoch speed on the train files repeated to `bench.data_pairs` pairs.

    The repeated corpus lives in a temporary directory of the run, removed afterwards.
    `peak_rss_mb` is the larger of the binarization (all processes) and epoch peaks.
    """
    data = cfg.data
    with tempfile.TemporaryDirectory(prefix="data-", dir=out_dir) as work_dir:
        result: dict[str, Any] = bench_data(
            data.train_src,
            data.train_tgt,
            work_dir,
            pairs=cfg.bench.data_pairs,
            batch_tokens=data.batch_tokens,
            spm=to_dict(data.spm),
            max_len=data.max_len,
            max_len_ratio=data.max_len_ratio,
            num_workers=threads,
        )
    result["peak_rss_mb"] = max(result["binarize_peak_rss_mb"], result["epoch_peak_rss_mb"])
    return result


def bench_data(
    train_src: str | Path,
    train_tgt: str | Path,
    work_dir: str | Path,
    *,
    pairs: int = 1_000_000,
    batch_tokens: int = 4096,
    spm: Mapping[str, Any] | None = None,
    max_len: int | None = 100,
    max_len_ratio: float | None = 3.0,
    num_workers: int | None = None,
) -> dict[str, float]:
    """Measure binarizing a `pairs`-pair corpus (the train files repeated) and one epoch over it.

    SentencePiece is trained once on the original files (through the DataModule) and reused
    for the repeated corpus, whose sentences are the same: training it is not measured.
    The epoch is also run on the original corpus, to compare memory at both sizes.

    Args:
        train_src: source training text.
        train_tgt: target training text.
        work_dir: where the repeated corpus, models and arrays are written.
        pairs: size of the repeated corpus.
        batch_tokens: token budget per batch.
        spm: data.spm settings (default: joint unigram, 8000 pieces).
        max_len: training length filter.
        max_len_ratio: training length-ratio filter.
        num_workers: binarization processes (default: all cores).

    Returns:
        utf8_check_* and spm_sample_* (pairs/s and peak RSS of the UTF-8 check of both files
        and of writing SentencePiece's sampled input from them), binarize_pairs_per_s,
        binarize_peak_rss_mb (main process + workers, sampled every
        20 ms by `RssMonitor`),
        epoch_batches_per_s, epoch_peak_rss_mb, padding_fraction, pairs, and the same epoch
        figures on the original corpus (`small_*`).
    """
    work_dir = Path(work_dir)
    settings = dataclasses.asdict(SpmConfig(**(spm or {"vocab_size": 8000})))
    small = (Path(train_src), Path(train_tgt))
    valid = _write_repeated(small, work_dir / "valid", _VALID_LINES)
    big = _write_repeated(small, work_dir / "big", pairs)
    loader_args = {
        "work_dir": work_dir,
        "spm": settings,
        "max_len": max_len,
        "max_len_ratio": max_len_ratio,
        "batch_tokens": batch_tokens,
    }
    small_dm = _datamodule(small, valid, loader_args)
    shutil.rmtree(small_dm.bin_dir, ignore_errors=True)  # measure encoding, not a cache hit
    small_dm.prepare_data()  # trains SentencePiece on the original files if needed
    model = spm_model_path(work_dir, _model_settings(settings), list(small))
    shutil.copyfile(model, spm_model_path(work_dir, _model_settings(settings), list(big)))
    utf8 = in_fresh_process(_utf8_phase, big, work_dir / "utf8")
    sample = in_fresh_process(_sample_phase, big, settings["input_sentence_size"])
    binarized = in_fresh_process(_binarize_phase, big, model, small_dm.bin_dir, num_workers)
    epoch = in_fresh_process(_epoch_phase, big, valid, loader_args)
    small_epoch = in_fresh_process(_epoch_phase, small, valid, loader_args)
    return {
        "pairs": pairs,
        "utf8_check_pairs_per_s": pairs / utf8["seconds"],
        "utf8_check_peak_rss_mb": utf8["main_peak_rss_mb"],
        "spm_sample_pairs_per_s": pairs / sample["seconds"],
        "spm_sample_peak_rss_mb": sample["main_peak_rss_mb"],
        "binarize_pairs_per_s": pairs / binarized["seconds"],
        "binarize_peak_rss_mb": binarized["peak_rss_mb"],
        "binarize_main_peak_rss_mb": binarized["main_peak_rss_mb"],
        "binarize_worker_peak_rss_mb": binarized["worker_peak_rss_mb"],
        "epoch_batches_per_s": epoch["batches"] / epoch["seconds"],
        "epoch_peak_rss_mb": epoch["main_peak_rss_mb"],
        "padding_fraction": epoch["padding_fraction"],
        "small_pairs": small_epoch["pairs"],
        "small_epoch_batches_per_s": small_epoch["batches"] / small_epoch["seconds"],
        "small_epoch_peak_rss_mb": small_epoch["main_peak_rss_mb"],
    }


def _model_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that name a SentencePiece model (as the DataModule computes them)."""
    return {key: value for key, value in settings.items() if key != "joint"}


def _write_repeated(files: tuple[Path, Path], prefix: Path, count: int) -> tuple[Path, Path]:
    """Write the first `count` lines of the endlessly repeated files to `prefix`.{src,tgt}."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    out = (prefix.with_suffix(".src"), prefix.with_suffix(".tgt"))
    for source, target in zip(files, out, strict=True):
        data = source.read_bytes()
        lines = [line + b"\n" for line in data.removesuffix(b"\n").split(b"\n")]
        with open(target, "wb") as handle:
            handle.writelines(itertools.islice(itertools.cycle(lines), count))
    return out


def _datamodule(
    train: tuple[Path, Path], valid: tuple[Path, Path], args: Mapping[str, Any]
) -> TranslationDataModule:
    return TranslationDataModule(DataConfig(*train, *valid, **args))


def _binarize_phase(
    files: tuple[Path, Path], model: Path, out_dir: Path, num_workers: int | None
) -> dict[str, float]:
    tokenizer = SpmTokenizer.load(model)
    with RssMonitor() as monitor:
        start = time.perf_counter()
        binarize(*files, tokenizer, tokenizer, out_dir, num_workers=num_workers)
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "main_peak_rss_mb": peak_rss_mb(),
        "worker_peak_rss_mb": monitor.child_peak_mb,
        "peak_rss_mb": max(monitor.tree_peak_mb, peak_rss_mb()),
    }


def _utf8_phase(files: tuple[Path, Path], clean_dir: Path) -> dict[str, float]:
    start = time.perf_counter()
    for path in files:
        utf8_text(path, "error", clean_dir)
    return {"seconds": time.perf_counter() - start, "main_peak_rss_mb": peak_rss_mb()}


def _sample_phase(files: tuple[Path, Path], size: int) -> dict[str, float]:
    out = [path.with_suffix(path.suffix + ".sample") for path in files]
    start = time.perf_counter()
    write_sample([TextSide(path) for path in files], out, size, seed=0)
    seconds = time.perf_counter() - start
    for path in out:
        path.unlink()
    return {"seconds": seconds, "main_peak_rss_mb": peak_rss_mb()}


def _epoch_phase(
    train: tuple[Path, Path], valid: tuple[Path, Path], args: Mapping[str, Any]
) -> dict[str, float]:
    dm = _datamodule(train, valid, args)
    dm.prepare_data()
    dm.setup("fit")
    batches = padded = slots = 0
    start = time.perf_counter()
    for batch in dm.train_dataloader():
        batches += 1
        for tensor in (batch.src, batch.tgt_out):
            slots += tensor.numel()
            padded += int((tensor == dm.special_ids.pad).sum())
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "batches": batches,
        "pairs": len(dm.train_dataset),
        "padding_fraction": padded / max(slots, 1),
        "main_peak_rss_mb": peak_rss_mb(),
    }
