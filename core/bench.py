"""`ctbench bench core`: training speed of the Compressive Transformer vs the TransformerXL.

Prints one table: training tokens/s (forward, backward and Adam step), peak memory, and the achieved
FLOP/s as a fraction of a plain square float32 matrix product measured in the same run. Training FLOPs
per token are counted as 6 N + 12 l d A (N non-embedding parameters, A = n_cm + n_m + T). The two models
have equal attention cost: the TransformerXL's memory is n_m + n_cm.

Each model runs in a fresh child process so that its peak resident memory is its own.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from contextlib import nullcontext

import torch
from torch import nn

from .config import CTConfig
from .flops import count_parameters, flops_per_token
from .transformer import CompressiveTransformer

REFERENCE = dict(d_model=512, n_layers=4, n_heads=8, d_ff=2048, window=128, batch=4, mem_len=128, cmem_len=128,
                 rate=3, vocab=256)
# A GPU-sized configuration: the enwik8 preset's layer size (fewer layers, to fit a short check).
GPU = dict(d_model=1024, n_layers=8, n_heads=8, d_ff=3072, window=768, batch=8, mem_len=768, cmem_len=1152,
           rate=3, vocab=256)


class ByteLM(nn.Module):
    """Embedding -> stack -> tied softmax: the smallest language model around the core."""

    def __init__(self, cfg: CTConfig, vocab: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, cfg.d_model)
        self.stack = CompressiveTransformer(cfg)

    def forward(self, tokens, targets, mem):
        out = self.stack(self.embed(tokens), mem)
        logits = out.hidden @ self.embed.weight.T
        loss = nn.functional.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return loss + out.aux_loss, out.memory.detach()


def matmul_flops(device: str, n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a plain n x n float32 matrix product (bf16 on CUDA, the precision training uses)."""
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(2):
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n ** 3 * repeats / (time.perf_counter() - start)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(spec: dict, name: str, device: str, steps: int, warmup: int) -> dict:
    """Trains ``steps`` windows of one model and returns its row of the table."""
    torch.manual_seed(0)
    compressive = name == "compressive"
    cfg = CTConfig(d_model=spec["d_model"], n_layers=spec["n_layers"], n_heads=spec["n_heads"], d_ff=spec["d_ff"],
                   mem_len=spec["mem_len"] if compressive else spec["mem_len"] + spec["cmem_len"],
                   cmem_len=spec["cmem_len"] if compressive else 0, compression_rate=spec["rate"],
                   compression="conv", compression_loss="attention", dropout=0.0)
    model = ByteLM(cfg, spec["vocab"]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)   # one kernel per step, CPU and CUDA
    b, t = spec["batch"], spec["window"]
    data = torch.randint(spec["vocab"], (b, (steps + warmup + 1) * t + 1), device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else nullcontext()
    mem = model.stack.init_memory(b)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step_ms = []
    for i in range(steps + warmup):
        _sync(device)
        start = time.perf_counter()
        x, y = data[:, i * t:(i + 1) * t], data[:, i * t + 1:(i + 1) * t + 1]
        with autocast:
            loss, mem = model(x, y, mem)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)   # here, not before backward: the gradients' memory then serves the next forward
        _sync(device)
        if i >= warmup:
            step_ms.append(1000 * (time.perf_counter() - start))
    n_params = count_parameters(model)
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return dict(model=name, params=n_params, flops_per_token=flops_per_token(cfg, t, n_params),
                step_times_ms=step_ms, peak_mib=peak / 2 ** 20, mem_len=cfg.mem_len, cmem_len=cfg.cmem_len)


def _child(queue, spec, name, device, steps, warmup, threads):
    if threads:
        torch.set_num_threads(threads)
    queue.put(measure(spec, name, device, steps, warmup))


def run(spec: dict, device: str, steps: int, warmup: int, threads: int | None = None,
        malloc_trim: bool = False, mmap_threshold_mib: float = 0.0, repeats: int = 1) -> dict:
    # glibc serves a freed large block's size from its heap from then on (its mmap threshold rises
    # with each free), and that heap fragments: peak RSS ends ~150 MiB above the live memory at the
    # reference size. A fixed threshold keeps activations in mmap'd blocks that go back to the OS
    # at free; trimming the heap top instead re-faults every step's activations (~1.6x slower on a
    # 2-core VM). The children inherit the variables.
    if malloc_trim:
        os.environ["MALLOC_TRIM_THRESHOLD_"] = "0"
    if mmap_threshold_mib > 0:
        os.environ["MALLOC_MMAP_THRESHOLD_"] = str(int(mmap_threshold_mib * 2 ** 20))
    ctx = mp.get_context("spawn")
    names = ("transformerxl", "compressive")
    runs: dict[str, list[dict]] = {name: [] for name in names}
    # The models take turns, so a slow spell of a shared machine falls on both, and each row reports the
    # median step: one 10-step run per model let the ratio swing 0.97-1.29 between runs on a busy VM.
    for _ in range(repeats):
        for name in names:
            queue = ctx.Queue()
            proc = ctx.Process(target=_child, args=(queue, spec, name, device, steps, warmup, threads))
            proc.start()
            runs[name].append(queue.get())
            proc.join()
    if threads:
        torch.set_num_threads(threads)
    rate = matmul_flops(device)
    rows = []
    for name in names:
        row = dict(runs[name][0])
        row["step_times_ms"] = [ms for r in runs[name] for ms in r["step_times_ms"]]
        row["step_ms"] = statistics.median(row["step_times_ms"])
        row["tokens_per_s"] = spec["batch"] * spec["window"] * 1000 / row["step_ms"]
        row["peak_mib"] = max(r["peak_mib"] for r in runs[name])
        row["matmul_fraction"] = row["flops_per_token"] * row["tokens_per_s"] / rate
        rows.append(row)
    return dict(device=device, spec=spec, matmul_flops=rate, threads=torch.get_num_threads(), rows=rows,
                repeats=repeats, steps=steps,
                malloc_trim_threshold=os.environ.get("MALLOC_TRIM_THRESHOLD_", "glibc default"),
                malloc_mmap_threshold=os.environ.get("MALLOC_MMAP_THRESHOLD_", "glibc default"),
                step_ratio=rows[1]["step_ms"] / rows[0]["step_ms"])


def format_table(result: dict) -> str:
    spec = result["spec"]
    lines = [f"ctbench bench core on {result['device']} ({result['threads']} threads): d={spec['d_model']} "
             f"l={spec['n_layers']} H={spec['n_heads']} ff={spec['d_ff']} T={spec['window']} B={spec['batch']} "
             f"n_m={spec['mem_len']} n_cm={spec['cmem_len']} c={spec['rate']}, conv + attention-reconstruction",
             f"plain 2048x2048 matmul: {result['matmul_flops'] / 1e9:.1f} GFLOP/s; "
             f"MALLOC_TRIM_THRESHOLD_={result['malloc_trim_threshold']}, "
             f"MALLOC_MMAP_THRESHOLD_={result.get('malloc_mmap_threshold', 'glibc default')}",
             f"median of {result.get('repeats', 1)} x {result.get('steps', '?')} timed steps per model, "
             "the models taking turns; peak = the largest of the runs",
             "",
             "| model | memory / compressed | params (non-emb) | tokens/s | step ms | peak MiB | FLOP/s / matmul |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['model']} | {r['mem_len']} / {r['cmem_len']} | {r['params'] / 1e6:.2f}M | "
                     f"{r['tokens_per_s']:.0f} | {r['step_ms']:.1f} | {r['peak_mib']:.0f} | {r['matmul_fraction']:.2f} |")
    lines.append("")
    lines.append(f"Compressive / TransformerXL step time: {result['step_ratio']:.3f} (target <= 1.15)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ctbench bench core", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--config", choices=("reference", "gpu"), default=None,
                        help="reference: the issue's CPU configuration; gpu: enwik8-sized layers (default on CUDA)")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps per model")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=None,
                        help="runs per model, alternating (default 3 on CPU, 1 on CUDA); rows report the median step")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--malloc-trim", action="store_true",
                        help="set MALLOC_TRIM_THRESHOLD_=0 in the children: lower peak RSS, slower steps")
    parser.add_argument("--mmap-threshold", type=float, default=0.0, metavar="MIB",
                        help="fix glibc's mmap threshold in the children (e.g. 1): blocks at least this large "
                             "return to the OS at free; 0 keeps glibc's adaptive threshold")
    parser.add_argument("--json", default=None, help="also write the result to this JSON file")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("ctbench bench core: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    config = args.config or ("gpu" if args.device == "cuda" else "reference")
    spec = dict(GPU if config == "gpu" else REFERENCE)
    steps = args.steps or (30 if args.device == "cuda" else 10)
    repeats = args.repeats or (1 if args.device == "cuda" else 3)
    result = run(spec, args.device, steps, args.warmup, args.threads, args.malloc_trim, args.mmap_threshold,
                 repeats)
    print(format_table(result))
    if args.json:
        from .run.io import atomic_write_json
        atomic_write_json(args.json, result)
    return 0
