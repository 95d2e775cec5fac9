"""`ctbench bench core`: training speed of the Compressive Transformer vs the TransformerXL.

Prints one table per precision (fp32, and bf16 autocast where the device runs it natively; otherwise it says
why bf16 is skipped): training tokens/s (forward, backward and Adam step), peak memory, and the achieved FLOP/s
as a fraction of a plain square matrix product in that precision, measured in the same run. FLOPs are counted
as performed (core/flops.py ``training_flops_per_token``): 6 N with N the non-embedding parameters without the
compressors, plus 12 l d A (A = n_cm + n_m + T), plus the compressor's and its attention-reconstruction loss's
matmuls on the memories it compresses per window. The two models have equal attention cost: the
TransformerXL's memory is n_m + n_cm. Timing starts once every memory is full (checked), and the CPU's
model, bf16-relevant flags, torch version and threads are recorded.

Speed: both models train in one child process, taking turns window by window, so that a slow spell of
a shared machine falls on both; rows report median step times and the ratio is the median over pairs of
neighbouring steps. Peak memory: each model trains alone in a fresh child process, so its peak is its own.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue as _queue
import resource
import statistics
import sys
import time
import torch
from torch import nn

from .config import CTConfig
from .flops import compressor_parameters, count_parameters, training_flops_per_token, windows_to_fill
from .run.precision import Precision, autocast, bf16_support, cpu_report, resolve_precision
from .profile import format_profile, profile_model
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


def matmul_flops(device: str, precision: str = "fp32", n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a plain n x n matrix product in ``precision`` (fp32 or bf16)."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
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


NAMES = ("transformerxl", "compressive")


def model_config(spec: dict, name: str) -> CTConfig:
    """The stack of one row: the Compressive Transformer, or the TransformerXL with memory n_m + n_cm."""
    compressive = name == "compressive"
    return CTConfig(d_model=spec["d_model"], n_layers=spec["n_layers"], n_heads=spec["n_heads"], d_ff=spec["d_ff"],
                    mem_len=spec["mem_len"] if compressive else spec["mem_len"] + spec["cmem_len"],
                    cmem_len=spec["cmem_len"] if compressive else 0, compression_rate=spec["rate"],
                    compression="conv", compression_loss="attention", dropout=0.0)


class _Trainee:
    """One model of the table with its Adam optimizer, data and memory: ``step()`` trains one window."""

    def __init__(self, spec: dict, name: str, device: str, n_windows: int, precision: Precision):
        torch.manual_seed(0)
        self.cfg = model_config(spec, name)
        self.model = ByteLM(self.cfg, spec["vocab"]).to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-4, fused=True)   # one kernel per step
        self.b, self.t, self.device = spec["batch"], spec["window"], device
        self.data = torch.randint(spec["vocab"], (self.b, (n_windows + 1) * self.t + 1), device=device)
        self.precision = precision
        self.mem = self.model.stack.init_memory(self.b)
        self.i = 0

    def step(self) -> float:
        """Trains the next window; returns its wall time in ms."""
        t, i = self.t, self.i
        _sync(self.device)
        start = time.perf_counter()
        x, y = self.data[:, i * t:(i + 1) * t], self.data[:, i * t + 1:(i + 1) * t + 1]
        with autocast(self.device, self.precision):
            loss, self.mem = self.model(x, y, self.mem)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)   # here, not before backward: the gradients' memory serves the next forward
        _sync(self.device)
        self.i += 1
        return 1000 * (time.perf_counter() - start)

    def memory_full(self) -> bool:
        return all(lm.mem.shape[1] == self.cfg.mem_len and lm.cmem.shape[1] == self.cfg.cmem_len
                   for lm in self.mem.layers)

    def require_full(self, name: str, warmup: int) -> None:
        """Raises RuntimeError, saying how far it got, if a memory is not full after ``warmup`` windows."""
        if not self.memory_full():
            lm = self.mem.layers[0]
            raise RuntimeError(f"ctbench bench core: after {warmup} warm-up windows the {name}'s memories hold "
                               f"{lm.mem.shape[1]} / {self.cfg.mem_len} and {lm.cmem.shape[1]} / "
                               f"{self.cfg.cmem_len}; it needs {self.row()['windows_to_fill']} windows")

    def row(self) -> dict:
        flops = training_flops_per_token(self.model.stack, self.t)
        return dict(params=count_parameters(self.model), params_compressor=compressor_parameters(self.model.stack),
                    flops_per_token=flops["total"], flops=flops, mem_len=self.cfg.mem_len,
                    cmem_len=self.cfg.cmem_len, windows_to_fill=windows_to_fill(self.cfg, self.t))


def resolve_warmup(spec: dict, warmup: int | None) -> int:
    """``--warmup``: None means until every memory is full; fewer windows than that is a ValueError."""
    needed = warmup_windows(spec)
    if warmup is not None and warmup < needed:
        raise ValueError(f"--warmup {warmup}: the memories fill only after {needed} windows at this size "
                         f"(n_m + c n_cm = {spec['mem_len'] + spec['rate'] * spec['cmem_len']} tokens at "
                         f"T = {spec['window']}); use --warmup >= {needed} or leave it out")
    return needed if warmup is None else warmup


def warmup_windows(spec: dict) -> int:
    """Windows until every memory of both models is full: the Compressive Transformer's compressed memory
    needs ceil((n_m + c n_cm) / T) (4 at the reference size), the TransformerXL's memory ceil((n_m + n_cm) / T)."""
    return max(windows_to_fill(model_config(spec, name), spec["window"]) for name in NAMES)


def measure_speed(spec: dict, device: str, steps: int, warmup: int, precision: Precision) -> dict[str, list[float]]:
    """Both models in one process, taking turns window by window, with a plain matrix product timed after
    each pair, so that a slow spell of a shared machine falls on all three alike. Returns each model's
    timed step times (ms), in pairs, and the matmul FLOP/s measured between them ("matmul"). Raises
    RuntimeError if a memory is not full after the ``warmup`` windows."""
    trainees = {name: _Trainee(spec, name, device, steps + warmup, precision) for name in NAMES}
    for _ in range(warmup):
        for trainee in trainees.values():
            trainee.step()
    for name, trainee in trainees.items():
        trainee.require_full(name, warmup)
    times: dict[str, list[float]] = {name: [] for name in (*NAMES, "matmul")}
    for _ in range(steps):
        for name, trainee in trainees.items():
            times[name].append(trainee.step())
        times["matmul"].append(matmul_flops(device, precision.name, repeats=2))
    return times


def measure_memory(spec: dict, name: str, device: str, steps: int, precision: Precision) -> dict:
    """Trains ``steps`` windows of one model alone and returns its peak memory (MiB) and sizes."""
    trainee = _Trainee(spec, name, device, steps, precision)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(steps):
        trainee.step()
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return dict(trainee.row(), model=name, peak_mib=peak / 2 ** 20)


def _child(queue, threads, fn, *args):
    if threads:
        torch.set_num_threads(threads)
    queue.put(fn(*args))


def _in_child(ctx, threads, fn, *args):
    """fn(*args) in a fresh process, so that its peak resident memory is its own."""
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, threads, fn, *args))
    proc.start()
    while True:                  # a child that dies (out of memory, an error) must not leave us waiting
        try:
            result = queue.get(timeout=1.0)
            break
        except _queue.Empty:
            if not proc.is_alive():
                raise RuntimeError(f"ctbench bench core: the {fn.__name__} child process exited with code "
                                   f"{proc.exitcode} (its error is printed above)") from None
    proc.join()
    return result


def run(spec: dict, device: str, steps: int, warmup: int | None = None, threads: int | None = None,
        malloc_trim: bool = False, mmap_threshold_mib: float = 0.0,
        precision: Precision = Precision("fp32", "set")) -> dict:
    """One table: ``steps`` timed windows per model in ``precision`` after ``warmup`` windows (default: until
    every memory is full; fewer is a ValueError)."""
    warmup = resolve_warmup(spec, warmup)
    # glibc serves a freed large block's size from its heap from then on (its mmap threshold rises
    # with each free), and that heap fragments: peak RSS ends ~150 MiB above the live memory at the
    # reference size. A fixed threshold keeps activations in mmap'd blocks that go back to the OS
    # at free; trimming the heap top instead re-faults every step's activations (~1.5x slower on a
    # 2-core VM). The children inherit the variables.
    if malloc_trim:
        os.environ["MALLOC_TRIM_THRESHOLD_"] = "0"
    if mmap_threshold_mib > 0:
        os.environ["MALLOC_MMAP_THRESHOLD_"] = str(int(mmap_threshold_mib * 2 ** 20))
    ctx = mp.get_context("spawn")
    times = _in_child(ctx, threads, measure_speed, spec, device, steps, warmup, precision)
    rows = [_in_child(ctx, threads, measure_memory, spec, name, device, steps + warmup, precision)
            for name in NAMES]
    rate = statistics.median(times["matmul"])
    for row in rows:
        row["step_times_ms"] = times[row["model"]]
        row["step_ms"] = statistics.median(row["step_times_ms"])
        row["tokens_per_s"] = spec["batch"] * spec["window"] * 1000 / row["step_ms"]
        row["matmul_fraction"] = row["flops_per_token"] * row["tokens_per_s"] / rate
    # The ratio of each pair of neighbouring steps, then their median: robust to the machine's drift.
    paired = [c / x for x, c in zip(times[NAMES[0]], times[NAMES[1]])]
    return dict(device=device, spec=spec, precision=precision.name, precision_reason=precision.reason,
                matmul_flops=rate, matmul_runs=times["matmul"], threads=threads or torch.get_num_threads(),
                cpu=cpu_report(threads), rows=rows, steps=steps, warmup=warmup, malloc_trim_threshold=os.environ.get("MALLOC_TRIM_THRESHOLD_", "glibc default"),
                malloc_mmap_threshold=os.environ.get("MALLOC_MMAP_THRESHOLD_", "glibc default"),
                step_ratio=statistics.median(paired))


def format_table(result: dict) -> str:
    spec, cpu = result["spec"], result["cpu"]
    lines = [f"ctbench bench core on {result['device']} ({result['threads']} threads), {result['precision']} "
             f"({result['precision_reason']}): d={spec['d_model']} l={spec['n_layers']} H={spec['n_heads']} "
             f"ff={spec['d_ff']} T={spec['window']} B={spec['batch']} n_m={spec['mem_len']} n_cm={spec['cmem_len']} "
             f"c={spec['rate']}, conv + attention-reconstruction",
             format_cpu(cpu),
             f"plain 2048x2048 {result['precision']} matmul: {result['matmul_flops'] / 1e9:.1f} GFLOP/s (median, timed "
             f"between the step pairs); MALLOC_TRIM_THRESHOLD_={result['malloc_trim_threshold']}, "
             f"MALLOC_MMAP_THRESHOLD_={result.get('malloc_mmap_threshold', 'glibc default')}",
             f"speed: both models in one process taking turns, {result['steps']} timed steps each (median) after "
             f"{result['warmup']} warm-up windows (every memory full); peak: each model alone in a fresh process",
             "FLOPs per token as performed: 6 N (non-embedding, without the compressors) + 12 l d A + the "
             "compression's (compressor and reconstruction loss on the compressed memories)",
             "",
             "| model | memory / compressed | params (non-emb) | GFLOP/token (6N + attn + compr) | tokens/s | "
             "step ms | peak MiB | FLOP/s / matmul |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        f = r["flops"]
        lines.append(f"| {r['model']} | {r['mem_len']} / {r['cmem_len']} | {r['params'] / 1e6:.2f}M | "
                     f"{f['total'] / 1e9:.4f} ({f['dense'] / 1e9:.4f} + {f['attention'] / 1e9:.4f} + "
                     f"{f['compression'] / 1e9:.4f}) | {r['tokens_per_s']:.0f} | {r['step_ms']:.1f} | "
                     f"{r['peak_mib']:.0f} | {r['matmul_fraction']:.2f} |")
    lines.append("")
    lines.append(f"Compressive / TransformerXL step time: {result['step_ratio']:.3f} (median of paired steps; "
                 "target <= 1.10)")
    return "\n".join(lines)


def format_cpu(cpu: dict) -> str:
    return (f"CPU: {cpu['cpu']}; bf16-relevant flags: {' '.join(cpu['bf16_flags']) or 'none'} (native bf16: "
            f"{'yes' if cpu['native_bf16'] else 'no'}; from {cpu['flags_source']}); torch {cpu['torch']} "
            f"({cpu['torch_cpu_capability']} kernels), {cpu['threads']} threads")


def precisions(device: str, choice: str) -> tuple[list[Precision], dict[str, str]]:
    """The precisions to run for ``--precision`` (all: fp32, and bf16 where native) and those skipped, with why.
    auto and bf16 resolve as a trainer's setting does (bf16 refused where not native: ValueError)."""
    if choice != "all":
        return [resolve_precision(choice, device, "--precision")], {}
    native, why = bf16_support(device)
    if native:
        return [Precision("fp32", "set"), Precision("bf16", why)], {}
    return [Precision("fp32", "set")], {"bf16": f"{why}: bf16 autocast would be emulated, so it is not timed"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ctbench bench core", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--config", choices=("reference", "gpu"), default=None,
                        help="reference: the issue's CPU configuration; gpu: enwik8-sized layers (default on CUDA)")
    parser.add_argument("--precision", choices=("all", "auto", "fp32", "bf16"), default="all",
                        help="all (default): fp32, and bf16 autocast where the device runs it natively")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps per model")
    parser.add_argument("--warmup", type=int, default=None,
                        help="warm-up windows (default and minimum: until every memory is full)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--malloc-trim", action="store_true",
                        help="set MALLOC_TRIM_THRESHOLD_=0 in the children: lower peak RSS, slower steps")
    parser.add_argument("--mmap-threshold", type=float, default=0.0, metavar="MIB",
                        help="fix glibc's mmap threshold in the children (e.g. 1): blocks at least this large "
                             "return to the OS at free; 0 keeps glibc's adaptive threshold")
    parser.add_argument("--profile", action="store_true",
                        help="instead of the speed table: where each model's step time goes (matmuls, casts, "
                             "copies, softmax, layer norm, optimizer, ...), each model alone in a fresh process")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("ctbench bench core: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    config = args.config or ("gpu" if args.device == "cuda" else "reference")
    spec = dict(GPU if config == "gpu" else REFERENCE)
    steps = args.steps or (30 if args.device == "cuda" else 20)
    if steps < 1:
        print("ctbench bench core: --steps must be >= 1", file=sys.stderr)
        return 2
    try:
        chosen, skipped = precisions(args.device, args.precision)
        if args.profile:
            key, results = "profiles", _profile(spec, args, steps, chosen)
            text = format_cpu(cpu_report(args.threads)) + "\n\n" + "\n\n".join(map(format_profile, results))
        else:
            key, results = "runs", [run(spec, args.device, steps, args.warmup, args.threads, args.malloc_trim,
                                        args.mmap_threshold, precision) for precision in chosen]
            text = "\n\n".join(format_table(result) for result in results)
    except ValueError as err:
        print(f"ctbench bench core: {err}", file=sys.stderr)
        return 2
    print(text)
    for name, why in skipped.items():
        print(f"\n{name}: skipped: {why}")
    if args.json:
        from .run.io import atomic_write_json
        atomic_write_json(args.json, {"cpu": cpu_report(args.threads), key: results, "skipped": skipped})
    return 0


def _profile(spec: dict, args, steps: int, chosen: list[Precision]) -> list[dict]:
    """``--profile``: core/profile.py's breakdown for each precision, each model in its own process."""
    warmup = resolve_warmup(spec, args.warmup)
    ctx = mp.get_context("spawn")
    return [dict(precision=precision.name, threads=args.threads or torch.get_num_threads(), steps=steps,
                 warmup=warmup, spec=spec,
                 rows=[_in_child(ctx, args.threads, profile_model, spec, name, args.device, steps, warmup, precision)
                       for name in NAMES])
            for precision in chosen]
