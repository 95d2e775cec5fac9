"""Copy the small files of finished runs into a published folder (results/...): never checkpoints.

    python scripts/publish_runs.py runs/cpu results/cpu-runs [--only 'text-enwik8*' ...]

For each run directory under SRC that has results.json (and matches --only, a glob, repeatable): config.toml,
metrics.jsonl, results.json and analysis/*.json (not the per-token .npz files, which are large) go to
DEST/<run name>/, replacing what was there. A word-level run's token_losses.npz leaves its Table 7 sums
behind as analysis/frequency_buckets.json (the compact form analysis.tables.frequency_stats reads).
Absolute paths inside ../shared (the data beside the checkout) become relative to the repository root
(`../shared/...`), so a published config.toml reads the same on any machine; other absolute paths are left
as they are and listed.
"""
from __future__ import annotations

import argparse
import json
import fnmatch
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from analysis.runs import load_run  # noqa: E402
from analysis.tables import FREQUENCY_FILE, frequency_stats  # noqa: E402

FILES = ("config.toml", "metrics.jsonl", "results.json")


def relative_data_paths(text: str) -> str:
    shared = str((REPO.parent / "shared").resolve())
    return text.replace(shared + "/", "../shared/")


def publish(run: Path, dest: Path) -> list[str]:
    """Copies one run; returns the absolute paths left in its files (for the caller to report)."""
    tmp = dest.with_name(f".{dest.name}.publishing")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "analysis").mkdir(parents=True)
    left = []
    for rel in [*FILES, *(f"analysis/{p.name}" for p in sorted((run / "analysis").glob("*.json")))]:
        src = run / rel
        if not src.is_file():
            continue
        text = relative_data_paths(src.read_text())
        left += [w for w in text.replace('"', " ").split() if w.startswith("/") and len(w) > 1 and rel != "metrics.jsonl"]
        (tmp / rel).write_text(text)
    compact = frequency_file(run)
    if compact is not None:
        (tmp / "analysis" / FREQUENCY_FILE).write_text(json.dumps(compact, indent=1) + "\n")
    if not any((tmp / "analysis").iterdir()):
        (tmp / "analysis").rmdir()
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return left


def frequency_file(run: Path) -> dict | None:
    """Table 7's per-bucket sums of a run whose analysis/token_losses.npz holds train_count, else None."""
    if not (run / "analysis" / "token_losses.npz").is_file():
        return None
    stats = frequency_stats(load_run(run))
    if stats is None:
        return None
    buckets, train_tokens, estimated, edges = stats
    return {"source": "per-bucket sums of analysis/token_losses.npz (ctbench text eval --save-analysis), made by "
                      "scripts/publish_runs.py; the .npz itself (MBs) is not published",
            "train_tokens": train_tokens, "train_tokens_estimated": estimated, "edges": list(edges),
            "buckets": {k: {"tokens": b["tokens"], "nats": b["nats"]} for k, b in buckets.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dest")
    ap.add_argument("--only", action="append", default=None, help="glob of run names (repeatable)")
    args = ap.parse_args(argv)
    src, dest = Path(args.src), Path(args.dest)
    if not src.is_dir():
        print(f"publish_runs: {src} is not a folder of run directories", file=sys.stderr)
        return 2
    done = 0
    for run in sorted(p for p in src.iterdir() if p.is_dir() and (p / "results.json").is_file()):
        if args.only and not any(fnmatch.fnmatchcase(run.name, g) for g in args.only):
            continue
        left = publish(run, dest / run.name)
        done += 1
        print(f"{run} -> {dest / run.name}" + (f" (absolute paths left: {', '.join(sorted(set(left)))})" if left else ""))
    if not done:
        print(f"publish_runs: no finished run (with results.json) under {src} matches", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
