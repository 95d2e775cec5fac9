"""A tiny recurrent task for testing core.run without any domain package (imported by test_run_*)."""
from __future__ import annotations

import torch
from torch import nn

from core.run import StepResult


class ToyState:
    def __init__(self, h: torch.Tensor):
        self.h = h

    def detach(self) -> "ToyState":
        return ToyState(self.h.detach())

    def state_dict(self) -> dict:
        return {"h": self.h}


class ToyStream:
    """B streams over a fixed random token sequence; position is the resumable state."""

    def __init__(self, tokens: torch.Tensor, batch_size: int, window: int):
        n = (len(tokens) - 1) // batch_size
        self.x = tokens[: n * batch_size].view(batch_size, n)
        self.y = tokens[1: n * batch_size + 1].view(batch_size, n)
        self.window, self.pos = window, 0

    def __iter__(self):
        while self.pos + self.window <= self.x.shape[1]:
            i = self.pos
            self.pos += self.window
            yield self.x[:, i:i + self.window], self.y[:, i:i + self.window]
        self.pos = 0

    def state_dict(self) -> dict:
        return {"pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.pos = int(state["pos"])


class ToyModel(nn.Module):
    def __init__(self, vocab: int = 16, d: int = 16):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.cell = nn.GRUCell(d, d)
        self.drop = nn.Dropout(0.2)  # exercises the RNG restore on resume
        self.out = nn.Linear(d, vocab)

    def forward(self, x, h):
        logits = []
        for t in range(x.shape[1]):
            h = self.cell(self.drop(self.emb(x[:, t])), h)
            logits.append(self.out(h))
        return torch.stack(logits, 1), h


class ToyTask:
    unit = "tokens"

    def __init__(self, seed: int = 0, n_tokens: int = 2000, window: int = 8, d: int = 16):
        g = torch.Generator().manual_seed(seed)
        # a learnable pattern: mostly token t+1 after t
        base = torch.arange(n_tokens) % 16
        noise = torch.randint(0, 16, (n_tokens,), generator=g)
        self.tokens = torch.where(torch.rand(n_tokens, generator=g) < 0.8, base, noise)
        torch.manual_seed(seed)
        self.model = ToyModel(d=d)
        self.window, self.d = window, d

    def fingerprint(self) -> dict:
        return {"preset": "toy", "model": {"d": self.d}}

    def train_stream(self, batch_size, rank, world_size):
        shard = self.tokens[rank::world_size] if world_size > 1 else self.tokens
        return ToyStream(shard, batch_size, self.window)

    def init_state(self, batch_size, device):
        return ToyState(torch.zeros(batch_size, self.d, device=device))

    def load_state(self, state, device):
        return ToyState(state["h"].to(device))

    def step(self, model, batch, state, device):
        x, y = (t.to(device) for t in batch)
        logits, h = model(x, state.h)
        nll = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        return StepResult(loss=nll.mean(), nats=nll.sum().item(), count=nll.numel(), state=ToyState(h))

    def validate(self, model, device):
        x, y = self.tokens[:-1].view(1, -1)[:, :200], self.tokens[1:].view(1, -1)[:, :200]
        logits, _ = model(x.to(device), torch.zeros(1, self.d, device=device))
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten().to(device))
        return {"loss": loss.item(), "count": y.numel()}
