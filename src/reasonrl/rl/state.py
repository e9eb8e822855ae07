"""What one RL step touches (`TrainState`) and the sampling settings of a step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from reasonrl.config import RLConfig
from reasonrl.data.sources import PromptSource
from reasonrl.rewards.api import RewardFn
from reasonrl.rollout.base import RolloutEngine, SamplingParams


@dataclass
class TrainState:
    """Everything a step touches; `step` counts completed optimizer steps."""

    cfg: RLConfig
    model: torch.nn.Module
    tokenizer: Any
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    engine: RolloutEngine
    source: PromptSource
    reward_fn: RewardFn
    ref_model: torch.nn.Module | None = None
    step: int = 0
    history: dict[str, Any] = field(default_factory=dict)


def sampling_params(cfg: RLConfig, step: int) -> SamplingParams:
    """Sampling settings of step `step`; the seed depends only on (run seed, step), so a resumed
    run samples exactly what the uninterrupted run did."""
    r = cfg.rollout
    return SamplingParams(
        seed=cfg.trainer.seed * 1_000_003 + step,
        n=r.n,
        max_new_tokens=r.max_new_tokens,
        temperature=r.temperature,
        top_p=r.top_p,
        top_k=r.top_k,
    )
