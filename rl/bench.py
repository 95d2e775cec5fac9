"""`ctbench bench rl`: actor and learner frames per second for 1, 2 and 4 actors (one table).

Each row is a short real training run (rl.impala.train) with N actor processes. Columns:
actor fps = environment frames generated per second by all actors together; learner fps = frames
consumed per second of learner compute (forward, V-trace, backward, update); total fps = frames
learned per wall-clock second. Speed only; no assertions (tests never time anything).
"""
from __future__ import annotations

import argparse
import tempfile

from core.run.io import read_jsonl


def measure(preset: str, actors: int, seconds: float, overrides: list[str]) -> dict:
    from rl.config import load
    from rl.impala import train
    cfg = load(preset, [f"impala.num_actors={actors}", "impala.total_frames=1000000000",
                        f"run.max_time_s={seconds}", f"run.log_every_s={seconds / 4}",
                        "run.checkpoint_every_s=1e9", *overrides])
    with tempfile.TemporaryDirectory(prefix="ctbench-rl-bench-") as d:
        train(cfg, d, preset=preset, log=lambda *_: None)
        lines = read_jsonl(f"{d}/metrics.jsonl")
    lines = lines[1:] if len(lines) > 1 else lines  # the first interval includes process start-up
    if not lines:
        return {"actors": actors, "actor_fps": float("nan"), "learner_fps": float("nan"), "total_fps": float("nan")}
    mean = lambda k: sum(r[k] for r in lines if r.get(k)) / max(1, sum(1 for r in lines if r.get(k)))  # noqa: E731
    return {"actors": actors, "actor_fps": mean("fps_actor"), "learner_fps": mean("fps_learner"),
            "total_fps": mean("tokens_per_s")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ctbench bench rl", description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu")
    p.add_argument("--actors", default="1,2,4", help="comma-separated actor counts")
    p.add_argument("--seconds", type=float, default=40.0, help="length of each measurement")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = p.parse_args(argv)
    counts = [int(x) for x in args.actors.split(",") if x.strip()]
    print(f"preset {args.preset} {' '.join(args.set)}; {args.seconds:.0f} s per row")
    print(f"{'actors':>6} {'actor fps':>10} {'learner fps':>12} {'total fps':>10}")
    for n in counts:
        r = measure(args.preset, n, args.seconds, args.set)
        print(f"{r['actors']:>6} {r['actor_fps']:>10.0f} {r['learner_fps']:>12.0f} {r['total_fps']:>10.0f}", flush=True)
    return 0
