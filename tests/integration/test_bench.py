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

from nmt.checkpoint import load_checkpoint
from nmt.data.corpus import read_lines
from nmt.model.config import Seq2SeqConfig
from nmt.model.flops import decode_step_flops, encoder_flops_per_token
from nmt.search.strategy import SearchConfig
from nmt.tasks.bench import bench
from nmt.tasks.bench import translate_phase as translate_phase_module
from nmt.tasks.bench.scaling_phase import fitted_exponent
from nmt.translator import Translator
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
    "bench.latency.lines=3",
    "bench.latency.warmup_lines=1",
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
    "data.utf8_check_peak_rss_mb",
    "data.spm_sample_peak_rss_mb",
    "data.peak_rss_mb",
    *[f"translate.{s}.{p}.{name}" for s, p in RUNS for name in RATES],
    *[
        f"translate.latency.{v}.{name}"
        for v in ("fp32_shortlist", "int8_shortlist")
        for name in ("mean_ms", "median_ms", "p90_ms", "sent_per_s", "peak_rss_mb")
    ],
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


def test_train_figures_come_from_the_training_fit(run):
    report, _stdout, _root = run
    train = report["train"]
    assert train["loop"].startswith("pytorch_lightning.Trainer.fit")
    assert train["precision"] == report["config"]["trainer"]["precision"]
    assert train["accelerator"] == "CPUAccelerator" and train["skipped_updates"] == 0
    assert train["steps"] == train["batches"] >= 1  # one optimizer step per batch here


def raw_peak_gflops(report: dict[str, Any]) -> float:
    """The matmul peak from the raw measurement: 2·n³ FLOPs in the best time."""
    return 2 * report["matmul_size"] ** 3 / report["matmul_best_s"] / 1e9


def test_train_mfu_from_raw_counts(run):
    report, _stdout, _root = run
    train = report["train"]
    flops = train["flops_per_tgt_token"] * train["tgt_tokens"]  # over the timed steps
    expected = flops / train["seconds"] / 1e9 / raw_peak_gflops(report)
    assert train["mfu"] == pytest.approx(expected, rel=1e-9)


def test_translate_mfu_from_a_second_translation(run):
    """Decode FLOPs recounted from the same lines translated again, outside the bench."""
    report, _stdout, _root = run
    translate, bench_cfg = report["translate"], report["config"]["bench"]
    hparams = load_checkpoint(translate["ckpt"])["hyper_parameters"]
    config, vocab = Seq2SeqConfig.from_dict(hparams["model"]), hparams["tgt_vocab_size"]
    src = read_lines(SAMPLE_DIR / "test.de")[: translate["lines"]]
    for search, variant in RUNS:
        options, search_cfg = bench_cfg["variants"][variant], bench_cfg["search"][search]
        translator = Translator.from_checkpoint(translate["ckpt"], **options)
        beam = search_cfg["beam_size"]
        results = translator.translate(src, SearchConfig(**search_cfg), batch_tokens=6000)
        flops = 0.0
        for result in results:
            s, t = len(result.src_pieces), len(result.tgt_pieces)
            if s == 0:
                continue  # an empty line is not decoded
            # the encoder over S pieces, then T + 1 steps (eos) of every beam
            flops += encoder_flops_per_token(config) * s
            flops += beam * (t + 1) * decode_step_flops(config, vocab, s)
        figures = translate[search][variant]
        expected = flops / figures["seconds"] / 1e9 / raw_peak_gflops(report)
        assert figures["mfu"] == pytest.approx(expected, rel=1e-9), (search, variant)


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
        [
            *TINY,
            "task=translate",
            f"bench.ckpt={checkpoint}",
            "~bench.search.greedy",
            "bench.threads=2",
            "bench.translate_seconds=600",  # all 12 lines even on a loaded machine
        ],
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
        assert figures["workers"] == 2  # bench.workers: null = one per thread (bench.threads=2)


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
        sizes = series.get("pairs") or series["lines"]
        assert series["exponent"] == pytest.approx(loglog_slope(sizes, series["seconds"]))


def loglog_slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y on log x, in closed form: cov(x, y) / var(x)."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    cov = sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True))
    return cov / sum((a - mx) ** 2 for a in lx)


def test_an_ensemble_is_benched_with_the_flops_of_its_models(tiny_checkpoint, tmp_path):
    # Two copies of one model translate the same lines the same way at twice the FLOPs.
    fp32_greedy = ["~bench.search.beam5", *[f"~bench.variants.{v}" for v in VARIANTS[1:]]]
    common = [*TINY, "task=translate", "bench.isolate=false", "bench.translate_seconds=600"]
    common.append("bench.latency.lines=0")
    reports = []
    for name, ckpt in (("one", tiny_checkpoint), ("two", f"[{tiny_checkpoint},{tiny_checkpoint}]")):
        cfg = compose_config(
            "bench", tmp_path / name, [*common, *fp32_greedy, f"bench.ckpt={ckpt}"]
        )
        with contextlib.redirect_stdout(io.StringIO()):
            reports.append(bench(cfg)["translate"])
    one, two = (report["greedy"]["fp32"] for report in reports)
    assert reports[1]["ckpt"] == [str(tiny_checkpoint)] * 2
    assert (two["lines"], two["bleu"]) == (one["lines"], one["bleu"]) == (12, one["bleu"])
    gflop = [figures["model_gflops"] * figures["seconds"] for figures in (one, two)]
    assert gflop[1] == pytest.approx(2 * gflop[0], rel=1e-9)


def test_serve_task_loads_a_real_server_and_loses_nothing(tiny_checkpoint, tmp_path):
    pytest.importorskip("httpx2", reason="the serve extra is not installed")
    overrides = [
        *TINY,
        "task=serve",
        "bench.isolate=false",
        f"bench.ckpt={tiny_checkpoint}",
        "bench.serve.lines=12",
        "bench.serve.concurrency=[1,4]",
        "bench.serve.seconds=30",
        "bench.serve.soak_seconds=2",
        "bench.serve.rss_interval_s=0.5",
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        report = bench(compose_config("bench", tmp_path, overrides))["serve"]
    src = read_lines(SAMPLE_DIR / "test.de")[:12]
    expected = Translator.from_checkpoint(tiny_checkpoint).translate(src, SearchConfig())
    assert report["lines"] == 12 and report["exit_code"] == 0
    assert (report["lost"], report["mismatched"]) == (0, 0)
    for level in ("clients_1", "clients_4"):
        figures = report[level]
        assert figures["lines"] == len(expected)  # every line once, well within 30 s
        assert 0 < figures["p50_ms"] <= figures["p99_ms"]
        assert figures["vs_translate"] == pytest.approx(
            figures["lines_per_s"] / report["translate_lines_per_s"]
        )
    soak = report["soak"]
    assert soak["lines"] > 0 and len(soak["rss_mb"]) >= 2 and min(soak["rss_mb"]) > 0


def test_latency_translates_one_line_per_call_and_times_each(monkeypatch):
    """A fake translator and clock: 2 untimed lines, then one call per line of 10/20/30/40 ms."""
    calls = []

    class Fake:
        def translate(self, lines, config):
            calls.append(list(lines))

    clock = iter([0.0, 0.01, 0.01, 0.03, 0.03, 0.06, 0.06, 0.10])  # start, stop of each line
    monkeypatch.setattr(translate_phase_module, "build_translator", lambda ckpt, cfg: Fake())
    monkeypatch.setattr(translate_phase_module.time, "perf_counter", lambda: next(clock))
    lines = [f"line {i}" for i in range(10)]
    options = {"quantize": None, "shortlist": True}
    latency = {"lines": 4, "warmup_lines": 2}
    figures = translate_phase_module._latency_phase("ckpt", options, {}, lines, latency, 1)
    assert calls == [[line] for line in lines[:2] + lines[:4]]
    assert figures["median_ms"] == pytest.approx(25.0)
    assert figures["mean_ms"] == pytest.approx(25.0)
    assert figures["p90_ms"] == pytest.approx(37.0)
    assert figures["sent_per_s"] == pytest.approx(4 / 0.1)


def test_latency_names_a_search_the_bench_has(tmp_path):
    overrides = [*TINY, "task=translate", "bench.isolate=false", "~bench.search.beam5"]
    cfg = compose_config("bench", tmp_path, [*overrides, "bench.ckpt=unused.ckpt"])
    with pytest.raises(ValueError, match=r"bench.latency.search: 'beam5' is not in bench.search"):
        bench(cfg)
