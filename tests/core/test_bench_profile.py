"""`ctbench bench core --profile`: every operator's self time lands in exactly one category, by its name and
its callers, and the categories add up to the time spent in operators."""
import json
import math

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from core.bench import REFERENCE, main
from core.profile import CATEGORIES, breakdown, category, top_operators

TINY = dict(REFERENCE, d_model=32, n_layers=2, n_heads=2, d_ff=64, window=8, batch=2, mem_len=8, cmem_len=8, rate=2,
            vocab=16)


@pytest.mark.parametrize("name, callers, expected", [
    ("aten::mm", ("aten::matmul", "aten::linear"), "matmul"),
    ("aten::bmm", ("RecomputedRelativeAttentionBackward",), "matmul"),
    ("aten::copy_", ("aten::_to_copy", "aten::to", "ToCopyBackward0"), "cast"),     # a weight gradient cast back
    ("aten::copy_", ("aten::_to_copy", "aten::to", "aten::linear"), "cast"),        # autocast's weight cast
    ("aten::copy_", ("aten::clone", "aten::reshape"), "copy / join / zero"),        # the same kernel, a layout copy
    ("aten::cat", (), "copy / join / zero"),
    ("aten::fill_", ("aten::zero_", "aten::new_zeros"), "copy / join / zero"),
    ("aten::_softmax", ("aten::softmax",), "softmax"),
    ("aten::_softmax_backward_data", (), "softmax"),
    ("aten::native_layer_norm_backward", (), "layer norm"),
    ("aten::_fused_adam_", ("Optimizer.step#Adam.step",), "optimizer"),
    ("aten::add_", ("Optimizer.step#Adam.step",), "optimizer"),                    # a foreach Adam's adds
    ("aten::add_", ("AddBackward0",), "elementwise"),
    ("aten::threshold_backward", (), "elementwise"),
    ("aten::view", ("aten::reshape",), "other"),
    ("aten::empty_strided", (), "other"),
])
def test_each_operator_goes_to_its_category(name, callers, expected):
    assert category(name, callers) == expected


def test_categories_add_up_to_the_self_time_of_every_operator():
    """A profiled forward + backward + Adam step of a small linear model under bf16 autocast: the breakdown
    sums to the profiler's total self time, and holds the matmuls, the casts and the optimizer."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.LayerNorm(128),
                                torch.nn.Linear(128, 64))
    opt = torch.optim.Adam(model.parameters(), fused=True)
    x = torch.randn(32, 64)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = torch.softmax(model(x), -1).float().square().sum()
        loss.backward()
        opt.step()
    events = prof.events()
    totals = breakdown(events)
    assert set(totals) == set(CATEGORIES)
    assert math.isclose(sum(totals.values()), sum(e.self_cpu_time_total for e in events), rel_tol=1e-9)
    for c in ("matmul", "cast", "softmax", "layer norm", "optimizer"):
        assert totals[c] > 0, c
    top = top_operators(events, n=3)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]


def test_bench_profile_prints_and_writes_one_breakdown_per_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("core.bench.REFERENCE", TINY)
    out = tmp_path / "profile.json"
    assert main(["--device", "cpu", "--profile", "--precision", "fp32", "--steps", "2", "--threads", "1",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| category | transformerxl ms/step | share | compressive ms/step | share |" in text
    (result,) = json.loads(out.read_text())["profiles"]
    assert result["precision"] == "fp32" and result["warmup"] == 3 and result["steps"] == 2
    assert [r["model"] for r in result["rows"]] == ["transformerxl", "compressive"]
    for row in result["rows"]:
        assert math.isclose(row["in_operators_ms"], sum(row["categories_ms"].values()))
        assert row["categories_ms"]["matmul"] > 0 and row["categories_ms"]["optimizer"] > 0
        assert math.isclose(row["matmul_ideal_ms"], 1000 * row["flops_per_token"] * 2 * 8 / row["matmul_flops"])
        assert f"**{row['in_operators_ms']:.1f}**" in text


def test_profile_refuses_a_warmup_that_leaves_memories_unfilled(capsys, monkeypatch):
    """--profile resolves --warmup as the speed table does: fewer windows than fill the memories is refused."""
    monkeypatch.setattr("core.bench.REFERENCE", TINY)
    assert main(["--device", "cpu", "--profile", "--precision", "fp32", "--warmup", "1"]) == 2
    assert "--warmup 1: the memories fill only after 3 windows" in capsys.readouterr().err
