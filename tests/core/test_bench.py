"""`ctbench bench core` end to end at a tiny size: the table's rows hold what they claim."""
import math
import multiprocessing as mp
import os

import pytest

from core.bench import REFERENCE, _in_child, format_table, run


def test_bench_core_runs_both_models_and_reports_consistent_rows():
    spec = dict(REFERENCE, d_model=32, n_layers=2, n_heads=2, d_ff=64, window=8, batch=2, mem_len=8,
                cmem_len=8, rate=2, vocab=16)
    result = run(spec, "cpu", steps=3, warmup=1, threads=1)
    txl, ct = result["rows"]
    assert (txl["model"], txl["mem_len"], txl["cmem_len"]) == ("transformerxl", 16, 0)   # equal attention cost
    assert (ct["model"], ct["mem_len"], ct["cmem_len"]) == ("compressive", 8, 8)
    assert ct["params"] > txl["params"]                                                  # the compressors
    for row in result["rows"]:
        assert len(row["step_times_ms"]) == 3 and all(ms > 0 for ms in row["step_times_ms"])
        assert math.isclose(row["tokens_per_s"], 2 * 8 * 1000 / row["step_ms"])
        assert math.isclose(row["matmul_fraction"], row["flops_per_token"] * row["tokens_per_s"] / result["matmul_flops"])
        assert row["peak_mib"] > 100                                                    # torch alone is more
    assert len(result["matmul_runs"]) == 3
    assert math.isclose(result["matmul_flops"], sorted(result["matmul_runs"])[1])
    paired = sorted(c / x for x, c in zip(txl["step_times_ms"], ct["step_times_ms"]))
    assert math.isclose(result["step_ratio"], paired[1])                                 # the median of 3 pairs
    table = format_table(result)
    assert "| compressive | 8 / 8 |" in table and f"{result['step_ratio']:.3f}" in table


def test_a_child_that_dies_is_reported_not_waited_for():
    with pytest.raises(RuntimeError, match="exited with code 3"):
        _in_child(mp.get_context("spawn"), None, _exit_three)


def _exit_three():
    os._exit(3)
