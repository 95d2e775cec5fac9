"""Evaluation: stream a whole split once with memory (time linear in its length).

The split is cut into `batch_size` contiguous streams (1 by default: every token is scored, in order);
each stream is read window by window with the memory carried across windows, as in training. The model
may use larger memories than in training (`LanguageModel.with_memory_sizes`, the paper's evaluation
setting). Optionally collects, for the analysis package (docs/contracts.md, analysis/):
per-token losses with ids and positions, the mean attention weight per key slot and layer, and the
per-layer compression losses. Naive dynamic evaluation (Krause et al., 2018; the paper's 16.1 on
WikiText-103) takes one SGD step on each window after scoring it.
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from core.run import autocast
from core.run.precision import resolve_precision

from .model import LanguageModel

LN2 = math.log(2.0)


@dataclass
class EvalResult:
    nats: float
    count: int
    windows: int
    token_loss: np.ndarray | None = None        # [N] float32 nats
    token: np.ndarray | None = None             # [N] int64 target ids
    position: np.ndarray | None = None          # [N] int64 index of the target in the split
    attention: dict | None = None               # attention_stats.json content
    attention_windows: np.ndarray | None = None  # [windows, K]: attention_windows.npz's `weight`
    compression_losses: list[float] | None = None
    extras: dict = field(default_factory=dict)

    @property
    def loss(self) -> float:
        return self.nats / max(self.count, 1)


class _AttentionStats:
    """Mean attention weight per key slot [cmem; mem; window] and layer, slots aligned to a full memory:
    while the memories are still filling up, their (newest) slots are right-aligned. Also each window's
    weights averaged over layers ([windows, K], NaN where a slot did not exist yet), so that the spread
    over windows can be shown (analysis/attention_windows.npz)."""

    def __init__(self, n_layers: int, cmem_len: int, mem_len: int, window: int):
        self.c, self.m, self.w = cmem_len, mem_len, window
        k = cmem_len + mem_len + window
        self.sum = np.zeros((n_layers, k))
        self.n = np.zeros((n_layers, k))
        self.window_sum, self.window_n = np.zeros(k), np.zeros(k)
        self.windows: list[np.ndarray] = []

    def add(self, layer: int, probs: torch.Tensor, n_cmem: int, n_mem: int) -> None:
        mean = probs.float().mean(dim=(0, 1, 2)).cpu().numpy()        # [K] over batch, heads, queries
        t = mean.shape[0] - n_cmem - n_mem
        idx = np.concatenate([np.arange(self.c - n_cmem, self.c),
                              self.c + np.arange(self.m - n_mem, self.m),
                              self.c + self.m + np.arange(t)])
        self.sum[layer, idx] += mean
        self.n[layer, idx] += 1
        self.window_sum[idx] += mean
        self.window_n[idx] += 1

    def end_window(self) -> None:
        """Closes a window's row of the per-window record (its layers' mean per slot)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            self.windows.append(np.where(self.window_n > 0, self.window_sum / self.window_n, np.nan))
        self.window_sum[:], self.window_n[:] = 0.0, 0.0

    def result(self) -> dict:
        per_layer = np.where(self.n > 0, self.sum / np.maximum(self.n, 1), 0.0)
        return {"cmem_len": self.c, "mem_len": self.m, "window": self.w, "n_layers": int(self.sum.shape[0]),
                "per_layer": per_layer.tolist()}

    def per_window(self) -> np.ndarray:
        """[windows, K] float32: each window's mean weight per slot over layers (NaN: no such slot yet)."""
        k = self.sum.shape[1]
        return np.asarray(self.windows, dtype=np.float32).reshape(-1, k)


def _reset_rows(starts: np.ndarray, doc_starts: np.ndarray | None) -> torch.Tensor | None:
    """Rows whose window begins exactly at a document start (the memory is emptied)."""
    if doc_starts is None or len(doc_starts) == 0:
        return None
    hit = np.isin(starts, doc_starts) & (starts > 0)
    return torch.from_numpy(hit) if hit.any() else None


def _inference_mode_unless_dynamic(evaluate):
    """Runs `evaluate` under torch.inference_mode (no autograd state at all), except for dynamic
    evaluation, which needs gradients."""
    @functools.wraps(evaluate)
    def wrapper(*args, **kwargs):
        with torch.inference_mode(not kwargs.get("dynamic_lr", 0.0) > 0):
            return evaluate(*args, **kwargs)
    return wrapper


@_inference_mode_unless_dynamic
def evaluate(model: LanguageModel, tokens: np.ndarray, *, window: int, device: torch.device,
             batch_size: int = 1, max_windows: int = 0, doc_starts: np.ndarray | None = None,
             collect: bool = False, attention: bool = False, dynamic_lr: float = 0.0, precision: str = "auto",
             progress: bool = False) -> EvalResult:
    """Score `tokens` (1-D ids) once; returns summed nats over the scored targets (and the scored tokens
    per second in extras["tokens_per_s"]). The work per window is constant: the memories are bounded."""
    n = len(tokens) - 1
    rows = max(1, min(batch_size, n // max(window, 1) or 1))
    length = n // rows
    starts_row = np.arange(rows, dtype=np.int64) * length
    n_windows = math.ceil(length / window)
    if max_windows:
        n_windows = min(n_windows, max_windows)
    dynamic = dynamic_lr > 0
    opt = torch.optim.SGD(model.parameters(), lr=dynamic_lr) if dynamic else None
    was_training = model.training
    model.eval()
    mem_len, cmem_len = model.mem_sizes
    stats = _AttentionStats(model.cfg.n_layers, cmem_len, mem_len, window) if attention else None
    precision = resolve_precision(precision, device)       # once, not per window (it reads the CPU's flags)
    comp_sum, comp_n = None, 0
    losses, ids, positions = [], [], []
    nats, count = 0.0, 0
    start = time.perf_counter()
    state = model.init_state(rows, device)
    from tqdm.auto import tqdm
    for w in tqdm(range(n_windows), disable=not progress, unit="window", mininterval=2.0):
        s = w * window
        t = min(window, length - s)
        pos = starts_row[:, None] + s + np.arange(t)[None, :]            # [rows, t] input positions
        x = torch.from_numpy(np.asarray(tokens[pos], dtype=np.int64)).to(device)
        y = torch.from_numpy(np.asarray(tokens[pos + 1], dtype=np.int64)).to(device)
        reset = _reset_rows(starts_row + s, doc_starts)
        lens = (state.cmem_lens(), state.mem_len) if hasattr(state, "cmem_lens") else None
        with torch.set_grad_enabled(dynamic), autocast(device, precision):
            out = model(x, state, y, reset=reset, return_attention=stats is not None)
        if dynamic:
            (out.nll.mean() + out.aux_loss).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)   # now, so that the next forward reuses the gradients' memory
        state = out.state.detach()
        nll = out.nll.detach().float()
        nats += float(nll.sum())
        count += nll.numel()
        if collect:
            losses.append(nll.cpu().numpy().reshape(-1))
            ids.append(y.cpu().numpy().reshape(-1))
            positions.append((pos + 1).reshape(-1))
        if stats is not None and out.attention is not None and lens is not None:
            for layer, probs in enumerate(out.attention):
                stats.add(layer, probs, lens[0][layer], lens[1])
            stats.end_window()
        if out.compression_losses is not None and lens is not None and sum(lens[0]) > 0:
            c = out.compression_losses.float().cpu().numpy()
            comp_sum = c if comp_sum is None else comp_sum + c
            comp_n += 1
    model.train(was_training)
    result = EvalResult(nats=nats, count=count, windows=n_windows)
    result.extras["tokens_per_s"] = count / max(time.perf_counter() - start, 1e-9)
    if collect:
        order = np.argsort(np.concatenate(positions), kind="stable")
        result.token_loss = np.concatenate(losses).astype(np.float32)[order]
        result.token = np.concatenate(ids).astype(np.int64)[order]
        result.position = np.concatenate(positions).astype(np.int64)[order]
    if stats is not None:
        result.attention = stats.result()
        result.attention_windows = stats.per_window()
    if comp_n:
        result.compression_losses = (comp_sum / comp_n).tolist()
    result.extras["scored_fraction"] = count / max(n, 1)
    return result
