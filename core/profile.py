"""`ctbench bench core --profile`: where a training step's time goes, op by op, grouped into what could be
removed and what could not.

Each model trains alone in a fresh process at the bench's configuration; once every memory is full, torch's
profiler records ``steps`` windows (forward, backward, Adam). Every operator's *self* time (its time minus
that of the operators it called) goes to one category, chosen by its name and those of its callers (a copy
made by ``aten::to`` is a cast, the same copy made by ``aten::cat`` a join), so the categories add up to the
time spent in operators; the rest of the step's wall time is Python, autograd bookkeeping and the profiler.
The matmul category at the measured matmul rate shows the best step the rest of the work allows.
"""
from __future__ import annotations

import collections
import re
import statistics

import torch

# In order: the first category whose test matches an operator (its name, its callers' names) takes its time.
MATMUL = {"aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::addbmm", "aten::dot", "aten::mv",
          "aten::_weight_int8pack_mm", "mkldnn::_linear_pointwise", "aten::mkldnn_linear"}
# Operators that only make views, allocate or reshape metadata: their self time is overhead, not arithmetic.
VIEWS = re.compile(r"^aten::(t|_?view\w*|_?unsafe_view|empty\w*|as_strided|transpose|permute|_?reshape\w*|slice|select|"
                   r"expand\w*|unsqueeze|squeeze|split\w*|unbind|detach\w*|alias|narrow|resize_\w*|set_|lift_fresh)$")
CATEGORIES = ("matmul", "cast", "copy / join / zero", "softmax", "layer norm", "optimizer", "elementwise", "other")


def category(name: str, callers: tuple[str, ...]) -> str:
    """The category of an operator's self time: ``name`` is the operator, ``callers`` its enclosing operators
    and autograd nodes, innermost first."""
    if name in MATMUL:
        return "matmul"
    if "adam" in name or any("adam" in c or c.startswith("Optimizer.") for c in callers):
        return "optimizer"
    if name in ("aten::copy_", "aten::_to_copy", "aten::to") and any(c in ("aten::_to_copy", "aten::to")
                                                                     for c in (name, *callers[:2])):
        return "cast"
    if "softmax" in name:
        return "softmax"
    if "layer_norm" in name:
        return "layer norm"
    if name in ("aten::copy_", "aten::clone", "aten::cat", "aten::stack", "aten::contiguous", "aten::fill_",
                "aten::zero_", "aten::zeros", "aten::new_zeros", "aten::zeros_like", "aten::constant_pad_nd",
                "aten::select_backward", "aten::slice_backward", "aten::index", "aten::gather"):
        return "copy / join / zero"
    if name.startswith("aten::") and not VIEWS.search(name):
        return "elementwise"
    return "other"


def breakdown(events) -> dict[str, float]:
    """Self CPU time (microseconds) per category over profiler ``events`` (``profile.events()``)."""
    totals = collections.Counter({c: 0.0 for c in CATEGORIES})
    for e in events:
        callers, parent = [], e.cpu_parent
        while parent is not None and len(callers) < 8:
            callers.append(parent.name.replace("autograd::engine::evaluate_function: ", ""))
            parent = parent.cpu_parent
        totals[category(e.name, tuple(callers))] += e.self_cpu_time_total
    return dict(totals)


def top_operators(events, n: int = 12) -> list[tuple[str, float, int]]:
    """The n operators with the most self time: (name, microseconds, calls)."""
    time_of, calls = collections.Counter(), collections.Counter()
    for e in events:
        time_of[e.name] += e.self_cpu_time_total
        calls[e.name] += 1
    return [(name, us, calls[name]) for name, us in time_of.most_common(n)]


def profile_model(spec: dict, name: str, device: str, steps: int, warmup: int, precision) -> dict:
    """Trains one model alone, warms up until every memory is full, then profiles ``steps`` windows. Returns
    the median unprofiled step (ms), the per-category self time per step (ms) and the top operators."""
    from torch.profiler import ProfilerActivity, profile

    from .bench import _Trainee, matmul_flops
    trainee = _Trainee(spec, name, device, 2 * steps + warmup, precision)
    for _ in range(warmup):
        trainee.step()
    trainee.require_full(name, warmup)
    wall = statistics.median(trainee.step() for _ in range(steps))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainee.step()
    events = prof.events()
    per_step = {c: us / 1000 / steps for c, us in breakdown(events).items()}
    rate = matmul_flops(device, precision.name)
    row = trainee.row()
    tokens = spec["batch"] * spec["window"]
    return dict(model=name, step_ms=wall, categories_ms=per_step,
                in_operators_ms=sum(per_step.values()),
                matmul_flops=rate, flops_per_token=row["flops_per_token"],
                matmul_ideal_ms=1000 * row["flops_per_token"] * tokens / rate,
                top=[(op, us / 1000 / steps, n // steps) for op, us, n in top_operators(events)])


def format_profile(result: dict) -> str:
    """A table of ms per step by category, one column pair per model, and the top operators."""
    rows = result["rows"]
    head = " | ".join(f"{r['model']} ms/step | share" for r in rows)
    lines = [f"where a training step's time goes ({result['precision']}, {result['threads']} threads, "
             f"{result['steps']} profiled steps after every memory filled; self time of each operator)", "",
             f"| category | {head} |", "|---|" + "---|---|" * len(rows)]
    for c in CATEGORIES:
        cells = " | ".join(f"{r['categories_ms'][c]:.1f} | {r['categories_ms'][c] / r['in_operators_ms']:.0%}"
                           for r in rows)
        lines.append(f"| {c} | {cells} |")
    lines.append("| **in operators** | " + " | ".join(f"**{r['in_operators_ms']:.1f}** | 100%" for r in rows) + " |")
    lines.append("| step wall time (unprofiled) | " + " | ".join(f"{r['step_ms']:.1f} |" for r in rows) + " |")
    lines.append("| counted FLOPs at the plain matmul rate | " +
                 " | ".join(f"{r['matmul_ideal_ms']:.1f} | {r['matmul_ideal_ms'] / r['step_ms']:.2f} of the step"
                            for r in rows) + " |")
    for r in rows:
        lines += ["", f"{r['model']}: top operators by self time (ms per step, calls per step): " +
                  ", ".join(f"{op} {ms:.1f} ({n})" for op, ms, n in r["top"])]
    return "\n".join(lines)
