"""Translation side of `nmt-bench`: speed, BLEU and decode FLOP/s per search and variant."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from nmt.checkpoint import load_meta
from nmt.data.corpus import read_lines
from nmt.metrics import corpus_bleu
from nmt.model.config import Seq2SeqConfig
from nmt.model.flops import decode_step_flops, encoder_flops_per_token
from nmt.search.strategy import SearchConfig
from nmt.tasks.bench.machine import with_mfu
from nmt.tasks.bench.process import Runner, peak_rss_mb
from nmt.tasks.hydra_setup import to_dict
from nmt.tasks.translator_setup import TranslatorConfig, build_translator, checkpoint_paths
from nmt.translator import Translation

DECODE_FLOPS_FORMULA = (
    "sum over lines of nmt.model.flops.encoder_flops_per_token x S + beam_size x (T + 1) x "
    "nmt.model.flops.decode_step_flops(S), S/T = source/output pieces (eos step counted); the "
    "output layer is counted over the whole vocabulary also with a shortlist (effective FLOP/s); "
    "an ensemble (bench.ckpt=[A,B,...]) counts the sum over its models"
)


@dataclass(frozen=True)
class TranslateSettings:
    """How each translation run is done (see conf/bench.yaml)."""

    threads: int
    batch_tokens: int
    workers: int
    max_src_tokens: int
    chunk_lines: int
    warmup_lines: int


def translate_phase(
    cfg: DictConfig, ckpt: str | list[str], threads: int, run: Runner, peak_gflops: float
) -> dict[str, Any]:
    """Translate the first `bench.translate_lines` test lines with `ckpt`: every search x variant.

    Args:
        cfg: the bench config.
        ckpt: the checkpoint, or the checkpoints of an ensemble.
        threads: intra-op threads of every run.
        run: calls each run's function (in a fresh process, or in this one).
        peak_gflops: the matmul peak of this sitting (for `mfu`).
    """
    bench_cfg = cfg.bench
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
        workers=bench_cfg.workers,
        max_src_tokens=bench_cfg.max_src_tokens,
        chunk_lines=bench_cfg.chunk_lines,
        warmup_lines=bench_cfg.warmup_lines,
    )
    searches, variants = to_dict(bench_cfg.search), to_dict(bench_cfg.variants)
    latency = to_dict(bench_cfg.latency)
    if latency["lines"]:
        _check_names("bench.latency.search", [latency["search"]], "bench.search", searches)
        _check_names("bench.latency.variants", latency["variants"], "bench.variants", variants)
    limit = bench_cfg.translate_seconds
    report = translate_runs(ckpt, searches, variants, (src, refs), settings, limit, run)
    for name in searches:
        for variant in variants:
            with_mfu(report[name][variant], peak_gflops)
    if latency["lines"]:
        search = searches[latency["search"]]
        report["latency"] = {
            "search": latency["search"],
            "lines": min(latency["lines"], len(src)),
            "threads": threads,
            **{
                variant: run(_latency_phase, ckpt, variants[variant], search, src, latency, threads)
                for variant in latency["variants"]
            },
        }
    return report


def _check_names(key: str, names: list[str], where: str, known: Mapping[str, Any]) -> None:
    """Stop with one line if a name in `names` (the value of `key`) is not a key of `known`."""
    for name in names:
        if name not in known:
            raise ValueError(f"{key}: {name!r} is not in {where} ({', '.join(known) or 'empty'})")


def translate_runs(
    ckpt: str | list[str],
    searches: Mapping[str, Mapping[str, Any]],
    variants: Mapping[str, Mapping[str, Any]],
    lines: tuple[list[str], list[str]],
    settings: TranslateSettings,
    seconds: float,
    run: Runner,
) -> dict[str, Any]:
    """Translate with every search x variant; report speed, BLEU, FLOP/s and peak RSS.

    The slowest run (largest beam, first variant) translates lines in order until
    `seconds` have elapsed; every other run then translates those same lines, so that
    their BLEU scores are comparable.

    Args:
        ckpt: the checkpoint, or the checkpoints of an ensemble.
        searches: name -> search config (e.g. {"greedy": ..., "beam5": ...}).
        variants: name -> {quantize, shortlist} of `Translator.from_checkpoint`
            (e.g. {"fp32": {"quantize": None, "shortlist": False}, ...}).
        lines: (source lines, reference lines) of the test set.
        settings: batching and warm-up.
        seconds: time limit of the first run.
        run: calls a phase function (in a fresh process, or in this one).

    Returns:
        {search: {variant: figures}} plus the line count, BLEU signature and FLOP formula.
    """
    members = [load_meta(path).hparams for path in checkpoint_paths(ckpt)]
    configs = [hparams.model_config for hparams in members]
    order = sorted(searches, key=lambda name: -searches[name]["beam_size"])
    src, refs = lines
    report: dict[str, Any] = {name: {} for name in searches}
    limit: float | None = seconds
    signature = ""
    for name in order:
        for variant, options in variants.items():
            raw = run(
                _translate_phase, ckpt, dict(options), dict(searches[name]), src, settings, limit
            )
            src = src[: len(raw["hyps"])]
            limit = None
            vocab_size = members[0].tgt_vocab_size
            report[name][variant], signature = _figures(raw, refs, configs, vocab_size)
    return {
        "ckpt": ckpt,
        "lines": len(src),
        "bleu_signature": signature,
        "flops_formula": DECODE_FLOPS_FORMULA,
        **report,
    }


def _translate_phase(
    ckpt: str | list[str],
    options: dict[str, Any],
    search: dict[str, Any],
    lines: list[str],
    settings: TranslateSettings,
    limit: float | None,
) -> dict[str, Any]:
    """Load the model (untimed), warm up, then translate `lines` in chunks until `limit` s."""
    torch.set_num_threads(settings.threads)
    variant = TranslatorConfig(
        quantize=options["quantize"],
        shortlist=options["shortlist"],
        max_src_tokens=settings.max_src_tokens,
        workers=settings.workers,
    )
    translator = build_translator(ckpt, variant)
    config = SearchConfig(**search)
    translator.translate(lines[: settings.warmup_lines], config, batch_tokens=settings.batch_tokens)
    results: list[Translation] = []
    start = time.perf_counter()
    for first in range(0, len(lines), settings.chunk_lines):
        chunk = lines[first : first + settings.chunk_lines]
        results += translator.translate(chunk, config, batch_tokens=settings.batch_tokens)
        if limit is not None and time.perf_counter() - start >= limit:
            break
    seconds = time.perf_counter() - start
    translator.close()
    return {
        "seconds": seconds,
        "hyps": [r.text for r in results],
        "src_lengths": [len(r.src_pieces) for r in results],
        "tgt_lengths": [len(r.tgt_pieces) for r in results],
        "beam_size": config.beam_size,
        "shortlist": translator.shortlists is not None,
        "workers": translator.workers,
        "peak_rss_mb": peak_rss_mb(),
    }


def _latency_phase(
    ckpt: str | list[str],
    options: dict[str, Any],
    search: dict[str, Any],
    lines: list[str],
    latency: dict[str, Any],
    threads: int,
) -> dict[str, float]:
    """Translate the first `latency["lines"]` lines one at a time in this process (a batch of
    one, `threads` intra-op threads) after `latency["warmup_lines"]` untimed; per-line ms."""
    torch.set_num_threads(threads)
    variant = TranslatorConfig(
        quantize=options["quantize"], shortlist=options["shortlist"], workers=1
    )
    translator = build_translator(ckpt, variant)
    config = SearchConfig(**search)
    for line in lines[: latency["warmup_lines"]]:
        translator.translate([line], config)
    times = []
    for line in lines[: latency["lines"]]:
        start = time.perf_counter()
        translator.translate([line], config)
        times.append(time.perf_counter() - start)
    times_ms = np.sort(np.array(times) * 1e3)
    return {
        "mean_ms": float(times_ms.mean()),
        "median_ms": float(np.median(times_ms)),
        "p90_ms": float(np.percentile(times_ms, 90)),
        "sent_per_s": len(times) / float(sum(times)),
        "peak_rss_mb": peak_rss_mb(),
    }


def _figures(
    raw: dict[str, Any], refs: list[str], configs: list[Seq2SeqConfig], tgt_vocab_size: int
) -> tuple[dict[str, float], str]:
    """Rates, BLEU against the matching references, and decode GFLOP/s of one run.

    `configs` are the models' configs (several for an ensemble, whose FLOPs add up).
    """
    seconds, hyps = raw["seconds"], raw["hyps"]
    bleu, signature = corpus_bleu(hyps, [refs[: len(hyps)]])
    flops = sum(
        encoder_flops_per_token(config) * s
        + raw["beam_size"] * (t + 1) * decode_step_flops(config, tgt_vocab_size, s)
        for config in configs
        for s, t in zip(raw["src_lengths"], raw["tgt_lengths"], strict=True)
        if s > 0  # empty inputs are not decoded
    )
    figures = {
        "lines": len(hyps),
        "seconds": seconds,
        "sent_per_s": len(hyps) / seconds,
        "tok_per_s": sum(raw["tgt_lengths"]) / seconds,
        "src_tok_per_s": sum(raw["src_lengths"]) / seconds,
        "bleu": float(bleu.score),
        "model_gflops": flops / seconds / 1e9,
        "peak_rss_mb": raw["peak_rss_mb"],
        "shortlist": raw["shortlist"],
        "workers": raw["workers"],
    }
    return figures, signature
