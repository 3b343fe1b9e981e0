"""nmt.metrics against sacrebleu's own command line on the same files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nmt import metrics
from nmt.tasks.hydra_setup import ROOT_DIR

SACREBLEU = [sys.executable, "-m", "sacrebleu"]
N_LINES = 40


def sacrebleu_cli(*args: str, seed: str = "12345") -> str:
    """Run sacrebleu's CLI (quiet, no colours) and return its stdout."""
    env = {**os.environ, "SACREBLEU_SEED": seed, "NO_COLOR": "1"}
    done = subprocess.run(
        [*SACREBLEU, *args, "-q", "-nc"], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout


def corpus_chrf(hyps: list[str], refs: list[list[str]], *, lowercase: bool = False):
    """chrF through nmt.metrics' pieces, as `corpus_bleu` computes BLEU: score, signature."""
    return corpus_score(metrics.build_metric("chrf", lowercase=lowercase), hyps, refs)


def corpus_ter(hyps: list[str], refs: list[list[str]]):
    """TER through nmt.metrics' pieces, as `corpus_bleu` computes BLEU: score, signature."""
    return corpus_score(metrics.build_metric("ter"), hyps, refs)


def corpus_score(metric, hyps: list[str], refs: list[list[str]]):
    metrics.check_streams(hyps, refs)
    score = metric.corpus_score(hyps, refs)
    return score, metric.get_signature().format()


def cli_scores(ref_paths: list[Path], hyp_path: Path, *options: str) -> dict[str, dict]:
    """sacrebleu's JSON report for BLEU, chrF and TER, keyed by metric name."""
    refs = [str(path) for path in ref_paths]
    metric_args = ["-m", "bleu", "chrf", "ter", "-w", "6"]
    out = sacrebleu_cli(*refs, "-i", str(hyp_path), *metric_args, *options)
    return {entry["name"]: entry for entry in json.loads(out)}


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A reference, a second reference and two perturbed systems built from the sample data."""
    lines = (ROOT_DIR / "data" / "sample" / "test.en").read_text("utf-8").split("\n")[:N_LINES]
    variants = {
        "ref": lines,
        "ref2": [line.replace(" and ", " & ").replace("LORD", "Lord") for line in lines],
        "sys_a": [
            line.rsplit(" ", 1)[0] if i % 3 == 0 else line.replace("the ", "The ")
            for i, line in enumerate(lines)
        ],
        "sys_b": [
            line.split(" ", 1)[-1] if i % 4 == 0 else line.replace(",", "")
            for i, line in enumerate(lines)
        ],
    }
    folder = tmp_path_factory.mktemp("streams")
    paths = {}
    for name, content in variants.items():
        paths[name] = folder / f"{name}.txt"
        paths[name].write_text("\n".join(content) + "\n", encoding="utf-8")
    return paths


def read(path: Path) -> list[str]:
    return path.read_text("utf-8").split("\n")[:-1]


@pytest.mark.parametrize(
    ("ref_names", "lowercase", "tokenize", "cli_options"),
    [
        (["ref"], False, None, []),
        (["ref", "ref2"], False, None, []),
        (["ref"], True, "intl", ["-lc", "--chrf-lowercase", "--tokenize", "intl"]),
    ],
)
def test_scores_equal_sacrebleu_cli(
    streams: dict[str, Path],
    ref_names: list[str],
    lowercase: bool,
    tokenize: str | None,
    cli_options: list[str],
) -> None:
    refs = [read(streams[name]) for name in ref_names]
    hyps = read(streams["sys_a"])
    expected = cli_scores([streams[n] for n in ref_names], streams["sys_a"], *cli_options)

    bleu, bleu_sig = metrics.corpus_bleu(hyps, refs, lowercase=lowercase, tokenize=tokenize)
    chrf, chrf_sig = corpus_chrf(hyps, refs, lowercase=lowercase)
    ter, ter_sig = corpus_ter(hyps, refs)
    for score, sig in ((bleu, bleu_sig), (chrf, chrf_sig), (ter, ter_sig)):
        assert float(f"{score.score:.6f}") == expected[score.name]["score"]
        assert sig == expected[score.name]["signature"]

    scores = metrics.score_all(hyps, refs, lowercase=lowercase, tokenize=tokenize)
    assert list(scores.metrics) == ["bleu", "chrf", "ter"]
    for result in scores.metrics.values():
        assert float(f"{result.score:.6f}") == expected[result.name]["score"]
        assert result.signature == expected[result.name]["signature"]


def test_score_lines_equal_sacrebleu_text_output(streams: dict[str, Path]) -> None:
    text = sacrebleu_cli(
        str(streams["ref"]), "-i", str(streams["sys_b"]), "-m", "bleu", "chrf", "ter", "-f", "text"
    )
    # sacrebleu right-aligns its lines on "="; the content is what must agree.
    expected = [line.strip() for line in text.strip().split("\n")]
    scores = metrics.score_all(read(streams["sys_b"]), [read(streams["ref"])], width=1)
    assert [result.line for result in scores.metrics.values()] == expected


def test_lowercase_ignores_case_only_differences(streams: dict[str, Path]) -> None:
    refs = [read(streams["ref"])]
    upper = [line.upper() for line in refs[0]]
    mixed, _ = metrics.corpus_bleu(upper, refs)
    folded, sig = metrics.corpus_bleu(upper, refs, lowercase=True)
    assert mixed.score < 50.0
    assert folded.score == pytest.approx(100.0)
    assert "case:lc" in sig


def test_to_dict_round_trips_through_json(streams: dict[str, Path]) -> None:
    scores = metrics.score_all(read(streams["sys_a"]), [read(streams["ref"])], metrics=["ter"])
    payload = json.loads(json.dumps(scores.to_dict()))
    ter = scores.metrics["ter"]
    assert payload == {
        "ter": {"name": "TER", "score": ter.score, "signature": ter.signature, "line": ter.line}
    }


def test_line_count_mismatch_names_streams_and_counts() -> None:
    with pytest.raises(ValueError, match=r"hyp\.txt has 2 lines, b\.txt has 3 lines"):
        metrics.check_streams(
            ["x", "y"], [["x", "y"], ["x", "y", "z"]], hyp_name="hyp.txt", ref_names=["a", "b.txt"]
        )
    with pytest.raises(ValueError, match="reference 1 has 1 lines"):
        metrics.corpus_bleu(["x", "y"], [["x"]])
    with pytest.raises(ValueError, match="no segments"):
        corpus_chrf([], [[]])


def test_unknown_metric_or_tokenizer_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="metrics: unknown metric 'meteor'"):
        metrics.build_metric("meteor")
    with pytest.raises(ValueError, match="tokenize='moses'"):
        metrics.corpus_bleu(["a"], [["a"]], tokenize="moses")


def parse_paired_table(text: str) -> dict[str, list[float]]:
    """Numbers per metric column from sacrebleu's paired-test table (-f text)."""
    rows = [line.split("│")[1:-1] for line in text.split("\n") if line.startswith("│")]
    header, baseline, system, p_values = rows
    table = {}
    for col, title in enumerate(header):
        if "System" in title:
            continue
        name = title.split("(")[0].strip()
        cells = " ".join([baseline[col], system[col], p_values[col]])
        table[name] = [float(number) for number in re.findall(r"\d+\.\d+", cells)]
    return table


def four_decimals(values: list[float]) -> list[float]:
    """The numbers as sacrebleu prints them with -w 4."""
    return [float(f"{value:.4f}") for value in values]


def test_paired_bootstrap_equals_sacrebleu_cli(streams: dict[str, Path]) -> None:
    refs = [read(streams["ref"]), read(streams["ref2"])]
    files = [str(streams[name]) for name in ("ref", "ref2")]
    systems = [str(streams[name]) for name in ("sys_a", "sys_b")]
    options = ["--paired-bs", "--paired-bs-n", "150", "-f", "text", "-w", "4"]
    text = sacrebleu_cli(*files, "-i", *systems, "-m", "bleu", "chrf", "ter", *options, seed="777")
    expected = parse_paired_table(text)
    before = os.environ.get("SACREBLEU_SEED")

    results = metrics.paired_test(
        read(streams["sys_a"]), read(streams["sys_b"]), refs, n_samples=150, seed=777
    )

    assert os.environ.get("SACREBLEU_SEED") == before
    assert [r.name for r in results] == list(expected)
    for r in results:
        ours = [r.baseline, r.baseline_mean, r.baseline_ci, r.system, r.system_mean, r.system_ci]
        assert four_decimals([*ours, r.p_value]) == expected[r.name]
        assert r.signature.startswith("nrefs:2|bs:150|seed:777|")
        assert r.signature in text


def test_approximate_randomization_equals_sacrebleu_cli(streams: dict[str, Path]) -> None:
    refs = [read(streams["ref"])]
    systems = [str(streams[name]) for name in ("sys_a", "sys_b")]
    options = ["--paired-ar", "--paired-ar-n", "200", "-f", "text", "-w", "4"]
    text = sacrebleu_cli(str(streams["ref"]), "-i", *systems, "-m", "bleu", *options)
    expected = parse_paired_table(text)["BLEU"]
    (result,) = metrics.paired_test(
        read(streams["sys_a"]),
        read(streams["sys_b"]),
        refs,
        metrics=["bleu"],
        test_type="ar",
        n_samples=200,
    )
    assert result.baseline_mean is None and result.system_ci is None
    assert four_decimals([result.baseline, result.system, result.p_value]) == expected
    assert "ar:200|seed:12345" in result.signature


def test_paired_test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="test_type='t'"):
        metrics.paired_test(["a"], ["a"], [["a"]], test_type="t")
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        metrics.paired_test(["a"], ["a"], [["a"]], n_samples=0)
    with pytest.raises(ValueError, match="seed must be a positive integer"):
        metrics.paired_test(["a"], ["a"], [["a"]], seed=0)
    with pytest.raises(ValueError, match="system has 1 lines, reference 1 has 2 lines"):
        metrics.paired_test(["a", "b"], ["a"], [["a", "b"]])
