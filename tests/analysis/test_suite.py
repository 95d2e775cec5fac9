"""`ctbench suite`: the plan of each shipped preset, and a real run of a tiny suite of python commands."""
import contextlib
import importlib
import importlib.util
import io
import json
import shlex
import sys

import pytest

from ctbench import suite as S

NO_GPU = S.Machine(_gpus=0)


def dry_run(preset, tmp_path, machine=NO_GPU, *extra):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = S.main(["--preset", preset, "--dry-run", "--runs-dir", str(tmp_path / "runs"), *extra], machine=machine)
    assert rc == 0
    return out.getvalue()


def test_shipped_presets_are_the_three_of_the_issue():
    assert {"smoke", "cpu", "paper"} <= set(S.available_suites())


def test_smoke_plan_runs_every_domain_with_baselines_then_the_report(tmp_path):
    plan = dry_run("smoke", tmp_path)
    runs = tmp_path / "runs"
    assert [l for l in plan.splitlines() if "cannot run" in l] == [
        "[6/10] text-ct-cuda: cannot run (needs 1 CUDA GPU (found 0))"]   # all else needs only this checkout
    for name in ("text-ct", "text-txl", "text-ct-eval", "text-ct-cmem256", "speech-ct", "speech-wavenet",
                 "rl-lstm", "rl-ct"):
        assert f"] {name}: run" in plan
    assert f"ctbench text train --preset cpu-longrange --set train.steps=20" in plan
    assert f"--run-dir {runs}/text-ct" in plan
    assert f"ctbench text eval --run {runs}/text-ct --save-analysis" in plan
    assert "ctbench text train --preset cpu-longrange-txl" in plan      # TXL twin of equal attention cost
    assert plan.rstrip().endswith(f"then: ctbench report {runs} --out {runs}/report")


def test_cpu_plan_names_what_it_cannot_run_in_one_line_each(tmp_path):
    plan = dry_run("cpu", tmp_path)
    for line in plan.splitlines():
        if "cannot run" in line:
            assert line.startswith("[") and "(needs " in line or "depends on" in line
    assert "] text-lr-ct: run" in plan and "] rl-long-c8: run" in plan
    assert "--set agent.compression_rate=8" in plan
    for c in ("max-pool", "mean-pool", "most-used", "dilated-conv", "conv-autoencoding", "conv-bptt"):
        assert f"] text-t5-{c}:" in plan


def test_paper_plan_without_a_gpu_says_why_for_every_step(tmp_path):
    plan = dry_run("paper", tmp_path)
    steps = [l for l in plan.splitlines() if l.startswith("[")]
    assert len(steps) >= 20 and all("cannot run (needs 1 CUDA GPU (found 0)" in l for l in steps)
    assert any("deepmind_lab (not installed)" in l for l in steps if "rl-dmlab" in l) or \
        importlib.util.find_spec("deepmind_lab") is not None
    assert "--cmem-len 3072" in plan and "--mem-len 500 --cmem-len 1500" in plan


def test_paper_plan_with_gpus_runs_what_has_its_preset(tmp_path, monkeypatch):
    monkeypatch.setattr(S.Machine, "missing", lambda self, need: None)
    plan = dry_run("paper", tmp_path, S.Machine(_gpus=8))
    assert "cannot run" not in plan and "] text-enwik8-ct: run" in plan


@pytest.mark.parametrize("preset", ["smoke", "cpu", "paper"])
def test_every_flag_in_a_preset_is_one_the_domain_command_accepts(preset, capsys):
    """`--flag`s drift when a domain CLI changes: check them against each command's --help."""
    commands = {}
    for step in S.load_suite(preset).steps:
        argv = shlex.split(step.cmd)
        if argv[0] == "ctbench":
            commands.setdefault(tuple(argv[1:3]), set()).update(a.split("=")[0] for a in argv if a.startswith("--"))
    assert commands
    for (domain, sub), flags in sorted(commands.items()):
        if importlib.util.find_spec(f"{domain}.cli") is None:
            continue   # that domain's CLI has not landed in this checkout
        module = importlib.import_module(f"{domain}.cli")
        with pytest.raises(SystemExit):
            module.main([sub, "--help"])
        help_text = capsys.readouterr().out
        unknown = [f for f in flags if f not in help_text]
        assert not unknown, f"{preset}: `ctbench {domain} {sub}` does not take {unknown}"


# --------------------------------------------------------------------------- a real run, with python commands
TOOL = """
import json, pathlib, sys
what, *args = sys.argv[1:]
if what == "result":                      # write a contract-shaped results.json into args[0]
    d = pathlib.Path(args[0]); d.mkdir(parents=True, exist_ok=True)
    (d / "results.json").write_text(json.dumps(dict(domain="text", model="compressive", dataset="toy",
                                                    metric="bpc", value=float(args[1]), preset="toy")))
elif what == "check":                     # the copied run has its config
    assert (pathlib.Path(args[0]) / "config.toml").exists()
else:
    raise SystemExit(3)
"""


def toy_suite(tmp_path, extra=""):
    tool = tmp_path / "tool.py"
    tool.write_text(TOOL)
    py = f"{sys.executable} {tool}"
    path = tmp_path / "toy.toml"
    path.write_text(f"""
[suite]
description = "toy"
runs_dir = "{tmp_path / 'runs'}"
report_dir = "{tmp_path / 'report'}"

[[step]]
name = "a"
cmd = "{py} result {{dir}} 1.5"

[[step]]
name = "copy"
copy_from = "{{dir:a}}"
cmd = "{py} check {{dir}}"
creates = "{{dir}}/config.toml"

[[step]]
name = "broken"
cmd = "{py} fail"

[[step]]
name = "after-broken"
cmd = "{py} result {{dir:broken}}/sub 2.0"

[[step]]
name = "gpu-only"
needs = ["gpus:2"]
cmd = "false"
{extra}
""")
    return path


def run_main(argv, capsys):
    rc = S.main(argv, machine=NO_GPU)
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


def test_suite_runs_steps_resumes_and_reports(tmp_path, capsys):
    path = toy_suite(tmp_path)
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "a" / "config.toml").write_text("x = 1\n")
    rc, out = run_main(["--preset", str(path)], capsys)
    assert rc == 1                                                   # one step failed
    assert "[1/5] a: ok" in out and "[2/5] copy: ok" in out
    assert "[3/5] broken: FAILED (3)" in out
    assert "[4/5] after-broken: skipped: a step it depends on failed" in out
    assert "[5/5] gpu-only: cannot run here: needs 2 CUDA GPUs (found 0)" in out
    assert "2 step(s) failed: broken, after-broken" in out
    assert json.loads((tmp_path / "runs" / "a" / "results.json").read_text())["value"] == 1.5
    copy = tmp_path / "runs" / "copy"
    assert (copy / "config.toml").exists() and not (copy / "results.json").exists()   # results never copied
    assert "| 1.5 |" in (tmp_path / "report" / "index.md").read_text()

    rc, out = run_main(["--preset", str(path), "--only", "a", "--only", "copy"], capsys)   # resume: nothing to do
    assert rc == 0 and "a: done already" in out and "copy: done already" in out and "broken" not in out


def test_resume_flag_is_added_when_a_checkpoint_exists(tmp_path, capsys):
    path = toy_suite(tmp_path, extra='\n[[step]]\nname = "long"\ncmd = "echo train"\nresume = "--resume"\n')
    (tmp_path / "runs" / "long" / "checkpoints").mkdir(parents=True)
    (tmp_path / "runs" / "long" / "checkpoints" / "latest.pt").write_bytes(b"")
    rc, out = run_main(["--preset", str(path), "--dry-run"], capsys)
    assert rc == 0 and "long: resume (checkpoint found)" in out and "$ echo train --resume" in out


def test_an_interrupted_training_is_resumed_not_taken_as_done(tmp_path, capsys):
    """A training stopped by SIGTERM or Ctrl-C writes results.json with "interrupted": true beside its
    checkpoint: the suite resumes it rather than skipping it as done."""
    path = toy_suite(tmp_path, extra='\n[[step]]\nname = "long"\ncmd = "echo train"\nresume = "--resume"\n')
    run = tmp_path / "runs" / "long"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "latest.pt").write_bytes(b"")
    (run / "results.json").write_text(json.dumps({"value": None, "steps": 27, "interrupted": True}))
    rc, out = run_main(["--preset", str(path), "--dry-run", "--only", "long"], capsys)
    assert rc == 0 and "long: resume (checkpoint found)" in out
    (run / "results.json").write_text("{trunc")                         # unreadable: not done either
    assert "long: resume" in run_main(["--preset", str(path), "--dry-run", "--only", "long"], capsys)[1]
    (run / "results.json").write_text(json.dumps({"value": 1.0, "steps": 500}))
    assert "long: skip (done)" in run_main(["--preset", str(path), "--dry-run", "--only", "long"], capsys)[1]


def test_a_step_another_suite_finished_meanwhile_is_not_run_again(tmp_path, capsys, monkeypatch):
    """Two suites over one runs folder: the plan is made at the start, but each step is looked at again just
    before it runs, so a step the other suite finished meanwhile is skipped, not started over."""
    path = toy_suite(tmp_path)
    suite = S.load_suite(str(path))
    planned = [p for p in S.plan(suite, NO_GPU) if p.step.name == "a"]
    assert planned[0].status == "run"
    (tmp_path / "runs" / "a").mkdir(parents=True)                                  # the other suite's work
    (tmp_path / "runs" / "a" / "results.json").write_text(json.dumps({"value": 9.0}))
    assert S.run_suite(suite, planned, report=False) == 0
    assert "a: done already" in capsys.readouterr().out
    assert json.loads((tmp_path / "runs" / "a" / "results.json").read_text())["value"] == 9.0


@pytest.mark.parametrize("body, message", [
    ('[[step]]\nname = "a"\n', "needs a name and a cmd"),
    ('[[step]]\nname = "a"\ncmd = "x"\nneeds = []\nbogus = 1\n', "unknown field(s) ['bogus']"),
    ('[[step]]\nname = "a"\ncmd = "x"\n[[step]]\nname = "a"\ncmd = "y"\n', "duplicate step name 'a'"),
    ('[[step]]\nname = "a"\ncmd = "x {dir:zz}"\n', "refers to {dir:zz} but no step has that name"),
    ('[suite]\n', "no [[step]] entries"),
    ('[args]\nx = "--a"\n[[step]]\nname = "a"\ncmd = "run {args:y}"\n', "{args:y} is not in the file's [args] table"),
    ('[args]\nx = 3\n[[step]]\nname = "a"\ncmd = "run"\n', "[args] must map names to strings"),
    ('[[step]\n', "not valid TOML"),
])
def test_bad_suite_files_give_one_clear_error(tmp_path, capsys, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    rc, out = run_main(["--preset", str(path), "--dry-run"], capsys)
    assert rc == 2 and message in out and str(path) in out


def test_named_args_are_written_once_and_expanded_into_every_step(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text('[suite]\nruns_dir = "r"\n[args]\nfast = "--set a.b=1 --set c.d=2"\n'
                    '[[step]]\nname = "a"\ncmd = "ctbench text train {args:fast} --run-dir {dir}"\n'
                    '[[step]]\nname = "b"\ncmd = "ctbench text eval {args:fast} --run {dir:a}"\n'
                    'creates = "{dir}/{args:fast}"\n')
    a, b = S.load_suite(str(path)).steps
    assert a.cmd == "ctbench text train --set a.b=1 --set c.d=2 --run-dir {dir}"
    assert b.cmd == "ctbench text eval --set a.b=1 --set c.d=2 --run {dir:a}"
    assert b.creates == "{dir}/--set a.b=1 --set c.d=2"
    rc, out = run_main(["--preset", str(path), "--dry-run"], capsys)
    assert rc == 0 and "train --set a.b=1 --set c.d=2 --run-dir r/a" in out and "{args" not in out


def test_unknown_preset_lists_the_available_ones(capsys):
    rc, out = run_main(["--preset", "nope", "--dry-run"], capsys)
    assert rc == 2 and "unknown suite preset 'nope'" in out and "smoke" in out


def test_unknown_need_is_an_error():
    with pytest.raises(S.SuiteError, match="unknown need 'tpu'"):
        NO_GPU.missing("tpu")


def test_only_selects_by_name_prefix_or_glob():
    assert S.selects("text", "text-lr-ct") and S.selects("rl-ct-*", "rl-ct-c4") and S.selects("a", "a")
    assert not S.selects("a", "after-broken") and not S.selects("text-lr-ct", "text-lr-ctx")


def _loaders():
    """Each domain's preset loader (preset, overrides) -> frozen config, validated; absent domains skipped."""
    out = {}
    for domain, module, attr in (("text", "text.run", "resolve_config"), ("speech", "speech.config", "load_speech_config"),
                                 ("rl", "rl.config", "load")):
        try:
            fn = getattr(importlib.import_module(module), attr)
        except ImportError:
            continue
        out[domain] = (lambda f: (lambda p, o: f(p, o, None, False)))(fn) if domain == "text" else fn
    return out


@pytest.mark.parametrize("preset", ["smoke", "cpu", "paper"])
def test_every_train_step_names_a_real_preset_and_real_fields(preset):
    """`--preset X --set a.b=v` of every train step resolves in its domain (unknown fields are errors there)."""
    loaders = _loaders()
    checked = 0
    for step in S.load_suite(preset).steps:
        argv = shlex.split(step.cmd)
        if argv[:1] != ["ctbench"] or argv[2] != "train" or argv[1] not in loaders:
            continue
        if any(n.startswith("path:configs/") and S.Machine().missing(n) is not None for n in step.needs):
            continue   # the step itself says its preset is not there yet
        name = argv[argv.index("--preset") + 1]
        sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
        loaders[argv[1]](name, sets)      # raises ConfigError naming the bad field
        checked += 1
    assert checked > 0


def test_dry_run_estimates_wall_time_from_measured_runs_and_resumes(tmp_path, capsys):
    """Training steps: the measured run's training time; evaluations: its eval_time_s; a run that will resume:
    its own time per step x the steps left; another seed of a measured run: its published sibling whose command
    differs only in the seed (`tr-seed4` -> `tr-seed3`), else its seed-0 twin (`tr-seed1` -> `tr`: its sibling's
    command differs); no earlier run: said so; the total sums the estimates."""
    measured = tmp_path / "published"
    for name, res in (("tr", {"wall_time_s": 600.0}), ("tr2", {"wall_time_s": 300.0, "eval_time_s": 30.0,
                                                             "source": "eval"}),
                      ("tr-seed3", {"wall_time_s": 120.0})):
        (measured / name).mkdir(parents=True)
        (measured / name / "results.json").write_text(json.dumps(res))
    body = f'[suite]\nruns_dir = "{tmp_path / "runs"}"\nmeasured = "{measured}"\n'
    for name, cmd in (("tr", "ctbench text train --preset p --run-dir {dir}"),
                      ("tr2", "ctbench text train --preset p --run-dir {dir}"),
                      ("tr2-eval", "ctbench text eval --run {dir:tr2}"),
                      ("tr-seed1", "ctbench text train --preset p --set train.seed=1 --run-dir {dir}"),
                      ("tr-seed3", "ctbench text train --preset p --set train.stop=9 --set train.seed=3 --run-dir {dir}"),
                      ("tr-seed4", "ctbench text train --preset p --set train.stop=9 --set train.seed=4 --run-dir {dir}"),
                      ("new", "ctbench text train --preset p --run-dir {dir}")):
        body += f'[[step]]\nname = "{name}"\ncmd = "{cmd}"\nresume = "--resume"\n'
    path = tmp_path / "s.toml"
    path.write_text(body)
    run = tmp_path / "runs" / "tr2"                       # half done here: 100 of 400 steps in 50 s
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "latest.pt").write_bytes(b"")
    (run / "config.toml").write_text("[train]\nsteps = 400\n")
    (run / "metrics.jsonl").write_text(json.dumps({"split": "train", "step": 100, "time_s": 50.0}) + "\n")
    rc, out = run_main(["--preset", str(path), "--dry-run"], capsys)
    lines = out.splitlines()
    est = [l.strip() for l in lines if l.strip().startswith("wall time:")]
    assert rc == 0 and est == [
        f"wall time: ~10.0 min (as trained for {measured / 'tr'})",
        "wall time: ~2.5 min (resume: 100 of 400 steps done at 0.50 s/step)",
        f"wall time: ~30 s (as evaluated for {measured / 'tr2'})",
        f"wall time: ~10.0 min (as trained for {measured / 'tr'})",
        f"wall time: ~2.0 min (as trained for {measured / 'tr-seed3'})",
        f"wall time: ~2.0 min (as trained for {measured / 'tr-seed3'})",
        f"wall time: no estimate: no earlier run in {measured}"]
    assert "estimated wall time, one step after another: ~27.0 min, plus 1 step(s) without an estimate" in out
