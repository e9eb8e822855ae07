"""The learning-rate schedule of every trainer: linear warm-up, then constant or cosine decay."""

from __future__ import annotations

import math
import warnings
from typing import Any


def lr_factor(
    step: int,
    progress: float,
    *,
    warmup_steps: int,
    cosine: bool = True,
    min_lr_ratio: float = 0.0,
) -> float:
    """Multiplier of the base learning rate at optimizer step `step` (0-based).

    factor = (step + 1) / warmup_steps during warm-up; afterwards 1 (constant) or
    min_lr_ratio + (1 - min_lr_ratio) * (1 + cos(pi * progress)) / 2 (cosine), where `progress`
    in [0, 1] is how far the decay has come (clamped). The caller defines progress: RL uses
    (step - warmup) / (total - warmup); SFT the larger of step / max_steps and elapsed / budget.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if not cosine:
        return 1.0
    progress = min(max(progress, 0.0), 1.0)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def advance(scheduler: Any) -> None:
    """`scheduler.step()` once per RL step, also when the update was skipped (critic warm-up, a
    non-finite step), so the schedule follows the step count; torch's warning about a scheduler
    step before any optimizer step is expected then and silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
        scheduler.step()
