"""translate streams its input: chunked reading, chunk-by-chunk stdout, atomic file outputs even
when a later chunk fails or the disk is full."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

from nmt import cli
from nmt.data.corpus import read_lines
from nmt.tasks.hydra_setup import ROOT_DIR
from nmt.tasks.translate import translate
from nmt.translator import Translator
from tests.conftest import compose_config

LINES = [*read_lines(ROOT_DIR / "data" / "sample" / "valid.de")[:7], ""]


def config(tmp_path: Path, ckpt: Path, *overrides: str):
    return compose_config(
        "translate", tmp_path, [f"ckpt={ckpt}", "search=greedy", "threads=1", *overrides]
    )


def fail_on_call(monkeypatch: pytest.MonkeyPatch, failing_call: int) -> None:
    """Make Translator.translate raise on its `failing_call`-th call (one call per chunk)."""
    real = Translator.translate
    calls = []

    def translate_chunk(self, lines, *args, **kwargs):
        calls.append(len(lines))
        if len(calls) == failing_call:
            raise RuntimeError("injected failure")
        return real(self, lines, *args, **kwargs)

    monkeypatch.setattr(Translator, "translate", translate_chunk)


def test_chunked_output_equals_whole_file_output(tiny_checkpoint, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("".join(line + "\n" for line in LINES), encoding="utf-8")
    outputs = {}
    for chunk_lines in (3, 10000):
        out = tmp_path / f"out{chunk_lines}.tsv"
        plots = tmp_path / f"plots{chunk_lines}"
        translate(
            config(
                tmp_path,
                tiny_checkpoint,
                f"input={src}",
                f"output={out}",
                f"chunk_lines={chunk_lines}",
                "search=beam5",
                "nbest=2",
                "align=true",
                "plot.lines=[1,4]",
                f"plot.dir={plots}",
            )
        )
        outputs[chunk_lines] = (out.read_bytes(), Path(f"{out}.align").read_bytes())
        assert sorted(p.name for p in plots.iterdir()) == ["line1.png", "line4.png"]
    assert outputs[3] == outputs[10000]
    rows = [row.split("\t") for row in read_lines(tmp_path / "out3.tsv")]
    assert [int(row[0]) for row in rows] == [i for i in range(len(LINES)) for _ in range(2)]


@pytest.mark.parametrize("align", [False, True])
def test_failure_in_second_chunk_leaves_no_output_file(
    tiny_checkpoint, tmp_path, monkeypatch, align
):
    src, out = tmp_path / "in.txt", tmp_path / "out" / "out.txt"
    src.write_text("".join(line + "\n" for line in LINES), encoding="utf-8")
    fail_on_call(monkeypatch, 2)
    cfg = config(tmp_path, tiny_checkpoint, f"input={src}", f"output={out}", "chunk_lines=3")
    cfg.align = align
    with pytest.raises(RuntimeError, match="injected failure"):
        translate(cfg)
    assert list(out.parent.iterdir()) == []  # no final file, no temporary file


def test_stdout_receives_each_chunk_before_the_next_is_translated(
    tiny_checkpoint, tmp_path, monkeypatch
):
    stdin = io.BytesIO("".join(line + "\n" for line in LINES).encode("utf-8"))
    stdout = io.BytesIO()
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=stdin))
    monkeypatch.setattr(sys, "stdout", types.SimpleNamespace(buffer=stdout))
    fail_on_call(monkeypatch, 2)
    with pytest.raises(RuntimeError, match="injected failure"):
        translate(config(tmp_path, tiny_checkpoint, "chunk_lines=3"))
    assert stdout.getvalue().count(b"\n") == 3


def test_stdin_pipe_is_translated_before_it_is_closed(tiny_checkpoint):
    """Two lines in, with stdin still open: their two translations come out."""
    cmd = [sys.executable, str(ROOT_DIR / "scripts" / "translate.py"), f"ckpt={tiny_checkpoint}"]
    proc = subprocess.Popen(
        [*cmd, "chunk_lines=2", "search=greedy"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=os.environ,
    )
    watchdog = threading.Timer(120, proc.kill)  # a non-streaming translate would block here
    watchdog.start()
    try:
        proc.stdin.write("".join(line + "\n" for line in LINES[:2]).encode("utf-8"))
        proc.stdin.flush()
        first = [proc.stdout.readline() for _ in range(2)]
        assert all(line.endswith(b"\n") for line in first), first
        proc.stdin.write((LINES[2] + "\n").encode("utf-8"))
        proc.stdin.close()
        rest = proc.stdout.read()
        assert proc.wait() == 0
    finally:
        watchdog.cancel()
        proc.kill()
    assert len(first) + rest.count(b"\n") == 3


class FullDisk(io.TextIOWrapper):
    """A text file whose writes fail as on a full disk after the first 50 characters."""

    budget = 50

    def write(self, text: str) -> int:
        self.budget -= len(text)
        if self.budget < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(text)


def test_full_disk_is_one_line_error_naming_the_output(tiny_checkpoint, tmp_path, monkeypatch):
    src, out = tmp_path / "in.txt", tmp_path / "out" / "out.txt"
    src.write_text("".join(line + "\n" for line in LINES * 5), encoding="utf-8")
    real_fdopen = os.fdopen

    def fdopen(fd, mode="r", *args, **kwargs):
        handle = real_fdopen(fd, "wb")
        return FullDisk(handle, encoding=kwargs["encoding"], newline=kwargs["newline"])

    monkeypatch.setattr("nmt.utils.io.os.fdopen", fdopen)
    argv = ["translate.py", f"ckpt={tiny_checkpoint}", f"input={src}", f"output={out}"]
    argv += ["chunk_lines=4", "search=greedy", "threads=1", f"hydra.run.dir={tmp_path / 'run'}"]
    monkeypatch.setattr(sys, "argv", argv)
    try:
        with pytest.raises(SystemExit) as exit_info:
            cli.translate()
    finally:
        GlobalHydra.instance().clear()
    assert exit_info.value.code == f"error: {out}: No space left on device"
    assert list(out.parent.iterdir()) == []
