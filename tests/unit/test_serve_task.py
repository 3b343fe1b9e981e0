"""The serve task's checks that come before any checkpoint is read: the optional extra, the
port and the `serve.*` limits, each a one-line ValueError naming what is wrong."""

from __future__ import annotations

import sys

import pytest

from nmt.tasks.serve import serve


def test_missing_extra_is_named(compose_cfg, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    with pytest.raises(
        ValueError, match=r"serve needs the serve extra \(uvicorn is missing\): pip"
    ):
        serve(compose_cfg("serve", ["ckpt=missing.ckpt"]))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("port=70000", r"port must be an integer in \[0, 65535\], got 70000"),
        ("serve.max_segments=0", "serve.max_segments must be an integer >= 1, got 0"),
        ("serve.max_wait_ms=-1", "serve.max_wait_ms must be >= 0, got -1"),
        ("+serve.max_segmnts=3", "serve.max_segmnts"),
    ],
)
def test_bad_settings_are_refused_before_loading(compose_cfg, override, message):
    pytest.importorskip("uvicorn", reason="the serve extra is not installed")
    with pytest.raises(ValueError, match=message):
        serve(compose_cfg("serve", ["ckpt=missing.ckpt", override]))
