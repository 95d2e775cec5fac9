"""The generic Trainer: loss goes down, run-directory files, exact resume after SIGTERM."""
import json
import os
import signal

import pytest
import torch

from core.run import CheckpointError, TrainConfig, Trainer, load_checkpoint, read_jsonl
from core.run.checkpoint import check_fingerprint
from run_toy import ToyTask


def cfg(**kw):
    base = dict(steps=12, batch_size=4, lr=1e-2, warmup_steps=2, log_every=1, progress=False,
                grad_clip=1.0, device="cpu", update_every=2, update_every_after=6)
    base.update(kw)
    return TrainConfig(**base)


def test_loss_decreases_and_files_written(tmp_path):
    summary = Trainer(ToyTask(), cfg(steps=30), tmp_path).fit()
    lines = read_jsonl(tmp_path / "metrics.jsonl")
    train = [l for l in lines if l["split"] == "train"]
    assert len(train) == 30 and train[-1]["loss"] < train[0]["loss"] - 0.3
    assert {"step", "tokens", "loss", "bits", "lr", "tokens_per_s", "time_s"} <= set(train[0])
    assert [l for l in lines if l["split"] == "valid"]
    # update frequency: after 6 updates, 2 windows per update -> 6 + 2 * 24 windows
    assert summary["windows"] == 6 + 2 * 24
    assert summary["tokens"] == summary["windows"] * 4 * 8
    ckpt = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    assert ckpt["step"] == 30 and ckpt["ranks"][0]["data"]["pos"] > 0


def test_sigterm_then_resume_matches_uninterrupted_run(tmp_path):
    full = Trainer(ToyTask(), cfg(), tmp_path / "full").fit()

    def kill_at_5(step):
        if step == 5:
            os.kill(os.getpid(), signal.SIGTERM)

    part = Trainer(ToyTask(), cfg(), tmp_path / "part", on_step=kill_at_5).fit()
    assert part["interrupted"] and part["steps"] == 5
    # a fresh task (fresh weights and RNG) resumed from the checkpoint
    torch.manual_seed(123)
    resumed = Trainer(ToyTask(seed=0), cfg(), tmp_path / "part").fit(resume=True)
    assert resumed["steps"] == 12 and not resumed["interrupted"]
    assert resumed["final_loss"] == full["final_loss"]
    assert resumed["tokens"] == full["tokens"]
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "latest.pt")["model"]
    b = load_checkpoint(tmp_path / "part" / "checkpoints" / "latest.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    losses = lambda d: [l["loss"] for l in read_jsonl(d / "metrics.jsonl") if l["split"] == "train"]
    assert losses(tmp_path / "part") == losses(tmp_path / "full")


def test_metrics_after_a_mid_interval_resume_equal_the_unbroken_run(tmp_path):
    """Logged every 3 steps, checkpointed every 5, stopped at 7: the resumed file is the unbroken one's,
    line for line, but for the wall-clock fields time_s and tokens_per_s."""
    c = cfg(steps=14, log_every=3, checkpoint_every=5)

    def kill_at_7(step):
        if step == 7:
            os.kill(os.getpid(), signal.SIGTERM)

    Trainer(ToyTask(), c, tmp_path / "full").fit()
    Trainer(ToyTask(), c, tmp_path / "part", on_step=kill_at_7).fit()
    Trainer(ToyTask(), c, tmp_path / "part").fit(resume=True)
    lines = lambda d: [{k: v for k, v in l.items() if k not in ("time_s", "tokens_per_s")}
                       for l in read_jsonl(d / "metrics.jsonl")]
    assert [(l["split"], l["step"]) for l in lines(tmp_path / "full")] == \
        [("train", s) for s in (3, 6, 9, 12, 14)] + [("valid", 14)]
    assert lines(tmp_path / "part") == lines(tmp_path / "full")


def test_resume_from_other_model_is_a_clear_error(tmp_path):
    Trainer(ToyTask(), cfg(steps=2), tmp_path).fit()
    with pytest.raises(CheckpointError, match=r"latest.pt.*another model.*model.d"):
        Trainer(ToyTask(d=8), cfg(steps=4), tmp_path).fit(resume=True)


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    Trainer(ToyTask(), cfg(steps=2), tmp_path).fit()
    path = tmp_path / "checkpoints" / "latest.pt"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="latest.pt: cannot read checkpoint"):
        load_checkpoint(path)


def test_fingerprint_fields_only_the_checkpoint_has_are_not_differences(tmp_path):
    """A field the code no longer counts as identity (text's same_length, now an evaluation setting) does
    not refuse older checkpoints; a field the code counts and the checkpoint lacks still does."""
    path = tmp_path / "latest.pt"
    check_fingerprint(path, {"model": {"d": 4, "same_length": False}}, {"model": {"d": 4}})
    with pytest.raises(CheckpointError, match=r"\(model.new: checkpoint has '\(absent\)', this run has 1\)"):
        check_fingerprint(path, {"model": {"d": 4}}, {"model": {"d": 4, "new": 1}})


def test_a_second_training_of_the_same_run_directory_stops_with_a_message(tmp_path):
    """The same command started twice (or a suite run twice): the second stops before touching the run;
    the first's files are left as they were, and once it is done the run resumes normally."""
    from core.run.io import RunBusyError, exclusive_run
    Trainer(ToyTask(), cfg(steps=4), tmp_path).fit()
    before = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with exclusive_run(tmp_path):                      # the first training, still running
        with pytest.raises(RunBusyError, match="being trained by another process") as e:
            Trainer(ToyTask(), cfg(steps=8), tmp_path).fit(resume=True)
        assert str(tmp_path) in str(e.value) and "--resume" in str(e.value)
    assert {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert Trainer(ToyTask(), cfg(steps=8), tmp_path).fit(resume=True)["steps"] == 8   # lock released
