"""`ctbench text` as a user meets it: flags checked with messages that name them, partial evaluations
kept apart from the headline, data paths that work from any directory, progress on a terminal."""
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.run import from_dict, load_toml
from text.cli import main
from text.config import TextConfig
from text_data_fixtures import REPO, no_download  # noqa: F401  (autouse: tests never download)
from text_run_helpers import TINY_LONGRANGE, TINY_MODEL, TINY_TRAIN, data_dir, sets  # noqa: F401


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir):
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--preset", "cpu-longrange", "--run-dir", str(run), "--data-dir", data_dir,
                 *sets(TINY_LONGRANGE, TINY_MODEL, TINY_TRAIN, ["train.steps=6"])]) == 0
    return run


def _results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def test_partial_eval_does_not_replace_the_headline(run, capsys):
    assert main(["eval", "--run", str(run)]) == 0                   # the whole split: the headline
    headline = (run / "results.json").read_bytes()
    capsys.readouterr()
    assert main(["eval", "--run", str(run), "--max-windows", "3"]) == 0
    assert (run / "results.json").read_bytes() == headline
    partial = json.loads((run / "partial_eval" / "results.json").read_text())
    assert partial["max_windows"] == 3 and partial["tokens_scored"] == 3 * 2 * 16   # 3 windows x 2 streams x 16
    assert json.loads(headline)["max_windows"] == 0
    assert json.loads(capsys.readouterr().out)["results_file"] == str(run / "partial_eval" / "results.json")


OWN = " (leave it out for the run's own setting)"


@pytest.mark.parametrize("flags, message", [
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0" + OWN),
    (["--mem-len", "-5"], "--mem-len must be >= 0, got -5" + OWN),
    (["--cmem-len", "-1"], "--cmem-len must be >= 0, got -1" + OWN),
    (["--max-windows", "-2"], "--max-windows must be >= 0, got -2" + OWN),
    (["--clamp-len", "0"], "--clamp-len must be -1 (no clamp) or >= 1, got 0"),
])
def test_bad_eval_flags_are_refused_by_name(run, capsys, flags, message):
    assert main(["eval", "--run", str(run), *flags]) == 2
    assert capsys.readouterr().err == f"ctbench text eval: error: {message}\n"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
@pytest.mark.parametrize("command", ["eval", "sample"])
def test_device_error_names_the_flag(run, capsys, command):
    extra = ["--prompt", "x"] if command == "sample" else []
    assert main([command, "--run", str(run), "--device", "cuda", *extra]) == 2
    assert capsys.readouterr().err == (f"ctbench text {command}: error: --device 'cuda': CUDA is not available on "
                                       "this machine; use cpu or auto\n")


def test_same_length_and_clamp_len_at_eval(run):
    assert main(["eval", "--run", str(run), "--split", "test"]) == 0
    plain = _results(run)
    assert (plain["same_length"], plain["clamp_len"]) == (False, -1)
    assert main(["eval", "--run", str(run), "--split", "test", "--same-length", "--clamp-len", "4"]) == 0
    txl = _results(run)
    assert (txl["same_length"], txl["clamp_len"]) == (True, 4)
    assert txl["tokens_scored"] == plain["tokens_scored"] and txl["value"] != plain["value"]
    assert from_dict(TextConfig, load_toml(run / "config.toml")).model.same_length is False  # the run is unchanged


def test_checkpoints_that_fingerprinted_same_length_still_load(run, tmp_path):
    """Checkpoints written before same_length and clamp_len left the fingerprint carry them: eval accepts them."""
    import shutil

    from core.run import load_checkpoint, save_checkpoint

    old = tmp_path / "old"
    shutil.copytree(run, old)
    ckpt = load_checkpoint(old / "checkpoints" / "latest.pt")
    assert "same_length" not in ckpt["fingerprint"]["model"]
    ckpt["fingerprint"]["model"].update(same_length=False, clamp_len=-1)
    save_checkpoint(old / "checkpoints" / "latest.pt", ckpt)
    assert main(["eval", "--run", str(old), "--same-length"]) == 0 and _results(old)["same_length"] is True


def test_eval_progress_on_a_terminal_only(run, monkeypatch):
    for stream, shown in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, "stderr", stream)
        assert main(["eval", "--run", str(run), "--max-windows", "2"]) == 0
        assert ("2/2" in stream.getvalue()) is shown
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    assert main(["eval", "--run", str(run), "--max-windows", "2", "--progress"]) == 0
    assert "2/2" in stream.getvalue()


def test_relative_data_dir_is_stored_absolute(tmp_path, monkeypatch, data_dir):
    """Trained from one directory with --data-dir data, evaluated from another: the same cache is used."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir(), elsewhere.mkdir()
    monkeypatch.chdir(work)
    assert main(["train", "--preset", "cpu-longrange", "--run-dir", "run", "--data-dir", "data",
                 *sets(TINY_LONGRANGE, TINY_MODEL, TINY_TRAIN, ["train.steps=2"])]) == 0
    cfg = from_dict(TextConfig, load_toml(work / "run" / "config.toml"))
    assert cfg.data.data_dir == str(work / "data")
    caches = sorted(p.name for p in (work / "data").iterdir())
    monkeypatch.chdir(elsewhere)
    assert main(["eval", "--run", str(work / "run")]) == 0
    assert sorted(p.name for p in (work / "data").iterdir()) == caches and not list(elsewhere.iterdir())


def test_source_and_books_folder_are_stored_absolute(tmp_path, monkeypatch):
    from core.run import load_config
    from text.run import absolute_paths

    monkeypatch.chdir(tmp_path)
    cfg = absolute_paths(load_config(TextConfig, "text", "cpu-books", ["data.source=raw/x.zip", "data.data_dir=~/c"]))
    assert cfg.data.dataset == f"books:{tmp_path.parent / 'shared' / 'data' / 'gutenberg'}"   # books:../shared/...
    assert (cfg.data.source, cfg.data.data_dir) == (str(tmp_path / "raw" / "x.zip"), str(Path.home() / "c"))
    assert absolute_paths(load_config(TextConfig, "text", "cpu-longrange")).data == \
        load_config(TextConfig, "text", "cpu-longrange").data                   # nothing to change: unchanged


def test_missing_source_names_the_current_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["prepare", "enwik8", "--source", "nowhere.zip", "--data-dir", "cache"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "ctbench text prepare: error: nowhere.zip: file not found; pass an enwik8.zip or raw enwik8 file (or omit "
        f"--source to download) (looked up from the current directory {tmp_path})")


def test_prepare_honours_ctbench_data_and_says_where(tmp_path, monkeypatch, capsys):
    raw = tmp_path / "enwik8_prefix"
    raw.write_bytes(bytes(range(256)) * 40)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))              # ~/.cache/ctbench is never touched
    monkeypatch.setenv("CTBENCH_DATA", str(tmp_path / "env-cache"))
    assert main(["prepare", "enwik8", "--source", str(raw), "--allow-partial"]) == 0
    out = capsys.readouterr()
    (cache,) = [p for p in (tmp_path / "env-cache").iterdir() if not p.name.startswith(".")]   # .lock files
    assert cache.name.startswith("enwik8-") and (cache / "manifest.json").exists()
    assert out.out.endswith(f"prepared in {cache}\n")
    assert out.err == f"preparing enwik8 in {cache}\n"          # no bar when stderr is not a terminal


def test_prepare_shows_progress_on_a_terminal(tmp_path, monkeypatch):
    raw = tmp_path / "enwik8_prefix"
    raw.write_bytes(bytes(range(256)) * 40)
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert main(["prepare", "enwik8", "--source", str(raw), "--allow-partial", "--data-dir", str(tmp_path / "c")]) == 0
    assert "prepare enwik8: 100%" in sys.stderr.getvalue() and "4/4" in sys.stderr.getvalue()


def test_set_errors_name_the_set_argument(tmp_path, capsys, data_dir):
    assert main(["train", "--preset", "cpu-longrange", "--run-dir", str(tmp_path / "r"),
                 "--set", "train.steps=2", "--set", "train.lr=fast"]) == 2
    assert capsys.readouterr().err == ("ctbench text train: error: --set train.lr=fast: train.lr: expected a number, "
                                       "got 'fast'\n")
    assert main(["train", "--preset", "cpu-longrange", "--set", "eval.mem_len=-5"]) == 2
    assert capsys.readouterr().err == ("ctbench text train: error: --set eval.mem_len=-5: eval.mem_len must be -1 "
                                       "(as trained) or >= 0, got -5\n")
    bad = tmp_path / "bad.toml"
    bad.write_text('[train]\nlr = "fast"\n')
    assert main(["train", "--preset", str(bad), "--run-dir", str(tmp_path / "r"), "--set", "train.steps=2"]) == 2
    assert capsys.readouterr().err == f"ctbench text train: error: {bad}: train.lr: expected a number, got 'fast'\n"


def test_python_dash_m_ctbench():
    out = subprocess.run([sys.executable, "-m", "ctbench", "--help"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("usage: ctbench COMMAND")
    out = subprocess.run([sys.executable, "-m", "ctbench", "nonsense"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.startswith("ctbench: unknown command 'nonsense'")
