"""`ctbench suite --preset smoke|cpu|paper`: run the per-domain benchmarks in turn, then the report.

The run list is data, not code: configs/suite/<preset>.toml holds one `[[step]]` per command, e.g.

    [suite]
    description = "..."
    runs_dir = "runs/smoke"          # each step's run directory is runs_dir/<step name>
    report_dir = "runs/smoke/report" # where `ctbench report` writes

    [[step]]
    name = "text-ct"
    cmd = "ctbench text train --preset cpu-longrange --set train.steps=50 --run-dir {dir}"
    creates = "{dir}/results.json"   # default; the step is skipped when it exists (the suite resumes)
    needs = ["gpu"]                  # gpu | gpus:N | cpus:N | module:NAME | path:PATH
    resume = "--resume"              # appended when {dir}/checkpoints/latest.pt exists but `creates` does not
    copy_from = "{dir:text-ct}"      # start {dir} as a copy of that run (config + checkpoints, no results):
                                     # evaluations at other memory sizes then get their own results.json

`[suite] measured = "results/cpu-runs"` names a folder of earlier runs of the same step names: the plan
(`--dry-run`) estimates each step's wall time from them (a training step: the run's training time; an
evaluation: its eval_time_s), or, for a step that will resume, from its own metrics.jsonl (time per step so
far x the steps left). A step with neither says so; the plan ends with the total.

`{dir}` is this step's run directory, `{dir:NAME}` another step's (which makes this step depend on it),
`{runs}` the suite's runs_dir, `{args:NAME}` a string from the file's `[args]` table, so flags that several
steps share are written once:

    [args]
    fig5 = "--set impala.total_frames=300000 --set run.max_time_s=0"

    [[step]]
    name = "rl-long-c4"
    cmd = "ctbench rl train --preset cpu-long {args:fig5} --run-dir {dir}"

`{args:...}` is replaced when the file loads, so the plan and the run show the whole command. Each step runs
as a subprocess (`ctbench` is this Python's `-m ctbench.cli`), so one failing run is reported and the others
still run.
"""
from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs" / "suite"
PLACEHOLDER = re.compile(r"\{(dir|runs)(?::([A-Za-z0-9_.-]+))?\}")
ARGS = re.compile(r"\{args:([A-Za-z0-9_.-]+)\}")
TEMPLATED = ("cmd", "creates", "copy_from")   # the step fields that may hold placeholders


class SuiteError(ValueError):
    """A suite file that cannot be run; the message names the file and the field."""


@dataclass(frozen=True)
class Step:
    name: str
    cmd: str
    creates: str = "{dir}/results.json"
    needs: tuple[str, ...] = ()
    resume: str = ""
    why: str = ""               # what the step is for, printed in the plan
    timeout_s: float = 0.0      # 0: no limit
    copy_from: str = ""         # a run directory to copy into {dir} first (without its results)


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    description: str
    runs_dir: Path
    report_dir: Path
    steps: tuple[Step, ...]
    measured: Path | None = None    # earlier runs of these steps, for the plan's wall-time estimates

    def dir_of(self, step: str) -> Path:
        return self.runs_dir / step

    def expand(self, text: str, step: Step) -> str:
        def sub(m: re.Match) -> str:
            if m.group(1) == "runs":
                return str(self.runs_dir)
            return str(self.dir_of(m.group(2) or step.name))
        return PLACEHOLDER.sub(sub, text)

    def depends_on(self, step: Step) -> list[str]:
        found = [m.group(2) for m in PLACEHOLDER.finditer(" ".join(getattr(step, f) for f in TEMPLATED))
                 if m.group(1) == "dir" and m.group(2) and m.group(2) != step.name]
        return list(dict.fromkeys(found))


def available_suites() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def load_suite(preset: str) -> Suite:
    path = Path(preset) if preset.endswith(".toml") or "/" in preset else CONFIG_DIR / f"{preset}.toml"
    if not path.is_file():
        raise SuiteError(f"unknown suite preset {preset!r}: no {path}. Available: {', '.join(available_suites())}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SuiteError(f"{path}: not valid TOML ({err})") from None
    head = data.get("suite", {})
    args = data.get("args", {})
    if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
        raise SuiteError(f"{path}: [args] must map names to strings of flags, e.g. fig5 = \"--set a.b=1\"")
    known = {f for f in Step.__dataclass_fields__}
    steps, names = [], set()
    for i, raw in enumerate(data.get("step", [])):
        where = f"{path}: step {i + 1}"
        if not isinstance(raw, dict) or "name" not in raw or "cmd" not in raw:
            raise SuiteError(f"{where}: every [[step]] needs a name and a cmd")
        unknown = set(raw) - known
        if unknown:
            raise SuiteError(f"{where} ({raw['name']}): unknown field(s) {sorted(unknown)}; known: {sorted(known)}")
        if raw["name"] in names:
            raise SuiteError(f"{where}: duplicate step name {raw['name']!r}")
        names.add(raw["name"])
        raw = {k: _with_args(v, args, f"{where} ({raw['name']})") if k in TEMPLATED else v
               for k, v in raw.items()}
        steps.append(Step(**{**raw, "needs": tuple(raw.get("needs", ()))}))
    if not steps:
        raise SuiteError(f"{path}: no [[step]] entries")
    runs_dir = Path(head.get("runs_dir", f"runs/{path.stem}"))
    suite = Suite(name=path.stem, path=path, description=head.get("description", ""), runs_dir=runs_dir,
                  report_dir=Path(head.get("report_dir", runs_dir / "report")), steps=tuple(steps),
                  measured=Path(head["measured"]) if head.get("measured") else None)
    for s in suite.steps:
        for dep in suite.depends_on(s):
            if dep not in names:
                raise SuiteError(f"{path}: step {s.name!r} refers to {{dir:{dep}}} but no step has that name")
    return suite


def _with_args(text: str, args: dict[str, str], where: str) -> str:
    """`text` with each `{args:NAME}` replaced by the [args] table's NAME."""
    def sub(m: re.Match) -> str:
        if m.group(1) not in args:
            raise SuiteError(f"{where}: {{args:{m.group(1)}}} is not in the file's [args] table "
                             f"(it has: {', '.join(sorted(args)) or 'nothing'})")
        return args[m.group(1)]
    return ARGS.sub(sub, text)


# --------------------------------------------------------------------------- what this machine can run
@dataclass
class Machine:
    """What the `needs` of a step are checked against; probed lazily (importing torch costs seconds)."""
    _gpus: int | None = None
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)

    @property
    def gpus(self) -> int:
        if self._gpus is None:
            try:
                import torch
                self._gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
            except ImportError:
                self._gpus = 0
        return self._gpus

    def missing(self, need: str) -> str | None:
        """None when `need` is met, else the reason in a few words."""
        kind, _, arg = need.partition(":")
        if kind in ("gpu", "gpus"):
            n = int(arg or 1)
            return None if self.gpus >= n else f"needs {n} CUDA GPU{'s' if n > 1 else ''} (found {self.gpus})"
        if kind == "cpus":
            return None if self.cpus >= int(arg) else f"needs {arg} CPU cores (found {self.cpus})"
        if kind == "module":
            return None if importlib.util.find_spec(arg) is not None else f"needs Python module {arg} (not installed)"
        if kind == "path":
            return None if Path(arg).exists() else f"needs {arg} (not found)"
        raise SuiteError(f"unknown need {need!r}: use gpu, gpus:N, cpus:N, module:NAME or path:PATH")


# --------------------------------------------------------------------------- plan and run
@dataclass
class Planned:
    step: Step
    argv: list[str]
    status: str          # "run" | "resume" | "done" | "cannot"
    reason: str = ""


def selects(pattern: str, name: str) -> bool:
    """`--only text` picks text-*, `--only text-lr-ct` that step and text-lr-ct-* (its evals), and
    `--only 'rl-*-c4'` is a glob."""
    return fnmatch.fnmatchcase(name, pattern) or name.startswith(pattern + "-")


def finished(created: Path) -> bool:
    """Whether a step's `creates` file says it is done. A results.json that a stopped training wrote (Ctrl-C,
    SIGTERM: "interrupted": true, beside its checkpoint) is not done, nor is an unreadable one: the step
    runs again, resuming from its checkpoint."""
    if not created.is_file():
        return created.exists()
    if created.name != "results.json":
        return True
    try:
        return json.loads(created.read_text()).get("interrupted") is not True
    except (OSError, ValueError, AttributeError):
        return False


def current(suite: Suite, step: Step) -> Planned:
    """The step as its run directory stands now: done, to resume from its checkpoint, or to run."""
    argv = shlex.split(suite.expand(step.cmd, step))
    created = suite.expand(step.creates, step)
    if finished(Path(created)):
        return Planned(step, argv, "done", f"{created} exists")
    if step.resume and (suite.dir_of(step.name) / "checkpoints" / "latest.pt").exists():
        return Planned(step, argv + shlex.split(step.resume), "resume", "checkpoint found")
    return Planned(step, argv, "run")


def plan(suite: Suite, machine: Machine, only: list[str] | None = None) -> list[Planned]:
    out: list[Planned] = []
    by_name: dict[str, Planned] = {}
    for step in suite.steps:
        if only and not any(selects(o, step.name) for o in only):
            continue
        p = current(suite, step)
        reasons = [r for r in (machine.missing(n) for n in step.needs) if r]
        for dep in suite.depends_on(step):
            d = by_name.get(dep)
            if d is not None and d.status == "cannot":
                reasons.append(f"depends on {dep}, which cannot run here")
        if reasons and p.status != "done":
            p = Planned(step, shlex.split(suite.expand(step.cmd, step)), "cannot", "; ".join(reasons))
        out.append(p)
        by_name[step.name] = p
    return out


RESULT_FILES = ("results.json", "metrics.jsonl", "analysis")


def copy_run(src: Path, dst: Path) -> None:
    """dst = src's config and checkpoints, without its results, metrics or analysis (each evaluation of
    the copy writes its own). Copied into a temporary sibling and renamed, so a half copy never lingers."""
    if dst.exists():
        return
    if not src.is_dir():
        raise SuiteError(f"copy_from: {src} does not exist (did the step that makes it fail?)")
    tmp = dst.with_name(f".{dst.name}.copying")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=lambda d, names: [n for n in names if Path(d) == src and n in RESULT_FILES])
    os.replace(tmp, dst)


def resolve_argv(argv: list[str]) -> list[str]:
    """`ctbench ...` runs with this very interpreter, so the suite works without the venv on PATH."""
    return [sys.executable, "-m", "ctbench.cli", *argv[1:]] if argv and argv[0] == "ctbench" else argv


# --------------------------------------------------------------------------- wall-time estimates
def _json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _resume_estimate(run_dir: Path) -> tuple[float, str] | None:
    """Seconds left for a run that will resume: its time per step so far x the steps left."""
    from analysis.runs import is_number
    try:
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
        steps = int(tomllib.loads((run_dir / "config.toml").read_text())["train"]["steps"])
    except (OSError, ValueError, KeyError, TypeError, tomllib.TOMLDecodeError):
        return None
    done = [r for r in rows if r.get("split") == "train" and is_number(r.get("step")) and is_number(r.get("time_s"))]
    if not done or done[-1]["step"] <= 0:
        return None
    last = done[-1]
    return (last["time_s"] / last["step"] * max(0, steps - last["step"]),
            f"{last['step']:,} of {steps:,} steps done at {last['time_s'] / last['step']:.2f} s/step")


def _seedless(cmd: str) -> str:
    return re.sub(r"seed=\d+", "seed=S", cmd)


def _measured(suite: Suite, name: str) -> tuple[dict, Path] | tuple[None, None]:
    """The published results.json of the run `name`, or else of another seed of it: first a sibling (`X-seedK`)
    whose command differs only in the seed, then its seed-0 twin (`X-seed2` -> `X`). Another seed runs the same
    steps on the same model, so it takes about as long; a sibling also shares a stopping rule the twin may lack
    (RL seeds stop at a frame count, the seed-0 runs after minutes)."""
    base = re.sub(r"-seed\d+$", "", name)
    cmds = {s.name: _seedless(s.cmd) for s in suite.steps}
    mine = cmds.get(name)
    siblings = sorted(n for n, cmd in cmds.items()
                      if n != name and cmd == mine and re.fullmatch(re.escape(base) + r"-seed\d+", n))
    for candidate in dict.fromkeys((name, *siblings, base)):
        res = _json(suite.measured / candidate / "results.json")
        if res:
            return res, suite.measured / candidate
    return None, None


def estimate(suite: Suite, p: Planned) -> tuple[float | None, str]:
    """(seconds or None, how it was estimated) for a step that will run or resume."""
    from analysis.runs import is_number
    argv = p.argv
    action = argv[2] if len(argv) > 2 and Path(argv[0]).name == "ctbench" else ""
    if p.status == "resume" and action == "train":
        found = _resume_estimate(suite.dir_of(p.step.name))
        if found:
            return found[0], f"resume: {found[1]}"
    if suite.measured is None or action not in ("train", "eval"):
        return None, "no estimate"
    if action == "eval":
        target = Path(argv[argv.index("--run") + 1]).name if "--run" in argv[:-1] else p.step.name
        res, where = _measured(suite, target)
        if res and res.get("source") == "eval" and is_number(res.get("eval_time_s")):
            return float(res["eval_time_s"]), f"as evaluated for {where}"
    else:
        res, where = _measured(suite, p.step.name)
        if res and is_number(res.get("wall_time_s")):
            return float(res["wall_time_s"]), f"as trained for {where}"
    return None, f"no estimate: no earlier run in {suite.measured}"


def print_plan(suite: Suite, planned: list[Planned]) -> None:
    from analysis.tables import fmt_duration
    print(f"suite {suite.name} ({suite.path}): {suite.description}".rstrip(": "))
    print(f"runs under {suite.runs_dir}/, report to {suite.report_dir}/")
    total, unknown = 0.0, 0
    for i, p in enumerate(planned, 1):
        tag = {"run": "run", "resume": "resume", "done": "skip (done)", "cannot": "cannot run"}[p.status]
        print(f"[{i}/{len(planned)}] {p.step.name}: {tag}" + (f" ({p.reason})" if p.reason else ""))
        if p.step.why:
            print(f"      {p.step.why}")
        print(f"      $ {shlex.join(p.argv)}")
        if p.status in ("run", "resume"):
            seconds, how = estimate(suite, p)
            if seconds is None:
                unknown += 1
                print(f"      wall time: {how}")
            else:
                total += seconds
                print(f"      wall time: ~{fmt_duration(seconds)} ({how})")
    if total or unknown:
        print(f"estimated wall time, one step after another: ~{fmt_duration(total)}"
              + (f", plus {unknown} step(s) without an estimate" if unknown else ""))
    print(f"then: ctbench report {suite.runs_dir} --out {suite.report_dir}")


def run_suite(suite: Suite, planned: list[Planned], report: bool = True) -> int:
    failed = []
    for i, p in enumerate(planned, 1):
        if p.status in ("done", "cannot"):
            word = "done already" if p.status == "done" else "cannot run here"
            print(f"[{i}/{len(planned)}] {p.step.name}: {word}: {p.reason}", flush=True)
            continue
        if any(d in failed for d in suite.depends_on(p.step)):
            print(f"[{i}/{len(planned)}] {p.step.name}: skipped: a step it depends on failed", flush=True)
            failed.append(p.step.name)
            continue
        # looked at again now: another suite (or the user) may have finished or started it since the plan
        p = current(suite, p.step)
        if p.status == "done":
            print(f"[{i}/{len(planned)}] {p.step.name}: done already: {p.reason} (made while this suite ran)",
                  flush=True)
            continue
        print(f"[{i}/{len(planned)}] {p.step.name}: $ {shlex.join(p.argv)}", flush=True)
        suite.dir_of(p.step.name).parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        try:
            if p.step.copy_from:
                copy_run(Path(suite.expand(p.step.copy_from, p.step)), suite.dir_of(p.step.name))
            rc = subprocess.run(resolve_argv(p.argv), timeout=p.step.timeout_s or None).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        except FileNotFoundError as err:
            rc = f"not found ({err.filename})"
        except SuiteError as err:
            rc = str(err)
        dt = time.monotonic() - t0
        if rc == 0:
            print(f"[{i}/{len(planned)}] {p.step.name}: ok in {dt:.0f} s", flush=True)
        else:
            print(f"[{i}/{len(planned)}] {p.step.name}: FAILED ({rc}) after {dt:.0f} s", flush=True)
            failed.append(p.step.name)
    code = 1 if failed else 0
    if report:
        from analysis.cli import main as report_main
        if suite.runs_dir.exists():
            code = max(code, report_main([str(suite.runs_dir), "--out", str(suite.report_dir)]))
        else:
            print(f"no runs under {suite.runs_dir}: no report")
    if failed:
        print(f"suite {suite.name}: {len(failed)} step(s) failed: {', '.join(failed)}", file=sys.stderr)
    return code


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ctbench suite", description=(
        "Run the benchmarks listed in configs/suite/<preset>.toml (skipping those already done and naming those "
        "this machine cannot run), then `ctbench report`."))
    p.add_argument("--preset", default="smoke", help=f"one of {', '.join(available_suites())}, or a .toml path")
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    p.add_argument("--only", action="append", default=None, metavar="NAME",
                   help="only the step NAME and the steps NAME-*, or a glob (repeatable), e.g. --only text --only 'rl-long-*'")
    p.add_argument("--runs-dir", default=None, help="override the suite's runs_dir")
    p.add_argument("--out", default=None, help="override the suite's report_dir")
    p.add_argument("--no-report", action="store_true", help="skip the report at the end")
    return p


def main(argv: list[str] | None = None, machine: Machine | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        suite = load_suite(args.preset)
        if args.runs_dir or args.out:
            runs_dir = Path(args.runs_dir) if args.runs_dir else suite.runs_dir
            report_dir = Path(args.out) if args.out else (runs_dir / "report" if args.runs_dir else suite.report_dir)
            suite = Suite(suite.name, suite.path, suite.description, runs_dir, report_dir, suite.steps, suite.measured)
        planned = plan(suite, machine or Machine(), args.only)
    except SuiteError as err:
        print(f"ctbench suite: {err}", file=sys.stderr)
        return 2
    if args.dry_run:
        print_plan(suite, planned)
        return 0
    return run_suite(suite, planned, report=not args.no_report)


if __name__ == "__main__":
    sys.exit(main())
