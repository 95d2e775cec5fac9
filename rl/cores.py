"""Memory cores of the agent: an LSTM, or the Compressive Transformer over per-step embeddings.

Both take x: [T, B, d] time-major, done: [T, B] and a state dict (batch in dim 0), and step one
timestep at a time, so that an episode that ends inside an unroll resets exactly that row before
the next step: the agent's memory never mixes episodes, and the learner recomputes exactly what the
actor computed (same weights -> same policy).
"""
from __future__ import annotations

import torch
from torch import nn

State = dict[str, torch.Tensor]


def make_core(cfg) -> nn.Module:
    if cfg.core == "lstm":
        return LSTMCore(cfg.hidden, cfg.lstm_layers)
    from rl.ct_core import CompressiveCore
    return CompressiveCore(cfg)


class LSTMCore(nn.Module):
    """state: {"h": [B, L, H], "c": [B, L, H]}."""

    def __init__(self, hidden: int, layers: int = 1):
        super().__init__()
        self.hidden, self.layers = hidden, layers
        self.lstm = nn.LSTM(hidden, hidden, layers)
        # Forget-gate bias 1 (Jozefowicz et al. 2015): the cell starts out remembering, which a memory
        # task needs before any gradient has reached back to the cue. Gates are ordered (i, f, g, o).
        with torch.no_grad():
            for name, p in self.lstm.named_parameters():
                if name.startswith("bias_ih"):
                    p[hidden:2 * hidden].fill_(1.0)
                elif name.startswith("bias_hh"):
                    p[hidden:2 * hidden].zero_()

    def initial_state(self, batch_size: int, device=None) -> State:
        z = torch.zeros(batch_size, self.layers, self.hidden, device=device)
        return {"h": z, "c": z.clone()}

    def forward(self, x: torch.Tensor, done: torch.Tensor, state: State):
        h, c = state["h"].transpose(0, 1).contiguous(), state["c"].transpose(0, 1).contiguous()
        outs = []
        for t in range(x.shape[0]):
            keep = (~done[t].bool()).to(h.dtype).view(1, -1, 1)
            out, (h, c) = self.lstm(x[t:t + 1], (h * keep, c * keep))
            outs.append(out)
        return torch.cat(outs, 0), {"h": h.transpose(0, 1), "c": c.transpose(0, 1)}, x.new_zeros(())
