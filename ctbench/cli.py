"""The `ctbench` command line: `ctbench text|speech|rl|report|suite|bench ...`.

Each domain owns its own `cli.main(argv)`; this module only dispatches, importing the domain lazily so
that `ctbench rl ...` never pays for importing the text stack (and vice versa).
"""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "text": ("text.cli", "language modelling: prepare, train, eval, sample"),
    "speech": ("speech.cli", "raw-waveform modelling: train, eval, sample"),
    "rl": ("rl.cli", "IMPALA agents with compressive memory"),
    "report": ("analysis.cli", "figures and tables from run directories"),
    "suite": ("ctbench.suite", "run the per-domain benchmarks, then the report"),
    "bench": ("ctbench.bench", "speed benchmarks: core, speech, rl"),
}


def usage() -> str:
    lines = ["usage: ctbench COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<8} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`ctbench COMMAND --help` for the options of each."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"ctbench: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
