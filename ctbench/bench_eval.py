"""`ctbench bench eval`: evaluation time against stream length (text and speech; it should be linear).

Scores random streams of L, 2L, 4L, ... tokens with `text.evaluate.evaluate` (one stream, the Compressive
Transformer) and `speech.task.evaluate` (one clip), the lengths taking turns for `--rounds` rounds, and
prints the median seconds, tokens/s and the time per token relative to the shortest stream: with bounded memories every window costs the same, so that ratio stays
near 1 once the memories are full (they fill within the first n_m + c n_cm tokens).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ctbench bench eval", description=__doc__.split("\n")[0])
    p.add_argument("--length", type=int, default=4096, help="the shortest stream L (tokens)")
    p.add_argument("--doublings", type=int, default=2, help="also 2L, 4L, ... (this many)")
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--window", type=int, default=128)
    p.add_argument("--mem-len", type=int, default=128)
    p.add_argument("--cmem-len", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from core import CTConfig
    from speech.models import SpeechTransformer
    from speech.task import evaluate as speech_evaluate
    from text.config import ModelConfig
    from text.evaluate import evaluate as text_evaluate
    from text.model import LanguageModel

    sizes = dict(d_model=args.d_model, n_layers=args.layers, n_heads=4, d_ff=4 * args.d_model, mem_len=args.mem_len,
                 cmem_len=args.cmem_len, compression_rate=3, dropout=0.0)
    torch.manual_seed(0)
    text_model = LanguageModel(ModelConfig(**sizes), 256)
    speech_model = SpeechTransformer(CTConfig(**sizes))
    cpu = torch.device("cpu")

    def text(n: int) -> None:
        tokens = np.random.default_rng(0).integers(0, 256, n + 1)
        text_evaluate(text_model, tokens, window=args.window, device=cpu, precision="fp32")

    def speech(n: int) -> None:
        clip = torch.randint(0, 256, (n + 1,), generator=torch.Generator().manual_seed(0))
        speech_evaluate(speech_model, [clip], args.window, 1, False, "cpu", "fp32")

    print(f"eval time vs stream length on cpu ({torch.get_num_threads()} threads): CT d_model {args.d_model}, "
          f"{args.layers} layers, window {args.window}, mem {args.mem_len}, cmem {args.cmem_len} (c 3)")
    print(f"{'domain':<7} {'tokens':>8} {'seconds':>9} {'tokens/s':>9} {'time/token vs L':>16}")
    lengths = [args.length * 2 ** i for i in range(args.doublings + 1)]
    for name, run in (("text", text), ("speech", speech)):
        run(args.window * 2)                                   # warm-up
        times = {n: [] for n in lengths}
        for _ in range(args.rounds):                           # lengths take turns: a slow spell hits them all
            for n in lengths:
                t = time.perf_counter()
                run(n)
                times[n].append(time.perf_counter() - t)
        base = statistics.median(times[lengths[0]]) / lengths[0]
        for n in lengths:
            seconds = statistics.median(times[n])
            print(f"{name:<7} {n:>8} {seconds:>9.2f} {n / seconds:>9.0f} {seconds / n / base:>15.2f}x", flush=True)
    return 0
