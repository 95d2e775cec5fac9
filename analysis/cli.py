"""`ctbench report [RUN_DIRS...] [--out results/]`: figures and tables from run directories."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from analysis.report import build_report
from analysis.runs import RunFormatError, load_runs


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ctbench report", description=(
        "Read run directories (any folder holding results.json, searched recursively) and write the paper's "
        "figures (PNG) and tables (Markdown + CSV) plus an index.md under --out."))
    p.add_argument("runs", nargs="*", default=["runs"], help="run directories or folders above them (default: runs)")
    p.add_argument("--out", default="results", help="output folder (default: results)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        runs = load_runs(args.runs)
    except (FileNotFoundError, RunFormatError) as err:
        print(f"ctbench report: {err}", file=sys.stderr)
        return 2
    if not runs:
        print(f"ctbench report: no run directories (folders with results.json) under {' '.join(args.runs)}; "
              "train something first, e.g. `ctbench suite --preset smoke`", file=sys.stderr)
        return 1
    # the runs as given, not --out: a rebuild into another folder is byte-identical to the published one
    command = "ctbench report " + " ".join(shlex.quote(a) for a in args.runs)
    rep = build_report(runs, Path(args.out), command.strip())
    print(f"read {len(runs)} runs; wrote {len(rep.written)} figures/tables under {args.out}/ (index: {args.out}/index.md)")
    for what, why in rep.skipped:
        print(f"  not made: {what}: {why}", file=sys.stderr if why.startswith("FAILED") else sys.stdout)
    return 1 if rep.failed else 0
