"""`ctbench bench speech` measures what its docstring says."""
import torch

from speech.bench import time_generation
from speech.config import load_speech_config
from speech.models import build_model

from speech_helpers import TINY_SYNTH, TINY_TRAIN, TINY_WN


def test_generation_rate_excludes_wavenet_prefill(monkeypatch):
    """On a fake clock where WaveNet's prefill costs 1000 ticks and each sample 1 tick, the generation rate is
    exactly 1 sample per tick: the prefill is not timed (it was: 400 / 1400)."""
    cfg = load_speech_config("cpu-synth", TINY_WN + TINY_TRAIN + TINY_SYNTH)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    ticks = [0.0]
    net = model.net
    prefill, step = net.prefill, net.step

    def slow_prefill(*a, **k):
        ticks[0] += 1000
        return prefill(*a, **k)

    def one_tick_step(*a, **k):
        ticks[0] += 1
        return step(*a, **k)

    monkeypatch.setattr(net, "prefill", slow_prefill)
    monkeypatch.setattr(net, "step", one_tick_step)
    assert time_generation(model, cfg, 400, torch.device("cpu"), clock=lambda: ticks[0]) == 1.0
