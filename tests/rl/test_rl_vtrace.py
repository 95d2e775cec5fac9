"""V-trace against rlax's reference implementation and against eq. (1) of Espeholt et al. (2018)."""
import numpy as np
import pytest
import torch

from rl import vtrace


def _random_inputs(seed, T=7, B=5, A=3):
    g = torch.Generator().manual_seed(seed)
    behaviour = torch.randn(T, B, A, generator=g, dtype=torch.float64)
    target = torch.randn(T, B, A, generator=g, dtype=torch.float64)
    actions = torch.randint(A, (T, B), generator=g)
    discounts = 0.9 * (torch.rand(T, B, generator=g, dtype=torch.float64) > 0.2)  # some episode ends
    rewards = torch.randn(T, B, generator=g, dtype=torch.float64)
    values = torch.randn(T, B, generator=g, dtype=torch.float64)
    bootstrap = torch.randn(B, generator=g, dtype=torch.float64)
    return behaviour, target, actions, discounts, rewards, values, bootstrap


def _eq1(log_rhos, discounts, rewards, values, bootstrap, rho_bar, c_bar):
    """v_s = V(x_s) + sum_{t>=s} (prod_{i<t} gamma_i) (prod_{i=s}^{t-1} c_i) delta_t, written as the sum."""
    rhos = np.exp(log_rhos)
    T, B = rewards.shape
    values_ext = np.concatenate([values, bootstrap[None]], 0)
    delta = np.minimum(rho_bar, rhos) * (rewards + discounts * values_ext[1:] - values)
    cs = np.minimum(c_bar, rhos)
    vs = np.zeros((T, B))
    for s in range(T):
        total = values[s].copy()
        for t in range(s, T):
            weight = np.ones(B)
            for i in range(s, t):
                weight *= discounts[i] * cs[i]
            total += weight * delta[t]
        vs[s] = total
    return vs


@pytest.mark.parametrize("seed,rho_bar,c_bar", [(0, 1.0, 1.0), (1, 1.0, 1.0), (2, 2.0, 0.5)])
def test_vtrace_matches_the_sum_of_eq1(seed, rho_bar, c_bar):
    mu, pi, a, disc, r, v, boot = _random_inputs(seed)
    log_rhos = vtrace.action_log_probs(pi, a) - vtrace.action_log_probs(mu, a)
    out = vtrace.from_importance_weights(log_rhos, disc, r, v, boot, rho_bar=rho_bar, c_bar=c_bar,
                                         pg_rho_bar=rho_bar)
    expected = _eq1(log_rhos.numpy(), disc.numpy(), r.numpy(), v.numpy(), boot.numpy(), rho_bar, c_bar)
    np.testing.assert_allclose(out.vs.numpy(), expected, rtol=1e-10, atol=1e-10)
    vs_tp1 = np.concatenate([expected[1:], boot.numpy()[None]], 0)
    pg = np.minimum(rho_bar, np.exp(log_rhos.numpy())) * (r.numpy() + disc.numpy() * vs_tp1 - v.numpy())
    np.testing.assert_allclose(out.pg_advantages.numpy(), pg, rtol=1e-10, atol=1e-10)


def test_on_policy_vtrace_is_the_n_step_return():
    _, pi, a, disc, r, v, boot = _random_inputs(3)
    out = vtrace.from_logits(pi, pi, a, disc, r, v, boot)
    ret, expected = boot.clone(), torch.zeros_like(r)
    for t in reversed(range(r.shape[0])):
        ret = r[t] + disc[t] * ret
        expected[t] = ret
    torch.testing.assert_close(out.vs, expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vtrace_matches_rlax(seed):
    rlax = pytest.importorskip("rlax", reason="rlax (and jax) not installed: pip install rlax")
    import jax
    jax.config.update("jax_enable_x64", True)
    mu, pi, a, disc, r, v, boot = _random_inputs(seed)
    log_rhos = vtrace.action_log_probs(pi, a) - vtrace.action_log_probs(mu, a)
    out = vtrace.from_importance_weights(log_rhos, disc, r, v, boot)
    rhos = np.exp(log_rhos.numpy())
    for b in range(r.shape[1]):
        v_tm1 = v[:, b].numpy()
        v_t = np.concatenate([v_tm1[1:], boot[b:b + 1].numpy()])
        errors, pg_adv, _ = rlax.vtrace_td_error_and_advantage(
            v_tm1, v_t, r[:, b].numpy(), disc[:, b].numpy(), rhos[:, b], lambda_=1.0,
            clip_rho_threshold=1.0, clip_pg_rho_threshold=1.0)
        np.testing.assert_allclose(out.vs[:, b].numpy(), v_tm1 + np.asarray(errors), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(out.pg_advantages[:, b].numpy(), np.asarray(pg_adv), rtol=1e-9, atol=1e-9)
