"""`ctbench rl collect`: summary rows computed from a run's results.json and metrics.jsonl."""
import csv
import json

import pytest

from rl.cli import main as rl_main
from rl.collect import collect


def _run(path, model, returns, times, value, **res):
    path.mkdir(parents=True)
    results = {"domain": "rl", "model": model, "preset": "cpu-long", "value": value, "steps": 40, "frames": 4000,
               "wall_time_s": 99.6, "delay": 8, "chance_return": 0.5, "params": 123, "mem_len": 2, "cmem_len": 2,
               "compression_rate": 4, **res}
    (path / "results.json").write_text(json.dumps(results))
    lines = [{"split": "train", "step": 10 * i, "frames": 1000 * (i + 1), "time_s": t, "episode_return": r,
              "episodes": 50, "fps_actor": None if i == 0 else 610.4, "fps_learner": 900.6}
             for i, (r, t) in enumerate(zip(returns, times))]
    (path / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_summary_rows_find_the_best_and_the_first_solved_point(tmp_path):
    ct = _run(tmp_path / "runs" / "long-c4", "compressive", [0.5, 0.93, 0.88, 1.0], [10.2, 20.7, 30.1, 40.0], 0.97)
    lstm = _run(tmp_path / "runs" / "long-lstm", "lstm", [0.5, 0.6, None, 0.55], [10.0, 20.0, 30.0, 40.0], 0.55,
                compression_rate=0, mem_len=0, cmem_len=0)
    rows = collect([ct, lstm], tmp_path / "out")
    assert rows[0]["run"] == "long-c4" and rows[0]["compression_rate"] == 4
    assert rows[0]["best_logged_return"] == 1.0
    assert (rows[0]["first_logged_return_ge_0_9_at_s"], rows[0]["first_logged_return_ge_0_9_at_frames"]) == (21, 2000)
    assert rows[0]["wall_time_s"] == 100 and rows[0]["final_return_last100"] == 0.97
    assert rows[1]["first_logged_return_ge_0_9_at_s"] is None and rows[1]["best_logged_return"] == 0.6
    assert rows[1]["compression_rate"] is None and rows[1]["mem_len"] is None        # the LSTM has no memory sizes
    with open(tmp_path / "out" / "summary.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["run"] for r in table] == ["long-c4", "long-lstm"]
    assert table[1]["first_logged_return_ge_0_9_at_s"] == "" and table[0]["first_logged_return_ge_0_9_at_s"] == "21"
    with open(tmp_path / "out" / "curves.csv") as f:
        curves = list(csv.DictReader(f))
    assert len(curves) == 4 + 3                                  # the interval without a finished episode is left out
    assert curves[0]["fps_actor"] == "" and curves[1]["fps_actor"] == "610"
    assert json.loads((tmp_path / "out" / "long-c4" / "results.json").read_text())["value"] == 0.97


def test_collect_names_a_run_without_results(tmp_path, capsys):
    (tmp_path / "half").mkdir()
    assert rl_main(["collect", str(tmp_path / "half"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "half: no results.json" in err and "--resume" in err
    with pytest.raises(ValueError, match="distinct names"):
        collect([_run(tmp_path / "a" / "x", "lstm", [0.5], [1.0], 0.5), _run(tmp_path / "b" / "x", "lstm", [0.5], [1.0], 0.5)],
                tmp_path / "out")
