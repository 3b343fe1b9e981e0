"""`trainer.precision=auto`: what it resolves to on each kind of device."""

from __future__ import annotations

import pytest
import torch

from nmt.training.trainer_config import resolve_precision


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "16-mixed"])
@pytest.mark.parametrize("amx", [True, False])
def test_an_explicit_precision_is_kept(monkeypatch, precision, amx):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert resolve_precision(precision, "cpu") == (precision, None)


@pytest.mark.parametrize("accelerator", ["cpu", "auto"])
def test_auto_on_a_cpu_is_bf16_only_with_amx(monkeypatch, accelerator):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert resolve_precision("auto", accelerator)[0] == "bf16-mixed"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert resolve_precision("auto", accelerator) == (
        "32-true",
        "this CPU has no AMX tiles for bf16",
    )


@pytest.mark.parametrize(("bf16", "expected"), [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_on_a_gpu_follows_its_bf16_support(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: not bf16)
    assert resolve_precision("auto", "gpu")[0] == expected
