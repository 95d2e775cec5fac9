"""`ctbench bench core` end to end at a tiny size: the table's rows hold what they claim, timing starts with full
memories, FLOPs are counted as performed (against a hand count), and the CPU it ran on is recorded."""
import math
import multiprocessing as mp
import os

import pytest
import torch

from core import CompressiveTransformer, CTConfig
from core import bench
from core.bench import (REFERENCE, _in_child, format_table, main, measure_speed, model_config, precisions, run,
                        warmup_windows)
from core.flops import compression_flops_per_token, training_flops_per_token, windows_to_fill
from core.run.precision import FLAGS_ENV, Precision

TINY = dict(REFERENCE, d_model=32, n_layers=2, n_heads=2, d_ff=64, window=8, batch=2, mem_len=8, cmem_len=8, rate=2,
            vocab=16)


@pytest.fixture(scope="module")
def result():
    """One tiny run (three child processes: slow on a loaded machine), shared by the tests that read it; with
    the CPU's own flags (tests/conftest.py hides native bf16 from the others), which the bench records."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(FLAGS_ENV)
        return run(TINY, "cpu", steps=3, threads=1)


def test_bench_core_runs_both_models_and_reports_consistent_rows(result):
    assert result["warmup"] == 3 and result["precision"] == "fp32"     # (8 + 2 * 8) / 8 windows fill the CT
    txl, ct = result["rows"]
    assert (txl["model"], txl["mem_len"], txl["cmem_len"]) == ("transformerxl", 16, 0)   # equal attention cost
    assert (ct["model"], ct["mem_len"], ct["cmem_len"]) == ("compressive", 8, 8)
    assert ct["params"] - ct["params_compressor"] == txl["params"] and txl["params_compressor"] == 0
    for row in result["rows"]:
        assert len(row["step_times_ms"]) == 3 and all(ms > 0 for ms in row["step_times_ms"])
        assert math.isclose(row["tokens_per_s"], 2 * 8 * 1000 / row["step_ms"])
        assert math.isclose(row["matmul_fraction"], row["flops_per_token"] * row["tokens_per_s"] / result["matmul_flops"])
        assert row["flops_per_token"] == row["flops"]["total"] == sum(row["flops"][k] for k in
                                                                      ("dense", "attention", "compression"))
        assert row["peak_mib"] > 100                                                    # torch alone is more
    assert txl["flops"]["compression"] == 0 < ct["flops"]["compression"]
    assert txl["flops"]["attention"] == ct["flops"]["attention"] and txl["flops"]["dense"] == ct["flops"]["dense"]
    assert len(result["matmul_runs"]) == 3
    assert math.isclose(result["matmul_flops"], sorted(result["matmul_runs"])[1])
    paired = sorted(c / x for x, c in zip(txl["step_times_ms"], ct["step_times_ms"]))
    assert math.isclose(result["step_ratio"], paired[1])                                 # the median of 3 pairs
    table = format_table(result)
    assert "| compressive | 8 / 8 |" in table and f"{result['step_ratio']:.3f}" in table
    assert "after 3 warm-up windows (every memory full)" in table


# ------------------------------------------------------------------------------------------ warm-up
def test_warmup_fills_every_memory_and_refuses_fewer_windows():
    """At the reference ratio (n_m = n_cm = T, c = 3) the compressed memory fills after 4 windows: 3 leave it
    a third short, and the bench refuses to time from there."""
    assert warmup_windows(REFERENCE) == 4
    assert windows_to_fill(model_config(REFERENCE, "transformerxl"), 128) == 2
    spec = dict(TINY, window=6, mem_len=6, cmem_len=6, rate=3)                    # the reference's ratio
    assert warmup_windows(spec) == 4
    fp32 = Precision("fp32", "set")
    with pytest.raises(RuntimeError, match=r"after 3 warm-up windows the compressive's memories hold 6 / 6 and "
                                           r"4 / 6; it needs 4 windows"):
        measure_speed(spec, "cpu", steps=1, warmup=3, precision=fp32)
    times = measure_speed(spec, "cpu", steps=1, warmup=4, precision=fp32)          # checked full, then timed
    assert len(times["compressive"]) == len(times["transformerxl"]) == 1
    with pytest.raises(ValueError, match=r"--warmup 3: the memories fill only after 4 windows"):
        run(spec, "cpu", steps=1, warmup=3)


# ------------------------------------------------------------------------------------------ FLOPs
def test_flop_count_equals_a_hand_count():
    """d 16, 2 layers, ff 32, T 8, n_m 8, n_cm 4, c 3, conv + attention reconstruction, counted by hand:
    - 6 N: per layer W_qkv 768 + W_r 256 + W_o 256 + u, v 32 + ff 512 + 32 + 512 + 16 + 2 LayerNorms 64 = 2448;
      the conv compressor's 3 * 16 * 16 + 16 = 784 are left out: 6 * 2 * 2448 = 29376.
    - attention: 12 l d A = 12 * 2 * 16 * (4 + 8 + 8) = 7680.
    - compression, once the memory is full, over a period of 3 windows (8 tokens evicted each): the queue holds
      0, 2, 1 pending memories, so 2, 3, 3 groups are compressed (mean n = 8/3, mean p = 1). Per layer and window:
      conv forward + weight gradient 4 c d^2 n = 8192; compressed keys and values, forward and gradient,
      8 d^2 n = 5461.33; pending keys and values 4 d^2 p = 1024; attention over the compressed 10 T n d = 3413.33;
      over the old memories 4 T c n d = 4096; sum 22186.67, per token / 8, two layers: 5546.67."""
    cfg = CTConfig(d_model=16, n_layers=2, n_heads=2, d_ff=32, mem_len=8, cmem_len=4, compression_rate=3,
                   compression="conv", compression_loss="attention", dropout=0.0)
    flops = training_flops_per_token(CompressiveTransformer(cfg), 8)
    assert flops["dense"] == 29376 and flops["attention"] == 7680
    assert math.isclose(flops["compression"], 2 * (8192 + 8192 * 2 / 3 + 1024 + 10240 / 3 + 4096) / 8)
    assert math.isclose(flops["total"], 29376 + 7680 + 5546 + 2 / 3)
    # not trained (no loss): the compressor's forward only; parameter-free pooling: nothing; TransformerXL: nothing
    assert math.isclose(compression_flops_per_token(cfg.replace(compression_loss="none"), 8), 2 * 4096 / 8)
    assert compression_flops_per_token(cfg.replace(compression="mean_pool"), 8) == 0
    assert compression_flops_per_token(cfg.replace(cmem_len=0), 8) == 0
    with pytest.raises(ValueError, match="not compression='gru'"):
        compression_flops_per_token(cfg.replace(compression="gru"), 8)


# ------------------------------------------------------------------------------------------ CPU and precision
def test_cpu_flags_model_torch_and_threads_are_recorded(result):
    with open("/proc/cpuinfo") as f:
        info = f.read()
    cpu = result["cpu"]
    assert cpu["cpu"] and cpu["cpu"] in info
    flags = next(line for line in info.splitlines() if line.split(":")[0].strip() in ("flags", "Features"))
    assert set(cpu["bf16_flags"]) == {"avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
                                      "amx_tile", "amx_bf16", "amx_int8", "bf16", "sve", "i8mm"} & set(flags.split(":")[1].split())
    assert cpu["native_bf16"] == bool({"avx512_bf16", "amx_bf16", "bf16"} & set(cpu["bf16_flags"]))
    assert (cpu["torch"], cpu["threads"], cpu["flags_source"]) == (torch.__version__, 1, "/proc/cpuinfo")
    assert f"CPU: {cpu['cpu']}; bf16-relevant flags: {' '.join(cpu['bf16_flags'])}" in format_table(result)


def test_bf16_is_timed_only_where_native_and_says_why_not(monkeypatch, capsys):
    monkeypatch.setenv(FLAGS_ENV, "avx2 fma")
    chosen, skipped = precisions("cpu", "all")
    assert [p.name for p in chosen] == ["fp32"] and "no native bf16 matmuls" in skipped["bf16"]
    assert main(["--precision", "bf16"]) == 2
    assert "--precision = 'bf16': this CPU" in capsys.readouterr().err
    monkeypatch.setenv(FLAGS_ENV, "avx2 avx512_bf16")
    chosen, skipped = precisions("cpu", "all")
    assert [p.name for p in chosen] == ["fp32", "bf16"] and not skipped
    # the training steps run under bf16 autocast (emulated here, slowly), the matmul reference in bf16 (a 2048^3
    # emulated product takes minutes here: noted instead of timed)
    steps, matmuls, autocast = [], [], bench.autocast
    monkeypatch.setattr(bench, "autocast", lambda device, p: steps.append(p.name) or autocast(device, p))
    monkeypatch.setattr(bench, "matmul_flops", lambda device, p, repeats: matmuls.append(p) or 1.0)
    times = measure_speed(TINY, "cpu", steps=1, warmup=3, precision=chosen[1])
    assert len(times["compressive"]) == 1 and steps == ["bf16"] * 8 and matmuls == ["bf16"]


def test_a_child_that_dies_is_reported_not_waited_for():
    with pytest.raises(RuntimeError, match="exited with code 3"):
        _in_child(mp.get_context("spawn"), None, _exit_three)


def _exit_three():
    os._exit(3)
