"""AtomicCheckpointIO: a failed or killed checkpoint write leaves the previous file intact."""

from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from nmt.tasks.hydra_setup import ROOT_DIR
from nmt.training.checkpoint_io import AtomicCheckpointIO

OLD = {"global_step": 1, "state_dict": {"w": torch.ones(64, 64)}}
NEW = {"global_step": 2, "state_dict": {"w": torch.zeros(64, 64)}}


def half_then(action):
    """A torch.save stand-in that writes half of the serialized bytes, then calls `action`."""
    real_save = torch.save

    def save(obj, f):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        data = buffer.getvalue()
        handle = open(f, "wb") if isinstance(f, (str, os.PathLike)) else f  # noqa: SIM115
        handle.write(data[: len(data) // 2])
        handle.flush()
        action()

    return save


def test_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / "a" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint(OLD, path)
    assert torch.load(path, weights_only=True)["global_step"] == 1
    assert (path.stat().st_mode & 0o777) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    checkpoint_io = AtomicCheckpointIO()
    checkpoint_io.save_checkpoint(OLD, path)

    def disk_full() -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", half_then(disk_full))
    with pytest.raises(ValueError, match=f"^{path}: cannot write checkpoint: No space left"):
        checkpoint_io.save_checkpoint(NEW, path)
    assert torch.load(path, weights_only=True)["global_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


KILLED_WRITER = """
import sys, time
from pathlib import Path
import torch
from nmt.training.checkpoint_io import AtomicCheckpointIO
from tests.unit.test_checkpoint_io import NEW, OLD, half_then

path, ready = Path(sys.argv[1]), Path(sys.argv[2])
checkpoint_io = AtomicCheckpointIO()
checkpoint_io.save_checkpoint(OLD, path)
torch.save = half_then(lambda: (ready.touch(), time.sleep(600)))
checkpoint_io.save_checkpoint(NEW, path)
"""


def test_kill_during_write_keeps_previous_checkpoint(tmp_path):
    path, ready = tmp_path / "ckpts" / "last.ckpt", tmp_path / "ready"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT_DIR), os.environ.get("PYTHONPATH", "")]),
    }
    script = textwrap.dedent(KILLED_WRITER)
    proc = subprocess.Popen([sys.executable, "-c", script, str(path), str(ready)], env=env)
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert proc.poll() is None, "the writer exited before blocking mid-write"
        assert time.monotonic() < deadline, "the writer never reached the middle of the write"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert torch.load(path, weights_only=True)["global_step"] == 1
