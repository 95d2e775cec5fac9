"""scripts/precision_table.py: bf16 vs fp32 rows from run directories, paired by seed."""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import precision_table  # noqa: E402


def fake_run(root: Path, name: str, precision: str, seed: int, valid: float, test: float):
    d = root / name
    d.mkdir(parents=True)
    (d / "config.toml").write_text(f'preset = "p"\n[train]\nseed = {seed}\n')
    (d / "metrics.jsonl").write_text(json.dumps({"split": "valid", "step": 1, "bits": valid + 1}) + "\n"
                                     + json.dumps({"split": "valid", "step": 2, "bits": valid}) + "\n")
    (d / "results.json").write_text(json.dumps({"preset": "p", "precision": precision, "split": "test", "value": test,
                                                "metric": "bpc", "params": 10, "tokens_seen": 100,
                                                "wall_time_s": 5.0}))


def test_rows_pair_seeds_and_judge_against_the_interval(tmp_path, capsys):
    for s, (v32, v16, t32, t16) in enumerate([(2.0, 2.01, 3.0, 3.1), (2.1, 2.12, 3.2, 3.3), (1.9, 1.88, 3.1, 3.2)]):
        fake_run(tmp_path, f"fp32-{s}", "fp32", s, v32, t32)
        fake_run(tmp_path, f"bf16-{s}", "bf16", s, v16, t16)
    fake_run(tmp_path, "train-only", "bf16", 9, 0.0, 0.0)
    (tmp_path / "train-only" / "results.json").write_text(json.dumps({"split": "valid", "precision": "bf16"}))
    assert precision_table.main([str(tmp_path), "--out", str(tmp_path / "t.md")]) == 0
    row = (tmp_path / "t.md").read_text().splitlines()[2].split(" | ")
    assert row[3] == "3 / 3"
    bf16_valid = np.array([2.01, 2.12, 1.88])
    assert row[5] == "2.0000 +- 0.1000" and row[6] == f"{bf16_valid.mean():.4f} +- {bf16_valid.std(ddof=1):.4f}"
    assert row[7].startswith("+0.0033 [") and row[7].endswith("within seed noise")   # diffs .01 .02 -.02
    assert row[10].startswith("+0.1000 [+0.1000, +0.1000] bf16 worse")                # every seed 0.1 worse


def test_no_pairs_is_an_error_naming_the_folder(tmp_path, capsys):
    fake_run(tmp_path, "only-fp32", "fp32", 0, 2.0, 3.0)
    assert precision_table.main([str(tmp_path)]) == 2
    assert str(tmp_path) in capsys.readouterr().err
    assert precision_table.main([str(tmp_path / "missing")]) == 2
