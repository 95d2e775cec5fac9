"""`nonmatching`: a small, runnable-anywhere stand-in for DMLab's rooms_select_nonmatching_object.

The DMLab level (Section 5.7 of the paper; Beattie et al. 2016) shows the agent an object in a first
room, sends it down a corridor, and rewards it in a second room for touching the object that does NOT
match the first one. This gymnasium environment keeps exactly that structure, on a 1-D strip of cells:

    phase "cue"      `cue_steps` steps in room 1, the cue object is in view
    phase "delay"    `delay` cells of corridor to walk (delay_mode="corridor": action FORWARD advances
                     one cell) or `delay` waiting steps (delay_mode="wait": any action advances)
    phase "choice"   room 2: two objects, left and right, one matching the cue; LEFT/RIGHT touches one
                     (reward `reward_correct` for the non-matching one, `reward_wrong` for the matching
                     one) and ends the episode; after `choice_steps` steps without a choice it times out.

Only the cue phase shows the cue, so success needs memory of `cue_steps + delay` steps back.
`layout="random"` puts the two objects on random sides, so the choice is a comparison of memory and view
(an XOR, as in the level); `layout="fixed"` keeps them in kind order, so the side to touch follows from
the remembered cue alone: pure recall, which policy gradient finds far sooner on a small budget. A policy
that picks a side at random scores (reward_correct + reward_wrong) / 2 per episode: that is chance.

Observations: "symbolic" (float32 vector: phase one-hot, cue one-hot, left/right object one-hots,
corridor progress) or "pixels" (uint8 RGB [size, size, 3]: coloured squares on a room-coloured floor).
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

NOOP, LEFT, RIGHT, FORWARD = 0, 1, 2, 3
CUE, DELAY, CHOICE = 0, 1, 2

# Distinct object colours (RGB); n_objects may not exceed this list.
_COLOURS = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                     [145, 30, 180], [70, 240, 240], [240, 50, 230]], dtype=np.uint8)
_FLOORS = np.array([[40, 40, 90], [90, 90, 90], [40, 90, 40]], dtype=np.uint8)  # per phase


class NonMatchingEnv(gym.Env):
    """Select-non-matching-object with a configurable delay (see module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}

    def __init__(self, delay: int = 4, delay_mode: str = "wait", obs: str = "symbolic",
                 n_objects: int = 4, cue_steps: int = 2, choice_steps: int = 8, size: int = 16,
                 reward_correct: float = 1.0, reward_wrong: float = 0.0, max_steps: int | None = None,
                 layout: str = "random", render_mode: str | None = None):
        if delay < 0:
            raise ValueError(f"nonmatching: delay must be >= 0, got {delay}")
        if delay_mode not in ("wait", "corridor"):
            raise ValueError(f"nonmatching: delay_mode must be 'wait' or 'corridor', got {delay_mode!r}")
        if obs not in ("symbolic", "pixels"):
            raise ValueError(f"nonmatching: obs must be 'symbolic' or 'pixels', got {obs!r}")
        if layout not in ("random", "fixed"):
            raise ValueError(f"nonmatching: layout must be 'random' or 'fixed', got {layout!r}")
        if not 2 <= n_objects <= len(_COLOURS):
            raise ValueError(f"nonmatching: n_objects must be in [2, {len(_COLOURS)}], got {n_objects}")
        if cue_steps < 1 or choice_steps < 1 or size < 8:
            raise ValueError("nonmatching: cue_steps and choice_steps must be >= 1 and size >= 8")
        self.delay, self.delay_mode, self.obs_mode, self.layout = delay, delay_mode, obs, layout
        self.n_objects, self.cue_steps, self.choice_steps, self.size = n_objects, cue_steps, choice_steps, size
        self.reward_correct, self.reward_wrong = float(reward_correct), float(reward_wrong)
        # A random walker needs ~4 steps per corridor cell; the limit leaves room for that.
        self.max_steps = max_steps or (cue_steps + 4 * delay + choice_steps + 8 if delay_mode == "corridor"
                                       else cue_steps + delay + choice_steps)
        self.render_mode = render_mode
        self.action_space = gym.spaces.Discrete(4)
        if obs == "symbolic":
            self._dim = 3 + 3 * n_objects + 1
            self.observation_space = gym.spaces.Box(0.0, 1.0, (self._dim,), np.float32)
        else:
            self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self._phase = CUE
        self._t = self._phase_t = self._pos = 0
        self._cue = self._left = self._right = 0

    # -- dynamics -------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        self._cue = int(rng.integers(self.n_objects))
        other = int((self._cue + rng.integers(1, self.n_objects)) % self.n_objects)
        swap = rng.integers(2) == 1 if self.layout == "random" else other < self._cue
        self._left, self._right = (other, self._cue) if swap else (self._cue, other)
        self._phase, self._t, self._phase_t, self._pos = CUE, 0, 0, 0
        return self._observation(), self._info()

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"nonmatching: invalid action {action!r}; expected an int in [0, 4)")
        action = int(action)
        self._t += 1
        self._phase_t += 1
        reward, terminated = 0.0, False
        if self._phase == CUE:
            if self._phase_t >= self.cue_steps:
                self._enter(DELAY if self.delay > 0 else CHOICE)
        elif self._phase == DELAY:
            if self.delay_mode == "wait" or action == FORWARD:
                self._pos += 1
            if self._pos >= self.delay:
                self._enter(CHOICE)
        else:
            if action in (LEFT, RIGHT):
                touched = self._left if action == LEFT else self._right
                reward = self.reward_wrong if touched == self._cue else self.reward_correct
                terminated = True
            elif self._phase_t >= self.choice_steps:
                terminated = True  # timed out in room 2: no reward
        truncated = not terminated and self._t >= self.max_steps
        return self._observation(), reward, terminated, truncated, self._info()

    def _enter(self, phase: int) -> None:
        self._phase, self._phase_t = phase, 0

    def _info(self) -> dict[str, Any]:
        return {"phase": self._phase, "cue": self._cue}

    # -- observations ---------------------------------------------------------------------------------
    def _observation(self) -> np.ndarray:
        return self._symbolic() if self.obs_mode == "symbolic" else self.render_pixels()

    def _symbolic(self) -> np.ndarray:
        n = self.n_objects
        v = np.zeros(self._dim, np.float32)
        v[self._phase] = 1.0
        if self._phase == CUE:
            v[3 + self._cue] = 1.0
        elif self._phase == CHOICE:
            v[3 + n + self._left] = 1.0
            v[3 + 2 * n + self._right] = 1.0
        else:
            v[-1] = self._pos / max(self.delay, 1)
        return v

    def render_pixels(self) -> np.ndarray:
        """The current view as uint8 RGB [size, size, 3]."""
        s = self.size
        img = np.empty((s, s, 3), np.uint8)
        img[:] = _FLOORS[self._phase]
        q = s // 4  # object square side
        if self._phase == CUE:
            img[s // 2 - q // 2: s // 2 + q - q // 2, s // 2 - q // 2: s // 2 + q - q // 2] = _COLOURS[self._cue]
        elif self._phase == CHOICE:
            img[s // 2 - q // 2: s // 2 + q - q // 2, 1: 1 + q] = _COLOURS[self._left]
            img[s // 2 - q // 2: s // 2 + q - q // 2, s - 1 - q: s - 1] = _COLOURS[self._right]
        else:  # corridor walls, with a stripe that moves as the agent advances
            img[:, :2] = img[:, -2:] = 160
            img[(self._pos * 2) % s, 2:-2] = 120
        return img

    def render(self):
        return self.render_pixels() if self.render_mode == "rgb_array" else None

    def chance_return(self) -> float:
        """Expected episode return of a policy that touches a random object."""
        return (self.reward_correct + self.reward_wrong) / 2
