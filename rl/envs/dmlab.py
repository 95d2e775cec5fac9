"""`dmlab:<level>`: DeepMind Lab levels (DMLab-30) behind dm_env, set up as in IMPALA (Espeholt et al. 2018).

Observations are RGB 72x96 (uint8 [72, 96, 3]); each agent step repeats the chosen action for 4 frames;
the action set is IMPALA's 9 discrete actions. DeepMind Lab is not on PyPI: build it from source
(docs/rl.md, "DeepMind Lab") and install its Python wheel into the venv.
"""
from __future__ import annotations

import dm_env
import numpy as np
from dm_env import specs

ACTION_REPEAT = 4
HEIGHT, WIDTH = 72, 96
# IMPALA's action set: (look left/right, look down/up, strafe left/right, forward/back, fire, jump, crouch).
ACTION_SET = (
    (0, 0, 0, 1, 0, 0, 0),     # forward
    (0, 0, 0, -1, 0, 0, 0),    # backward
    (0, 0, -1, 0, 0, 0, 0),    # strafe left
    (0, 0, 1, 0, 0, 0, 0),     # strafe right
    (-20, 0, 0, 0, 0, 0, 0),   # look left
    (20, 0, 0, 0, 0, 0, 0),    # look right
    (-20, 0, 0, 1, 0, 0, 0),   # look left + forward
    (20, 0, 0, 1, 0, 0, 0),    # look right + forward
    (0, 0, 0, 0, 1, 0, 0),     # fire
)
# Published human and random episode returns (IMPALA paper, DMLab-30 table), for the human-normalised score.
HUMAN_RANDOM = {"rooms_select_nonmatching_object": (65.9, 0.312)}

BUILD_HELP = (
    "DeepMind Lab's Python module `deepmind_lab` is not installed. It must be built from source:\n"
    "  git clone https://github.com/google-deepmind/lab && cd lab\n"
    "  bazel build -c opt --python_version=PY3 //python/pip_package:build_pip_package\n"
    "  ./bazel-bin/python/pip_package/build_pip_package /tmp/dmlab_pkg\n"
    "  python -m pip install /tmp/dmlab_pkg/deepmind_lab-*.whl\n"
    "with `python` the interpreter that runs ctbench (your virtual environment's). See docs/rl.md,\n"
    "'DeepMind Lab'. Without it, use env `nonmatching`, the built-in stand-in."
)


def level_path(level: str) -> str:
    """`rooms_select_nonmatching_object` -> `contributed/dmlab30/rooms_select_nonmatching_object`."""
    return level if "/" in level else f"contributed/dmlab30/{level}"


def human_normalised(level: str, episode_return: float) -> float | None:
    """100 * (return - random) / (human - random), or None for levels without published scores here."""
    scores = HUMAN_RANDOM.get(level.rsplit("/", 1)[-1])
    if scores is None:
        return None
    human, random = scores
    return 100.0 * (episode_return - random) / (human - random)


class DmLabEnv(dm_env.Environment):
    frames_per_step = ACTION_REPEAT

    def __init__(self, level: str, seed: int = 0, renderer: str = "software", **config):
        try:
            import deepmind_lab
        except ImportError as e:
            raise ValueError(BUILD_HELP) from e
        cfg = {"width": str(WIDTH), "height": str(HEIGHT), "logLevel": "WARN"}
        cfg.update({k: str(v) for k, v in config.items()})
        self._lab = deepmind_lab.Lab(level_path(level), ["RGB_INTERLEAVED"], config=cfg, renderer=renderer)
        self._rng = np.random.RandomState(seed)
        self._actions = np.asarray(ACTION_SET, dtype=np.intc)
        self._last_obs = np.zeros((HEIGHT, WIDTH, 3), np.uint8)

    def reset(self) -> dm_env.TimeStep:
        self._lab.reset(seed=int(self._rng.randint(0, 2**31 - 1)))
        self._last_obs = self._lab.observations()["RGB_INTERLEAVED"]
        return dm_env.restart(self._last_obs)

    def step(self, action) -> dm_env.TimeStep:
        reward = float(self._lab.step(self._actions[int(action)], num_steps=ACTION_REPEAT))
        if not self._lab.is_running():  # episode over: DMLab gives no final frame, repeat the last one
            return dm_env.termination(reward, self._last_obs)
        self._last_obs = self._lab.observations()["RGB_INTERLEAVED"]
        return dm_env.transition(reward, self._last_obs)

    def observation_spec(self):
        return specs.BoundedArray((HEIGHT, WIDTH, 3), np.uint8, 0, 255, name="observation")

    def action_spec(self):
        return specs.DiscreteArray(len(ACTION_SET), name="action")

    def close(self) -> None:
        self._lab.close()
