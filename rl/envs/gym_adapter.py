"""Gymnasium -> dm_env adapter, so that actors see one API (dm_env) for every environment."""
from __future__ import annotations

import dm_env
import gymnasium as gym
import numpy as np
from dm_env import specs


def space_to_spec(space: gym.Space, name: str = "observation") -> specs.Array:
    if isinstance(space, gym.spaces.Discrete):
        return specs.DiscreteArray(int(space.n), name=name)
    if isinstance(space, gym.spaces.Box):
        return specs.BoundedArray(space.shape, space.dtype, space.low, space.high, name=name)
    raise ValueError(f"gymnasium space {space!r} has no dm_env spec here (use Box or Discrete)")


class GymnasiumToDmEnv(dm_env.Environment):
    """Wraps a gymnasium env. Gymnasium's `truncated` becomes a dm_env truncation (discount 1).

    `seed` seeds the first reset; later resets continue the env's own generator, so a run is
    reproducible from its seed alone.
    """

    frames_per_step = 1  # environment frames per agent step (DMLab uses action repeat 4)

    def __init__(self, env: gym.Env, seed: int | None = None):
        self._env = env
        self._seed = seed
        self._first = True

    @property
    def gym_env(self) -> gym.Env:
        return self._env

    def reset(self) -> dm_env.TimeStep:
        obs, _ = self._env.reset(seed=self._seed if self._first else None)
        self._first = False
        return dm_env.restart(np.asarray(obs))

    def step(self, action) -> dm_env.TimeStep:
        obs, reward, terminated, truncated, _ = self._env.step(int(action))
        obs = np.asarray(obs)
        if terminated:
            return dm_env.termination(float(reward), obs)
        if truncated:
            return dm_env.truncation(float(reward), obs)
        return dm_env.transition(float(reward), obs)

    def observation_spec(self):
        return space_to_spec(self._env.observation_space, "observation")

    def action_spec(self):
        return space_to_spec(self._env.action_space, "action")

    def close(self) -> None:
        self._env.close()
