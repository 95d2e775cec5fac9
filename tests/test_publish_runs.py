"""scripts/publish_runs.py: small files only, data paths under ../shared made relative, unfinished runs skipped."""
import json
import sys
from pathlib import Path

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
    (run / "analysis" / "token_losses.npz").write_bytes(b"big")
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
