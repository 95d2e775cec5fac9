"""Agent state: carried across unrolls (the learner recomputes the actor's policy from the state
shipped with each unroll) and reset at episode ends."""
import pytest
import torch

from rl.impala import ActorCore, buffer_specs, make_agent, new_unroll
from rl_helpers import CORES, small_config


def _inputs(T, B, obs_dim, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, obs_dim, generator=g), torch.randint(4, (T, B), generator=g),
            torch.rand(T, B, generator=g))


@pytest.mark.parametrize("core", CORES)
def test_state_carries_across_calls(core):
    cfg = small_config(core)
    torch.manual_seed(0)
    agent, _ = make_agent(cfg)
    obs, act, rew = _inputs(16, 3, 16)
    done = torch.zeros(16, 3, dtype=torch.bool)
    s0 = agent.initial_state(3)
    with torch.no_grad():
        whole, _ = agent(obs, act, rew, done, s0)
        first, s1 = agent(obs[:8], act[:8], rew[:8], done[:8], s0)
        second, s2 = agent(obs[8:], act[8:], rew[8:], done[8:], s1)
    torch.testing.assert_close(torch.cat([first["policy_logits"], second["policy_logits"]]), whole["policy_logits"])
    assert {k: v.shape for k, v in s1.items()} == {k: v.shape for k, v in s0.items()}  # fixed shapes to ship
    # the state does matter: a fresh state on the second half gives other outputs
    fresh, _ = agent(obs[8:], act[8:], rew[8:], done[8:], s0)
    assert not torch.allclose(fresh["policy_logits"], second["policy_logits"])


@pytest.mark.parametrize("core", CORES)
def test_episode_end_resets_that_row_only(core):
    cfg = small_config(core)
    torch.manual_seed(0)
    agent, _ = make_agent(cfg)
    obs, act, rew = _inputs(12, 2, 16)
    done = torch.zeros(12, 2, dtype=torch.bool)
    done[5, 0] = True  # row 0 starts a new episode at step 5
    with torch.no_grad():
        out, _ = agent(obs, act, rew, done, agent.initial_state(2))
        fresh, _ = agent(obs[5:, :1], act[5:, :1], rew[5:, :1], done[5:, :1], agent.initial_state(1))
        no_reset, _ = agent(obs, act, rew, torch.zeros_like(done), agent.initial_state(2))
    torch.testing.assert_close(out["policy_logits"][5:, 0], fresh["policy_logits"][:, 0])
    torch.testing.assert_close(out["policy_logits"][:, 1], no_reset["policy_logits"][:, 1])
    assert not torch.allclose(out["policy_logits"][5:, 0], no_reset["policy_logits"][5:, 0])


@pytest.mark.parametrize("core", CORES)
def test_learner_recomputes_the_actor_policy_from_the_shipped_state(core):
    """Three consecutive unrolls, with episode ends inside them: from each unroll's initial state the
    learner's forward pass reproduces the behaviour logits exactly (same weights)."""
    cfg = small_config(core, "impala.unroll_length=8")
    torch.manual_seed(0)
    agent, _ = make_agent(cfg)
    actor = ActorCore(cfg, agent, seed=1)
    specs = buffer_specs(cfg, agent)
    episode_ends = 0
    previous = None
    for _ in range(3):
        buf, state = new_unroll(specs), {k: torch.zeros_like(v[0]) for k, v in agent.initial_state(1).items()}
        actor.unroll(buf, state)
        if previous is not None:  # entry 0 is the previous unroll's last entry
            torch.testing.assert_close(buf["obs"][0], previous["obs"][-1])
            torch.testing.assert_close(buf["policy_logits"][0], previous["policy_logits"][-1])
        episode_ends += int(buf["done"][1:].sum())
        with torch.no_grad():
            out, _ = agent(buf["obs"][:, None], buf["last_action"][:, None], buf["reward"][:, None],
                           buf["done"][:, None], {k: v[None] for k, v in state.items()})
        torch.testing.assert_close(out["policy_logits"][:-1, 0], buf["policy_logits"][1:], rtol=1e-5, atol=1e-5)
        assert torch.equal(buf["last_action"][1:], buf["action"][1:])
        previous = buf
    assert episode_ends >= 1  # the check covered resets inside an unroll
