"""metrics.jsonl after a crash and a resume: each step once, the same lines as a run that was never
interrupted (issue 11). A crash is an exception from `on_step`: like kill -9 it leaves the lines logged
after the last checkpoint in the file and writes no checkpoint of its own."""
import pytest

from core.run import Trainer, load_checkpoint, read_jsonl
from text.task import TextTask, load_dataset
from text_data_fixtures import no_download  # noqa: F401  (autouse: tests never download)
from text_run_helpers import data_dir, tiny_config  # noqa: F401

CLOCK = ("time_s", "tokens_per_s")          # wall-clock fields: the only ones allowed to differ


class Crash(Exception):
    pass


def lines(run_dir) -> list[tuple[str, int, dict]]:
    return [(l["split"], l["step"], {k: v for k, v in l.items() if k not in CLOCK})
            for l in read_jsonl(run_dir / "metrics.jsonl")]


@pytest.mark.parametrize("log_every", [1, 2])
def test_metrics_after_crash_and_resume_equal_an_uninterrupted_run(tmp_path, data_dir, log_every):
    cfg = tiny_config(data_dir, "train.steps=8", "train.checkpoint_every=3", f"train.log_every={log_every}")
    ds = load_dataset(cfg)
    Trainer(TextTask(cfg, ds), cfg.train, tmp_path / "full").fit()

    def crash(step):
        if step == 5:
            raise Crash

    part = tmp_path / "part"
    with pytest.raises(Crash):
        Trainer(TextTask(cfg, ds), cfg.train, part, on_step=crash).fit()
    assert load_checkpoint(part / "checkpoints" / "latest.pt")["step"] == 3
    logged = [step for split, step, _ in lines(part) if split == "train"]
    assert logged == list(range(log_every, 6, log_every))        # lines past the checkpoint are in the file
    Trainer(TextTask(cfg, ds), cfg.train, part).fit(resume=True)

    expected = lines(tmp_path / "full")
    assert [(s, n) for s, n, _ in expected] == [("train", n) for n in range(log_every, 9, log_every)] + [("valid", 8)]
    assert lines(part) == expected
