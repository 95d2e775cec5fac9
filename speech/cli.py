"""`ctbench speech train|eval|sample|download-fsdd|presets`: raw-waveform modelling (paper Section 5.6)."""
from __future__ import annotations

import argparse
import json


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ctbench speech", description="Raw-waveform modelling: Compressive "
                                "Transformer vs TransformerXL vs WaveNet over 8-bit mu-law audio.")
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train a preset; writes RUN_DIR (metrics.jsonl, results.json, checkpoints/)")
    t.add_argument("--preset", required=True, help="name in configs/speech/ or a path to a TOML file")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset field, e.g. --set train.steps=100 (repeatable)")
    t.add_argument("--run-dir", help="default runs/speech/<preset>")
    t.add_argument("--data-dir", help="shorthand for --set data.path=DIR")
    t.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/latest.pt")
    t.add_argument("--skip-bad", action="store_true", help="report unreadable audio files and go on without them")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="held-out NLL per sample (nats, bits) of a trained run; rewrites results.json")
    e.add_argument("--run", required=True, help="run directory")
    e.add_argument("--split", choices=("train", "valid", "test"), help="default: the preset's eval.split")
    e.add_argument("--max-seconds", type=float, default=None,
                   help="score only the first S seconds (0: the whole split; default: the preset's eval.max_seconds)")
    e.add_argument("--skip-bad", action="store_true")
    e.add_argument("--device", default="auto")

    s = sub.add_parser("sample", help="generate audio from a trained run and write a WAV")
    s.add_argument("--run", required=True)
    s.add_argument("--seconds", type=float, required=True)
    s.add_argument("--out", help="WAV path (default RUN_DIR/samples/sample_seed<SEED>.wav)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--prime-seconds", type=float, default=0.0,
                   help="continue the first S seconds of held-out audio instead of starting from silence")
    s.add_argument("--naive", action="store_true", help="recompute every sample: WaveNet its receptive field, "
                   "Transformers their memories' keys and values (the uncached reference)")
    s.add_argument("--device", default="auto")

    d = sub.add_parser("download-fsdd", help="download the Free Spoken Digit Dataset release (recordings/)")
    d.add_argument("--dest", required=True, help="folder; the WAVs land in DEST/recordings")

    c = sub.add_parser("collect", help="copy finished runs into results/speech/ with curves.csv/.png, summary.csv")
    c.add_argument("runs", nargs="+", help="run directories")
    c.add_argument("--out", default="results/speech")
    c.add_argument("--no-plot", action="store_true")

    sub.add_parser("presets", help="list the presets in configs/speech/")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from core.run.cli import run_command   # here, so that --help needs no torch
    return run_command(f"ctbench speech {args.cmd}", lambda: run(args))


def run(args) -> int:
    from pathlib import Path

    if args.cmd == "presets":
        from core.run.config import available_presets
        print("\n".join(available_presets("speech")))
        return 0
    if args.cmd == "collect":
        from speech.collect import collect
        for r in collect(args.runs, args.out, plot=not args.no_plot):
            print(f"{r['preset']:<20} {r['model']:<14} {r['split']} {r['value']:.4f} nats/sample "
                  f"({r['bits_per_sample']:.4f} bits)")
        return 0
    if args.cmd == "download-fsdd":
        from speech.datasets import download_fsdd
        print(download_fsdd(args.dest))
        return 0
    if args.cmd == "train":
        from speech.config import load_speech_config
        from speech.run import train

        overrides = list(args.overrides)
        if args.data_dir:
            overrides.append(f'data.path="{args.data_dir}"')
        if args.skip_bad:
            overrides.append("data.skip_bad=true")
        if args.no_progress:
            overrides.append("train.progress=false")
        cfg = load_speech_config(args.preset, overrides)
        run_dir = Path(args.run_dir or Path("runs") / "speech" / cfg.preset)
        record = train(cfg, run_dir, resume=args.resume)
        if record:
            print(json.dumps({k: record[k] for k in ("model", "preset", "split", "value", "bits_per_sample",
                                                     "params", "steps")}))
            print(f"run directory: {run_dir}")
        return 0
    if args.cmd == "eval":
        from speech.run import eval_run

        record = eval_run(args.run, args.split, args.max_seconds, args.device,
                          ["data.skip_bad=true"] if args.skip_bad else [])
        print(f"{record['model']} {record['preset']} {record['split']}: {record['value']:.4f} nats/sample "
              f"({record['bits_per_sample']:.4f} bits/sample) over {record['samples_scored']} samples, "
              f"{record['eval_samples_per_s']:.0f} samples/s")
        return 0
    if args.cmd == "sample":
        from speech.run import sample_run

        path = sample_run(args.run, args.seconds, args.out, args.seed, args.temperature, args.prime_seconds,
                          args.device, args.naive)
        print(path)
        return 0
    raise AssertionError(args.cmd)
