"""Atomic file writes and the run-directory writers (docs/contracts.md, section 2).

Every write goes to a temporary file in the destination folder and is then renamed over the target
with `os.replace`, so a reader (or a resumed run) never sees half a file.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import torch


class RunBusyError(ValueError):
    """Another process is training in this run directory (a ValueError: the CLIs print it as one line)."""


@contextlib.contextmanager
def exclusive_run(run_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on the run directory while training in it: the same command or suite started
    twice stops at once with a message, instead of two trainings interleaving one directory's checkpoints
    and metrics. The lock is flock(2) on the directory itself (no file is added), released when the process
    ends, however it ends."""
    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusyError(f"{path} is being trained by another process: wait for it to finish (or stop it), "
                               "then continue with --resume; two trainings in one run directory would overwrite "
                               "each other's checkpoints") from None
        yield path
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path: str | os.PathLike, write: Callable[[Any], None], mode: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())          # mkstemp makes 0600; give the file a normal mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return _atomic(path, lambda f: f.write(text), "w")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return _atomic(path, lambda f: f.write(data), "wb")


def _json_safe(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every reader can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _json_safe(value.tolist())
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _json_safe(value.item())
    return value


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(_json_safe(obj), indent=indent) + "\n")


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    return _atomic(path, lambda f: torch.save(obj, f), "wb")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}); delete or rewrite it") from None


class MetricsWriter:
    """Appends one JSON object per line to RUN_DIR/metrics.jsonl (flushed after every line).

    `lines` counts the records in the file; a checkpoint stores it and `keep_first(n)` cuts the file back
    to those n records on resume (and to none on a fresh start), so no step appears twice.
    `truncate_after(step)` drops lines logged after a step (for checkpoints without a line count).
    Writes are no-ops on non-main ranks (`enabled=False`).
    """

    def __init__(self, path: str | os.PathLike, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        self.lines = 0

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(_json_safe(record)) + "\n")
            f.flush()
        self.lines += 1

    def keep_first(self, n: int) -> None:
        """Keep only the first `n` records (0: start an empty file)."""
        self.lines = n
        if self.enabled and self.path.exists():
            self._rewrite(read_jsonl(self.path)[:n])

    def truncate_after(self, step: int) -> None:
        if self.enabled and self.path.exists():
            self._rewrite([line for line in read_jsonl(self.path) if line.get("step", 0) <= step])

    def _rewrite(self, records: list[dict]) -> None:
        self.lines = len(records)
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in records))


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Parse metrics.jsonl; a torn last line (a crash mid-write) is skipped, any other bad line raises."""
    path = Path(path)
    lines = path.read_text().splitlines()
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise ValueError(f"{path}: line {i + 1} is not valid JSON") from None
    return out


RESULTS_REQUIRED = ("domain", "model", "preset", "dataset", "metric", "value", "split")


def write_results(run_dir: str | os.PathLike, results: dict, name: str = "results.json") -> Path:
    """Write RUN_DIR/results.json (contracts section 2); the required keys are checked here."""
    missing = [k for k in RESULTS_REQUIRED if k not in results]
    if missing:
        raise ValueError(f"results.json is missing required keys {missing}")
    return atomic_write_json(Path(run_dir) / name, results)

