"""`minigrid:<id>`: MiniGrid's memory tasks (e.g. MiniGrid-MemoryS7-v0) behind dm_env.

The agent's 7x7 egocentric view (object, colour, state per cell) is turned into one-hot channels and
flattened: float32 [7 * 7 * (11 + 6 + 3)], which the agent reads with its MLP torso.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from rl.envs.gym_adapter import GymnasiumToDmEnv

N_OBJECT, N_COLOUR, N_STATE = 11, 6, 3


class OneHotView(gym.ObservationWrapper):
    """obs["image"]: uint8 [V, V, 3] -> float32 [V * V * (11 + 6 + 3)] one-hot per cell."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        v = env.observation_space["image"].shape[0]
        self.observation_space = gym.spaces.Box(0.0, 1.0, (v * v * (N_OBJECT + N_COLOUR + N_STATE),), np.float32)

    def observation(self, obs):
        img = np.asarray(obs["image"], np.int64)
        parts = [np.eye(n, dtype=np.float32)[np.clip(img[..., i], 0, n - 1)]
                 for i, n in enumerate((N_OBJECT, N_COLOUR, N_STATE))]
        return np.concatenate(parts, axis=-1).reshape(-1)


def make_minigrid(env_id: str, seed: int | None = None, **kwargs) -> GymnasiumToDmEnv:
    try:
        import minigrid  # noqa: F401  (registers the MiniGrid-* ids)
    except ImportError as e:
        raise ValueError("minigrid environments need the `minigrid` package: pip install 'ctbench[rl]'") from e
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.Error as e:
        raise ValueError(f"unknown MiniGrid environment {env_id!r} ({e}); e.g. minigrid:MiniGrid-MemoryS7-v0") from e
    return GymnasiumToDmEnv(OneHotView(env), seed=seed)
