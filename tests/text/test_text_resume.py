"""Interrupted runs: metrics.jsonl after a resume equals an unbroken run's, a refused --resume changes
nothing in the run directory, a rerun never repeats steps, and kill -9 + resume with changed settings."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.run import Trainer, from_dict, load_checkpoint, read_jsonl
from core.run.config import apply_overrides, find_preset, load_toml
from text.cli import main
from text.config import TextConfig
from text.task import TextTask, load_dataset
from text_data_fixtures import REPO, no_download  # noqa: F401  (autouse: tests never download)
from text_run_helpers import TINY_LONGRANGE, TINY_MODEL, TINY_TRAIN, data_dir, sets  # noqa: F401

WALL_CLOCK = ("time_s", "tokens_per_s")      # the only fields of metrics.jsonl that depend on the clock
# the cpu presets' own intervals (log 20, validation and checkpoint 200), not TINY_TRAIN's log_every=1
PRESET_INTERVALS = [o for o in TINY_TRAIN if not o.startswith(("train.log_every", "train.eval_every"))]


def lines_without_clock(run: Path) -> list[dict]:
    return [{k: v for k, v in line.items() if k not in WALL_CLOCK} for line in read_jsonl(run / "metrics.jsonl")]


def preset_cfg(data_dir: str, *extra: str) -> TextConfig:
    data = apply_overrides(load_toml(find_preset("text", "cpu-longrange")),
                           [*TINY_LONGRANGE, *TINY_MODEL, *PRESET_INTERVALS, f"data.data_dir={data_dir}", *extra])
    return from_dict(TextConfig, data)


def stop_at(*steps: int):
    def on_step(step):
        if step in steps:
            os.kill(os.getpid(), signal.SIGTERM)
    return on_step


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory, data_dir):
    cfg = preset_cfg(data_dir, "train.steps=250")
    assert (cfg.train.log_every, cfg.train.eval_every, cfg.train.checkpoint_every) == (20, 200, 200)
    run = tmp_path_factory.mktemp("unbroken")
    Trainer(TextTask(cfg, load_dataset(cfg)), cfg.train, run).fit()
    return cfg, run


def test_metrics_after_resumes_equal_an_unbroken_run(unbroken, tmp_path):
    """Stopped at 190 (mid log interval, before the step-200 validation and checkpoint), resumed, stopped
    at 230 (mid interval after them), resumed to the end, then --resume of the finished run: the file
    equals the unbroken run's line for line (steps, tokens, losses, lr), all but the wall-clock fields."""
    cfg, full = unbroken
    ds = load_dataset(cfg)
    run = tmp_path / "part"
    assert Trainer(TextTask(cfg, ds), cfg.train, run, on_step=stop_at(190)).fit()["interrupted"]
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] == 190
    assert Trainer(TextTask(cfg, ds), cfg.train, run, on_step=stop_at(230)).fit(resume=True)["interrupted"]
    assert Trainer(TextTask(cfg, ds), cfg.train, run).fit(resume=True)["steps"] == 250
    expected = lines_without_clock(full)
    assert [(l["split"], l["step"]) for l in expected] == \
        [("train", s) for s in range(20, 201, 20)] + [("valid", 200), ("train", 220), ("train", 240),
                                                       ("train", 250), ("valid", 250)]
    assert lines_without_clock(run) == expected
    # --resume of the finished run: nothing to train, the final validation is not appended again
    Trainer(TextTask(cfg, ds), cfg.train, run).fit(resume=True)
    assert lines_without_clock(run) == expected


def test_rerun_after_a_crash_before_the_first_checkpoint_starts_a_fresh_file(tmp_path, data_dir):
    cfg = preset_cfg(data_dir, "train.steps=45")
    ds = load_dataset(cfg)

    def crash(step):
        if step == 41:
            raise RuntimeError("killed")

    run = tmp_path / "run"
    with pytest.raises(RuntimeError):
        Trainer(TextTask(cfg, ds), cfg.train, run, on_step=crash).fit()
    assert not (run / "checkpoints").exists() and [l["step"] for l in read_jsonl(run / "metrics.jsonl")] == [20, 40]
    for resume in (False, True):          # a plain rerun, and --resume that finds no checkpoint
        Trainer(TextTask(cfg, ds), cfg.train, run).fit(resume=resume)
        assert [(l["split"], l["step"]) for l in read_jsonl(run / "metrics.jsonl")] == \
            [("train", 20), ("train", 40), ("train", 45), ("valid", 45)]


def _train(run, data_dir, *extra) -> int:
    return main(["train", "--preset", "cpu-longrange", "--run-dir", str(run), "--data-dir", data_dir,
                 *sets(TINY_LONGRANGE, TINY_MODEL, TINY_TRAIN, list(extra))])


def _snapshot(run: Path) -> dict:
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("change, message", [
    ("train.batch_size=2", "batch_size 4 there, 2 here"),                   # another stream layout
    ("data.longrange.n_filler=60", "vocab"),                                 # another vocabulary
    ("model.d_model=48", "model.d_model"),                                   # another model
])
def test_refused_resume_changes_nothing(tmp_path, data_dir, capsys, change, message):
    run = tmp_path / "run"
    assert _train(run, data_dir, "train.steps=4") == 0
    before = _snapshot(run)
    capsys.readouterr()
    assert main(["train", "--resume", "--run-dir", str(run), "--set", change]) == 2
    assert message in capsys.readouterr().err
    assert _snapshot(run) == before
    assert main(["train", "--resume", "--run-dir", str(run), "--set", "train.steps=6"]) == 0
    assert main(["eval", "--run", str(run)]) == 0
    assert [l["step"] for l in read_jsonl(run / "metrics.jsonl") if l["split"] == "train"] == [1, 2, 3, 4, 5, 6]


def test_resume_with_another_source_is_refused(tmp_path, data_dir, capsys):
    """Same vocabulary (bytes), other text: the stream layout differs and nothing is changed."""
    first, other = tmp_path / "first", tmp_path / "other"
    first.write_bytes(bytes(range(256)) * 40)
    other.write_bytes(bytes(range(256)) * 48)
    run = tmp_path / "run"
    assert main(["train", "--preset", "cpu-enwik8", "--run-dir", str(run), "--data-dir", data_dir,
                 *sets(TINY_MODEL, TINY_TRAIN, ["train.steps=2", f"data.source={first}"])]) == 0
    before = _snapshot(run)
    capsys.readouterr()
    assert main(["train", "--resume", "--run-dir", str(run), "--set", f"data.source={other}"]) == 2
    assert "another stream layout (n_tokens 9216 there, 11060 here)" in capsys.readouterr().err   # 90% of each
    assert _snapshot(run) == before
    assert main(["eval", "--run", str(run)]) == 0


def test_kill_9_then_resume_with_changed_settings(tmp_path, data_dir, capsys):
    """A real `python -m ctbench` training, SIGKILLed after its first periodic checkpoint (checkpoint every
    30 steps, log every 20: not multiples of each other); a resume with another batch size is refused and
    leaves the directory as it was; a plain resume finishes with the unbroken run's metrics.jsonl."""
    settings = [*TINY_LONGRANGE, *TINY_MODEL, *PRESET_INTERVALS, "train.steps=300", "train.checkpoint_every=30",
                "train.log_every=20", "train.eval_every=0"]
    full, run = tmp_path / "full", tmp_path / "killed"
    assert main(["train", "--preset", "cpu-longrange", "--run-dir", str(full), "--data-dir", data_dir,
                 *sets(settings)]) == 0
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "ctbench", "text", "train", "--preset", "cpu-longrange", "--run-dir", str(run),
           "--data-dir", data_dir, *sets(settings)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = run / "checkpoints" / "latest.pt"
    deadline = time.time() + 240
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.kill()
    assert proc.wait() == -signal.SIGKILL, proc.stderr.read().decode()
    step = load_checkpoint(ckpt)["step"]
    assert step % 30 == 0 and 0 < step < 300
    before = _snapshot(run)
    capsys.readouterr()
    assert main(["train", "--resume", "--run-dir", str(run), "--set", "train.batch_size=2"]) == 2
    assert "batch_size 4 there, 2 here" in capsys.readouterr().err
    assert _snapshot(run) == before
    assert main(["train", "--resume", "--run-dir", str(run)]) == 0
    assert lines_without_clock(run) == lines_without_clock(full)
