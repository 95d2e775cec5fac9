"""The Compressive Transformer as the agent's memory core (Section 5.7 of the paper).

Each agent step is one position: the core runs the stack over windows of one step, so its memory
holds the layer inputs of the last n_m steps and n_cm compressed slots of c older steps each (reach
n_m + c * n_cm steps back). Stepping one position at a time lets an episode end inside an unroll
reset exactly that row before the next step (Memory.reset_rows), and the learner recomputes exactly
what the actor computed.

The state must have fixed shapes so that actors can ship it through shared-memory buffers with each
unroll. Memory grows from empty and keeps evicted-but-not-yet-compressed steps in `pending`; so the
initial state here is already full (n_m memories and n_cm compressed slots, all marked invalid, which
attention ignores), and every unroll is a multiple of c steps long, so `pending` is empty at every
unroll boundary (RLConfig checks impala.unroll_length % compression_rate == 0).
"""
from __future__ import annotations

import torch
from torch import nn

from core import CompressiveTransformer, CTConfig, LayerMemory, Memory

State = dict[str, torch.Tensor]


class CompressiveCore(nn.Module):
    """x: [T, B, d] time-major, done: [T, B], state: Memory.state_dict() (batch in dim 0)."""

    def __init__(self, cfg):
        super().__init__()
        if cfg.compression_loss == "bptt":
            raise ValueError("agent.compression_loss: 'bptt' keeps a variable-size state; use 'attention', "
                             "'autoencoding' or 'none'")
        # c = 1 would make the compressed memory just a longer memory, but the paper's c = 1 agent is
        # "no compression": we build it as a TransformerXL with the same total reach n_m + n_cm.
        rate = cfg.compression_rate
        mem_len, cmem_len = (cfg.mem_len + cfg.cmem_len, 0) if rate == 1 else (cfg.mem_len, cfg.cmem_len)
        self.ct_cfg = CTConfig.from_fields(cfg, d_model=cfg.hidden, mem_len=mem_len, cmem_len=cmem_len,
                                           compression_rate=rate if rate > 1 else 2, dropatt=0.0)
        self.stack = CompressiveTransformer(self.ct_cfg)

    def initial_state(self, batch_size: int, device=None) -> State:
        c, d = self.ct_cfg, self.ct_cfg.d_model
        n_usage = c.mem_len if c.compression == "most_used" else 0

        def layer() -> LayerMemory:
            vec = lambda n: torch.zeros(batch_size, n, d, device=device)  # noqa: E731
            flag = lambda n: torch.zeros(batch_size, n, dtype=torch.bool, device=device)  # noqa: E731
            num = lambda n: torch.zeros(batch_size, n, device=device)  # noqa: E731
            return LayerMemory(mem=vec(c.mem_len), mem_valid=flag(c.mem_len), cmem=vec(c.cmem_len),
                               cmem_valid=flag(c.cmem_len), pending=vec(0), pending_valid=flag(0),
                               usage_sum=num(n_usage), usage_count=num(n_usage), pending_usage=num(0), fresh=vec(0))

        return Memory(tuple(layer() for _ in range(c.n_layers))).state_dict()

    def forward(self, x: torch.Tensor, done: torch.Tensor, state: State):
        mem = Memory.from_state_dict(state)
        outs, aux = [], x.new_zeros(())
        for t in range(x.shape[0]):
            out = self.stack(x[t].unsqueeze(1), mem.reset_rows(done[t]))
            outs.append(out.hidden.squeeze(1))
            mem, aux = out.memory, aux + out.aux_loss
        return torch.stack(outs), mem.detach().state_dict(), aux / x.shape[0]
