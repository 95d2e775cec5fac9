"""core.run.cli.run_command: one line for a user's mistake, the traceback on request."""
import pytest

from core.run.cli import run_command
from core.run.config import ConfigError


def _bad_preset() -> int:
    raise ConfigError("configs/text/x.toml: model.d_model must be >= 1")


def test_user_error_is_one_line_and_exit_2(capsys, monkeypatch):
    monkeypatch.delenv("CTBENCH_TRACEBACK", raising=False)
    assert run_command("ctbench text train", _bad_preset) == 2
    assert capsys.readouterr().err == "ctbench text train: error: configs/text/x.toml: model.d_model must be >= 1\n"
    assert run_command("ctbench rl train", lambda: 0) == 0


def test_traceback_on_request_and_bugs_pass_through(monkeypatch):
    monkeypatch.setenv("CTBENCH_TRACEBACK", "1")
    with pytest.raises(ConfigError):
        run_command("ctbench text train", _bad_preset)
    monkeypatch.delenv("CTBENCH_TRACEBACK")
    with pytest.raises(KeyError):                       # not a user error: not hidden
        run_command("ctbench text train", lambda: {}["x"])
