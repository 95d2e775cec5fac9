"""Checkpoints: everything a run needs to continue exactly, loadable with `weights_only=True`.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts:
  format, fingerprint (which model/preset wrote it), step, tokens, windows, elapsed_s,
  model, optimizer, scheduler (state_dicts), ranks: [per-rank {rng, data, state}]
where `rng` holds the python, numpy and torch (and CUDA) generator states, `data` the data iterator's
state_dict and `state` the recurrent state (Memory.state_dict() or the LSTM's (h, c)).
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .io import atomic_torch_save

FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or was written by another model/preset."""


# ---------------------------------------------------------------------------------------- RNG states
def rng_state() -> dict:
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": random.getstate(),
        "numpy": {"bit_generator": np_state["bit_generator"],
                  "key": torch.from_numpy(np.asarray(np_state["state"]["key"]).astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                  "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state({"bit_generator": n["bit_generator"],
                         "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------- save / load
def to_cpu(obj: Any) -> Any:
    """Recursively move tensors to the CPU (checkpoints are device-independent)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    payload = dict(payload, format=FORMAT)
    return atomic_torch_save(path, to_cpu(payload))


def load_checkpoint(path: str | Path, fingerprint: dict | None = None) -> dict:
    """Load with weights_only=True; if `fingerprint` is given it must match the one stored."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated file, pickle with foreign objects, ...
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(e).__name__}: {str(e)[:200]}); "
                              "it may be truncated or not a ctbench checkpoint") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a ctbench checkpoint (format {FORMAT})")
    if fingerprint is not None:
        check_fingerprint(path, ckpt.get("fingerprint", {}), fingerprint)
    return ckpt


def _flatten(d: Any, prefix: str = "") -> dict:
    if isinstance(d, dict):
        out = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def check_fingerprint(path: Path, stored: dict, expected: dict) -> None:
    """Name every field where the checkpoint's model differs from the one being built. A field only the
    checkpoint has is one this code no longer counts as identity (e.g. text's same_length, now an
    evaluation setting): it is not a difference; one only this run has is."""
    a, b = _flatten(stored), _flatten(expected)
    diffs = [f"{k}: checkpoint has {a.get(k, '(absent)')!r}, this run has {b.get(k, '(absent)')!r}"
             for k in sorted(b) if _norm(a.get(k)) != _norm(b.get(k))]
    if diffs:
        shown = "; ".join(diffs[:6]) + (f"; ... ({len(diffs) - 6} more)" if len(diffs) > 6 else "")
        raise CheckpointError(f"{path}: checkpoint is from another model or preset ({shown}). "
                              "Use a fresh --run-dir, or the preset that wrote this checkpoint.")


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v
