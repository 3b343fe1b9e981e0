"""Training under real faults: SIGKILL, SIGTERM/SIGINT, NaN batches, a full disk, a dead DDP rank.

Faults are injected for real: signals sent to a training subprocess, a write-size limit set
inside it, a NaN loss at a chosen step, a rank that raises. Test-only callbacks come from
tests/integration/fault_hooks.py through `+callbacks.NAME._target_=...` overrides.
"""

from __future__ import annotations

import contextlib
import csv
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from nmt.tasks.hydra_setup import ROOT_DIR
from nmt.tasks.train import train
from nmt.training.module import TranslationModule
from tests.conftest import compose_config
from tests.integration.test_train import final_weights

HOOKS = "tests.integration.fault_hooks"
MAX_STEPS = 40
EVERY = 5  # periodic last.ckpt
# Dropout makes the comparison depend on the restored RNG state, not only on the weights.
RUN = [
    "experiment=smoke",
    "threads=1",
    f"trainer.max_steps={MAX_STEPS}",
    "trainer.val_check_interval=20",
    f"callbacks.last_checkpoint.every_n_train_steps={EVERY}",
    "model.encoder.dropout=0.3",
    "model.decoder.dropout=0.3",
]


@pytest.fixture(scope="module", autouse=True)
def keep_torch_threads() -> Iterator[None]:
    """In-process runs here use one thread (`threads=1`); give the rest of the session its own."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SentencePiece model and binarized sample for every run of this module."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def reference_root(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """The directory of an uninterrupted run of RUN."""
    root = tmp_path_factory.mktemp("reference")
    train(compose_config("train", root, [*RUN, f"paths.data_dir={data_dir}"]))
    return root


@pytest.fixture(scope="module")
def reference(reference_root: Path) -> dict:
    """Final weights of an uninterrupted run of RUN."""
    return final_weights(reference_root)


def validation_metrics(root: Path) -> dict[int, dict[str, float]]:
    """{step: {val/loss, val/bleu}} of every validation in the run's metrics.csv."""
    with open(root / "out" / "csv" / "metrics.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("val/loss")]
    return {int(row["step"]): {k: float(row[k]) for k in ("val/loss", "val/bleu")} for row in rows}


def train_in_process(root: Path, data_dir: Path, *overrides: str) -> None:
    train(compose_config("train", root, [*overrides, f"paths.data_dir={data_dir}"]))


def start_training(root: Path, data_dir: Path, *overrides: str) -> subprocess.Popen:
    """`scripts/train.py` in a subprocess writing to root/out; output in root/std{out,err}."""
    cmd = [
        sys.executable,
        str(ROOT_DIR / "scripts" / "train.py"),
        f"paths.data_dir={data_dir}",
        f"paths.log_dir={root / 'logs'}",
        f"paths.output_dir={root / 'out'}",
        *overrides,
    ]
    path = os.pathsep.join(p for p in (str(ROOT_DIR), os.environ.get("PYTHONPATH")) if p)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "stdout", "w") as out, open(root / "stderr", "w") as err:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=err,
            env={**os.environ, "PYTHONPATH": path},
            start_new_session=True,  # so that a test can kill DDP ranks with their launcher
            preexec_fn=default_sigint,
        )


def default_sigint() -> None:
    """Let the child handle SIGINT even when pytest runs as a background job (SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, timeout_s: float = 120) -> None:
    """Poll `condition` while `proc` runs; fail if it exits or time runs out first."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert proc.poll() is None, f"training exited early with {proc.returncode}"
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"condition not met within {timeout_s} s")
        time.sleep(0.02)


def stderr_tail(root: Path) -> str:
    return (root / "stderr").read_text()[-3000:]


def assert_same_weights(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=1e-6, msg=key)


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path, data_dir, reference):
    last = tmp_path / "out" / "checkpoints" / "last.ckpt"
    pace = [f"+callbacks.pace._target_={HOOKS}.Pace", "+callbacks.pace.seconds=0.05"]
    proc = start_training(tmp_path, data_dir, *RUN, *pace)
    wait_for(last.is_file, proc)
    delay = random.uniform(0.0, 0.5)  # into a later step, or into the next checkpoint write
    time.sleep(delay)
    proc.kill()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"ended before the kill: {stderr_tail(tmp_path)}"
    killed_at = torch.load(last, weights_only=True)["global_step"]
    assert 0 < killed_at < MAX_STEPS and killed_at % EVERY == 0, (killed_at, delay)
    train_in_process(tmp_path, data_dir, *RUN, "resume=true")
    assert_same_weights(final_weights(tmp_path), reference)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_saves_checkpoint_then_resume_equals_uninterrupted_run(
    tmp_path, data_dir, reference, signum
):
    step = random.choice([s for s in range(6, 15) if s % EVERY])  # not a periodic save
    ready = tmp_path / "ready"
    wait = [
        f"+callbacks.wait._target_={HOOKS}.WaitForSignal",
        f"+callbacks.wait.step={step}",
        f"+callbacks.wait.ready={ready}",
    ]
    proc = start_training(tmp_path, data_dir, *RUN, *wait)
    wait_for(ready.is_file, proc)
    proc.send_signal(signum)
    assert proc.wait(timeout=120) == 1, stderr_tail(tmp_path)
    last = tmp_path / "out" / "checkpoints" / "last.ckpt"
    message = f"interrupted at step {step}: saved {last}; continue with resume=true"
    assert stderr_tail(tmp_path).strip().splitlines()[-1] == message
    assert torch.load(last, weights_only=True)["global_step"] == step
    train_in_process(tmp_path, data_dir, *RUN, "resume=true")
    assert_same_weights(final_weights(tmp_path), reference)


@pytest.mark.slow
def test_sigterm_during_validation_saves_checkpoint_then_resume_equals_uninterrupted_run(
    tmp_path, data_dir, reference_root, reference
):
    ready = tmp_path / "ready"
    wait = [  # the signal arrives after the first batch of the validation at step 20
        f"+callbacks.wait._target_={HOOKS}.WaitForSignalInValidation",
        "+callbacks.wait.step=20",
        f"+callbacks.wait.ready={ready}",
    ]
    proc = start_training(tmp_path, data_dir, *RUN, *wait)
    wait_for(ready.is_file, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 1, stderr_tail(tmp_path)
    last = tmp_path / "out" / "checkpoints" / "last.ckpt"
    message = f"interrupted at step 20: saved {last}; continue with resume=true"
    assert stderr_tail(tmp_path).strip().splitlines()[-1] == message
    assert torch.load(last, weights_only=True)["global_step"] == 20
    assert validation_metrics(tmp_path) == {}, "the interrupted validation was logged"
    train_in_process(tmp_path, data_dir, *RUN, "resume=true")
    assert_same_weights(final_weights(tmp_path), reference)
    # The interrupted validation runs again in full on resume: same figures as uninterrupted.
    assert validation_metrics(tmp_path) == validation_metrics(reference_root)


DDP_RUN = [*RUN, "trainer=ddp_cpu", "trainer.max_steps=20", "trainer.val_check_interval=10"]


@pytest.mark.slow
def test_ddp_sigterm_saves_checkpoint_then_resume_equals_uninterrupted_run(tmp_path, data_dir):
    # DDP runs need their own launcher process, so every run here is a subprocess.
    reference = start_training(tmp_path / "reference", data_dir, *DDP_RUN)
    assert reference.wait(timeout=300) == 0, stderr_tail(tmp_path / "reference")
    step, ready, root = 7, tmp_path / "ready", tmp_path / "run"
    wait = [  # on both ranks; SIGTERM goes to the launching process (rank 0) only
        f"+callbacks.wait._target_={HOOKS}.WaitForSignal",
        f"+callbacks.wait.step={step}",
        f"+callbacks.wait.ready={ready}",
    ]
    proc = start_training(root, data_dir, *DDP_RUN, *wait)
    wait_for(ready.is_file, proc)
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=120) == 1, stderr_tail(root)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # a rank left behind would fail the test above
    last = root / "out" / "checkpoints" / "last.ckpt"
    message = f"interrupted at step {step}: saved {last}; continue with resume=true"
    assert stderr_tail(root).strip().splitlines()[-1] == message
    assert torch.load(last, weights_only=True)["global_step"] == step
    resumed = start_training(root, data_dir, *DDP_RUN, "resume=true")
    assert resumed.wait(timeout=300) == 0, stderr_tail(root)
    assert_same_weights(final_weights(root), final_weights(tmp_path / "reference"))


class WeightProbe(pl.Callback):
    """All parameters as one vector before every training batch, and once at the end."""

    def __init__(self) -> None:
        self.before: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, *args) -> None:
        self.before.append(torch.cat([p.detach().flatten() for p in pl_module.parameters()]))

    def on_train_end(self, trainer, pl_module) -> None:
        self.on_train_batch_start(trainer, pl_module)


@pytest.fixture
def nan_at_step(monkeypatch) -> Callable[[int], WeightProbe]:
    """Make the training loss NaN at one optimizer step; return a probe added to the Trainer."""

    def install(step: int) -> WeightProbe:
        loss_fn, trainer_init = TranslationModule._loss, pl.Trainer.__init__
        probe = WeightProbe()

        def poisoned(self, batch, align=False):
            loss, nll, ntokens, alignment = loss_fn(self, batch, align)
            if self.training and self.global_step == step:
                loss = loss * float("nan")
            return loss, nll, ntokens, alignment

        def with_probe(self, *args, callbacks=(), **kwargs):
            trainer_init(self, *args, callbacks=[*callbacks, probe], **kwargs)

        monkeypatch.setattr(TranslationModule, "_loss", poisoned)
        monkeypatch.setattr(pl.Trainer, "__init__", with_probe)
        return probe

    return install


NAN_RUN = ["experiment=smoke", "threads=1", "trainer.max_steps=8", "trainer.log_every_n_steps=1"]


def test_nan_batch_is_skipped_and_counted(tmp_path, data_dir, nan_at_step, capsys):
    probe = nan_at_step(3)
    train_in_process(tmp_path, data_dir, *NAN_RUN)
    weights = probe.before  # weights[k]: before step k; weights[8]: at the end
    assert len(weights) == 9
    assert torch.equal(weights[4], weights[3]), "the NaN step changed the weights"
    assert not torch.equal(weights[5], weights[4]), "training did not go on after the NaN step"
    assert all(bool(torch.isfinite(w).all()) for w in weights)
    assert "skipped_batches: 1 " in capsys.readouterr().out
    for path in (tmp_path / "out" / "checkpoints").glob("*.ckpt"):
        ckpt = torch.load(path, weights_only=True)
        assert ckpt["nmt"]["skipped_batches"] == 1, path
        assert all(bool(t.isfinite().all()) for t in ckpt["state_dict"].values()), path
    with open(tmp_path / "out" / "csv" / "metrics.csv") as handle:
        logged = [row["train/skipped_batches"] for row in csv.DictReader(handle)]
    assert max(float(v) for v in logged if v) == 1.0


def test_nan_batch_stops_the_run_with_stop_policy(tmp_path, data_dir, nan_at_step):
    nan_at_step(3)
    with pytest.raises(ValueError, match=r"^non-finite loss or gradients at step 3 \("):
        train_in_process(tmp_path, data_dir, *NAN_RUN, "optim.nonfinite=stop")
    assert not list((tmp_path / "out" / "checkpoints").glob("*.ckpt"))


def test_full_disk_is_one_line_error_and_keeps_last_checkpoint(tmp_path, data_dir):
    limit = [
        f"+callbacks.limit._target_={HOOKS}.FileSizeLimit",
        f"+callbacks.limit.step={EVERY + 1}",  # after the first periodic save
        "+callbacks.limit.max_bytes=100000",  # a checkpoint is ~1.4 MB
    ]
    proc = start_training(tmp_path, data_dir, *RUN, *limit)
    assert proc.wait(timeout=120) == 1
    ckpt_dir = tmp_path / "out" / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    stderr = stderr_tail(tmp_path).strip().splitlines()
    assert stderr[-1] == f"error: {last}: cannot write checkpoint: File too large"
    assert "Traceback" not in stderr_tail(tmp_path)
    assert torch.load(last, weights_only=True)["global_step"] == EVERY
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["last.ckpt"], "a partial file is left"


def test_next_start_removes_temporary_files_of_a_killed_checkpoint_write(
    tmp_path, data_dir, caplog
):
    ckpt_dir = tmp_path / "out" / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    # What a write SIGKILLed inside atomic_open leaves (tests/unit/test_io.py kills one).
    fd, stale = tempfile.mkstemp(dir=ckpt_dir, prefix=".last.ckpt.", suffix=".tmp")
    os.close(fd)
    other = ckpt_dir / "notes.tmp"
    other.write_text("not ours")
    with caplog.at_level("INFO"):
        train_in_process(tmp_path, data_dir, "experiment=smoke", "threads=1", "trainer.max_steps=2")
    assert not Path(stale).exists() and other.exists()
    message = f"{ckpt_dir}: removed 1 temporary file(s) of interrupted writes: {Path(stale).name}"
    assert message in caplog.messages
    assert not [p for p in ckpt_dir.iterdir() if p.name.endswith(".tmp") and p != other]


def wait_then_kill(proc: subprocess.Popen, timeout: float = 120) -> int:
    """The exit status of a DDP run within `timeout` s; its process group is killed either way."""
    try:
        return proc.wait(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # this test's own process group


@pytest.mark.slow
def test_ddp_rank_failure_stops_every_process(tmp_path, data_dir):
    fail = [
        f"+callbacks.fail._target_={HOOKS}.FailOnRank",
        "+callbacks.fail.rank=1",
        "+callbacks.fail.step=3",
    ]
    returncode = wait_then_kill(
        start_training(tmp_path, data_dir, "experiment=smoke", "trainer=ddp_cpu", *fail)
    )
    assert returncode != 0
    stderr = (tmp_path / "stderr").read_text()
    assert "RuntimeError: injected failure on rank 1 at step 3" in stderr


@pytest.mark.slow
def test_ddp_hung_rank_ends_the_job_after_the_watchdog_timeout(tmp_path, data_dir):
    hang = [
        f"+callbacks.hang._target_={HOOKS}.HangOnRank",
        "+callbacks.hang.rank=1",
        "+callbacks.hang.step=3",
        "callbacks.hang_watchdog.timeout_s=5",
    ]
    returncode = wait_then_kill(  # the hang itself would last 600 s
        start_training(tmp_path, data_dir, "experiment=smoke", "trainer=ddp_cpu", *hang)
    )
    assert returncode == 1
    stderr = (tmp_path / "stderr").read_text()
    # Rank 1 hangs; rank 0, blocked in the gradient all-reduce, stalls too: whichever watchdog
    # fires first ends the job, with the same one line.
    messages = [
        f"error: rank {rank}: no training progress for 5 s after step 3 "
        "(callbacks.hang_watchdog.timeout_s); ending the job"
        for rank in (0, 1)
    ]
    assert set(messages) & set(stderr.splitlines()), stderr[-3000:]
