"""`ctbench text prepare|train|eval|sample` (see docs/text.md)."""
from __future__ import annotations

import argparse
import json
import sys

from core.run.cli import run_command


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ctbench text", description="Long-range language modelling.")
    sub = p.add_subparsers(dest="command", required=True)

    q = sub.add_parser("prepare", help="prepare a dataset into the cache")
    q.add_argument("dataset", help="enwik8 | wikitext103 | wikitext2 | pg19 | books:DIR | longrange | longrange-topic")
    q.add_argument("--data-dir", default=None, help="cache folder (default $CTBENCH_DATA, else ~/.cache/ctbench)")
    q.add_argument("--source", default=None, help="local raw data instead of the download")
    q.add_argument("--allow-partial", action="store_true", help="accept a prefix / subset (flagged in results)")
    q.add_argument("--vocab-size", type=int, default=32000, help="subword vocabulary (pg19, books)")
    q.add_argument("--max-books", type=int, default=None)
    q.add_argument("--seed", type=int, default=0)

    t = sub.add_parser("train", help="train a preset")
    t.add_argument("--preset", default=None, help="configs/text/NAME.toml or a path")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset field, e.g. --set train.lr=1e-3 (repeatable)")
    t.add_argument("--run-dir", default=None, help="run directory (default runs/text/PRESET)")
    t.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/latest.pt")
    t.add_argument("--data-dir", default=None)
    t.add_argument("--no-progress", action="store_true")

    e = sub.add_parser("eval", help="evaluate a run on a whole split, streaming with memory")
    e.add_argument("--run", required=True, help="run directory")
    e.add_argument("--split", default=None, help="valid | test (default: the preset's eval.split)")
    e.add_argument("--mem-len", type=int, default=None, help="memory size at evaluation (n_m)")
    e.add_argument("--cmem-len", type=int, default=None, help="compressed memory size at evaluation (n_cm)")
    e.add_argument("--save-analysis", action="store_true", help="write RUN_DIR/analysis/*")
    e.add_argument("--dynamic-eval", action="store_true", help="naive dynamic evaluation")
    e.add_argument("--batch-size", type=int, default=None, help="parallel streams (default eval.batch_size)")
    e.add_argument("--max-windows", type=int, default=0,
                   help="score only this many windows (0: all); written to RUN_DIR/partial_eval/, not results.json")
    e.add_argument("--same-length", action=argparse.BooleanOptionalAction, default=None,
                   help="every query attends to the same number of keys (TransformerXL's evaluation; default: as trained)")
    e.add_argument("--clamp-len", type=int, default=None,
                   help="relative distances above N share one position embedding (-1: none; default: as trained)")
    e.add_argument("--device", default="auto")
    e.add_argument("--data-dir", default=None)
    e.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a progress bar (default: when stderr is a terminal)")

    s = sub.add_parser("sample", help="generate text, streaming with memory")
    s.add_argument("--run", required=True)
    s.add_argument("--prompt", required=True)
    s.add_argument("--tokens", type=int, default=200)
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto")
    s.add_argument("--data-dir", default=None)
    c = sub.add_parser("compare", help="a table of evaluated runs (longrange: bits by re-mention distance)")
    c.add_argument("runs", nargs="+", help="run directories evaluated with `ctbench text eval`")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    return run_command(f"ctbench text {args.command}", lambda: _dispatch(args))


def _dispatch(args) -> int:
    from . import run
    if args.command == "prepare":
        from .data import prepare_dataset
        ds = prepare_dataset(args.dataset, args.data_dir, source=args.source,
                             allow_partial=args.allow_partial, vocab_size=args.vocab_size, seed=args.seed,
                             max_books=args.max_books)
        print(f"{ds}\nprepared in {ds.path.resolve()}")
        return 0
    if args.command == "train":
        out = run.train(args.preset, args.overrides, args.run_dir, resume=args.resume, data_dir=args.data_dir,
                        progress=False if args.no_progress else None)
        s = out["summary"]
        if out["results"] is not None:
            r = out["results"]
            print(f"{out['run_dir']}: {s['steps']} steps, {s['tokens']:,} tokens, {s['wall_time_s']:.0f} s; "
                  f"valid {r['metric']} {r['value']:.4f}")
        if s["interrupted"]:
            print(f"stopped at step {s['steps']}; checkpoint saved; continue with --resume --run-dir {out['run_dir']}")
            return 130
        return 0
    if args.command == "eval":
        r = run.evaluate_run(args.run, split=args.split, mem_len=args.mem_len, cmem_len=args.cmem_len,
                             save_analysis=args.save_analysis, dynamic_eval=args.dynamic_eval,
                             batch_size=args.batch_size, max_windows=args.max_windows, device=args.device,
                             data_dir=args.data_dir, progress=args.progress, same_length=args.same_length,
                             clamp_len=args.clamp_len)
        shown = {k: r[k] for k in ("model", "dataset", "split", "metric", "value", "mem_len", "cmem_len",
                                   "tokens_scored", "eval_tokens_per_s", "results_file")}
        if "longrange" in r:
            shown["longrange"] = r["longrange"]
        print(json.dumps(shown, indent=1))
        return 0
    if args.command == "sample":
        run.sample(args.run, args.prompt, tokens=args.tokens, temperature=args.temperature, seed=args.seed,
                   device=args.device, data_dir=args.data_dir)
        return 0
    if args.command == "compare":
        print(run.compare_table(args.runs))
        return 0
    raise AssertionError(args.command)
