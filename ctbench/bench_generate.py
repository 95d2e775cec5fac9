"""`ctbench bench generate`: sampling speed with and without the generation cache (core/cache.py).

Text: one stream, one token per step (`text.run.generate_tokens`) at enwik8's memory sizes (mem 768,
cmem 1152, c 3) for the Compressive Transformer, and the TransformerXL with mem 768 and with mem 1920
(as many slots as the CT). Speech: `speech.generate` (the current window re-read every sample, committed
when full) at the speech preset's sizes (mem 768, cmem 768, c 4). The memories are filled first (prompt
or prime of n_m + c n_cm + 1 tokens, untimed): the timed tokens attend over full memories. d_model and
depth are small so that it runs on a CPU; the cache saves the projection of every memory slot, which
grows with d_model^2, so the speed-up grows with d_model.

Each row times the uncached and the cached path alternately in one process (`--rounds` rounds) and
reports the medians: tokens/s of each and the median of the per-round ratios.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

# name, domain, mem_len, cmem_len, compression rate
ROWS = [("CT", "text", 768, 1152, 3), ("TXL", "text", 768, 0, 3), ("TXL", "text", 1920, 0, 3),
        ("CT", "speech", 768, 768, 4), ("TXL", "speech", 1536, 0, 4)]


def text_timer(d_model, n_layers, n_heads, mem_len, cmem_len, rate, tokens, window):
    """A function (cached) -> seconds to sample `tokens` text tokens after filling the memories."""
    from text.config import ModelConfig
    from text.model import LanguageModel
    from text.run import generate_tokens

    torch.manual_seed(0)
    cfg = ModelConfig(d_model=d_model, n_layers=n_layers, n_heads=n_heads, d_ff=4 * d_model, mem_len=mem_len,
                      cmem_len=cmem_len, compression_rate=rate, dropout=0.0)
    model = LanguageModel(cfg, 256).eval()
    prompt = torch.randint(256, (mem_len + rate * cmem_len + 2,)).tolist()

    def run(cached: bool) -> float:
        steps = generate_tokens(model, prompt, tokens + 1, 1.0, torch.Generator().manual_seed(0), window, cached)
        next(steps)                                     # the prompt and the first token: untimed
        t = time.perf_counter()
        for _ in steps:
            pass
        return time.perf_counter() - t
    return run


def speech_timer(d_model, n_layers, n_heads, mem_len, cmem_len, rate, tokens, window):
    """A function (cached) -> seconds to sample `tokens` audio samples after filling the memories."""
    from core import CTConfig
    from speech.generate import transformer_prefill, transformer_sample
    from speech.models import SpeechTransformer

    torch.manual_seed(0)
    cfg = CTConfig(d_model=d_model, n_layers=n_layers, n_heads=n_heads, d_ff=4 * d_model, mem_len=mem_len,
                   cmem_len=cmem_len, compression_rate=rate, dropout=0.0)
    model = SpeechTransformer(cfg, "compressive" if cmem_len else "txl").eval()
    prime = torch.randint(256, (1, mem_len + rate * cmem_len + 2))

    def run(cached: bool) -> float:
        start = transformer_prefill(model, prime, window, cached)
        t = time.perf_counter()
        transformer_sample(model, tokens, start, torch.Generator().manual_seed(0), window)
        return time.perf_counter() - t
    return run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ctbench bench generate", description=__doc__.split("\n")[0])
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--tokens", type=int, default=64, help="timed tokens (samples) per path and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--text-window", type=int, default=512, help="window for reading the prompt")
    p.add_argument("--speech-window", type=int, default=64)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    p.add_argument("--only", default="", help="comma-separated domains to run (text, speech); default both")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    domains = set(args.only.split(",")) if args.only else {"text", "speech"}

    print(f"generation benchmark on cpu ({torch.get_num_threads()} threads): d_model {args.d_model}, "
          f"{args.layers} layers, {args.heads} heads, {args.tokens} timed tokens x {args.rounds} rounds, "
          f"speech window {args.speech_window}")
    print(f"{'domain':<7} {'model':<5} {'mem/cmem (c)':>14} {'uncached tok/s':>15} {'cached tok/s':>13} "
          f"{'speed-up':>9} {'per-round':>16}")
    for name, domain, mem_len, cmem_len, rate in ROWS:
        if domain not in domains:
            continue
        make = text_timer if domain == "text" else speech_timer
        window = args.text_window if domain == "text" else args.speech_window
        run = make(args.d_model, args.layers, args.heads, mem_len, cmem_len, rate, args.tokens, window)
        slow, fast = [], []
        for _ in range(args.rounds):                    # alternating: both paths see the same load
            slow.append(run(False))
            fast.append(run(True))
        ratios = sorted(s / f for s, f in zip(slow, fast))
        sizes = f"{mem_len}/{cmem_len}" + (f" ({rate})" if cmem_len else "")
        print(f"{domain:<7} {name:<5} {sizes:>14} {args.tokens / statistics.median(slow):>15.1f} "
              f"{args.tokens / statistics.median(fast):>13.1f} {statistics.median(ratios):>8.2f}x "
              f"{f'{ratios[0]:.2f}-{ratios[-1]:.2f}':>16}", flush=True)
    return 0
