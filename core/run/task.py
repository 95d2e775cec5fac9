"""The small interface through which a domain (text, speech, rl-offline) plugs into the Trainer.

The trainer knows nothing about tokens, audio or memories: it asks the task for a data stream, a
recurrent state, and a loss per window, and it checkpoints whatever those return.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Protocol

import torch
from torch import nn


class Stream(Protocol):
    """A resumable iterator of training windows (e.g. text.data.StreamBatcher)."""

    def __iter__(self) -> Iterator[Any]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


class State(Protocol):
    """Recurrent state carried from window to window (core.Memory, an LSTM's (h, c), or None)."""

    def detach(self) -> "State": ...
    def state_dict(self) -> dict: ...


@dataclass
class StepResult:
    """One window's outcome.

    loss:   scalar tensor to backpropagate (task loss per unit + auxiliary losses)
    nats:   summed task loss over the window in nats (a float or 0-d tensor; metrics only)
    count:  number of units (tokens, samples) the nats are summed over
    state:  next recurrent state (the trainer detaches it: truncated BPTT at window boundaries)
    """
    loss: torch.Tensor
    nats: float | torch.Tensor
    count: int
    state: Any


class Task(Protocol):
    """What a domain provides to `core.run.Trainer`.

    model:            the nn.Module holding every trained parameter
    unit:             what `count` counts, for the logs ("tokens", "samples")
    fingerprint():    plain dict that identifies the model (preset name, model config); stored in
                      checkpoints and compared on resume
    train_stream(batch_size, rank, world_size): this rank's resumable data stream
    init_state(batch_size, device) / load_state(state_dict, device): recurrent state
    step(model, batch, state, device) -> StepResult: forward one window (`model` may be DDP-wrapped)
    validate(model, device) -> {"loss": nats per unit, "count": int} or None (rank 0 only)
    """

    model: nn.Module
    unit: str

    def fingerprint(self) -> dict: ...
    def train_stream(self, batch_size: int, rank: int, world_size: int) -> Stream: ...
    def init_state(self, batch_size: int, device: torch.device) -> Any: ...
    def load_state(self, state: dict | None, device: torch.device) -> Any: ...
    def step(self, model: nn.Module, batch: Any, state: Any, device: torch.device) -> StepResult: ...
    def validate(self, model: nn.Module, device: torch.device) -> dict | None: ...
