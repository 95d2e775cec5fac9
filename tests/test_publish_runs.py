"""scripts/publish_runs.py: small files only, data paths under ../shared made relative, unfinished runs skipped."""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import publish_runs  # noqa: E402


def test_publishes_small_files_with_relative_data_paths(tmp_path, capsys):
    shared = (publish_runs.REPO.parent / "shared").resolve()
    src = tmp_path / "runs"
    run = src / "text-a"
    (run / "checkpoints").mkdir(parents=True)
    (run / "analysis").mkdir()
    (run / "config.toml").write_text(f'[data]\nsource = "{shared}/data/enwik8_prefix/x"\nother = "/opt/y"\n')
    (run / "results.json").write_text(json.dumps({"value": 1.0}))
    (run / "metrics.jsonl").write_text("{}\n")
    (run / "checkpoints" / "latest.pt").write_bytes(b"big")
    (run / "analysis" / "stats.json").write_text("{}")
    np.savez(run / "analysis" / "token_losses.npz", loss=np.ones(3))      # bytes: no train_count
    (src / "unfinished").mkdir()
    (src / "unfinished" / "config.toml").write_text("")
    dest = tmp_path / "published"
    (dest / "text-a").mkdir(parents=True)
    (dest / "text-a" / "stale.json").write_text("{}")                  # replaced, not merged
    assert publish_runs.main([str(src), str(dest)]) == 0
    out = dest / "text-a"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "analysis/stats.json", "config.toml", "metrics.jsonl", "results.json"]
    assert 'source = "../shared/data/enwik8_prefix/x"' in (out / "config.toml").read_text()
    assert "absolute paths left: /opt/y" in capsys.readouterr().out
    assert not (dest / "unfinished").exists()
    assert publish_runs.main([str(src), str(dest), "--only", "nothing*"]) == 2


def test_word_level_run_keeps_its_table7_sums(tmp_path):
    """The published copy (no .npz) gives Table 7 the same per-bucket sums as the run with its .npz."""
    from analysis.runs import load_run
    from analysis.tables import frequency_stats
    run = tmp_path / "runs" / "text-wt2"
    (run / "analysis").mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"domain": "text", "model": "compressive", "value": 5.0,
                                                  "train_tokens": 2_060_000}))
    rng = np.random.default_rng(0)
    np.savez(run / "analysis" / "token_losses.npz", loss=rng.random(500) * 8, token=rng.integers(0, 50, 500),
             train_count=rng.choice([1, 5, 50, 500], 500))   # edges 200, 20, 2 at 2.06M
    assert publish_runs.main([str(tmp_path / "runs"), str(tmp_path / "pub")]) == 0
    published = tmp_path / "pub" / "text-wt2"
    assert not (published / "analysis" / "token_losses.npz").exists()
    full, compact = frequency_stats(load_run(run)), frequency_stats(load_run(published))
    assert compact[1:] == full[1:]                      # train tokens, estimated, edges
    for name, b in full[0].items():
        assert compact[0][name]["tokens"] == b["tokens"] and compact[0][name]["nats"] == b["nats"]
    assert full[0]["<100"]["tokens"] > 0 and full[0][">10K"]["tokens"] > 0   # the buckets are all used
