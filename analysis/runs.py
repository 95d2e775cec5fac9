"""Readers of run directories (docs/contracts.md, section 2) into plain data and pandas frames.

This module only reads files on disk: it never imports the training code (no torch, no domains), so
the report runs anywhere matplotlib and pandas do. A run directory is any folder holding a
`results.json`; everything else in it is optional here, because evaluation runs written beside a
training run may carry only their results.
"""
from __future__ import annotations

import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RESULTS = "results.json"
SKIP_DIRS = {"checkpoints", ".git", "__pycache__", ".venv", "node_modules"}


class RunFormatError(ValueError):
    """A run directory file that does not follow docs/contracts.md; the message names the file."""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise RunFormatError(f"{path}: not valid JSON ({err}); rewrite it or remove the run directory") from None


@dataclass(frozen=True)
class Run:
    """One run directory, read eagerly except for the (possibly large) analysis files."""

    path: Path
    results: dict
    config: dict = field(default_factory=dict)
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)

    # The fields every table groups by; missing ones read as "" / 0 so that old runs still load.
    @property
    def domain(self) -> str:
        return str(self.results.get("domain", ""))

    @property
    def model(self) -> str:
        return str(self.results.get("model", ""))

    @property
    def dataset(self) -> str:
        return str(self.results.get("dataset", ""))

    @property
    def short_dataset(self) -> str:
        """The dataset without its source: 'books:../shared/data/gutenberg' -> 'books'."""
        return self.dataset.split(":", 1)[0]

    @property
    def label(self) -> str:
        """A short human name: model (+ compression rate for compressive runs)."""
        if self.model == "compressive":
            return f"compressive c={self.results.get('compression_rate', '?')}"
        return self.model

    def analysis_file(self, name: str) -> Path | None:
        p = self.path / "analysis" / name
        return p if p.is_file() else None

    def analysis_json(self, name: str) -> Any | None:
        p = self.analysis_file(name)
        return None if p is None else _read_json(p)

    def token_losses(self) -> dict[str, np.ndarray] | None:
        """`analysis/token_losses.npz` as a dict of arrays (loss [N], token [N], position [N], ...)."""
        p = self.analysis_file("token_losses.npz")
        if p is None:
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (ValueError, OSError) as err:
            raise RunFormatError(f"{p}: unreadable npz ({err}); rerun eval with --save-analysis") from None
        if "loss" not in arrays:
            raise RunFormatError(f"{p}: has no 'loss' array (found {sorted(arrays)}); rerun eval with --save-analysis")
        n = len(arrays["loss"])
        for k, v in arrays.items():
            if v.ndim == 1 and len(v) != n:
                raise RunFormatError(f"{p}: array {k!r} has {len(v)} entries but 'loss' has {n}")
        return arrays


def read_metrics(path: Path) -> pd.DataFrame:
    """metrics.jsonl -> one row per line. A truncated last line (a run killed mid-write) is dropped."""
    if not path.is_file():
        return pd.DataFrame()
    rows = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break  # the writer was interrupted: everything before it is still good
            raise RunFormatError(f"{path}: line {i + 1} is not valid JSON; fix or delete that line") from None
    return pd.DataFrame(rows)


def load_run(path: str | Path) -> Run:
    path = Path(path)
    rpath = path / RESULTS
    if not rpath.is_file():
        raise RunFormatError(f"{path}: no {RESULTS}; is this a run directory? (train or eval writes it at the end)")
    results = _read_json(rpath)
    if not isinstance(results, dict):
        raise RunFormatError(f"{rpath}: expected a JSON object, got {type(results).__name__}")
    config: dict = {}
    cpath = path / "config.toml"
    if cpath.is_file():
        try:
            config = tomllib.loads(cpath.read_text())
        except tomllib.TOMLDecodeError as err:
            raise RunFormatError(f"{cpath}: not valid TOML ({err})") from None
    return Run(path=path, results=results, config=config, metrics=read_metrics(path / "metrics.jsonl"))


def discover(paths: list[str | Path]) -> list[Path]:
    """Every folder at or under `paths` that holds a results.json, sorted, each once."""
    found: set[Path] = set()
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or folder")
        if p.is_file():
            p = p.parent
        if (p / RESULTS).is_file():
            found.add(p.resolve())
        for r in p.rglob(RESULTS):
            if not SKIP_DIRS.intersection(r.relative_to(p).parts):
                found.add(r.parent.resolve())
    return sorted(found)


def load_runs(paths: list[str | Path]) -> list[Run]:
    return [load_run(p) for p in discover(paths)]


RESULT_COLUMNS = ["domain", "dataset", "model", "preset", "split", "metric", "value", "params",
                  "params_non_embedding", "tokens_seen", "steps", "wall_time_s", "device", "partial_data",
                  "mem_len", "cmem_len", "compression_rate", "compression", "compression_loss"]


def relative_names(runs: list[Run]) -> dict[Path, str]:
    """Each run's folder relative to the folder all of them share (no absolute paths in published files)."""
    if not runs:
        return {}
    root = Path(os.path.commonpath([str(r.path) for r in runs]))
    if len(runs) == 1:
        root = runs[0].path.parent
    return {r.path: r.path.relative_to(root).as_posix() for r in runs}


def results_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per run: the contract's results.json keys (missing ones NaN) plus `run` (its folder, relative
    to the folder the runs share)."""
    names = relative_names(runs)
    rows = [{**{k: r.results.get(k) for k in RESULT_COLUMNS}, "run": names[r.path]} for r in runs]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS + ["run"])


def flat_config(cfg: dict, prefix: str = "") -> dict[str, Any]:
    """{"train": {"steps": 5}} -> {"train.steps": 5}: the same keys as `--set` overrides."""
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_config(v, key + "."))
        else:
            out[key] = v
    return out


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
