"""The precision setting (core/run/precision.py): which precision `auto` picks, the refusal of bf16 where a CPU
lacks native bf16, and a Compressive Transformer under bf16 autocast against float32.

This test machine may lack native bf16 (AVX512-BF16, AMX): CTBENCH_CPU_FLAGS overrides the CPU's flags, and
bf16 autocast still runs there (emulated), so the numerical tests run everywhere.

Tolerances: bf16 keeps 8 significant bits (relative rounding 2^-9 = 0.2%); matmul inputs are rounded to bf16
and accumulate in float32, so an output carries a few roundings' error, ~0.5% of its scale (measured: 0.3-0.7%
for the attention's outputs and gradients). The bounds below are several times that, and far below what a
wrong computation gives (a missing term, a wrong dtype in backward: errors of order 100%).
"""
import math

import pytest
import torch

from core import CTConfig
from core.attention import (RecomputedRelativeAttention, RelativeMultiHeadAttention, attention_mask,
                            relative_position_embedding)
from core.bench import ByteLM
from core.run import ConfigError, TrainConfig, Trainer, from_dict, read_json, read_jsonl, resolve_precision
from core.run.precision import FLAGS_ENV, Precision, autocast, cpu_flags, native_cpu_bf16
from run_toy import ToyTask

NATIVE, EMULATED = "avx2 avx512f avx512_bf16", "avx2 fma"


@pytest.fixture
def flags(monkeypatch):
    """flags("...") makes the CPU report these flags."""
    return lambda value: monkeypatch.setenv(FLAGS_ENV, value)


# ------------------------------------------------------------------------------------------ the setting
@pytest.mark.parametrize("cpu,setting,picked", [
    (NATIVE, "auto", "bf16"), ("avx2 amx_tile amx_bf16", "auto", "bf16"), (EMULATED, "auto", "fp32"),
    ("", "auto", "fp32"), (NATIVE, "fp32", "fp32"), (EMULATED, "fp32", "fp32"), (NATIVE, "bf16", "bf16")])
def test_auto_picks_bf16_only_where_the_cpu_has_it(flags, cpu, setting, picked):
    flags(cpu)
    chosen = resolve_precision(setting, "cpu")
    assert chosen.name == picked
    if setting == "auto":      # it says which it chose, and why
        assert str(chosen).startswith(f"{picked} (auto: this CPU") and ("has native" in chosen.reason) == (picked == "bf16")


def test_bf16_without_native_support_is_refused_naming_the_setting(flags):
    flags(EMULATED)
    with pytest.raises(ValueError, match=r"train.precision = 'bf16': this CPU .* no native bf16 matmuls .*"
                                         r"emulated and slower than fp32; set train.precision to 'auto'"):
        resolve_precision("bf16", "cpu")
    with pytest.raises(ValueError, match=r"^run.precision = 'bf16'"):
        autocast("cpu", "bf16", "run.precision")


def test_cpu_flags_come_from_proc_cpuinfo_unless_overridden(flags, monkeypatch):
    monkeypatch.delenv(FLAGS_ENV)
    with open("/proc/cpuinfo") as f:
        line = next(line for line in f if line.split(":")[0].strip() in ("flags", "Features"))
    assert cpu_flags() == frozenset(line.split(":", 1)[1].split())
    assert native_cpu_bf16() == bool({"avx512_bf16", "amx_bf16", "bf16"} & cpu_flags())
    flags("avx512_bf16")
    assert cpu_flags() == {"avx512_bf16"} and native_cpu_bf16()


def test_train_config_validates_precision_and_reads_the_legacy_bf16_field():
    assert TrainConfig().precision == "auto"
    with pytest.raises(ConfigError, match=r"train.precision must be one of auto, fp32, bf16, got 'half'"):
        from_dict(TrainConfig, {"precision": "half"}, "train")
    # presets and run directories written before train.precision: bf16 = false meant float32 everywhere
    assert from_dict(TrainConfig, {"bf16": False}, "train").precision == "fp32"
    old = from_dict(TrainConfig, {"bf16": True}, "train")
    assert (old.precision, old.bf16) == ("auto", None)            # bf16 is not written back to config.toml
    with pytest.raises(ConfigError, match="contradicts train.precision"):
        TrainConfig(bf16=False, precision="bf16")


class _AutocastProbe(ToyTask):
    """The toy task, noting the autocast state each training step runs in."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def step(self, model, batch, state, device):
        self.seen.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)
        return super().step(model, batch, state, device)


@pytest.mark.parametrize("cpu,setting,picked", [(NATIVE, "auto", "bf16"), (EMULATED, "auto", "fp32"),
                                                 (NATIVE, "fp32", "fp32")])
def test_trainer_runs_in_the_chosen_precision_and_records_it(flags, tmp_path, capsys, cpu, setting, picked):
    flags(cpu)
    task = _AutocastProbe()
    cfg = TrainConfig(steps=3, batch_size=2, log_every=1, progress=False, device="cpu", precision=setting)
    summary = Trainer(task, cfg, tmp_path).fit()
    assert task.seen == [picked == "bf16"] * 3
    assert summary["precision"] == picked
    assert [r["precision"] for r in read_jsonl(tmp_path / "metrics.jsonl") if r["split"] == "train"] == [picked] * 3
    assert f"precision: {picked} (" in capsys.readouterr().out


def test_trainer_refuses_bf16_before_training(flags, tmp_path):
    flags(EMULATED)
    cfg = TrainConfig(steps=3, batch_size=2, progress=False, device="cpu", precision="bf16")
    with pytest.raises(ValueError, match="train.precision = 'bf16'"):
        Trainer(ToyTask(), cfg, tmp_path).fit()
    assert not (tmp_path / "checkpoints").exists()


# ------------------------------------------------------------------------------------------ numerics
def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest deviation relative to the reference's scale."""
    return float((a.float() - b.float()).abs().max() / b.float().abs().max())


def test_recomputed_attention_runs_under_bf16_autocast_like_the_explicit_path(monkeypatch):
    """The CPU's recomputed-attention Function under autocast: its backward replays the forward's bf16 state
    (without custom_bwd it mixes bf16 and float32 and fails). Output equal to the explicit path's (the same
    bf16 operations), gradients within bf16 rounding of it, both near float32."""
    torch.manual_seed(3)
    attn = RelativeMultiHeadAttention(32, 4, dropatt=0.0)
    with torch.no_grad():
        attn.r_w_bias.normal_()
        attn.r_r_bias.normal_()
    b, t, cm, m = 3, 8, 4, 6
    h, cmem = torch.randn(b, t, 32, requires_grad=True), torch.randn(b, cm, 32, requires_grad=True)
    mem = torch.randn(b, m, 32)
    pos = relative_position_embedding(cm + m + t, 32, -1, "cpu")
    key_valid = torch.ones(b, cm + m, dtype=torch.bool)
    key_valid[1, :cm + 2] = False
    mask = attention_mask(t, cm + m, False, key_valid, "cpu")
    calls = []
    apply = RecomputedRelativeAttention.apply
    monkeypatch.setattr(RecomputedRelativeAttention, "apply", lambda *a: calls.append(1) or apply(*a))
    runs = {}
    for bf16 in (False, True):
        for need_weights in (True, False):                           # True: the explicit path
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = attn(h, (cmem, mem), pos, mask, need_weights=need_weights)[0]
                loss = (out.float() * torch.linspace(-1, 1, out.numel()).view_as(out)).sum()
            grads = torch.autograd.grad(loss, [h, cmem, *attn.parameters()])
            assert out.dtype == (torch.bfloat16 if bf16 else torch.float32)
            assert all(g.dtype == torch.float32 for g in grads)
            runs[bf16, need_weights] = out, grads
    assert len(calls) == 2                                          # need_weights=False took it, in both precisions
    explicit, recomputed, reference = runs[True, True], runs[True, False], runs[False, True]
    torch.testing.assert_close(recomputed[0], explicit[0], rtol=0, atol=0)
    for g_r, g_e, g_ref in zip(recomputed[1], explicit[1], reference[1]):
        assert _rel(g_r, g_e) < 2e-2 and _rel(g_r, g_ref) < 2e-2


def _small_lm(seed=0):
    torch.manual_seed(seed)
    cfg = CTConfig(d_model=64, n_layers=2, n_heads=4, d_ff=128, mem_len=16, cmem_len=8, compression_rate=2,
                   compression="conv", compression_loss="attention", dropout=0.0)
    return ByteLM(cfg, vocab=32)


def _tokens(windows, b=2, t=16, seed=1):
    """A learnable byte stream: each row repeats a random pattern of 24 tokens (the memory can find it)."""
    g = torch.Generator().manual_seed(seed)
    pattern = torch.randint(32, (b, 24), generator=g)
    return pattern.repeat(1, windows * t // 24 + 2)[:, :windows * t + 1]


def test_small_ct_loss_and_gradients_in_bf16_match_float32():
    """One window with full memories (so the compressor and its attention-reconstruction loss run) from the same
    state: the loss within 0.2% (bf16's ~3 significant digits; measured 0.01-0.03%), all gradients together within
    5% (relative norm; measured 1.5-3% over three seeds), each parameter's within 15% and pointing the same way
    (cosine > 0.99). Single tensors deviate more than the whole (measured up to 7%, the first feed-forward
    layer): ReLU units whose input lies within bf16 rounding of 0 switch. The memories stay float32."""
    model = _small_lm()
    data, t = _tokens(5), 16
    mem = model.stack.init_memory(2)
    with torch.no_grad():
        for w in range(4):                                          # fills mem (16) and cmem (8 slots of 2)
            _, mem = model(data[:, w * t:(w + 1) * t], data[:, w * t + 1:(w + 1) * t + 1], mem)
    assert all(l.mem.shape[1] == 16 and l.cmem.shape[1] == 8 for l in mem.layers)
    x, y = data[:, 4 * t:5 * t], data[:, 4 * t + 1:5 * t + 1]
    results = {}
    for bf16 in (False, True):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, next_mem = model(x, y, mem)
        loss.backward()
        results[bf16] = float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters()}, next_mem
    (loss32, grads32, mem32), (loss16, grads16, mem16) = results[False], results[True]
    assert math.isclose(loss16, loss32, rel_tol=2e-3)
    compressor = [n for n in grads32 if "compressor" in n]
    assert compressor and all(grads32[n].abs().sum() > 0 for n in compressor)   # the reconstruction loss trained it
    flat16, flat32 = (torch.cat([g.flatten() for g in grads.values()]) for grads in (grads16, grads32))
    assert float((flat16 - flat32).norm() / flat32.norm()) < 5e-2
    for name, g32 in grads32.items():
        assert float((grads16[name] - g32).norm() / g32.norm()) < 0.15, name
        assert float(torch.nn.functional.cosine_similarity(grads16[name].flatten(), g32.flatten(), dim=0)) > 0.99, name
    # fp32 storage: the memories a bf16 window leaves behind are float32, and close to float32's
    for l16, l32 in zip(mem16.layers, mem32.layers):
        assert l16.mem.dtype == l16.cmem.dtype == l16.pending.dtype == torch.float32
        assert _rel(l16.cmem, l32.cmem) < 2e-2 and _rel(l16.mem, l32.mem) < 2e-2


def test_small_ct_training_trajectory_in_bf16_follows_float32():
    """Ten Adam steps from the same weights on the same stream: the bf16 run's loss stays within 1% of the float32
    run's at every step (the difference compounds through the weights; measured 0.07-0.26%), while the loss
    itself falls by far more than that."""
    losses = {}
    for bf16 in (False, True):
        model = _small_lm()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        data, t = _tokens(10), 16
        mem, trace = model.stack.init_memory(2), []
        for w in range(10):
            with autocast("cpu", Precision("bf16" if bf16 else "fp32", "test")):   # bf16 emulated where not native
                loss, mem = model(data[:, w * t:(w + 1) * t], data[:, w * t + 1:(w + 1) * t + 1], mem)
            loss.backward()
            opt.step()
            opt.zero_grad()
            trace.append(float(loss.detach()))
        losses[bf16] = trace
    assert losses[False][-1] < losses[False][0] - 0.5
    for step, (l32, l16) in enumerate(zip(losses[False], losses[True])):
        assert math.isclose(l16, l32, rel_tol=1e-2), (step, l16, l32)
