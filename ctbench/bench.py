"""`ctbench bench core|speech|rl|generate|eval`: speed benchmarks that print one table each."""
from __future__ import annotations

import importlib
import sys

BENCHES = {"core": "core.bench", "speech": "speech.bench", "rl": "rl.bench", "generate": "ctbench.bench_generate",
           "eval": "ctbench.bench_eval"}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHES:
        print(f"usage: ctbench bench {{{'|'.join(BENCHES)}}} [ARGS...]", file=sys.stderr)
        return 2
    return int(importlib.import_module(BENCHES[argv[0]]).main(argv[1:]) or 0)
