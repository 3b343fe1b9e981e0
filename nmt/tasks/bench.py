"""`bench` task: training and translation speed, memory and FLOP utilisation on this machine.

Every phase is compared with an fp32 matmul peak measured in the same run, so `mfu`
(model FLOP/s over matmul FLOP/s) is a same-sitting ratio. The report is one JSON object
on stdout (and `bench.json` in the run directory); everything else goes to stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from nmt.data.bench import bench_data
from nmt.data.corpus import read_lines
from nmt.tasks.bench_scaling import epoch_seconds, translate_seconds
from nmt.tasks.bench_train import train_checkpoint, train_phase
from nmt.tasks.bench_translate import Runner, TranslateSettings, translate_runs
from nmt.tasks.data import ensure_corpus
from nmt.tasks.hydra_setup import to_dict
from nmt.utils.bench import device_info, in_fresh_process, matmul_peak_gflops

TASKS = ("data", "train", "translate", "all", "scaling")


def bench(cfg: DictConfig) -> dict[str, Any]:
    """Run the benchmarks named by `task`; print the report as JSON on stdout and return it."""
    if cfg.task not in TASKS:
        raise ValueError(f"task={cfg.task!r}: choose one of {', '.join(TASKS)}")
    threads = cfg.bench.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = ("data", "train", "translate") if cfg.task == "all" else (cfg.task,)
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the JSON report only
        ensure_corpus(cfg)
        report: dict[str, Any] = {"device": device_info()}
        report.update(matmul_peak_gflops(cfg.bench.matmul_size, cfg.bench.matmul_reps))
        peak = report["matmul_peak_gflops"]
        if "data" in wanted:
            report["data"] = data_phase(cfg, threads, out_dir)
        if "train" in wanted:
            report["train"] = with_mfu(_run(cfg)(train_phase, _resolved(cfg), threads), peak)
        if "translate" in wanted:
            report["translate"] = translate_phase(cfg, threads, out_dir, peak)
        if "scaling" in wanted:
            report["scaling"] = scaling_phase(cfg, threads, out_dir)
    report["config"] = to_dict(cfg)
    text = json.dumps(report, indent=2)
    (out_dir / "bench.json").write_text(text + "\n", encoding="utf-8")
    print(text, flush=True)
    return report


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


def bench_checkpoint(cfg: DictConfig, out_dir: Path) -> str:
    """`bench.ckpt`, or a model trained for `bench.train_seconds` with the train task."""
    if cfg.bench.ckpt:
        return str(cfg.bench.ckpt)
    return str(train_checkpoint(cfg, out_dir / "train", cfg.bench.train_seconds))


def scaling_phase(cfg: DictConfig, threads: int, out_dir: Path) -> dict[str, Any]:
    """Epoch time vs training pairs and translation time vs lines, with fitted exponents."""
    ckpt = bench_checkpoint(cfg, out_dir)
    run = _run(cfg)
    return {
        "train": run(epoch_seconds, _resolved(cfg), threads),
        "translate": run(translate_seconds, _resolved(cfg), threads, ckpt),
    }


def translate_phase(cfg: DictConfig, threads: int, out_dir: Path, peak: float) -> dict[str, Any]:
    """Translate the test set with `bench.ckpt`, or a model trained for `bench.train_seconds`."""
    bench_cfg = cfg.bench
    ckpt = bench_checkpoint(cfg, out_dir)
    count = bench_cfg.translate_lines
    src = read_lines(bench_cfg.test_src)[:count]
    refs = read_lines(bench_cfg.test_ref)[:count]
    if len(src) != len(refs):
        raise ValueError(
            f"bench.test_src has {len(src)} lines but bench.test_ref has {len(refs)} "
            f"({bench_cfg.test_src}, {bench_cfg.test_ref})"
        )
    settings = TranslateSettings(
        threads=threads,
        batch_tokens=bench_cfg.batch_tokens,
        max_src_tokens=bench_cfg.max_src_tokens,
        chunk_lines=bench_cfg.chunk_lines,
        warmup_lines=bench_cfg.warmup_lines,
    )
    report = translate_runs(
        ckpt,
        to_dict(bench_cfg.search),
        to_dict(bench_cfg.variants),
        (src, refs),
        settings,
        bench_cfg.translate_seconds,
        _run(cfg),
    )
    for name in bench_cfg.search:
        for variant in bench_cfg.variants:
            with_mfu(report[name][variant], peak)
    return report


def with_mfu(figures: dict[str, Any], peak_gflops: float) -> dict[str, Any]:
    """Add `mfu`: the phase's model GFLOP/s over the matmul peak GFLOP/s."""
    figures["mfu"] = figures["model_gflops"] / peak_gflops
    return figures


def _resolved(cfg: DictConfig) -> DictConfig:
    """The config with every interpolation resolved (a fresh process has no Hydra context)."""
    return OmegaConf.create(to_dict(cfg))


def _run(cfg: DictConfig) -> Runner:
    """How phases run: each in a fresh process (`bench.isolate`), or in this one."""
    return in_fresh_process if cfg.bench.isolate else _in_this_process


def _in_this_process(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)
