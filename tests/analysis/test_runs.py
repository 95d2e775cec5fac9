import json

import numpy as np
import pytest

from analysis.runs import RunFormatError, discover, flat_config, load_run, load_runs, read_metrics, results_frame
from analysis_fixtures import make_run


def test_discover_finds_nested_runs_and_skips_checkpoints(tmp_path):
    a = make_run(tmp_path, "a")
    b = make_run(tmp_path / "group", "b")
    ev = make_run(a, "eval_cmem32")                      # an eval run written inside its training run
    (a / "checkpoints" / "x").mkdir(parents=True)
    (a / "checkpoints" / "x" / "results.json").write_text("{}")
    assert discover([tmp_path]) == sorted(p.resolve() for p in (a, b, ev))
    assert discover([a / "results.json"])[0] == a.resolve()


def test_discover_missing_path_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        discover([tmp_path / "nope"])


def test_load_run_reads_every_file(tmp_path):
    d = make_run(tmp_path, "r", config="[train]\nsteps = 7\n[model]\nd_model = 8\n", value=1.25)
    run = load_run(d)
    assert run.results["value"] == 1.25 and run.model == "compressive" and run.label == "compressive c=3"
    assert flat_config(run.config) == {"train.steps": 7, "model.d_model": 8}
    assert list(run.metrics["step"]) == [0, 10, 20, 30, 40, 50]
    frame = results_frame([run])
    assert frame.loc[0, "value"] == 1.25 and frame.loc[0, "run"] == "r"     # relative: no absolute paths in published files


def test_truncated_last_metrics_line_is_dropped_but_a_bad_middle_line_is_an_error(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text(json.dumps({"step": 1}) + "\n" + '{"step": 2, "lo')
    assert list(read_metrics(p)["step"]) == [1]
    p.write_text('{"step": 1\n' + json.dumps({"step": 2}) + "\n")
    with pytest.raises(RunFormatError, match=r"metrics.jsonl: line 1"):
        read_metrics(p)


def test_bad_results_json_names_the_file(tmp_path):
    d = make_run(tmp_path, "r")
    (d / "results.json").write_text("{not json")
    with pytest.raises(RunFormatError, match=r"r/results.json: not valid JSON"):
        load_runs([tmp_path])


def test_token_losses_length_mismatch_is_reported(tmp_path):
    d = make_run(tmp_path, "r", analysis={"token_losses.npz": {"loss": np.ones(4, np.float32),
                                                               "token": np.arange(3)}})
    with pytest.raises(RunFormatError, match="'token' has 3 entries but 'loss' has 4"):
        load_run(d).token_losses()


def test_the_report_never_imports_training_code():
    import subprocess
    import sys
    code = ("import sys, analysis.cli, analysis.report; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'core', 'text', 'speech', 'rl')); "
            "print(bad); raise SystemExit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
