"""bf16 autocast against fp32 (issue 12): the same runs in both precisions, several seeds each.

    python scripts/precision_table.py runs/precision [--out results/precision/README-table.md]

Reads every run directory under the folder (config.toml, metrics.jsonl, results.json: `ctbench suite
--preset precision` makes them), groups them by preset and the precision they ran in (results.json
`precision`), and prints one row per preset: the last validation loss and the test split's score of each
precision (mean +- sample std over seeds), and bf16 - fp32 paired by seed with its 95% t-interval. "within
seed noise" when that interval contains 0; otherwise the signed difference is the finding.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from analysis.rules import t_interval  # noqa: E402
from analysis.tables import atomic_write  # noqa: E402
from core.run import read_jsonl  # noqa: E402
from core.run.config import load_toml  # noqa: E402


def read_run(path: Path) -> dict | None:
    """{preset, precision, seed, valid, test, unit} of one run directory; None without a test score."""
    results = path / "results.json"
    if not results.is_file():
        return None
    res = json.loads(results.read_text())
    if res.get("split") != "test" or "precision" not in res:
        return None
    cfg = load_toml(path / "config.toml")
    valid = [r["bits"] for r in read_jsonl(path / "metrics.jsonl") if r.get("split") == "valid"]
    return {"preset": res["preset"], "precision": res["precision"], "seed": int(cfg["train"].get("seed", 0)),
            "valid": valid[-1] if valid else float("nan"), "test": float(res["value"]), "metric": res["metric"],
            "params": res.get("params"), "tokens": res.get("tokens_seen"), "wall": res.get("wall_time_s")}


def stats(by_seed: dict[int, float]) -> str:
    v = np.array(list(by_seed.values()), dtype=np.float64)
    return f"{v.mean():.4f} +- {v.std(ddof=1):.4f}" if len(v) > 1 else f"{v.mean():.4f}"


def difference(bf16: dict[int, float], fp32: dict[int, float]) -> str:
    seeds = sorted(set(bf16) & set(fp32))
    if len(seeds) < 2:
        return "– (needs 2+ seeds in both)"
    m, lo, hi = t_interval(np.array([bf16[s] - fp32[s] for s in seeds]))
    verdict = "within seed noise" if lo <= 0 <= hi else ("bf16 worse" if lo > 0 else "bf16 better")
    return f"{m:+.4f} [{lo:+.4f}, {hi:+.4f}] {verdict}"


def table(runs: list[dict]) -> str:
    lines = ["| preset | params | tokens | seeds | metric | fp32 valid | bf16 valid | bf16 - fp32 valid (95% interval) "
             "| fp32 test | bf16 test | bf16 - fp32 test (95% interval) | train time fp32 / bf16 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for preset in sorted({r["preset"] for r in runs}):
        rs = [r for r in runs if r["preset"] == preset]
        side = {p: {r["seed"]: r for r in rs if r["precision"] == p} for p in ("fp32", "bf16")}
        if not side["fp32"] or not side["bf16"]:
            continue
        col = {(p, k): {s: r[k] for s, r in side[p].items()} for p in side for k in ("valid", "test")}
        wall = {p: np.median([r["wall"] for r in side[p].values()]) for p in side}
        first = rs[0]
        lines.append(f"| {preset} | {first['params']:,} | {first['tokens']:,} | {len(side['fp32'])} / {len(side['bf16'])} "
                     f"| {first['metric']} | {stats(col['fp32', 'valid'])} | {stats(col['bf16', 'valid'])} "
                     f"| {difference(col['bf16', 'valid'], col['fp32', 'valid'])} | {stats(col['fp32', 'test'])} "
                     f"| {stats(col['bf16', 'test'])} | {difference(col['bf16', 'test'], col['fp32', 'test'])} "
                     f"| {wall['fp32']:.0f} s / {wall['bf16']:.0f} s |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", help="a folder of run directories (runs/precision)")
    ap.add_argument("--out", help="also write the table to this file")
    args = ap.parse_args(argv)
    folder = Path(args.runs)
    if not folder.is_dir():
        print(f"precision_table: {folder} is not a folder of run directories (make them with "
              "`ctbench suite --preset precision`)", file=sys.stderr)
        return 2
    runs = [r for p in sorted(folder.iterdir()) if p.is_dir() and (r := read_run(p))]
    text = table(runs)
    if text.count("\n") <= 2:
        print(f"precision_table: no preset under {folder} has test-scored runs in both fp32 and bf16", file=sys.stderr)
        return 2
    print(text, end="")
    if args.out:
        atomic_write(Path(args.out), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
