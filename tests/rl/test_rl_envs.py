"""Environments: gymnasium's checker, the nonmatching task's rules, the dm_env adapter, minigrid, dmlab."""
import re

import dm_env
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rl.envs import human_normalised, make_env
from rl.envs.nonmatching import CHOICE, FORWARD, LEFT, NOOP, RIGHT, NonMatchingEnv


@pytest.mark.parametrize("kwargs", [{}, {"obs": "pixels"}, {"delay_mode": "corridor", "delay": 3},
                                    {"obs": "pixels", "delay": 0, "n_objects": 8}])
def test_nonmatching_passes_gymnasium_checker(kwargs):
    check_env(NonMatchingEnv(**kwargs), skip_render_check=True)


def _play(env, choose_nonmatching: bool):
    obs, info = env.reset(seed=3)
    cue = info["cue"]
    total, steps = 0.0, 0
    while True:
        if info["phase"] == CHOICE:
            left_is_cue = env._left == cue
            action = (RIGHT if left_is_cue else LEFT) if choose_nonmatching else (LEFT if left_is_cue else RIGHT)
        else:
            action = FORWARD
        obs, r, term, trunc, info = env.step(action)
        total += r
        steps += 1
        if term or trunc:
            return total, steps


@pytest.mark.parametrize("mode", ["wait", "corridor"])
def test_nonmatching_rewards_the_nonmatching_object_after_the_delay(mode):
    env = NonMatchingEnv(delay=5, delay_mode=mode, cue_steps=2)
    assert _play(env, True) == (1.0, 2 + 5 + 1)
    assert _play(env, False) == (0.0, 2 + 5 + 1)
    assert env.chance_return() == 0.5


def test_nonmatching_shows_the_cue_only_in_the_first_room():
    env = NonMatchingEnv(delay=3, n_objects=4)
    obs, info = env.reset(seed=0)
    assert obs[3 + info["cue"]] == 1.0 and obs[:3].tolist() == [1, 0, 0]
    obs, *_ = env.step(NOOP)
    obs, *_ = env.step(NOOP)  # now in the corridor: no object in view
    assert obs[3:-1].sum() == 0 and obs[1] == 1.0


def test_nonmatching_times_out_without_a_choice():
    env = NonMatchingEnv(delay=1, cue_steps=1, choice_steps=4)
    env.reset(seed=1)
    rewards, done, n = [], False, 0
    while not done:
        _, r, term, trunc, _ = env.step(NOOP)
        rewards.append(r)
        done = term or trunc
        n += 1
    assert n == 1 + 1 + 4 and sum(rewards) == 0.0


def test_nonmatching_is_seeded():
    a, b = make_env("nonmatching", seed=7, obs="pixels"), make_env("nonmatching", seed=7, obs="pixels")
    for _ in range(5):
        np.testing.assert_array_equal(a.reset().observation, b.reset().observation)
    c = make_env("nonmatching", seed=8)
    d = make_env("nonmatching", seed=7)
    cues = lambda e: [int(np.argmax(e.reset().observation[3:7])) for _ in range(20)]  # noqa: E731
    assert cues(c) != cues(d)


@pytest.mark.parametrize("layout", ["random", "fixed"])
def test_nonmatching_layout_decides_whether_the_view_matters(layout):
    """fixed: objects in kind order, so the rewarded side is a function of the cue alone; random: both sides
    occur for each cue (the choice needs memory and view)."""
    env = NonMatchingEnv(delay=1, cue_steps=1, n_objects=2, layout=layout)
    sides: dict[int, set[int]] = {0: set(), 1: set()}
    for seed in range(40):
        _, info = env.reset(seed=seed)
        assert {env._left, env._right} == {0, 1}
        if layout == "fixed":
            assert (env._left, env._right) == (0, 1)
        sides[info["cue"]].add(RIGHT if env._left == info["cue"] else LEFT)
    assert sides == ({0: {RIGHT}, 1: {LEFT}} if layout == "fixed" else {0: {LEFT, RIGHT}, 1: {LEFT, RIGHT}})


def test_nonmatching_rejects_bad_settings():
    with pytest.raises(ValueError, match="delay_mode"):
        NonMatchingEnv(delay_mode="teleport")
    with pytest.raises(ValueError, match="n_objects"):
        NonMatchingEnv(n_objects=1)
    with pytest.raises(ValueError, match="layout"):
        NonMatchingEnv(layout="diagonal")


def test_dm_env_adapter_step_types_and_specs():
    env = make_env("nonmatching", seed=0, delay=1, cue_steps=1)
    ts = env.reset()
    assert ts.step_type == dm_env.StepType.FIRST and ts.observation.shape == env.observation_spec().shape
    assert env.action_spec().num_values == 4 and env.frames_per_step == 1
    ts = env.step(NOOP)
    assert ts.step_type == dm_env.StepType.MID and ts.discount == 1.0
    env.step(NOOP)
    ts = env.step(LEFT)
    assert ts.last() and ts.discount == 0.0 and ts.reward in (0.0, 1.0)


def test_minigrid_wrapper_steps():
    pytest.importorskip("minigrid", reason="minigrid is not installed (pip install 'ctbench[rl]')")
    env = make_env("minigrid:MiniGrid-MemoryS7-v0", seed=0)
    ts = env.reset()
    assert ts.observation.shape == (7 * 7 * 20,) and ts.observation.dtype == np.float32
    assert ts.observation.reshape(49, 20)[:, :11].sum() == 49  # one object id per cell
    assert env.action_spec().num_values == 7
    rng = np.random.default_rng(0)
    for _ in range(300):
        ts = env.step(int(rng.integers(7)))
        if ts.last():
            ts = env.reset()
    assert ts.observation.shape == (980,)
    with pytest.raises(ValueError, match="MiniGrid-MemoryS7-v0"):
        make_env("minigrid:MiniGrid-NoSuchThing-v0")


def test_dmlab_missing_module_explains_how_to_build_it():
    try:
        import deepmind_lab  # noqa: F401
        pytest.skip("deepmind_lab is installed: the adapter runs for real")
    except ImportError:
        pass
    with pytest.raises(ValueError, match="bazel build") as err:
        make_env("dmlab:rooms_select_nonmatching_object")
    message = str(err.value)
    # Generic: the only absolute paths are the build's own temporary folder (no venv or home of this machine).
    paths = re.findall(r"(?:^|\s)(/[^/\s][^\s'`]*)", message)  # not URLs or bazel's //targets
    assert paths and all(p.startswith("/tmp/dmlab_pkg") for p in paths), paths
    assert "python -m pip install /tmp/dmlab_pkg/deepmind_lab-*.whl" in message


# Stated here independently of rl/envs/dmlab.py: the published DMLab-30 episode returns for
# rooms_select_nonmatching_object (IMPALA, Espeholt et al. 2018, appendix table of human and random scores;
# the same numbers as deepmind/scalable_agent's dmlab30.py): human 65.9, uniformly random policy 0.312.
PUBLISHED_HUMAN, PUBLISHED_RANDOM = 65.9, 0.312


@pytest.mark.parametrize("episode_return, score", [
    (PUBLISHED_RANDOM, 0.0),                          # the random policy scores 0
    (PUBLISHED_HUMAN, 100.0),                         # the human tester scores 100
    ((PUBLISHED_HUMAN + PUBLISHED_RANDOM) / 2, 50.0),  # linear in between
    (0.0, -0.4757),                                   # 100 * -0.312 / 65.588: below random is negative
    (2 * PUBLISHED_HUMAN - PUBLISHED_RANDOM, 200.0),  # and above human, over 100
])
def test_human_normalised_score_against_published_points(episode_return, score):
    for name in ("dmlab:rooms_select_nonmatching_object", "dmlab:contributed/dmlab30/rooms_select_nonmatching_object"):
        assert human_normalised(name, episode_return) == pytest.approx(score, abs=1e-4)


def test_human_normalised_score_only_where_scores_are_published():
    assert human_normalised("nonmatching", 1.0) is None
    assert human_normalised("minigrid:MiniGrid-MemoryS7-v0", 1.0) is None
    assert human_normalised("dmlab:rooms_watermaze", 54.0) is None  # not in our table: no made-up score


def test_unknown_env_names_fail_clearly():
    with pytest.raises(ValueError, match="nonmatching"):
        make_env("atari:Pong")
