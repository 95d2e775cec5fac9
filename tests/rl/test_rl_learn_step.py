"""learn_step's loss reduction over [T, B]: "sum" (IMPALA's and monobeast's form, which the gradient clip
and RMSProp epsilon are calibrated for) is exactly T * B times "mean", in every term and in the gradient."""
import pytest
import torch

from rl.impala import buffer_specs, learn_step, make_agent
from rl_helpers import small_config

T, B = 8, 3


def _batch(cfg, agent, seed=0) -> dict[str, torch.Tensor]:
    """A random batch[key]: [T+1, B, ...] with episode ends inside it."""
    g = torch.Generator().manual_seed(seed)
    A = agent.num_actions
    out = {}
    for k, ((_, *rest), dtype) in buffer_specs(cfg, agent).items():
        shape = (T + 1, B, *rest)
        if dtype == torch.bool:
            out[k] = torch.rand(shape, generator=g) < 0.2
        elif k in ("action", "last_action"):
            out[k] = torch.randint(A, shape, generator=g)
        elif dtype.is_floating_point:
            out[k] = torch.randn(shape, generator=g).to(dtype)
        else:
            out[k] = torch.zeros(shape, dtype=dtype)
    return out


def _stats(reduction: str) -> dict[str, float]:
    cfg = small_config("lstm", f"impala.unroll_length={T}", f"impala.loss_reduction={reduction}",
                       "impala.grad_clip=1e9")
    torch.manual_seed(0)
    agent, _ = make_agent(cfg)
    batch = _batch(cfg, agent)
    optimizer = torch.optim.SGD(agent.parameters(), lr=0.0)  # leaves the weights as they are
    return learn_step(cfg, agent, optimizer, batch, agent.initial_state(B))


def test_sum_reduction_is_t_times_b_the_mean():
    mean, total = _stats("mean"), _stats("sum")
    assert mean["aux_loss"] == total["aux_loss"] == 0.0  # the LSTM has no compression loss
    for key in ("loss", "pg_loss", "baseline_loss", "grad_norm"):
        assert total[key] == pytest.approx(T * B * mean[key], rel=1e-5), key
    assert total["entropy"] == pytest.approx(mean["entropy"], rel=1e-6)  # logged per step either way
