"""The paper's optimisation schedule (Section 5.5.1 and Appendix).

- Learning rate: linear warm-up from `init_lr` (1e-6) to `lr` (3e-4) over `warmup_steps`, then cosine
  decay to `min_lr` at `total_steps`.
- Update frequency: after `update_every_after` parameter updates, one update every `update_every`
  windows: gradients are accumulated over those windows while the memory keeps flowing through them.
  The paper (5.5.1) switches from every window to every 4th window after 60k steps, which stopped the
  training instabilities seen with the larger memory late in training.
- Gradient-norm clipping (0.1 in the paper) lives in the trainer (`torch.nn.utils.clip_grad_norm_`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LRSchedule:
    lr: float
    total_steps: int
    warmup_steps: int = 0
    init_lr: float = 1e-6
    min_lr: float = 0.0

    def __call__(self, step: int) -> float:
        """Learning rate for the update with index `step` (0-based)."""
        if self.warmup_steps > 0 and step < self.warmup_steps:
            return self.init_lr + (self.lr - self.init_lr) * step / self.warmup_steps
        decay_steps = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, max(0.0, (step - self.warmup_steps) / decay_steps))
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class UpdateFrequency:
    """How many windows one parameter update spans at a given update index."""
    every: int = 1
    after: int = 0

    def __call__(self, step: int) -> int:
        return self.every if step >= self.after else 1
