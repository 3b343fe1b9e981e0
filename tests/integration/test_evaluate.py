"""The evaluate task and scripts/evaluate.py, checked against sacrebleu's own command line."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import re
import subprocess
import sys
import types
from dataclasses import asdict
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from nmt.tasks.evaluate import evaluate
from nmt.tasks.hydra_setup import CONF_DIR, ROOT_DIR, to_dict

SAMPLE = ROOT_DIR / "data" / "sample"
N_LINES = 30


def sacrebleu_cli(*args: str) -> str:
    """Run sacrebleu's CLI (quiet, no colours, its default seed) and return its stdout."""
    env = {**os.environ, "SACREBLEU_SEED": "12345", "NO_COLOR": "1"}
    command = [sys.executable, "-m", "sacrebleu", *args, "-q", "-nc"]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout


def cli_lines(refs: list[Path], hyp: Path, *options: str) -> list[str]:
    """sacrebleu's text report lines for BLEU, chrF and TER (alignment padding stripped)."""
    files = [str(ref) for ref in refs]
    metric_args = ["-m", "bleu", "chrf", "ter", "-f", "text"]
    text = sacrebleu_cli(*files, "-i", str(hyp), *metric_args, *options)
    return [line.strip() for line in text.strip().split("\n")]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Source, two references and two perturbed systems from the committed sample."""
    src = (SAMPLE / "test.de").read_text("utf-8").split("\n")[:N_LINES]
    ref = (SAMPLE / "test.en").read_text("utf-8").split("\n")[:N_LINES]
    return {
        "src": write(tmp_path / "src.de", src),
        "ref": write(tmp_path / "ref.en", ref),
        "ref2": write(tmp_path / "ref2.en", [r.replace(" and ", " And ") for r in ref]),
        "hyp": write(tmp_path / "hyp.en", [" ".join(r.split()[:-1]) for r in ref]),
        "other": write(tmp_path / "other.en", [r.replace("the ", "a ") for r in ref]),
    }


def compose_config(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="evaluate", overrides=list(overrides))


def run_script(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT_DIR / "scripts" / "evaluate.py"), *overrides]
    command.append(f"hydra.run.dir={tmp_path / 'run'}")
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)


def test_script_prints_sacrebleu_lines_bleu_last_and_writes_json(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    report = tmp_path / "report.json"
    done = run_script(
        tmp_path, f"hyp={files['hyp']}", f"ref={files['ref']}", f"output_json={report}"
    )
    assert done.returncode == 0, done.stderr
    expected = cli_lines([files["ref"]], files["hyp"], "-w", "2")
    printed = done.stdout.strip().split("\n")
    bleu_line = next(line for line in expected if line.startswith("BLEU|"))
    assert printed[-1] == bleu_line
    assert sorted(printed) == sorted(expected)

    data = json.loads(report.read_text("utf-8"))
    assert data["hyp"] == str(files["hyp"]) and data["ref"] == [str(files["ref"])]
    assert data["n_lines"] == N_LINES
    cli_json = sacrebleu_cli(
        str(files["ref"]), "-i", str(files["hyp"]), "-m", "bleu", "chrf", "ter", "-w", "6"
    )
    for entry in json.loads(cli_json):
        ours = next(s for s in data["scores"].values() if s["name"] == entry["name"])
        assert float(f"{ours['score']:.6f}") == entry["score"]
        assert ours["signature"] == entry["signature"]
        assert ours["line"] in expected


@pytest.mark.parametrize(
    "entry", [[sys.executable, str(ROOT_DIR / "scripts" / "evaluate.py")], ["nmt-evaluate"]]
)
def test_line_count_mismatch_exits_nonzero_naming_files(
    tmp_path: Path, files: dict[str, Path], entry: list[str]
) -> None:
    short = write(tmp_path / "short.en", ["a b c"] * 5)
    if entry == ["nmt-evaluate"]:
        entry = [str(Path(sys.executable).parent / "nmt-evaluate")]
    command = [*entry, f"hyp={short}", f"ref={files['ref']}", f"hydra.run.dir={tmp_path / 'r'}"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode != 0
    message = f"{short} has 5 lines, {files['ref']} has {N_LINES} lines"
    assert message in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("ref_keys", "overrides", "cli_options"),
    [
        (["ref", "ref2"], [], []),
        (["ref"], ["lowercase=true", "tokenize=intl"], ["-lc", "--chrf-lowercase", "-tok", "intl"]),
    ],
)
def test_in_process_scores_equal_sacrebleu(
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    ref_keys: list[str],
    overrides: list[str],
    cli_options: list[str],
) -> None:
    refs = [files[key] for key in ref_keys]
    ref_list = ",".join(str(ref) for ref in refs)
    cfg = compose_config(f"hyp={files['hyp']}", f"ref=[{ref_list}]", *overrides)

    bleu = evaluate(cfg)

    printed = capsys.readouterr().out.strip().split("\n")
    expected = cli_lines(refs, files["hyp"], "-w", "2", *cli_options)
    assert sorted(printed) == sorted(expected)
    assert printed[-1].startswith(f"BLEU|nrefs:{len(refs)}|")
    cli_bleu = sacrebleu_cli(*map(str, refs), "-i", str(files["hyp"]), "-w", "6", *cli_options)
    assert float(f"{bleu:.6f}") == json.loads(cli_bleu)["score"]


def test_undecodable_hypothesis_names_file_and_line(tmp_path: Path, files: dict[str, Path]) -> None:
    bad = tmp_path / "bad.en"
    bad.write_bytes(b"fine\nalso fine\nbroken \xff here\n")
    cfg = compose_config(f"hyp={bad}", f"ref={files['ref']}")
    with pytest.raises(ValueError, match=rf"{re.escape(str(bad))}: line 3: not valid UTF-8"):
        evaluate(cfg)


def test_compare_runs_sacrebleu_paired_bootstrap(
    tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.json"
    inputs = [f"hyp={files['hyp']}", f"ref={files['ref']}", f"compare={files['other']}"]
    cfg = compose_config(*inputs, "paired.n_samples=120", f"output_json={report}")
    evaluate(cfg)

    printed = capsys.readouterr().out.strip().split("\n")
    assert printed[-1].startswith("BLEU|")
    assert any(line.startswith("paired bootstrap resampling (120 samples") for line in printed)
    systems = [str(files["hyp"]), str(files["other"])]
    options = ["--paired-bs", "--paired-bs-n", "120", "-f", "text", "-w", "4"]
    text = sacrebleu_cli(str(files["ref"]), "-i", *systems, "-m", "bleu", "chrf", "ter", *options)
    # Row order of the table: baseline BLEU, chrF2, TER, then the system's.
    triples = re.findall(r"(\d+\.\d+) \((\d+\.\d+) ± (\d+\.\d+)\)", text)
    p_values = [float(p) for p in re.findall(r"p = (\d+\.\d+)", text)]
    results = json.loads(report.read_text("utf-8"))["comparison"]["results"]
    assert [r["name"] for r in results] == ["BLEU", "chrF2", "TER"]
    for i, r in enumerate(results):
        base = [r["baseline"], r["baseline_mean"], r["baseline_ci"]]
        system = [r["system"], r["system_mean"], r["system_ci"]]
        assert [f"{x:.4f}" for x in base] == list(triples[i])
        assert [f"{x:.4f}" for x in system] == list(triples[3 + i])
        assert float(f"{r['p_value']:.4f}") == p_values[i]
        assert r["signature"] in text


def fake_translator_module(hyps: list[str], calls: dict) -> types.ModuleType:
    """A stand-in for nmt.translator that records its arguments and returns `hyps`."""

    class FakeTranslator:
        @classmethod
        def from_checkpoint(cls, path: str, **options: object) -> FakeTranslator:
            calls.update(path=path, **options)
            return cls()

        def translate(self, lines: list[str], search: object, **options: object) -> list:
            calls.update(lines=lines, search=asdict(search), batch_tokens=options["batch_tokens"])
            return [types.SimpleNamespace(text=hyp, truncated=False) for hyp in hyps]

        def close(self) -> None:
            calls.update(closed=True)

    module = types.ModuleType("nmt.translator")
    module.Translator = FakeTranslator  # type: ignore[attr-defined]
    return module


def test_checkpoint_mode_translates_saves_and_scores(
    tmp_path: Path,
    files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hyps = files["hyp"].read_text("utf-8").split("\n")[:-1]
    calls: dict = {}
    monkeypatch.setitem(sys.modules, "nmt.translator", fake_translator_module(hyps, calls))
    saved = tmp_path / "out" / "translations.en"
    common = [f"ref={files['ref']}", "metrics=[bleu]"]
    inputs = ["ckpt=model.ckpt", f"src={files['src']}", f"hyp_out={saved}", "search.beam_size=3"]
    cfg = compose_config(*inputs, "batch_tokens=3000", "progress=false", *common)

    bleu = evaluate(cfg)

    assert calls["path"] == "model.ckpt"
    assert (calls["device"], calls["quantize"]) == (cfg.device, cfg.quantize)
    assert (calls["max_src_tokens"], calls["batch_tokens"]) == (250, 3000)
    assert calls["lines"] == files["src"].read_text("utf-8").split("\n")[:-1]
    assert calls["search"] == to_dict(cfg.search)
    assert calls["closed"]  # the decoding workers (if any) are stopped
    assert saved.read_text("utf-8") == files["hyp"].read_text("utf-8")
    assert bleu == evaluate(compose_config(f"hyp={files['hyp']}", *common))
    out = capsys.readouterr().out.strip().split("\n")
    assert out[0] == out[1] and out[0].startswith("BLEU|")


def test_checkpoint_mode_checks_line_counts_before_translating(
    tmp_path: Path, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: dict = {}
    monkeypatch.setitem(sys.modules, "nmt.translator", fake_translator_module([], calls))
    src = write(tmp_path / "src3.de", ["a", "b", "c"])
    cfg = compose_config("ckpt=m.ckpt", f"src={src}", f"ref={files['ref']}")
    with pytest.raises(ValueError, match=rf"{re.escape(str(src))} has 3 lines"):
        evaluate(cfg)
    assert calls == {}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["ref=R"], "exactly one of hyp=FILE or ckpt=PATH"),
        (["hyp=H", "ckpt=C", "src=S", "ref=R"], "exactly one of hyp=FILE or ckpt=PATH"),
        (["ckpt=C", "ref=R"], "src: required with ckpt"),
        (["hyp=H", "src=S", "ref=R"], "src: only used with ckpt"),
        (["hyp=H", "hyp_out=O", "ref=R"], "hyp_out: only used with ckpt"),
        (["hyp=H", "ref=R", "metrics=[chrf]"], "metrics: must list bleu"),
        (["hyp=H", "ref=R", "metrics=[bleu,rouge]"], "metrics: unknown metric 'rouge'"),
        (["hyp=H", "ref=R", "tokenize=moses"], "tokenize='moses'"),
        (["hyp=H", "ref=R", "paired.test_type=t"], "paired.test_type='t'"),
        (["hyp=H", "ref=R", "paired.n_samples=0"], "paired.n_samples must be >= 1"),
        (["hyp=H", "ref=R", "paired.seed=0"], "paired.seed must be a positive integer"),
        (["hyp=H", "tsv=T", "ref=R"], "ref: not with tsv=FILE (its columns are the source"),
        (["ckpt=C", "tsv=T", "src=S"], "src: not with tsv=FILE"),
        (["hyp=H"], "ref: required (ref=FILE, or ref=[FILE1,FILE2] for multi-reference, or tsv"),
    ],
)
def test_config_errors_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        evaluate(compose_config(*overrides))


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_compressed_hypothesis_and_reference_score_like_plain_ones(
    tmp_path: Path, files: dict[str, Path], suffix: str
) -> None:
    compress = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[suffix]
    packed = {}
    for key in ("hyp", "ref"):
        packed[key] = tmp_path / f"{files[key].name}{suffix}"
        packed[key].write_bytes(compress(files[key].read_bytes()))
    plain = evaluate(compose_config(f"hyp={files['hyp']}", f"ref={files['ref']}"))
    assert evaluate(compose_config(f"hyp={packed['hyp']}", f"ref={packed['ref']}")) == plain
    assert plain > 0


def test_tsv_scores_like_src_and_ref(
    tmp_path: Path, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    src, ref = (files[key].read_text("utf-8").split("\n")[:-1] for key in ("src", "ref"))
    tsv = write(tmp_path / "test.tsv", [f"{s}\t{r}" for s, r in zip(src, ref, strict=True)])
    hyps = files["hyp"].read_text("utf-8").split("\n")[:-1]
    # sacrebleu's own figure for the two files, computed outside the task.
    expected = json.loads(sacrebleu_cli(str(files["ref"]), "-i", str(files["hyp"]), "-w", "6"))
    scored = evaluate(compose_config(f"hyp={files['hyp']}", f"tsv={tsv}", "metrics=[bleu]"))
    assert float(f"{scored:.6f}") == expected["score"] > 0
    calls: dict = {}
    monkeypatch.setitem(sys.modules, "nmt.translator", fake_translator_module(hyps, calls))
    translated = evaluate(compose_config("ckpt=m.ckpt", f"tsv={tsv}", "metrics=[bleu]"))
    assert calls["lines"] == src  # the first column is translated, the second is the reference
    assert translated == scored
    short = write(tmp_path / "short.en", hyps[:5])
    with pytest.raises(ValueError, match=re.escape(f"{tsv} (column 2) has {N_LINES} lines")):
        evaluate(compose_config(f"hyp={short}", f"tsv={tsv}"))
