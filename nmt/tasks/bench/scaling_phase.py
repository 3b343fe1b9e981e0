"""Scaling side of `nmt-bench` (task=scaling): how time grows with corpus size and input length.

Training: one whole epoch on the first N training pairs, for each N in
`bench.scaling.train_pairs`, with the training bench's loop (`train_phase.LOOP`; the
SentencePiece model and binarized corpus of the full training set are shared, so only the
epoch is timed). Translation: the first N test lines, for each N
in `bench.scaling.translate_lines`. Each series gets the exponent b of a least-squares fit
seconds ≈ a · N^b on log-log axes: b = 1 is linear.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from nmt.data.corpus import read_lines
from nmt.search.strategy import SearchConfig
from nmt.tasks.bench.process import Runner
from nmt.tasks.bench.train_phase import StepTimer, fit_timed
from nmt.tasks.data import DirectionSizes, build_datamodule
from nmt.tasks.hydra_setup import to_dict
from nmt.tasks.train import build_module
from nmt.translator import Translator


def scaling_phase(
    cfg: DictConfig,
    ckpt: str | list[str],
    threads: int,
    run: Runner,
    sizes: DirectionSizes | None,
) -> dict[str, Any]:
    """Epoch time vs training pairs and translation time vs lines (with `ckpt`), each fitted.

    Args:
        cfg: the resolved bench config.
        ckpt: the checkpoint to translate with.
        threads: intra-op threads.
        run: calls each series' function (in a fresh process, or in this one).
        sizes: the direction sizes of a multilingual corpus (`ensure_corpus`), or None.
    """
    return {
        "train": run(epoch_seconds, cfg, threads, sizes),
        "translate": run(translate_seconds, cfg, threads, ckpt),
    }


def fitted_exponent(sizes: Sequence[float], seconds: Sequence[float]) -> float:
    """The slope b of log(seconds) = log(a) + b·log(size), least squares."""
    slope, _ = np.polyfit(np.log(sizes), np.log(seconds), 1)
    return float(slope)


def epoch_seconds(cfg: DictConfig, threads: int, sizes: DirectionSizes | None) -> dict[str, Any]:
    """Time one training epoch on the first N pairs, for each N of bench.scaling.train_pairs."""
    torch.set_num_threads(threads)
    datamodule = build_datamodule(cfg, sizes)
    datamodule.prepare_data()
    datamodule.setup("fit")
    full = datamodule.train_dataset
    start_position = datamodule.state_dict()  # every epoch starts at the first batch
    series: dict[str, list] = {"pairs": [], "batches": [], "seconds": []}
    for pairs in cfg.bench.scaling.train_pairs:
        if pairs > len(full):
            raise ValueError(f"bench.scaling.train_pairs: {pairs} > {len(full)} training pairs")
        torch.manual_seed(cfg.seed)
        module = build_module(cfg, datamodule)
        first = np.sort(np.argsort(full.line_numbers, kind="stable")[:pairs])  # by width still
        datamodule.train_dataset = full.select(first)
        datamodule.load_state_dict(start_position)
        timer = StepTimer(warmup_steps=0, seconds=math.inf)
        fit_timed(cfg, module, datamodule, timer, max_epochs=1)
        series["pairs"].append(int(pairs))
        series["batches"].append(timer.totals["batches"])
        series["seconds"].append(timer.seconds)
    series["exponent"] = fitted_exponent(series["pairs"], series["seconds"])
    return series


def translate_seconds(cfg: DictConfig, threads: int, ckpt: str | list[str]) -> dict[str, Any]:
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
