"""Environments behind the dm_env interface: `nonmatching`, `minigrid:<id>`, `dmlab:<level>`.

`make_env(name, seed, **kwargs)` returns a dm_env.Environment with a `frames_per_step` attribute
(environment frames per agent step: 4 for DMLab's action repeat, 1 otherwise).
"""
from __future__ import annotations

import dm_env

from rl.envs.gym_adapter import GymnasiumToDmEnv


def make_env(name: str, seed: int = 0, **kwargs) -> dm_env.Environment:
    if name == "nonmatching":
        from rl.envs.nonmatching import NonMatchingEnv
        return GymnasiumToDmEnv(NonMatchingEnv(**kwargs), seed=seed)
    if name.startswith("minigrid:"):
        from rl.envs.minigrid_env import make_minigrid
        return make_minigrid(name.split(":", 1)[1], seed=seed, **kwargs)
    if name.startswith("dmlab:"):
        from rl.envs.dmlab import DmLabEnv
        return DmLabEnv(name.split(":", 1)[1], seed=seed, **kwargs)
    raise ValueError(f"unknown env {name!r}: use 'nonmatching', 'minigrid:<id>' or 'dmlab:<level>'")


def human_normalised(name: str, episode_return: float) -> float | None:
    """The DMLab human-normalised score for `dmlab:<level>` envs, else None."""
    if not name.startswith("dmlab:"):
        return None
    from rl.envs.dmlab import human_normalised as hn
    return hn(name.split(":", 1)[1], episode_return)
