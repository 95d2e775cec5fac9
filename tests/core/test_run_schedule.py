"""The paper's schedules: warm-up from 1e-6, cosine decay, one update every k windows after N steps."""
import math

import pytest

from core.run import LRSchedule, TrainConfig, UpdateFrequency
from core.run.config import ConfigError


def test_warmup_then_cosine():
    s = LRSchedule(lr=3e-4, total_steps=1100, warmup_steps=100, init_lr=1e-6, min_lr=0.0)
    assert s(0) == pytest.approx(1e-6)
    assert s(50) == pytest.approx(1e-6 + (3e-4 - 1e-6) * 0.5)
    assert s(100) == pytest.approx(3e-4)
    assert s(600) == pytest.approx(1.5e-4)          # half-way through the cosine
    assert s(350) == pytest.approx(1.5e-4 * (1 + math.cos(math.pi / 4)))
    assert s(1100) == pytest.approx(0.0, abs=1e-12) and s(5000) == pytest.approx(0.0, abs=1e-12)
    lrs = [s(i) for i in range(100, 1101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_update_frequency():
    f = UpdateFrequency(every=4, after=60_000)
    assert f(0) == 1 and f(59_999) == 1 and f(60_000) == 4 and f(10**6) == 4
    assert TrainConfig(update_every=4, update_every_after=10).frequency()(10) == 4


def test_train_config_validation_names_the_field():
    with pytest.raises(ConfigError, match="train.update_every must be >= 1"):
        TrainConfig(update_every=0)
    with pytest.raises(ConfigError, match="train.device"):
        TrainConfig(device="tpu")
