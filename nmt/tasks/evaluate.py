"""`evaluate` task: sacrebleu BLEU/chrF/TER of a hypothesis file or of a checkpoint's translations.

Either `hyp=FILE` scores existing (detokenized) output, or `ckpt=PATH src=FILE` translates `src`
first (with the `search` settings) and scores that. `ref` is one file or a list of files
(multi-reference). `tsv=FILE` (source TAB reference) replaces `src` and `ref`: its first
column is what `ckpt` translates, its second the reference. The report ends with
sacrebleu's BLEU line and its signature, so the last line of stdout is always the BLEU
figure; `compare=FILE` adds sacrebleu's paired significance test of a second system against
the first (the baseline).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig
from tqdm import tqdm

from nmt import metrics
from nmt.data.corpus import read_lines
from nmt.data.reader import TextSide, read_side, tsv_sides
from nmt.tasks.hydra_setup import to_dict, typed_dict
from nmt.tasks.translator_setup import (
    TranslatorConfig,
    build_translator,
    checkpoint_paths,
    warn_truncated,
)
from nmt.utils.io import atomic_open, atomic_write_lines


@dataclass(frozen=True)
class PairedConfig:
    """The `paired` node: sacrebleu's paired test between `hyp` (baseline) and `compare`."""

    test_type: str = "bs"
    n_samples: int = 1000
    seed: int | None = 12345

    def __post_init__(self) -> None:
        if self.test_type not in metrics.TEST_TYPES:
            raise ValueError(
                f"paired.test_type={self.test_type!r}: choose one of "
                f"{', '.join(metrics.TEST_TYPES)}"
            )
        if self.n_samples < 1:
            raise ValueError(f"paired.n_samples must be >= 1, got {self.n_samples}")
        if self.seed is not None and self.seed <= 0:
            raise ValueError(
                f"paired.seed must be a positive integer or null (OS entropy), got {self.seed}"
            )


@dataclass(frozen=True)
class EvaluateConfig:
    """The scoring keys of conf/evaluate.yaml, checked together before any work starts."""

    ref: tuple[str, ...]
    hyp: str | None = None
    ckpt: tuple[str, ...] | None = None  # one checkpoint, or the members of an ensemble
    src: str | None = None
    tsv: str | None = None  # source TAB reference: replaces src and ref
    hyp_out: str | None = None
    compare: str | None = None
    output_json: str | None = None
    metrics: tuple[str, ...] = metrics.METRIC_NAMES
    lowercase: bool = False
    tokenize: str | None = None
    width: int = 2
    on_invalid_utf8: str = "error"

    def __post_init__(self) -> None:
        if self.tsv is not None:
            for key in ("src", "ref"):
                if getattr(self, key):
                    raise ValueError(
                        f"{key}: not with tsv=FILE (its columns are the source and the reference)"
                    )
        elif not self.ref:
            raise ValueError(
                "ref: required (ref=FILE, or ref=[FILE1,FILE2] for multi-reference, or tsv=FILE)"
            )
        if (self.hyp is None) == (self.ckpt is None):
            raise ValueError("give exactly one of hyp=FILE or ckpt=PATH src=FILE")
        if self.ckpt is not None and self.src is None and self.tsv is None:
            raise ValueError("src: required with ckpt=PATH (the file to translate, or tsv=FILE)")
        for key in ("src", "hyp_out"):
            if getattr(self, key) is not None and self.ckpt is None:
                raise ValueError(f"{key}: only used with ckpt=PATH")
        if "bleu" not in self.metrics or len(set(self.metrics)) != len(self.metrics):
            raise ValueError(f"metrics: must list bleu, each metric once; got {list(self.metrics)}")
        for name in self.metrics:
            metrics.build_metric(name, lowercase=self.lowercase, tokenize=self.tokenize)
        if self.width < 0:
            raise ValueError(f"width must be >= 0, got {self.width}")

    @property
    def src_side(self) -> TextSide:
        """What `ckpt` translates: `src`, or the first column of `tsv`."""
        return tsv_sides(self.tsv)[0] if self.tsv is not None else TextSide(Path(str(self.src)))

    @property
    def ref_sides(self) -> tuple[TextSide, ...]:
        """The reference streams: the `ref` files, or the second column of `tsv`."""
        if self.tsv is not None:
            return (tsv_sides(self.tsv)[1],)
        return tuple(TextSide(Path(path)) for path in self.ref)

    @property
    def ref_names(self) -> list[str]:
        """The references as error messages name them (a TSV's column included)."""
        return [str(side) for side in self.ref_sides]

    @classmethod
    def from_config(cls, cfg: DictConfig) -> EvaluateConfig:
        """Pick the scoring keys out of the composed config; `ref` may be a string or a list."""
        if cfg.ref is None:
            refs: tuple[str, ...] = ()
        elif isinstance(cfg.ref, ListConfig):
            refs = tuple(str(path) for path in cfg.ref)
        else:
            refs = (str(cfg.ref),)
        keys = ("hyp", "src", "tsv", "hyp_out", "compare", "output_json", "tokenize")
        strings = {key: None if cfg[key] is None else str(cfg[key]) for key in keys}
        return cls(
            ref=refs,
            ckpt=None if cfg.ckpt is None else tuple(checkpoint_paths(cfg.ckpt)),
            metrics=tuple(cfg.metrics),
            lowercase=bool(cfg.lowercase),
            width=int(cfg.width),
            on_invalid_utf8=str(cfg.on_invalid_utf8),
            **strings,
        )


def translate_lines(cfg: DictConfig, lines: list[str]) -> list[str]:
    """Translate `lines` with the checkpoint `cfg.ckpt` and the `search` settings."""
    # torch and the model are only needed in this mode: keep `hyp=FILE` scoring light.
    from nmt.search.strategy import SearchConfig

    search = SearchConfig(**typed_dict(cfg.search, SearchConfig, "search"))
    settings = TranslatorConfig.from_config(cfg)
    translator = build_translator(cfg.ckpt, settings)
    with (
        contextlib.closing(translator),
        tqdm(total=len(lines), file=sys.stderr, disable=not settings.progress, unit="line") as bar,
    ):
        results = translator.translate(
            lines, search, batch_tokens=settings.batch_tokens, progress=bar.update
        )
    warn_truncated(sum(result.truncated for result in results), settings)
    return [result.text for result in results]


def _hypotheses(cfg: DictConfig, opts: EvaluateConfig, refs: list[list[str]]) -> list[str]:
    """Read `hyp`, or translate `src` (its line count is checked first: translating is slow)."""
    if opts.hyp is not None:
        return read_lines(opts.hyp, allow_empty=True, on_invalid_utf8=opts.on_invalid_utf8)
    src = read_side(opts.src_side, allow_empty=True, on_invalid_utf8=opts.on_invalid_utf8)
    metrics.check_streams(src, refs, hyp_name=str(opts.src_side), ref_names=opts.ref_names)
    hyps = translate_lines(cfg, src)
    if opts.hyp_out is not None:
        atomic_write_lines(opts.hyp_out, hyps)
    return hyps


def _compare(
    opts: EvaluateConfig, paired: PairedConfig, hyps: list[str], refs: list[list[str]]
) -> list[metrics.PairedResult]:
    other = read_lines(opts.compare, allow_empty=True, on_invalid_utf8=opts.on_invalid_utf8)
    metrics.check_streams(other, refs, hyp_name=opts.compare, ref_names=opts.ref_names)
    return metrics.paired_test(
        hyps,
        other,
        refs,
        metrics=opts.metrics,
        lowercase=opts.lowercase,
        tokenize=opts.tokenize,
        test_type=paired.test_type,
        n_samples=paired.n_samples,
        seed=paired.seed,
    )


def _report_lines(
    opts: EvaluateConfig,
    paired: PairedConfig,
    scores: metrics.Scores,
    comparison: Sequence[metrics.PairedResult],
) -> list[str]:
    """Other metrics, then the comparison, then the BLEU line last."""
    lines = [score.line for name, score in scores.metrics.items() if name != "bleu"]
    if comparison:
        baseline = opts.hyp if opts.hyp is not None else f"{_ckpt_name(opts)} on {opts.src_side}"
        lines.append(
            f"{metrics.TEST_TYPES[paired.test_type]} ({paired.n_samples} samples, seed "
            f"{paired.seed}): baseline {baseline} vs system {opts.compare}"
        )
        lines.extend(result.format(opts.width) for result in comparison)
    lines.append(scores.metrics["bleu"].line)
    return lines


def _ckpt_name(opts: EvaluateConfig) -> str | list[str]:
    """The checkpoint, or the list of an ensemble's checkpoints, as reports show it."""
    assert opts.ckpt is not None
    return opts.ckpt[0] if len(opts.ckpt) == 1 else list(opts.ckpt)


def _report(
    cfg: DictConfig,
    opts: EvaluateConfig,
    paired: PairedConfig,
    scores: metrics.Scores,
    comparison: Sequence[metrics.PairedResult],
    n_lines: int,
) -> dict[str, Any]:
    """The JSON report: inputs, settings, scores and signatures."""
    report: dict[str, Any] = {
        "hyp": opts.hyp,
        "ref": list(opts.ref),
        "tsv": opts.tsv,
        "n_lines": n_lines,
        "scores": scores.to_dict(),
    }
    if opts.ckpt is not None:
        report.update(
            ckpt=_ckpt_name(opts), src=opts.src, hyp_out=opts.hyp_out, quantize=cfg.quantize
        )
        report["search"] = to_dict(cfg.search)
    if comparison:
        report["comparison"] = {
            "compare": opts.compare,
            **asdict(paired),
            "results": [asdict(result) for result in comparison],
        }
    return report


def evaluate(cfg: DictConfig) -> float:
    """Score hypotheses (from `hyp` or translated from `ckpt`) against `ref`; return BLEU."""
    opts = EvaluateConfig.from_config(cfg)
    paired = PairedConfig(**to_dict(cfg.paired))
    refs = [read_side(side, on_invalid_utf8=opts.on_invalid_utf8) for side in opts.ref_sides]
    hyps = _hypotheses(cfg, opts, refs)
    hyp_name = opts.hyp if opts.hyp is not None else f"translations of {opts.src_side}"
    metrics.check_streams(hyps, refs, hyp_name=hyp_name, ref_names=opts.ref_names)
    scores = metrics.score_all(
        hyps,
        refs,
        metrics=opts.metrics,
        lowercase=opts.lowercase,
        tokenize=opts.tokenize,
        width=opts.width,
    )
    comparison = _compare(opts, paired, hyps, refs) if opts.compare is not None else []
    print("\n".join(_report_lines(opts, paired, scores, comparison)))
    if opts.output_json is not None:
        report = _report(cfg, opts, paired, scores, comparison, len(hyps))
        with atomic_open(opts.output_json) as handle:
            json.dump(report, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
    return scores.metrics["bleu"].score
