"""The actor-learner loop end to end: both cores with 2 actor processes, crash-restart, SIGTERM with a
resumable checkpoint and no process left behind, the Ray backend."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core.run.io import read_jsonl
from rl.impala import train
from rl_helpers import CORES, small_config

ROOT = Path(__file__).resolve().parents[2]


def _quiet(*_):
    pass


@pytest.mark.slow
@pytest.mark.parametrize("core", CORES)
def test_loop_runs_updates_with_two_actors(core, tmp_path):
    cfg = small_config(core, "impala.total_frames=256")
    assert train(cfg, tmp_path, preset="smoke", log=_quiet) == 0
    lines = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in lines] == list(range(1, len(lines) + 1))
    assert lines[-1]["frames"] == 256 and lines[-1]["frames"] == lines[-1]["tokens"]
    assert all(r["split"] == "train" and r["loss"] == r["loss"] for r in lines)
    assert any(r["episode_return"] is not None for r in lines)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["domain"] == "rl" and res["model"] == core and res["metric"] == "return"
    assert res["steps"] == 8 and 0.0 <= res["value"] <= 1.0 and res["chance_return"] == 0.5
    ckpt = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)
    assert ckpt["step"] == 8 and ckpt["frames"] == 256


@pytest.mark.slow
def test_crashed_actor_is_restarted_without_stopping_the_learner(tmp_path):
    """Actor 1 raises in its second unroll; the learner reports it, restarts it and keeps learning
    (three more updates), then we stop the run with SIGINT (Ctrl-C) and it writes its checkpoint."""
    logs, after = [], []

    def log(message):
        logs.append(message)
        if any("restarting" in m for m in logs) and message.startswith("update"):
            after.append(message)
            if len(after) == 3:
                os.kill(os.getpid(), signal.SIGINT)

    cfg = small_config("lstm", "impala.total_frames=100000000", "run.crash_actor=1", "run.crash_at_unroll=1")
    assert train(cfg, tmp_path, preset="smoke", log=log) == 128 + signal.SIGINT
    assert any(m.startswith("actor 1 (pid") and "restarting" in m for m in logs), logs
    lines = read_jsonl(tmp_path / "metrics.jsonl")
    assert lines[-1]["actor_restarts"] == 1 and len(after) >= 3
    assert torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)["step"] == lines[-1]["step"]


def _children(pid: int) -> set[int]:
    """All descendants of pid, from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
def test_sigterm_leaves_a_resumable_checkpoint_and_no_process(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "ctbench.cli", "rl", "train", "--preset", "smoke", "--run-dir", str(run),
           "--set", "impala.total_frames=100000000"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 240
        while not (run / "metrics.jsonl").exists() or len(read_jsonl(run / "metrics.jsonl")) < 2:
            assert proc.poll() is None and time.time() < deadline, "training did not start"
            time.sleep(0.5)
        children = _children(proc.pid)
        assert len(children) >= 2  # the two actors
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "--resume" in out
    deadline = time.time() + 10
    while any(_alive(p) for p in children) and time.time() < deadline:
        time.sleep(0.2)
    assert not [p for p in children if _alive(p)], "processes left behind"
    step = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["step"]
    assert step >= 2
    # resume: continues from the checkpoint's update count
    cfg = small_config("lstm", f"impala.total_frames={(step + 2) * 32}")
    assert train(cfg, run, preset="smoke", resume=True, log=_quiet) == 0
    lines = read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in lines][-2:] == [step + 1, step + 2]


@pytest.mark.slow
def test_ray_backend_runs_the_same_actors(tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (pip install 'ctbench[ray]')")
    logs = []
    cfg = small_config("compressive", "impala.backend=ray", "impala.total_frames=192", "run.crash_actor=0",
                       "run.crash_at_unroll=1")
    assert train(cfg, tmp_path, preset="smoke", log=logs.append) == 0
    assert any("actor 0 failed" in m for m in logs), logs
    lines = read_jsonl(tmp_path / "metrics.jsonl")
    assert lines[-1]["frames"] == 192 and lines[-1]["actor_restarts"] == 1
    assert json.loads((tmp_path / "results.json").read_text())["backend"] == "ray"


@pytest.mark.slow
def test_learner_runs_in_the_chosen_precision_and_records_it(tmp_path, monkeypatch):
    """run.precision = bf16 where the CPU has it (its flags overridden here; emulated on this CPU): the learner's
    forward runs under bf16 autocast, its losses in float32, and the run records bf16; refused where not native."""
    from core.run import precision as precision_module
    from rl import impala

    monkeypatch.setenv(precision_module.FLAGS_ENV, "avx2 avx512_bf16")
    seen, autocast = [], impala.autocast
    monkeypatch.setattr(impala, "autocast", lambda *a: seen.append(a[1]) or autocast(*a))
    cfg = small_config("compressive", "impala.total_frames=64", "run.precision=bf16")
    assert train(cfg, tmp_path / "bf16", preset="smoke", log=_quiet) == 0
    res = json.loads((tmp_path / "bf16" / "results.json").read_text())
    assert res["precision"] == "bf16" and res["steps"] > 0 and seen == ["bf16"] * res["steps"]   # one per update
    assert {r["precision"] for r in read_jsonl(tmp_path / "bf16" / "metrics.jsonl")} == {"bf16"}
    monkeypatch.setenv(precision_module.FLAGS_ENV, "avx2")
    with pytest.raises(ValueError, match="run.precision = 'bf16'"):
        train(cfg, tmp_path / "refused", preset="smoke", log=_quiet)
