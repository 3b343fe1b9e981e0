"""The bench task on the committed sample: every figure present, finite, and consistent.

Timings themselves are never asserted (they belong to benchmarks, not tests).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from nmt.tasks.bench import bench
from nmt.tasks.bench_scaling import fitted_exponent
from tests.conftest import SAMPLE_DIR, compose_config

TINY = [
    "experiment=smoke",  # data=sample, model=tiny
    "bench.threads=1",
    "bench.seconds=1",
    "bench.warmup_steps=1",
    "bench.train_seconds=5",
    "bench.matmul_size=64",
    "bench.matmul_reps=2",
    "bench.data_pairs=500",
    "bench.translate_lines=12",
    "bench.chunk_lines=4",
    "bench.warmup_lines=2",
    f"bench.test_src={SAMPLE_DIR / 'test.de'}",
    f"bench.test_ref={SAMPLE_DIR / 'test.en'}",
]
VARIANTS = ("fp32", "int8", "fp32_shortlist", "int8_shortlist")
RUNS = [(search, variant) for search in ("greedy", "beam5") for variant in VARIANTS]
RATES = ("sent_per_s", "tok_per_s", "model_gflops", "mfu", "peak_rss_mb")
REQUIRED = [
    "matmul_peak_gflops",
    "train.tgt_tok_per_s",
    "train.model_gflops",
    "train.mfu",
    "train.peak_rss_mb",
    "data.binarize_pairs_per_s",
    "data.peak_rss_mb",
    *[f"translate.{s}.{p}.{name}" for s, p in RUNS for name in RATES],
]


def lookup(report: dict[str, Any], dotted: str) -> Any:
    value: Any = report
    for key in dotted.split("."):
        value = value[key]
    return value


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    """Run task=all in this process once (a fresh tiny model is trained for translation)."""
    root = tmp_path_factory.mktemp("bench")
    # The first (slowest) run stops after one chunk: every run then translates those lines.
    cfg = compose_config("bench", root, [*TINY, "bench.isolate=false", "bench.translate_seconds=0"])
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        report = bench(cfg)
    return report, stdout.getvalue(), root


def test_every_required_figure_is_positive_and_finite(run):
    report, _stdout, _root = run
    for key in REQUIRED:
        value = lookup(report, key)
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (key, value)
    for search, precision in RUNS:
        bleu = report["translate"][search][precision]["bleu"]
        assert math.isfinite(bleu) and 0 <= bleu <= 100
    assert report["device"]["torch_threads"] == 1 and report["device"]["cpu_model"]
    assert report["config"]["bench"]["seconds"] == 1
    assert "train_flops_per_token" in report["train"]["flops_formula"]


def test_mfu_is_model_flops_over_matmul_peak(run):
    report, _stdout, _root = run
    peak = report["matmul_peak_gflops"]
    figures = [report["train"], *(report["translate"][s][p] for s, p in RUNS)]
    for fig in figures:
        assert fig["mfu"] == pytest.approx(fig["model_gflops"] / peak, rel=1e-12)


def test_every_translation_run_covers_the_same_lines(run):
    report, _stdout, _root = run
    translate = report["translate"]
    assert translate["lines"] == 4  # one chunk: the time limit of the first run was 0 s
    assert {translate[s][p]["lines"] for s, p in RUNS} == {4}
    assert Path(translate["ckpt"]).is_file()


def test_stdout_is_the_json_report(run):
    report, stdout, root = run
    assert json.loads(stdout) == json.loads(json.dumps(report))
    (written,) = (root / "out").glob("bench.json")
    assert json.loads(written.read_text()) == json.loads(stdout)


def test_translate_phases_in_fresh_processes(run, tmp_path):
    checkpoint = run[0]["translate"]["ckpt"]
    cfg = compose_config(
        "bench",
        tmp_path,
        [*TINY, "task=translate", f"bench.ckpt={checkpoint}", "~bench.search.greedy"],
    )
    with contextlib.redirect_stdout(io.StringIO()):
        report = bench(cfg)
    assert "train" not in report and "data" not in report
    for variant in VARIANTS:
        figures = report["translate"]["beam5"][variant]
        assert figures["lines"] == 12
        assert figures["peak_rss_mb"] > 0 and figures["mfu"] > 0
        # the trained checkpoint carries a shortlist; only the *_shortlist variants use it
        assert figures["shortlist"] == variant.endswith("_shortlist")


def test_unknown_task_is_named(tmp_path):
    cfg = compose_config("bench", tmp_path, [*TINY, "task=everything"])
    with pytest.raises(ValueError, match="task='everything'"):
        bench(cfg)


def test_fitted_exponent_by_hand():
    assert fitted_exponent([1, 2, 4], [3.0, 6.0, 12.0]) == pytest.approx(1.0)
    assert fitted_exponent([10, 20, 40], [1.0, 4.0, 16.0]) == pytest.approx(2.0)


def test_scaling_task_times_every_size(tiny_checkpoint, tmp_path):
    sizes = ["bench.scaling.train_pairs=[50,100]", "bench.scaling.translate_lines=[4,8,12]"]
    overrides = [*TINY, "task=scaling", "bench.isolate=false", f"bench.ckpt={tiny_checkpoint}"]
    with contextlib.redirect_stdout(io.StringIO()):
        report = bench(compose_config("bench", tmp_path, [*overrides, *sizes]))
    train, translate = report["scaling"]["train"], report["scaling"]["translate"]
    assert train["pairs"] == [50, 100] and translate["lines"] == [4, 8, 12]
    # Every batch of the subset epoch was run: the batch counts grow with the pairs.
    assert 0 < train["batches"][0] < train["batches"][1]
    for series in (train, translate):
        assert all(s > 0 for s in series["seconds"])
        assert series["exponent"] == pytest.approx(
            fitted_exponent(series.get("pairs") or series["lines"], series["seconds"])
        )
