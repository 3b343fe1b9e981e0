"""The bench suite: runs the phases named by `task` and writes the one JSON report.

Every phase is compared with an fp32 matmul peak measured in the same run, so `mfu`
(model FLOP/s over matmul FLOP/s) is a same-sitting ratio. The report is one JSON object
on stdout (and `bench.json` in the run directory); everything else goes to stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from nmt.tasks.bench.data_phase import data_phase
from nmt.tasks.bench.machine import device_info, matmul_peak_gflops, with_mfu
from nmt.tasks.bench.process import Runner, in_fresh_process, in_this_process
from nmt.tasks.bench.scaling_phase import scaling_phase
from nmt.tasks.bench.serve_phase import serve_phase
from nmt.tasks.bench.train_phase import train_checkpoint, train_phase
from nmt.tasks.bench.translate_phase import translate_phase
from nmt.tasks.data import ensure_corpus
from nmt.tasks.hydra_setup import to_dict
from nmt.tasks.translator_setup import checkpoint_paths

TASKS = ("data", "train", "translate", "all", "scaling", "serve")


def bench(cfg: DictConfig) -> dict[str, Any]:
    """Run the benchmarks named by `task`; print the report as JSON on stdout and return it."""
    if cfg.task not in TASKS:
        raise ValueError(f"task={cfg.task!r}: choose one of {', '.join(TASKS)}")
    threads = cfg.bench.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = ("data", "train", "translate") if cfg.task == "all" else (cfg.task,)
    run: Runner = in_fresh_process if cfg.bench.isolate else in_this_process
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the JSON report only
        sizes = ensure_corpus(cfg)  # of each direction of a multilingual corpus
        report: dict[str, Any] = {"device": device_info()}
        report.update(matmul_peak_gflops(cfg.bench.matmul_size, cfg.bench.matmul_reps))
        peak = report["matmul_peak_gflops"]
        if "data" in wanted:
            report["data"] = data_phase(cfg, threads, out_dir)
        if "train" in wanted:
            report["train"] = with_mfu(run(train_phase, _resolved(cfg), threads, sizes), peak)
        if "translate" in wanted:
            ckpt = bench_checkpoint(cfg, out_dir)
            report["translate"] = translate_phase(cfg, ckpt, threads, run, peak)
        if "scaling" in wanted:
            ckpt = bench_checkpoint(cfg, out_dir)
            report["scaling"] = scaling_phase(_resolved(cfg), ckpt, threads, run, sizes)
        if "serve" in wanted:
            ckpt = bench_checkpoint(cfg, out_dir)
            report["serve"] = serve_phase(_resolved(cfg), ckpt, threads, run)
    report["config"] = to_dict(cfg)
    text = json.dumps(report, indent=2)
    (out_dir / "bench.json").write_text(text + "\n", encoding="utf-8")
    print(text, flush=True)
    return report


def bench_checkpoint(cfg: DictConfig, out_dir: Path) -> str | list[str]:
    """`bench.ckpt` (a list for an ensemble), or a model trained for `bench.train_seconds`."""
    if cfg.bench.ckpt:
        paths = checkpoint_paths(cfg.bench.ckpt)
        return paths[0] if len(paths) == 1 else paths
    return train_checkpoint(cfg, out_dir / "train", cfg.bench.train_seconds)


def _resolved(cfg: DictConfig) -> DictConfig:
    """The config with every interpolation resolved (a fresh process has no Hydra context)."""
    return OmegaConf.create(to_dict(cfg))
