"""`ctbench bench eval` runs end to end at a tiny size and prints one row per measured case (its speed
numbers belong in results/, not in asserts)."""
from ctbench.bench_eval import main as bench_eval


def test_bench_eval_runs_both_domains(capsys):
    assert bench_eval(["--length", "64", "--doublings", "1", "--rounds", "1", "--d-model", "32", "--layers", "1",
                       "--window", "16", "--mem-len", "16", "--cmem-len", "8"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert [(r[0], int(r[1])) for r in rows] == [("text", 64), ("text", 128), ("speech", 64), ("speech", 128)]
