"""Training end to end on the committed sample: smoke run, clipping, exact resume, DDP on CPU."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from nmt.tasks.hydra_setup import ROOT_DIR
from nmt.tasks.train import train
from tests.conftest import compose_config


def run_script(*args: str, tmp: Path, text: bool = True) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        str(ROOT_DIR / "scripts" / "train.py"),
        f"paths.data_dir={tmp / 'data'}",
        f"paths.log_dir={tmp / 'logs'}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=text, timeout=600, check=False)


def test_smoke_run_prints_best_checkpoint_last(tmp_path):
    result = run_script("experiment=smoke", tmp=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("best_checkpoint: ")
    ckpt = Path(last.split(": ", 1)[1])
    assert ckpt.is_file() and ckpt.is_relative_to(tmp_path / "logs" / "train" / "smoke")
    assert (ckpt.parent / "last.ckpt").is_file()
    assert list(ckpt.parent.parent.glob("csv/metrics.csv")), "CSV logger wrote nothing"
    assert list(ckpt.parent.parent.glob("tensorboard/events.out.tfevents.*"))


def test_piped_output_has_results_on_stdout_and_a_line_per_validation(tmp_path):
    result = run_script(
        "experiment=smoke",
        "trainer.enable_progress_bar=true",
        "trainer.max_steps=6",
        "trainer.val_check_interval=2",
        tmp=tmp_path,
        text=False,  # text mode would turn the frames' \r into \n
    )
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, stderr[-2000:]
    assert "\r" not in stdout and "\r" not in stderr  # no progress frames
    assert stdout.strip().splitlines()[-1].startswith("best_checkpoint: ")
    lines = [line for line in stderr.splitlines() if line.startswith("step ")]
    fit, final = lines[:3], lines[3:]
    assert [line.split()[1] for line in fit] == ["2/6", "4/6", "6/6"], stderr
    for line in fit:
        assert "train/loss " in line and "val/bleu " in line and "elapsed 0:" in line
        assert " left 0:" in line
    # the train task validates the final weights again when it saves them as final-step*.ckpt
    ckpt = Path(stdout.strip().splitlines()[-1].split(": ", 1)[1])
    finals = list(ckpt.parent.glob("final-step*.ckpt"))
    assert [line.split()[1] for line in final] == ["6/6"] * len(finals), stderr


def test_train_returns_the_printed_best_checkpoint_and_its_bleu(tmp_path, capsys):
    overrides = ["experiment=smoke", "trainer.max_steps=4", "trainer.val_check_interval=2"]
    started = time.monotonic()
    result = train(compose_config("train", tmp_path, overrides))
    minutes = (time.monotonic() - started) / 60
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed == f"best_checkpoint: {result.best_checkpoint}"
    assert Path(result.best_checkpoint).is_file()
    assert result.steps == 4 and result.skipped_updates == 0
    # the best validation BLEU of the run, as the CSV logger recorded every validation
    with open(next((tmp_path / "out").glob("csv/metrics.csv")), encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    scores = [float(row["val/bleu"]) for row in rows if row["val/bleu"]]
    assert len(scores) >= 2 and result.valid_bleu == pytest.approx(max(scores))
    # the wall clock of every validation during the fit: increasing, within the run's time
    clock = [float(row["time/elapsed_min"]) for row in rows if row["time/elapsed_min"]]
    assert len(clock) == 2 and 0 < clock[0] < clock[1] < minutes


def test_missing_training_file_is_one_line_error(tmp_path):
    missing = tmp_path / "nope.de"
    sample = ROOT_DIR / "data" / "sample"
    result = run_script(
        "experiment=smoke",
        "data=text",
        "model=tiny",
        f"data.train_src={missing}",
        f"data.train_tgt={sample / 'train.en'}",
        f"data.valid_src={sample / 'valid.de'}",
        f"data.valid_tgt={sample / 'valid.en'}",
        tmp=tmp_path,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == f"error: {missing}: file not found"


class GradNormProbe(pl.Callback):
    """Record the gradient norm before clipping and after optimizer.step (clipped)."""

    def __init__(self) -> None:
        self.before: list[float] = []
        self.at_step: list[float] = []

    def on_fit_start(self, trainer, pl_module) -> None:
        def hook(optimizer, args, kwargs):
            self.at_step.append(float(grad_norm(pl_module)))

        trainer.optimizers[0].register_step_post_hook(hook)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.before.append(float(grad_norm(pl_module)))


def grad_norm(module: torch.nn.Module) -> torch.Tensor:
    grads = [p.grad.detach().flatten() for p in module.parameters() if p.grad is not None]
    return torch.cat(grads).norm()


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])  # both with the fused Adam
def test_gradient_clipping_is_applied(tmp_path, monkeypatch, precision):
    clip = 0.01
    cfg = compose_config(
        "train",
        tmp_path,
        [
            "experiment=smoke",
            "trainer.max_steps=3",
            f"optim.grad_clip={clip}",
            f"trainer.precision={precision}",
        ],
    )
    probe = GradNormProbe()
    original = pl.Trainer.__init__

    def with_probe(self, *args, callbacks=(), **kwargs):
        original(self, *args, callbacks=[*callbacks, probe], **kwargs)

    monkeypatch.setattr(pl.Trainer, "__init__", with_probe)
    train(cfg)
    assert len(probe.before) == len(probe.at_step) == 3
    assert all(b > clip * 2 for b in probe.before), probe.before  # clipping had work to do
    assert all(a == pytest.approx(clip, rel=1e-4) for a in probe.at_step), probe.at_step


def final_weights(root: Path) -> dict[str, torch.Tensor]:
    """The weights of the run's latest checkpoint (last.ckpt or final-stepN.ckpt)."""
    ckpts = [
        torch.load(p, weights_only=True) for p in (root / "out" / "checkpoints").glob("*.ckpt")
    ]
    return max(ckpts, key=lambda c: c["global_step"])["state_dict"]


def test_resume_equals_uninterrupted_run(tmp_path):
    # A schedule that does not depend on max_steps, so both runs share one LR curve.
    common = [
        "experiment=smoke",
        "optim.schedule=inverse_sqrt",
        "trainer.val_check_interval=6",
        "model.encoder.dropout=0.3",
        "model.decoder.dropout=0.3",
    ]
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(compose_config("train", straight, [*common, "trainer.max_steps=12"]))
    train(compose_config("train", split, [*common, "trainer.max_steps=6"]))
    halfway = final_weights(split)
    train(compose_config("train", split, [*common, "trainer.max_steps=12", "resume=true"]))
    expected, resumed = final_weights(straight), final_weights(split)
    assert expected.keys() == resumed.keys()
    moved = max((resumed[k] - halfway[k]).abs().max().item() for k in expected)
    assert moved > 1e-4, "the resumed run did not train"
    for key in expected:
        torch.testing.assert_close(resumed[key], expected[key], rtol=0, atol=1e-6, msg=key)


@pytest.mark.slow
def test_ddp_cpu_two_processes(tmp_path):
    result = run_script(
        "experiment=smoke",
        "trainer=ddp_cpu",
        "trainer.max_steps=6",
        "trainer.val_check_interval=3",
        tmp=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("best_checkpoint: ")
    assert sum(line.startswith("best_checkpoint: ") for line in lines) == 1
    ckpt = torch.load(lines[-1].split(": ", 1)[1], weights_only=True)
    assert ckpt["global_step"] == 6


@pytest.mark.parametrize(("amx", "expected"), [(True, "bf16-mixed"), (False, "32-true")])
def test_precision_auto_trains_in_the_precision_the_cpu_multiplies_fastest(
    tmp_path, monkeypatch, capsys, amx, expected
):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    built = []
    original = pl.Trainer.__init__

    def recording(self, *args, **kwargs):
        original(self, *args, **kwargs)
        built.append(str(self.precision))

    monkeypatch.setattr(pl.Trainer, "__init__", recording)
    overrides = ["experiment=smoke", "trainer.max_steps=2", "trainer.precision=auto"]
    result = train(compose_config("train", tmp_path, overrides))
    assert built == [expected]
    assert result.steps == 2 and result.skipped_updates == 0
    assert f"trainer.precision=auto: {expected} (" in capsys.readouterr().out
