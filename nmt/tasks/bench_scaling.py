"""Scaling side of `nmt-bench` (task=scaling): how time grows with corpus size and input length.

Training: one whole epoch on the first N training pairs, for each N in
`bench.scaling.train_pairs` (the SentencePiece model and binarized corpus of the full training
set are shared, so only the epoch is timed). Translation: the first N test lines, for each N
in `bench.scaling.translate_lines`. Each series gets the exponent b of a least-squares fit
seconds ≈ a · N^b on log-log axes: b = 1 is linear.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from nmt.data.corpus import read_lines
from nmt.search.config import SearchConfig
from nmt.tasks.bench_train import train_step
from nmt.tasks.data import build_datamodule
from nmt.tasks.hydra_setup import to_dict
from nmt.tasks.train import build_module
from nmt.translator import Translator


def fitted_exponent(sizes: Sequence[float], seconds: Sequence[float]) -> float:
    """The slope b of log(seconds) = log(a) + b·log(size), least squares."""
    slope, _ = np.polyfit(np.log(sizes), np.log(seconds), 1)
    return float(slope)


def epoch_seconds(cfg: DictConfig, threads: int) -> dict[str, Any]:
    """Time one training epoch on the first N pairs, for each N of bench.scaling.train_pairs."""
    torch.set_num_threads(threads)
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    full = datamodule.train_dataset
    series: dict[str, list] = {"pairs": [], "batches": [], "seconds": []}
    for pairs in cfg.bench.scaling.train_pairs:
        if pairs > len(full):
            raise ValueError(f"bench.scaling.train_pairs: {pairs} > {len(full)} training pairs")
        torch.manual_seed(cfg.seed)
        module = build_module(cfg, datamodule).train()
        optimizers = module.configure_optimizers()
        optimizer, scheduler = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
        datamodule.train_dataset = full.select(np.arange(pairs))
        loader = datamodule.train_dataloader()
        start = time.perf_counter()
        for step, batch in enumerate(loader):
            train_step(module, batch, step, optimizer, scheduler)
        series["pairs"].append(int(pairs))
        series["batches"].append(len(loader))
        series["seconds"].append(time.perf_counter() - start)
    series["exponent"] = fitted_exponent(series["pairs"], series["seconds"])
    return series


def translate_seconds(cfg: DictConfig, threads: int, ckpt: str) -> dict[str, Any]:
    """Time translating the first N test lines (bench.test_src) with `ckpt`, for each N of
    bench.scaling.translate_lines, with search bench.search[bench.scaling.search]."""
    torch.set_num_threads(threads)
    bench = cfg.bench
    lines = read_lines(bench.test_src)
    translator = Translator.from_checkpoint(ckpt, max_src_tokens=bench.max_src_tokens)
    search = SearchConfig(**to_dict(bench.search[bench.scaling.search]))
    translator.translate(lines[: bench.warmup_lines], search)
    series: dict[str, list] = {"lines": [], "seconds": []}
    for count in bench.scaling.translate_lines:
        if count > len(lines):
            raise ValueError(f"bench.scaling.translate_lines: {count} > {len(lines)} test lines")
        start = time.perf_counter()
        translator.translate(lines[:count], search, batch_tokens=bench.batch_tokens)
        series["lines"].append(int(count))
        series["seconds"].append(time.perf_counter() - start)
    series["exponent"] = fitted_exponent(series["lines"], series["seconds"])
    return series
