"""The actor classes: plain Python classes, wrapped by `ray.remote` when the run starts them.

A `RolloutWorker` owns a copy of the policy and the engine `rollout.engine` names (built by
`rl.build.make_engine`, as the trainer's); it loads the weights the driver put in the object
store, with their version, and answers `generate` with the version that sampled. A
`RewardWorker` holds the run's reward and grades a chunk of (sample, completion) pairs with
`rewards.batch.call_reward_batch` (the contract of `call_reward`: never raises; a failure costs
one sample), so sandboxed code and math grading run outside the trainer's process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from reasonrl.config import RLConfig
from reasonrl.rewards.api import RewardFn
from reasonrl.rewards.batch import call_reward_batch
from reasonrl.rollout.base import SamplingParams
from reasonrl.types import Completion, RewardResult, Sample


class RolloutWorker:
    """One engine with its own policy copy (weights arrive through `load`)."""

    def __init__(self, cfg: RLConfig, threads: int) -> None:
        from reasonrl.models.io import load_policy
        from reasonrl.rl.build import make_engine
        from reasonrl.rl.envs import ensure_tool_tokens

        torch.set_num_threads(threads)
        model, tokenizer = load_policy(cfg.model.path, dtype="fp32", device=cfg.model.device)
        ensure_tool_tokens(cfg, tokenizer, model)  # the trainer's vocabulary (env.kind=tool)
        model.eval().requires_grad_(False)
        # the engine reads this process's model; `load` copies the trainer's weights into it
        self.engine = make_engine(cfg, model, tokenizer, share_weights=True)
        self.version: int | None = None

    def load(self, weights: dict[str, torch.Tensor], version: int) -> int:
        """Copy the published weights in; returns their version."""
        self.engine.load_weights(weights.items())
        self.version = version
        return version

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams
    ) -> tuple[int | None, list[list[Completion]]]:
        """(version of the weights that sampled, G completions per prompt)."""
        return self.version, self.engine.generate(prompt_ids, params)


class RewardWorker:
    """The run's reward in its own process; `reward_fn` None builds it from the config."""

    def __init__(self, cfg: RLConfig, reward_fn: RewardFn | None) -> None:
        if reward_fn is None:
            from reasonrl.rl.build import make_reward
            from reasonrl.rl.envs import with_tool_reward

            reward_fn = with_tool_reward(cfg, make_reward(cfg))
        self.reward_fn = reward_fn

    def score(
        self, samples: list[Sample], completions: list[Completion], timeout_s: float | None
    ) -> list[RewardResult]:
        return call_reward_batch(self.reward_fn, samples, completions, timeout_s=timeout_s)


def remote(cls: type, **options: Any) -> Any:
    """`ray.remote(**options)(cls)`: the actor class, made when a run starts them."""
    from reasonrl.distributed_ray.cluster import require_ray

    return require_ray().remote(**options)(cls)
