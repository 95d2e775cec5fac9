"""Is a model's training speed the same from process to process? (issue 12: a bf16 CT step was bimodal.)

    python scripts/bf16_modes.py [--processes 6] [--steps 12] [--precision bf16] [--model compressive]

Starts each process fresh (spawn), trains the reference configuration of `ctbench bench core` past its
warm-up, and times `--steps` steps: prints per process the median step time (wall and CPU seconds) and
tokens/s, then the spread across processes. Two modes show as two clusters of medians far apart against
the spread within a process.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def one_process(queue, model: str, precision: str, steps: int, threads: int) -> None:
    import torch

    from core.bench import REFERENCE, _Trainee, warmup_windows
    from core.run.precision import resolve_precision
    torch.set_num_threads(threads)
    trainee = _Trainee(REFERENCE, model, "cpu", warmup_windows(REFERENCE) + steps + 1,
                       resolve_precision(precision, "cpu", "--precision"))
    for _ in range(warmup_windows(REFERENCE) + 1):
        trainee.step()
    wall, cpu = [], []
    for _ in range(steps):
        c0 = time.process_time()
        wall.append(trainee.step() / 1000)
        cpu.append(time.process_time() - c0)
    queue.put((statistics.median(wall), statistics.median(cpu), min(wall), max(wall)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=6)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    ap.add_argument("--model", default="compressive", choices=("compressive", "transformerxl"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    from core.bench import REFERENCE
    tokens = REFERENCE["batch"] * REFERENCE["window"]
    ctx = mp.get_context("spawn")
    medians = []
    print(f"{args.model}, {args.precision}, {args.threads} threads, reference configuration, {args.steps} steps per process")
    print("| process | median step s | CPU s per step | min - max s | tokens/s |")
    print("|---|---|---|---|---|")
    for i in range(args.processes):
        queue = ctx.Queue()
        p = ctx.Process(target=one_process, args=(queue, args.model, args.precision, args.steps, args.threads))
        p.start()
        wall, cpu, lo, hi = queue.get()
        p.join()
        medians.append(wall)
        print(f"| {i} | {wall:.3f} | {cpu:.3f} | {lo:.3f} - {hi:.3f} | {tokens / wall:.0f} |", flush=True)
    print(f"across processes: median {statistics.median(medians):.3f} s, min {min(medians):.3f}, max {max(medians):.3f} "
          f"(max / min {max(medians) / min(medians):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
