"""Learning-rate factors against hand arithmetic (NVIDIA GNMT v2 schedule, inverse sqrt)."""

import pytest
import torch

from nmt.training.lr_schedule import ScheduleConfig, build_scheduler, lr_factor

GNMT = ScheduleConfig(schedule="gnmt", warmup_steps=200, warmup_init=0.01, decay_start=0.666)


def test_gnmt_warmup_is_exponential_from_warmup_init():
    assert lr_factor(0, 0.0, GNMT) == pytest.approx(0.01)
    assert lr_factor(100, 0.0, GNMT) == pytest.approx(0.01**0.5)  # halfway: sqrt(0.01)
    assert lr_factor(200, 0.0, GNMT) == 1.0


@pytest.mark.parametrize(
    ("progress", "expected"),
    [
        (0.5, 1.0),  # before 2/3 of training
        (0.666, 0.5),  # first halving at decay_start
        (0.7, 0.5),  # interval = (1 - 0.666) / 4 = 0.0835
        (0.76, 0.25),  # 1 + int(0.094 / 0.0835) = 2 halvings
        (0.92, 0.0625),  # 1 + int(0.254 / 0.0835) = 4
        (1.0, 0.0625),  # never more than decay_steps halvings
    ],
)
def test_gnmt_decay_halves_four_times_after_two_thirds(progress, expected):
    assert lr_factor(1000, progress, GNMT) == pytest.approx(expected)


def test_inverse_sqrt_and_constant():
    inv = ScheduleConfig(schedule="inverse_sqrt", warmup_steps=200)
    assert lr_factor(99, 0.0, inv) == pytest.approx(100 / 200)  # linear warm-up
    assert lr_factor(800, 0.0, inv) == pytest.approx(0.5)  # sqrt(200 / 800)
    const = ScheduleConfig(schedule="constant", warmup_steps=0)
    assert lr_factor(5000, 0.99, const) == 1.0


def test_scheduler_reads_progress_at_every_step():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    progress = {"value": 0.0}
    cfg = ScheduleConfig(schedule="gnmt", warmup_steps=0, decay_start=0.5, decay_steps=1)
    scheduler = build_scheduler(optimizer, cfg, lambda: progress["value"])
    assert optimizer.param_groups[0]["lr"] == 1.0
    progress["value"] = 0.6
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("key", "value"), [("schedule", "cosine"), ("warmup_init", 0.0), ("decay_start", 1.5)]
)
def test_bad_values_name_their_key(key, value):
    with pytest.raises(ValueError, match=f"optim.{key}"):
        ScheduleConfig(**{key: value})
