"""Corpus-level BLEU, chrF and TER through sacrebleu, each with its reproducibility signature.

Hypotheses are detokenized text and references raw text: sacrebleu tokenizes both itself
(13a by default), which is what makes scores comparable across papers. `refs` always follows
sacrebleu's layout: a list of reference *streams*, each stream holding one line per hypothesis,
so `refs=[ref_a]` is single-reference and `refs=[ref_a, ref_b]` two references per segment.

`lowercase` and `tokenize` reproduce figures such as NVIDIA's and MLPerf's GNMT BLEU
(`sacrebleu -lc --tokenize intl`). `lowercase` also makes chrF case-insensitive; TER keeps
sacrebleu's default, which is already case-insensitive. Defaults are sacrebleu's own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

from sacrebleu.metrics import BLEU, CHRF, TER, BLEUScore
from sacrebleu.metrics.base import Metric, Score
from sacrebleu.significance import PairedTest

METRIC_NAMES = ("bleu", "chrf", "ter")
TEST_TYPES = {"bs": "paired bootstrap resampling", "ar": "paired approximate randomization"}


def check_streams(
    hyps: Sequence[str],
    refs: Sequence[Sequence[str]],
    *,
    hyp_name: str = "hypotheses",
    ref_names: Sequence[str] | None = None,
) -> None:
    """Raise ValueError unless there are hypotheses and every reference stream matches them.

    Args:
        hyps: one hypothesis per segment.
        refs: reference streams, each with one line per segment.
        hyp_name: how to call the hypotheses in the message (e.g. their file name).
        ref_names: how to call each reference stream (e.g. file names); defaults to "reference N".
    """
    if not refs:
        raise ValueError("no reference stream given")
    if not hyps:
        raise ValueError(f"{hyp_name}: no segments to score")
    names = ref_names if ref_names is not None else [f"reference {i + 1}" for i in range(len(refs))]
    for name, ref in zip(names, refs, strict=True):
        if len(ref) != len(hyps):
            raise ValueError(
                f"line counts differ: {hyp_name} has {len(hyps)} lines, {name} has {len(ref)} lines"
            )


def build_metric(name: str, *, lowercase: bool = False, tokenize: str | None = None) -> Metric:
    """Create the sacrebleu metric called `name` ("bleu", "chrf" or "ter").

    Raises:
        ValueError: unknown metric name or BLEU tokenizer.
    """
    if name == "bleu":
        if tokenize is not None and tokenize not in BLEU.TOKENIZERS:
            raise ValueError(
                f"tokenize={tokenize!r}: unknown BLEU tokenizer; choose one of "
                f"{', '.join(BLEU.TOKENIZERS)} (or null for sacrebleu's default 13a)"
            )
        return BLEU(lowercase=lowercase, tokenize=tokenize)
    if name == "chrf":
        return CHRF(lowercase=lowercase)
    if name == "ter":
        return TER()
    raise ValueError(f"metrics: unknown metric {name!r}; choose from {', '.join(METRIC_NAMES)}")


def _score(metric: Metric, hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> tuple[Score, str]:
    check_streams(hyps, refs)
    score = metric.corpus_score(list(hyps), [list(ref) for ref in refs])
    # The signature is only complete (nrefs) once the metric has seen the references.
    return score, metric.get_signature().format()


def corpus_bleu(
    hyps: Sequence[str],
    refs: Sequence[Sequence[str]],
    *,
    lowercase: bool = False,
    tokenize: str | None = None,
) -> tuple[BLEUScore, str]:
    """Score detokenized hypotheses with corpus BLEU (Papineni et al. 2002).

    Returns:
        sacrebleu's score object (`.score` is the BLEU value, `str()` its report line) and the
        signature, e.g. "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0".
    """
    return _score(build_metric("bleu", lowercase=lowercase, tokenize=tokenize), hyps, refs)


@dataclass(frozen=True)
class MetricScore:
    """One corpus-level score.

    Attributes:
        name: sacrebleu's name for it ("BLEU", "chrF2", "TER").
        score: the value.
        signature: sacrebleu's reproducibility signature.
        line: sacrebleu's report line with the signature, as `sacrebleu -f text` prints it:
            "BLEU|nrefs:1|...|version:2.6.0 = 27.40 60.1/33.2/... (BP = ...)".
    """

    name: str
    score: float
    signature: str
    line: str


@dataclass(frozen=True)
class Scores:
    """The scores of one system, keyed by metric name ("bleu", "chrf", "ter")."""

    metrics: dict[str, MetricScore]

    def to_dict(self) -> dict[str, dict[str, object]]:
        """Plain containers for a JSON report."""
        return {key: asdict(value) for key, value in self.metrics.items()}


def score_all(
    hyps: Sequence[str],
    refs: Sequence[Sequence[str]],
    *,
    metrics: Sequence[str] = METRIC_NAMES,
    lowercase: bool = False,
    tokenize: str | None = None,
    width: int = 2,
) -> Scores:
    """Compute every metric in `metrics` (in that order); `width` is the printed decimals."""
    results = {}
    for name in metrics:
        score, signature = _score(
            build_metric(name, lowercase=lowercase, tokenize=tokenize), hyps, refs
        )
        line = score.format(width=width, signature=signature)
        results[name] = MetricScore(score.name, float(score.score), signature, line)
    return Scores(results)


@dataclass(frozen=True)
class PairedResult:
    """One metric of a paired significance test between a baseline and a system.

    Attributes:
        name: sacrebleu's metric name ("BLEU", ...).
        baseline: the baseline's actual score.
        system: the system's actual score.
        p_value: probability of a difference at least this large under the null hypothesis
            that both outputs come from the same process.
        baseline_mean, baseline_ci, system_mean, system_ci: bootstrap estimate of the true
            mean and half-width of its 95% confidence interval (None where the test gives none).
        signature: the metric signature extended with the test type, sample count and seed.
    """

    name: str
    baseline: float
    system: float
    p_value: float
    baseline_mean: float | None
    baseline_ci: float | None
    system_mean: float | None
    system_ci: float | None
    signature: str

    def format(self, width: int = 2) -> str:
        """One report line; a "*" marks p < 0.05, as sacrebleu's table does."""
        mark = "*" if self.p_value < 0.05 else ""
        baseline = _with_ci(self.baseline, self.baseline_mean, self.baseline_ci, width)
        system = _with_ci(self.system, self.system_mean, self.system_ci, width)
        return (
            f"{self.name}: baseline {baseline} | system {system} | "
            f"p = {self.p_value:.4f}{mark} | signature: {self.signature}"
        )


def _with_ci(score: float, mean: float | None, ci: float | None, width: int) -> str:
    if mean is None or ci is None:
        return f"{score:.{width}f}"
    return f"{score:.{width}f} (μ = {mean:.{width}f} ± {ci:.{width}f})"


@contextlib.contextmanager
def _sacrebleu_seed(seed: int | None) -> Iterator[None]:
    # sacrebleu reads its RNG seed only from SACREBLEU_SEED ("none" = OS entropy), in several
    # places; setting it for the duration of the test is the one way to pass ours.
    previous = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = "none" if seed is None else str(seed)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["SACREBLEU_SEED"]
        else:
            os.environ["SACREBLEU_SEED"] = previous


def _as_float(value: object) -> float | None:
    return None if value is None else float(value)


def paired_test(
    baseline_hyps: Sequence[str],
    system_hyps: Sequence[str],
    refs: Sequence[Sequence[str]],
    *,
    metrics: Sequence[str] = METRIC_NAMES,
    lowercase: bool = False,
    tokenize: str | None = None,
    test_type: str = "bs",
    n_samples: int = 1000,
    seed: int | None = 12345,
) -> list[PairedResult]:
    """Test whether two systems differ significantly, with sacrebleu's paired tests.

    `test_type` "bs" is paired bootstrap resampling (Koehn 2004), "ar" approximate
    randomization (Riezler & Maxwell 2005). Results equal `sacrebleu REF -i BASE SYS
    --paired-bs --paired-bs-n N` run with `SACREBLEU_SEED=seed`.

    Raises:
        ValueError: unknown test type, `n_samples` < 1, a seed of 0 (sacrebleu would silently
            leave the system's resampling unseeded) or mismatched line counts.
    """
    if test_type not in TEST_TYPES:
        raise ValueError(f"test_type={test_type!r}: choose one of {', '.join(TEST_TYPES)}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if seed is not None and seed <= 0:
        raise ValueError(f"seed must be a positive integer or null (OS entropy), got {seed}")
    check_streams(baseline_hyps, refs, hyp_name="baseline")
    check_streams(system_hyps, refs, hyp_name="system")
    scorers = {name: build_metric(name, lowercase=lowercase, tokenize=tokenize) for name in metrics}
    systems = [("baseline", list(baseline_hyps)), ("system", list(system_hyps))]
    with _sacrebleu_seed(seed):
        test = PairedTest(
            systems, scorers, [list(ref) for ref in refs], test_type=test_type, n_samples=n_samples
        )
        signatures, table = test()
    results = []
    for name, signature in signatures.items():
        base, other = table[name]
        results.append(
            PairedResult(
                name=name,
                baseline=float(base.score),
                system=float(other.score),
                p_value=float(other.p_value),
                baseline_mean=_as_float(base.mean),
                baseline_ci=_as_float(base.ci),
                system_mean=_as_float(other.mean),
                system_ci=_as_float(other.ci),
                signature=signature.format(),
            )
        )
    return results
