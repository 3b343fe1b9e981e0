"""curves task: BLEU-per-minute table and plot from training runs' CSV logs."""

import csv

import pytest

from nmt.tasks.curves import curves, read_validations
from tests.conftest import compose_config

FIELDS = ["epoch", "step", "train/loss", "val/ppl", "val/bleu", "time/elapsed_min"]


def _run(path, validations):
    """A run dir whose metrics.csv interleaves training rows and validation rows, as Lightning's
    CSVLogger writes them (one row per logging call, empty cells elsewhere)."""
    (path / "csv").mkdir(parents=True)
    with open(path / "csv" / "metrics.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        for step, minutes, ppl, bleu in validations:
            writer.writerow({"epoch": 0, "step": step, "train/loss": 5.0})
            writer.writerow({"epoch": 0, "step": step, "val/ppl": ppl, "val/bleu": bleu})
            writer.writerow({"epoch": 0, "step": step, "time/elapsed_min": minutes})
    return path


def test_table_finds_the_plateau_exit_and_the_best_bleu(tmp_path, capsys):
    old = _run(
        tmp_path / "old", [(100, 2.0, 120.0, 0.5), (200, 4.1, 70.0, 2.0), (300, 6.0, 45.0, 6.5)]
    )
    new = _run(
        tmp_path / "new", [(100, 2.2, 49.0, 3.0), (200, 4.3, 30.0, 9.0), (300, 6.3, 25.0, 8.5)]
    )
    png = tmp_path / "curves.png"
    cfg = compose_config(
        "curves",
        tmp_path,
        [f"runs=[{old},{new}]", "labels=[old,new]", f"output={png}", "plateau_ppl=50"],
    )
    curves(cfg)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "old: 3 validations to step 300 (6.0 min); plateau (val ppl < 50) left at step 300; "
        "best valid BLEU 6.50 at step 300 (6.0 min)"
    )
    assert lines[1] == (
        "new: 3 validations to step 300 (6.3 min); plateau (val ppl < 50) left at step 100; "
        "best valid BLEU 9.00 at step 200 (4.3 min)"
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp.png"))  # written atomically


def test_runs_are_labelled_by_the_overrides_that_differ(tmp_path, capsys):
    jobs = []
    for index, value in enumerate(["false", "true"]):
        run = _run(tmp_path / f"job{index}", [(100, 2.0, 40.0, 5.0)])
        (run / ".hydra").mkdir()
        (run / ".hydra" / "overrides.yaml").write_text(
            f"- experiment=bible_de_en\n- model.layer_norm={value}\n- hydra.sweep.dir=x\n"
        )
        jobs.append(str(run))
    curves(compose_config("curves", tmp_path, [f"runs=[{','.join(jobs)}]"]))
    out = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in out] == [
        "model.layer_norm=false",
        "model.layer_norm=true",
    ]


def test_validations_without_a_clock_are_left_out(tmp_path):
    run = _run(tmp_path / "run", [(100, 2.0, 120.0, 0.5)])
    with open(run / "csv" / "metrics.csv", "a", newline="", encoding="utf-8") as handle:
        # the final trainer.validate() after the fit: scores but no fit clock
        csv.DictWriter(handle, FIELDS).writerow({"step": 150, "val/ppl": 90.0, "val/bleu": 1.0})
    assert [p.step for p in read_validations(run)] == [100]


def test_a_directory_without_metrics_is_a_one_line_error(tmp_path):
    with pytest.raises(ValueError, match="runs: .*metrics.csv: file not found"):
        read_validations(tmp_path)


def test_a_run_of_another_toolkit_needs_no_perplexity(tmp_path, capsys):
    # scripts/onmt_curve.sh writes step, time/elapsed_min and val/bleu only.
    peer = tmp_path / "peer"
    (peer / "csv").mkdir(parents=True)
    (peer / "csv" / "metrics.csv").write_text(
        "step,time/elapsed_min,val/bleu\n50,2.1,0.4\n100,4.0,1.5\n", encoding="utf-8"
    )
    assert [(p.step, p.minutes, p.bleu) for p in read_validations(peer)] == [
        (50, 2.1, 0.4),
        (100, 4.0, 1.5),
    ]
    curves(compose_config("curves", tmp_path, [f"runs=[{peer}]", "labels=[onmt]"]))
    assert capsys.readouterr().out.splitlines() == [
        "onmt: 2 validations to step 100 (4.0 min); no val/ppl logged; "
        "best valid BLEU 1.50 at step 100 (4.0 min)"
    ]
