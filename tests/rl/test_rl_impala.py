"""The actor-learner loop end to end: both cores with 2 actor processes, crash-restart, SIGKILL of actors
at random moments, SIGTERM with a resumable checkpoint and no process left behind, the Ray backend."""
import json
import os
import random
import signal
import threading
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core.run.io import read_jsonl
import rl.impala
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


def _actor_pids(waiting: bool = False) -> list[int]:
    """This process's live multiprocessing-spawn children (the actors; not the resource tracker); with
    waiting=True only those blocked in poll(), i.e. waiting for a buffer index (kernel wait channel
    poll_schedule_timeout, as in the issue's report)."""
    pids = []
    for pid in _children(os.getpid()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            wchan = Path(f"/proc/{pid}/wchan").read_text()
        except OSError:
            continue
        if b"spawn_main" in cmdline and _alive(pid) and (not waiting or wchan.startswith("poll_schedule_timeout")):
            pids.append(pid)
    return pids


class Wedged(Exception):
    pass


def _wait_for(condition, seconds: float, message: str) -> None:
    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            raise Wedged(message)
        time.sleep(0.02)


KILLS, KILL_WAIT_S = 12, 30.0


@pytest.mark.slow
def test_actors_killed_at_random_moments_never_wedge_the_learner(tmp_path, monkeypatch):
    """SIGKILL a random actor at a random moment, 12 times (every other time one that waits for a buffer:
    the moment that wedged the shared-queue version for good). After every kill the
    learner reports that death and makes another update after reporting it, within KILL_WAIT_S; at the end
    every buffer index is accounted for exactly once. num_buffers = batch_size keeps the actors waiting for
    buffers much of the time."""
    censuses = []

    class Recording(rl.impala.LocalActors):
        def close(self):
            censuses.append(self.buffer_census())
            super().close()

    monkeypatch.setattr(rl.impala, "LocalActors", Recording)
    logs, updates, failure, killed = [], [0], [], []

    def log(message):
        logs.append(message)
        if message.startswith("update "):
            updates[0] = int(message.split()[1])

    def kill_one(k: int, rng: random.Random) -> None:
        time.sleep(rng.uniform(0.0, 0.3))
        _wait_for(_actor_pids, KILL_WAIT_S, f"kill {k}: no live actor for {KILL_WAIT_S} s")
        give_up = time.time() + 2.0
        while k % 2 == 0 and not _actor_pids(waiting=True) and time.time() < give_up:
            time.sleep(0.005)
        pid = rng.choice((k % 2 == 0 and _actor_pids(waiting=True)) or _actor_pids())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        _wait_for(lambda: any(f"(pid {pid}) died" in m for m in logs), KILL_WAIT_S,
                  f"kill {k} (pid {pid}): the death was not reported within {KILL_WAIT_S} s")
        seen = updates[0]
        _wait_for(lambda: updates[0] > seen, KILL_WAIT_S,
                  f"kill {k} (pid {pid}): no update within {KILL_WAIT_S} s after the restart "
                  f"(updates stayed at {seen}); the learner is wedged")

    def killer():
        rng = random.Random(11)
        try:
            for k in range(1, KILLS + 1):
                kill_one(k, rng)
        except Exception as e:  # noqa: BLE001 - the assertion below reports it
            failure.append(f"{type(e).__name__}: {e}")
        finally:
            os.kill(os.getpid(), signal.SIGINT)  # stops train() either way

    cfg = small_config("lstm", "impala.total_frames=100000000", "impala.num_buffers=4", "run.checkpoint_every_s=1e9")
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    code = train(cfg, tmp_path, preset="smoke", log=log)
    thread.join(timeout=5)
    assert not failure, failure[0]
    assert code == 128 + signal.SIGINT
    deaths = [m for m in logs if "died with exit code -9" in m]
    assert [int(m.split("(pid ")[1].split(")")[0]) for m in deaths] == killed
    assert read_jsonl(tmp_path / "metrics.jsonl")[-1]["actor_restarts"] == KILLS
    assert censuses == [list(range(cfg.impala.buffers))]


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


def _no_survivors(pids: set[int], seconds: float = 20.0) -> list[int]:
    deadline = time.time() + seconds
    while (alive := [p for p in pids if _alive(p)]) and time.time() < deadline:
        time.sleep(0.2)
    return alive


@pytest.mark.slow
@pytest.mark.parametrize("exit_path", ["error_while_starting", "error_in_learner", "sigterm"])
def test_ray_instance_is_shut_down_on_every_exit_path(exit_path, tmp_path, monkeypatch):
    """The local Ray instance the run started (raylet, GCS, agents, workers: they ignore SIGTERM) is shut
    down however the learner leaves: an error while the actors start, an error in the learner, a signal.
    Every process the run added under this test process is gone afterwards."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'ctbench[ray]')")
    from rl import ray_backend
    seen: set[int] = set()
    before = _children(os.getpid())  # e.g. multiprocessing's resource tracker from earlier tests: not the run's
    start = ray_backend.RayActors._start

    def recording_start(self, i):
        seen.update(_children(os.getpid()))
        if exit_path == "error_while_starting" and i == 1:
            raise RuntimeError("injected: actor 1 cannot start")
        start(self, i)

    monkeypatch.setattr(ray_backend.RayActors, "_start", recording_start)
    if exit_path == "error_in_learner":
        monkeypatch.setattr(rl.impala, "learn_step", lambda *a: (_ for _ in ()).throw(RuntimeError("injected")))

    def log(message):
        if message.startswith("update "):
            seen.update(_children(os.getpid()))
            os.kill(os.getpid(), signal.SIGTERM)

    cfg = small_config("lstm", "impala.backend=ray", "impala.total_frames=100000000")
    try:
        if exit_path == "sigterm":
            assert train(cfg, tmp_path, preset="smoke", log=log) == 128 + signal.SIGTERM
        else:
            with pytest.raises(RuntimeError, match="injected"):
                train(cfg, tmp_path, preset="smoke", log=log)
        still_up = ray.is_initialized()
    finally:
        ray.shutdown()  # a failure here must not leave Ray up for the next test
    assert not still_up
    assert len(seen - before) >= 2  # Ray's own processes were running
    assert _no_survivors(seen - before) == []



def test_a_second_learner_on_the_same_run_directory_stops_before_starting_actors(tmp_path, capsys):
    from core.run.io import exclusive_run
    from rl.cli import main
    with exclusive_run(tmp_path / "run"):
        rc = main(["train", "--preset", "smoke", "--run-dir", str(tmp_path / "run")])
    assert rc == 2 and "is being trained by another process" in capsys.readouterr().err
    assert list((tmp_path / "run").iterdir()) == []                 # nothing written, no actor started
