"""Copying finished runs into results/: the loop every domain's `collect` command shares.

Each run directory's results.json and metrics.jsonl are copied to OUT/<name>/, and two tables are written
beside them: summary.csv (one row per run) and curves.csv (rows from every run's metrics). The domain says
how a run is named and what its rows hold.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path

from .io import atomic_write_text, read_json, read_jsonl

# (run directory, its results.json, its metrics.jsonl lines) -> ...
RowFn = Callable[[Path, dict, list[dict]], dict]
RowsFn = Callable[[Path, dict, list[dict]], list[dict]]


def to_csv(rows: Sequence[dict], keys: Sequence[str]) -> str:
    """CSV text with the columns ``keys`` (other fields dropped, missing ones and None empty)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(keys), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def collect_runs(run_dirs: Sequence[str | Path], out: str | Path, *, name: Callable[[Path, dict], str],
                 summary_row: RowFn, summary_keys: Sequence[str], curve_rows: RowsFn, curve_keys: Sequence[str],
                 hint: str) -> tuple[list[dict], list[dict]]:
    """Copies each run into OUT/<name(run, results)>/ and writes OUT/summary.csv and OUT/curves.csv.

    ``hint`` completes the message for a run without results.json (how to finish it). Returns the summary
    rows and the curve rows.
    """
    out = Path(out)
    summary, curves = [], []
    for run in map(Path, run_dirs):
        if not (run / "results.json").is_file():
            raise ValueError(f"{run}: no results.json ({hint})")
        res = read_json(run / "results.json")
        lines = read_jsonl(run / "metrics.jsonl") if (run / "metrics.jsonl").is_file() else []
        dest = out / name(run, res)
        for file in ("results.json", "metrics.jsonl"):
            if (run / file).is_file():
                atomic_write_text(dest / file, (run / file).read_text())
        summary.append(summary_row(run, res, lines))
        curves += curve_rows(run, res, lines)
    atomic_write_text(out / "summary.csv", to_csv(summary, summary_keys))
    atomic_write_text(out / "curves.csv", to_csv(curves, curve_keys))
    return summary, curves
