"""V-trace off-policy targets (Espeholt et al. 2018, IMPALA, Section 4.1, eq. 1).

    v_s = V(x_s) + sum_{t>=s} gamma^{t-s} (prod_{i=s}^{t-1} c_i) delta_t V
    delta_t V = rho_t (r_t + gamma V(x_{t+1}) - V(x_t)),  rho_t = min(rho_bar, pi/mu),  c_i = min(c_bar, pi/mu)

computed backwards with v_s - V(x_s) = delta_s V + gamma_s c_s (v_{s+1} - V(x_{s+1})).
The policy-gradient advantage is rho_s (r_s + gamma_s v_{s+1} - V(x_s)). All tensors are time-major.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class VTraceReturns(NamedTuple):
    vs: torch.Tensor             # [T, B] value targets
    pg_advantages: torch.Tensor  # [T, B]


@torch.no_grad()
def from_importance_weights(log_rhos: torch.Tensor, discounts: torch.Tensor, rewards: torch.Tensor,
                            values: torch.Tensor, bootstrap_value: torch.Tensor, rho_bar: float = 1.0,
                            c_bar: float = 1.0, pg_rho_bar: float = 1.0) -> VTraceReturns:
    """log_rhos, discounts, rewards, values: [T, B] (log pi/mu of the taken actions; discount 0 at
    episode ends); bootstrap_value: [B] = V(x_T)."""
    rhos = log_rhos.exp()
    clipped_rhos = rhos.clamp(max=rho_bar)
    cs = rhos.clamp(max=c_bar)
    values_tp1 = torch.cat([values[1:], bootstrap_value[None]], 0)
    deltas = clipped_rhos * (rewards + discounts * values_tp1 - values)
    acc = torch.zeros_like(bootstrap_value)
    vs_minus_v = []
    for t in reversed(range(values.shape[0])):
        acc = deltas[t] + discounts[t] * cs[t] * acc
        vs_minus_v.append(acc)
    vs = torch.stack(vs_minus_v[::-1]) + values
    vs_tp1 = torch.cat([vs[1:], bootstrap_value[None]], 0)
    pg_advantages = rhos.clamp(max=pg_rho_bar) * (rewards + discounts * vs_tp1 - values)
    return VTraceReturns(vs, pg_advantages)


def action_log_probs(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """logits: [T, B, A], actions: [T, B] -> log pi(a|x): [T, B]."""
    return F.log_softmax(logits, -1).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)


def from_logits(behaviour_logits: torch.Tensor, target_logits: torch.Tensor, actions: torch.Tensor,
                discounts: torch.Tensor, rewards: torch.Tensor, values: torch.Tensor,
                bootstrap_value: torch.Tensor, rho_bar: float = 1.0, c_bar: float = 1.0) -> VTraceReturns:
    """behaviour_logits (mu), target_logits (pi): [T, B, A]; the rest as in from_importance_weights."""
    log_rhos = action_log_probs(target_logits, actions) - action_log_probs(behaviour_logits, actions)
    return from_importance_weights(log_rhos, discounts, rewards, values, bootstrap_value, rho_bar, c_bar,
                                   pg_rho_bar=rho_bar)
