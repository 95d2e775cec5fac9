"""The agent: torso -> memory core -> policy and value heads (Section 5.7 of the paper; IMPALA's agent).

    obs_t  --torso-->  e_t  --[e_t; onehot(a_{t-1}); clip(r_{t-1})]-->  x_t [B, d]
    x_t, state  --core-->  h_t, state'        (LSTM, or the Compressive Transformer over past steps)
    [h_t; x_t]  --MLP, heads-->  policy logits [B, A], baseline V [B]

Every public call is time-major over an unroll: obs [T, B, ...], done [T, B] where done[t] marks that
obs[t] is the first observation of a new episode, so the core resets that row's state before step t.
The recurrent state is a dict of tensors with the batch in dim 0 (fixed shapes), so that actors can
ship it through shared-memory buffers with each unroll.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rl.cores import make_core

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class AgentConfig:
    """core: "lstm" or "compressive". hidden: core width (LSTM hidden size = CT d_model).
    The n_*/mem/cmem/compression fields configure the Compressive Transformer core (mem_len n_m,
    cmem_len n_cm, compression_rate c; c = 1 keeps every past step uncompressed)."""
    core: str = "lstm"
    hidden: int = 64
    torso_dim: int = 64
    lstm_layers: int = 1
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 128
    mem_len: int = 16
    cmem_len: int = 16
    compression_rate: int = 4
    compression: str = "conv"
    compression_loss: str = "attention"
    pre_ln: bool = True
    dropout: float = 0.0

    def __post_init__(self):
        if self.core not in ("lstm", "compressive"):
            raise ValueError(f"agent.core: must be 'lstm' or 'compressive', got {self.core!r}")
        for name in ("hidden", "torso_dim", "lstm_layers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"agent.{name}: must be > 0, got {getattr(self, name)}")


class Torso(nn.Module):
    """obs [N, ...] -> [N, torso_dim]. Images (uint8 [H, W, C]) go through a small conv net
    (IMPALA's shallow torso: two strided convs); vectors through a 2-layer MLP."""

    def __init__(self, obs_shape: tuple[int, ...], out_dim: int):
        super().__init__()
        self.obs_shape = tuple(obs_shape)
        if len(obs_shape) == 3:
            h, w, c = obs_shape
            self.net = nn.Sequential(nn.Conv2d(c, 16, 3, stride=2), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2),
                                     nn.ReLU(), nn.Flatten())
            with torch.no_grad():
                n = self.net(torch.zeros(1, c, h, w)).shape[-1]
            self.fc = nn.Sequential(nn.Linear(n, out_dim), nn.ReLU())
        elif len(obs_shape) == 1:
            self.net = None
            self.fc = nn.Sequential(nn.Linear(obs_shape[0], out_dim), nn.ReLU(), nn.Linear(out_dim, out_dim), nn.ReLU())
        else:
            raise ValueError(f"observations of shape {obs_shape} are not supported (use [D] or [H, W, C])")

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.net is None:
            return self.fc(obs.float())
        x = obs.permute(0, 3, 1, 2).float() / 255.0
        return self.fc(self.net(x))


class Agent(nn.Module):
    def __init__(self, obs_shape: tuple[int, ...], num_actions: int, cfg: AgentConfig):
        super().__init__()
        self.cfg, self.num_actions = cfg, num_actions
        self.torso = Torso(obs_shape, cfg.torso_dim)
        self.embed = nn.Linear(cfg.torso_dim + num_actions + 1, cfg.hidden)
        self.core = make_core(cfg)
        # Heads read [core output; core input] through one hidden layer: the task's decision compares
        # what memory holds (the cue) with what is in view (the objects), a product a linear head on a
        # one-layer LSTM's output cannot form (supervised, it stayed at chance; with this head it learns).
        self.head = nn.Sequential(nn.Linear(2 * cfg.hidden, cfg.hidden), nn.ReLU())
        self.policy = nn.Linear(cfg.hidden, num_actions)
        self.baseline = nn.Linear(cfg.hidden, 1)

    def initial_state(self, batch_size: int, device: torch.device | None = None) -> State:
        return self.core.initial_state(batch_size, device)

    def forward(self, obs: torch.Tensor, last_action: torch.Tensor, reward: torch.Tensor, done: torch.Tensor,
                state: State, sample: bool = True) -> tuple[dict[str, torch.Tensor], State]:
        """obs: [T, B, ...]; last_action, reward, done: [T, B]; state: from initial_state(B).

        Returns ({"policy_logits": [T, B, A], "baseline": [T, B], "action": [T, B], "aux_loss": []},
        next state). `sample=False` takes the greedy action (evaluation)."""
        T, B = done.shape
        e = self.torso(obs.reshape(T * B, *obs.shape[2:])).view(T, B, -1)
        a = F.one_hot(last_action.long(), self.num_actions).float()
        r = reward.float().clamp(-1, 1).unsqueeze(-1)
        x = self.embed(torch.cat([e, a, r], -1))
        h, state, aux = self.core(x, done, state)
        h = self.head(torch.cat([h, x], -1))
        logits = self.policy(h)
        if sample:
            action = torch.multinomial(F.softmax(logits.reshape(T * B, -1).float(), -1), 1).view(T, B)
        else:
            action = logits.argmax(-1)
        return {"policy_logits": logits, "baseline": self.baseline(h).squeeze(-1), "action": action,
                "aux_loss": aux}, state
