"""Progress callbacks: which one a process gets, and where the terminal bar draws."""

from __future__ import annotations

import contextlib
import io
import sys

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar

from nmt.training.progress import LineProgressBar, StderrTQDMProgressBar, progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_frames_a_pipe_gets_lines_disabled_gets_no_bar(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert isinstance(progress_bar(), StderrTQDMProgressBar)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert isinstance(progress_bar(), LineProgressBar)
    assert not isinstance(progress_bar(enabled=False), ProgressBar)  # Lightning refuses one
    assert isinstance(progress_bar(enabled=False), pl.Callback)


def test_terminal_bar_draws_on_stderr(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        bar = StderrTQDMProgressBar().init_train_tqdm()
        bar.total = 3
        bar.update(2)
        bar.close()
    assert stdout.getvalue() == ""
    assert "2/3" in sys.stderr.getvalue() and "\r" in sys.stderr.getvalue()
