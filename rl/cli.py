"""`ctbench rl ...`: train IMPALA agents (`train`), copy finished runs into results (`collect`), or look at
an environment (`env`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from core.run.cli import run_command
from core.run.config import available_presets


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ctbench rl", description="IMPALA agents with compressive memory")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train an agent (writes RUN_DIR/metrics.jsonl, results.json, checkpoints/)")
    t.add_argument("--preset", default="cpu", help=f"configs/rl/<preset>.toml or a path ({', '.join(available_presets('rl'))})")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. agent.core=compressive")
    t.add_argument("--run-dir", default=None, help="default runs/rl/<preset>")
    t.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/latest.pt")
    c = sub.add_parser("collect", help="copy finished runs into results/rl/ with summary.csv and curves.csv")
    c.add_argument("runs", nargs="+", help="run directories (their names name the rows and folders)")
    c.add_argument("--out", default="results/rl")
    e = sub.add_parser("env", help="step an environment with random actions and print what it returns")
    e.add_argument("name", help="nonmatching, minigrid:<id> or dmlab:<level>")
    e.add_argument("--episodes", type=int, default=100)
    e.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_command(f"ctbench rl {args.cmd}", lambda: _dispatch(args))


def _dispatch(args) -> int:
    if args.cmd == "train":
        from rl.config import load
        from rl.impala import train
        cfg = load(args.preset, args.set)
        name = Path(args.preset).stem
        return train(cfg, args.run_dir or f"runs/rl/{name}", preset=name, resume=args.resume)
    if args.cmd == "collect":
        from rl.collect import collect
        for r in collect(args.runs, args.out):
            solved = r["first_logged_return_ge_0_9_at_s"]
            print(f"{r['run']:<16} {r['core']:<12} delay {r['delay']} c={r['compression_rate']}: return "
                  f"{r['final_return_last100']} (best {r['best_logged_return']}; "
                  f">= 0.9 {'after ' + str(solved) + ' s' if solved is not None else 'never'})")
        return 0
    return random_episodes(args.name, args.episodes, args.seed)


def random_episodes(name: str, episodes: int, seed: int) -> int:
    import numpy as np

    from rl.envs import make_env
    env = make_env(name, seed=seed)
    rng = np.random.default_rng(seed)
    n = env.action_spec().num_values
    returns, lengths = [], []
    for _ in range(episodes):
        ts, ret, steps = env.reset(), 0.0, 0
        while not ts.last():
            ts = env.step(int(rng.integers(n)))
            ret += ts.reward or 0.0
            steps += 1
        returns.append(ret)
        lengths.append(steps)
    print(f"{name}: observation {env.observation_spec().shape} {env.observation_spec().dtype}, {n} actions, "
          f"{getattr(env, 'frames_per_step', 1)} frames/step")
    print(f"random policy over {episodes} episodes: return {np.mean(returns):.3f} +- {np.std(returns):.3f}, "
          f"length {np.mean(lengths):.1f}")
    return 0
