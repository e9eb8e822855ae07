"""What one RL step touches (`TrainState`) and the sampling settings of a step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch

from reasonrl.algos.kl import FixedKLController, KLController
from reasonrl.config import RLConfig
from reasonrl.data.sources import PromptSource
from reasonrl.rewards.api import RewardFn
from reasonrl.rollout.base import RolloutEngine, SamplingParams

if TYPE_CHECKING:
    from reasonrl.dist.parallel import DataParallel
    from reasonrl.rl.critic import Critic
    from reasonrl.runtime.timing import Timer


@dataclass
class TrainState:
    """Everything a step touches; `step` counts completed RL steps (skipped updates included).

    `nonfinite_streak` counts the latest steps in a row whose update was skipped for a non-finite
    loss, gradient or learning rate, `nonfinite_steps` all such steps of the run (both saved in
    checkpoints).
    """

    cfg: RLConfig
    model: torch.nn.Module
    tokenizer: Any
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    engine: RolloutEngine
    source: PromptSource
    reward_fn: RewardFn
    ref_model: torch.nn.Module | None = None
    critic: Critic | None = None  # the value model of PPO (advantage=gae)
    kl_ctl: KLController = field(default_factory=lambda: FixedKLController(0.0))
    step: int = 0
    nonfinite_streak: int = 0
    nonfinite_steps: int = 0
    engine_name: str = ""  # what rollout.engine resolved to (auto -> fused or hf)
    env: Any = None  # the envs.base.EnvFactory episodes run in; None: built from cfg.env (rl.envs)
    dp: DataParallel | None = None  # data parallel under torchrun (reasonrl.dist); None: one
    # trainer.parallel=fsdp2: the sharded copy the optimizer updates (dist/fsdp.py); `model`
    # stays the full copy that generates, scores and is saved. None: `model` itself trains.
    shard: torch.nn.Module | None = None
    # async / partial rollouts (rl/async_rollouts.py); None = sample_groups in the step itself
    rollouts: RolloutProducer | None = None

    @property
    def trained(self) -> torch.nn.Module:
        """The module the optimizer updates: the FSDP2 shard, or the policy itself."""
        return self.model if self.shard is None else self.shard


class RolloutProducer(Protocol):
    """Where a step's groups come from when not `sample_groups` itself: `next` returns the
    `rl.rollouts.Groups` step `state.step` trains on; `close` stops any producer thread."""

    def next(self, state: TrainState, params: SamplingParams, timer: Timer) -> Any: ...

    def close(self) -> None: ...


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
