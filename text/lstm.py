"""The LSTM language-model baseline's body: it carries (h, c) from window to window like a memory."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LSTMState:
    """h, c: [n_layers, B, d]. Mirrors core.Memory's detach / reset_rows / state_dict."""
    h: torch.Tensor
    c: torch.Tensor

    def detach(self) -> "LSTMState":
        return LSTMState(self.h.detach(), self.c.detach())

    def reset_rows(self, done: torch.Tensor) -> "LSTMState":
        keep = (~done.to(device=self.h.device, dtype=torch.bool)).to(self.h.dtype).view(1, -1, 1)
        return LSTMState(self.h * keep, self.c * keep)

    def state_dict(self) -> dict:
        return {"h": self.h, "c": self.c}

    @staticmethod
    def from_state_dict(d: dict) -> "LSTMState":
        return LSTMState(d["h"], d["c"])

    def to(self, device) -> "LSTMState":
        return LSTMState(self.h.to(device), self.c.to(device))


class LSTMBody(nn.Module):
    """x: [B, T, d] -> hidden [B, T, d], next LSTMState."""

    def __init__(self, d_model: int, n_layers: int, dropout: float):
        super().__init__()
        self.d, self.n_layers = d_model, n_layers
        self.lstm = nn.LSTM(d_model, d_model, n_layers, batch_first=True, dropout=dropout if n_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)

    def init_state(self, batch_size: int, device=None) -> LSTMState:
        z = torch.zeros(self.n_layers, batch_size, self.d, device=device)
        return LSTMState(z, z.clone())

    def forward(self, x: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        out, (h, c) = self.lstm(self.drop(x), (state.h.to(x.dtype), state.c.to(x.dtype)))
        return self.drop(out), LSTMState(h, c)
