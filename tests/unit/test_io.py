"""nmt.utils.io: atomic writes are durable (directory fsynced after the rename), and the
temporary files of a killed writer are found and removed by name, nothing else."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from nmt.tasks.hydra_setup import ROOT_DIR
from nmt.utils import io


def test_directory_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    events: list[tuple[str, object]] = []
    replace, fsync = os.replace, os.fsync

    def recording_replace(src, dst):
        replace(src, dst)
        events.append(("replace", Path(dst)))

    def recording_fsync(fd):
        info = os.fstat(fd)
        kind = "dir" if stat.S_ISDIR(info.st_mode) else "file"
        events.append((f"fsync {kind}", (info.st_dev, info.st_ino)))
        fsync(fd)

    monkeypatch.setattr(io.os, "replace", recording_replace)
    monkeypatch.setattr(io.os, "fsync", recording_fsync)
    target = tmp_path / "sub" / "out.txt"
    io.atomic_write_lines(target, ["a", "b"])
    assert target.read_text() == "a\nb\n"
    parent = os.stat(target.parent)
    kinds = [kind for kind, _ in events]
    assert kinds == ["fsync file", "replace", "fsync dir"], events
    assert events[2][1] == (parent.st_dev, parent.st_ino)


def test_temporary_file_of_a_sigkilled_writer_is_removed_and_nothing_else(tmp_path):
    ready = tmp_path / "ready"
    writer = (
        "import sys, time; from pathlib import Path; from nmt.utils.io import atomic_open\n"
        "with atomic_open(Path(sys.argv[1]) / 'last.ckpt', 'wb') as handle:\n"
        "    handle.write(b'x' * 100000); handle.flush(); Path(sys.argv[2]).touch()\n"
        "    time.sleep(60)\n"
    )
    keep = [tmp_path / name for name in ("last.ckpt", ".hidden", "notes.tmp", ".a.b.tmp")]
    for path in keep:
        path.write_text("mine")
    env = {**os.environ, "PYTHONPATH": str(ROOT_DIR)}
    proc = subprocess.Popen([sys.executable, "-c", writer, str(tmp_path), str(ready)], env=env)
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    ready.unlink()
    left = sorted(set(tmp_path.iterdir()) - set(keep))
    assert len(left) == 1 and left[0].name.startswith(".last.ckpt."), left  # the killed write
    assert io.remove_stale_temporaries(tmp_path) == left
    assert sorted(tmp_path.iterdir()) == sorted(keep)
    assert all(path.read_text() == "mine" for path in keep)
    assert io.remove_stale_temporaries(tmp_path / "absent") == []
