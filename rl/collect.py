"""`ctbench rl collect`: copy finished RL runs into results/rl/ with one summary row per run.

For each run directory: results.json and metrics.jsonl are copied to OUT/<run directory name>/;
OUT/summary.csv has one row per run (core, compression rate, memory sizes, delay, frames, updates, wall
time, the return over the last 100 episodes, the best logged return, when a logged return first reached
``SOLVED``, chance) and OUT/curves.csv every logged point (frames, time, return, episodes, actor and
learner frames/s). Figure 5 itself is drawn by `ctbench report` from the run directories.
"""
from __future__ import annotations

from pathlib import Path

from core.run.collect import collect_runs

SOLVED = 0.9
SUMMARY_KEYS = ("run", "core", "compression_rate", "mem_len", "cmem_len", "delay", "frames", "updates", "wall_time_s",
                "final_return_last100", "best_logged_return", "first_logged_return_ge_0_9_at_s",
                "first_logged_return_ge_0_9_at_frames", "chance_return", "params")
CURVE_KEYS = ("run", "frames", "time_s", "episode_return", "episodes", "fps_actor", "fps_learner")


def _logged(lines: list[dict]) -> list[dict]:
    """The training lines that report a return (the first interval may have finished no episode)."""
    return [r for r in lines if r.get("split", "train") == "train" and r.get("episode_return") is not None]


def summary_row(run: Path, res: dict, lines: list[dict]) -> dict:
    logged = _logged(lines)
    solved = next((r for r in logged if r["episode_return"] >= SOLVED), None)
    memory = res["model"] != "lstm"                       # the LSTM core has no memory sizes or rate
    return {"run": run.name, "core": res["model"],
            "compression_rate": res.get("compression_rate") if memory else None,
            "mem_len": res.get("mem_len") if memory else None, "cmem_len": res.get("cmem_len") if memory else None,
            "delay": res.get("delay"), "frames": res.get("frames"), "updates": res.get("steps"),
            "wall_time_s": _round(res.get("wall_time_s"), 0),
            "final_return_last100": _round(res.get("value")),
            "best_logged_return": _round(max((r["episode_return"] for r in logged), default=None)),
            "first_logged_return_ge_0_9_at_s": _round(solved["time_s"], 0) if solved else None,
            "first_logged_return_ge_0_9_at_frames": solved["frames"] if solved else None,
            "chance_return": res.get("chance_return"), "params": res.get("params")}


def curve_rows(run: Path, res: dict, lines: list[dict]) -> list[dict]:
    return [{"run": run.name, "frames": r["frames"], "time_s": _round(r.get("time_s"), 1),
             "episode_return": _round(r["episode_return"]), "episodes": r.get("episodes"),
             "fps_actor": _round(r.get("fps_actor"), 0), "fps_learner": _round(r.get("fps_learner"), 0)}
            for r in _logged(lines)]


def _round(x, digits: int = 3):
    """x rounded to ``digits`` decimals (an int for 0); None stays None."""
    if x is None:
        return None
    return int(round(x)) if digits == 0 else round(float(x), digits)


def collect(run_dirs: list[str | Path], out: str | Path) -> list[dict]:
    """Copy each run into `out` (one folder per run directory name); returns the summary rows."""
    names = [Path(r).name for r in run_dirs]
    if len(set(names)) != len(names):
        raise ValueError(f"run directories must have distinct names (they name the folders under {out}): {names}")
    summary, _ = collect_runs(run_dirs, out, name=lambda run, res: run.name, summary_row=summary_row,
                              summary_keys=SUMMARY_KEYS, curve_rows=curve_rows, curve_keys=CURVE_KEYS,
                              hint="train the run to the end: `ctbench rl train ... --resume`")
    return summary
