"""Early stopping (callbacks.early_stopping) stops at the validation its rule picks from the
logged metrics, keeps the best save_top_k checkpoints, and a killed and resumed run goes on
counting its patience."""

from __future__ import annotations

import math
import signal
from pathlib import Path

import pytest
import torch

from tests.integration.test_reliability_train import (
    HOOKS,
    start_training,
    stderr_tail,
    train_in_process,
    validation_metrics,
    wait_for,
)

INTERVAL, PATIENCE, MIN_DELTA = 2, 3, 0.05
RUN = [
    "experiment=smoke",
    "threads=1",
    "trainer.max_steps=40",
    f"trainer.val_check_interval={INTERVAL}",
    "callbacks.early_stopping.enabled=true",
    "callbacks.early_stopping.monitor=val/loss",
    "callbacks.early_stopping.mode=min",
    f"callbacks.early_stopping.patience={PATIENCE}",
    f"callbacks.early_stopping.min_delta={MIN_DELTA}",
    "callbacks.model_checkpoint.monitor=val/loss",
    "callbacks.model_checkpoint.mode=min",
    "callbacks.model_checkpoint.save_top_k=2",
    "callbacks.last_checkpoint.every_n_train_steps=1000",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


def stopping_validation(losses: list[float]) -> int | None:
    """Index of the validation that ends the run: the PATIENCE-th in a row whose loss is not
    below the best so far by more than MIN_DELTA (None: the run would not stop)."""
    best, waited = math.inf, 0
    for index, loss in enumerate(losses):
        if loss < best - MIN_DELTA:
            best, waited = loss, 0
            continue
        waited += 1
        if waited == PATIENCE:
            return index
    return None


def checkpoint_steps(root: Path) -> tuple[int, list[int]]:
    """The global step of last.ckpt and those of the best-* checkpoints, sorted."""
    ckpt_dir = root / "out" / "checkpoints"
    last = torch.load(ckpt_dir / "last.ckpt", weights_only=True)["global_step"]
    best = [torch.load(p, weights_only=True)["global_step"] for p in ckpt_dir.glob("best-*")]
    return last, sorted(best)


def test_stops_at_the_validation_the_logged_losses_pick_and_keeps_the_best_two(tmp_path, data_dir):
    train_in_process(tmp_path, data_dir, *RUN)
    logged = validation_metrics(tmp_path)  # {csv step: metrics}; csv step = global step - 1
    steps = sorted(logged)
    losses = [logged[step]["val/loss"] for step in steps]
    stop = stopping_validation(losses)
    assert stop is not None and stop == len(losses) - 1, losses  # stopped there, no later
    last, best = checkpoint_steps(tmp_path)
    assert last == steps[stop] + 1 < 40
    two_lowest = sorted(steps, key=lambda step: logged[step]["val/loss"])[:2]
    assert best == sorted(step + 1 for step in two_lowest)


@pytest.mark.slow
def test_resumed_run_goes_on_counting_patience(tmp_path, data_dir):
    reference = tmp_path / "reference"
    train_in_process(reference, data_dir, *RUN)
    stop_step, _ = checkpoint_steps(reference)
    step = stop_step - INTERVAL - 1  # between the last two validations: patience part-used
    ready, root = tmp_path / "ready", tmp_path / "run"
    wait = [
        f"+callbacks.wait._target_={HOOKS}.WaitForSignal",
        f"+callbacks.wait.step={step}",
        f"+callbacks.wait.ready={ready}",
    ]
    proc = start_training(root, data_dir, *RUN, *wait)
    wait_for(ready.is_file, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 1, stderr_tail(root)
    saved = torch.load(root / "out" / "checkpoints" / "last.ckpt", weights_only=True)
    (state,) = [v for k, v in saved["callbacks"].items() if k.startswith("EarlyStopping")]
    assert 0 < state["wait_count"] < PATIENCE
    train_in_process(root, data_dir, *RUN, "resume=true")
    # A fresh count would need PATIENCE more validations after the resume: later than this.
    assert checkpoint_steps(root) == checkpoint_steps(reference)
    after_kill = [s for s in sorted(validation_metrics(reference)) if s + 1 > step]
    assert sorted(validation_metrics(root)) == after_kill  # the CSV holds the resumed part
