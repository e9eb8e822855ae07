"""`RayRewards`: the run's reward, graded on the reward actors.

It is a reward with a `batch` hook (`rewards.batch`): the driver's one `call_reward_batch` per
rollout batch sends contiguous chunks of the (sample, completion) pairs to the R actors, which
grade them with `call_reward_batch` (per sample, with `reward.timeout_s`) and send back
`RewardResult`s in order. A single call, or a batch that fails in transport, runs the local
reward (the driver's copy), so results are those of the local backend either way. Other
attributes (`gold_answer` for maj@k) are the local reward's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reasonrl.dist.shard import shard_range
from reasonrl.rewards.api import RewardFn
from reasonrl.types import Completion, RewardResult, Sample


class RayRewards:
    """`reward_fn` in the driver, its `batch` on `actors` (module docstring)."""

    def __init__(self, reward_fn: RewardFn, actors: Sequence[Any], timeout_s: float | None):
        self.local, self.actors, self.timeout_s = reward_fn, list(actors), timeout_s
        self.__name__ = getattr(reward_fn, "__name__", type(reward_fn).__name__)

    def __call__(self, sample: Sample, completion: Completion) -> float | RewardResult | None:
        return self.local(sample, completion)

    def batch(self, samples: list[Sample], completions: list[Completion]) -> list[RewardResult]:
        import ray

        n, k = len(samples), len(self.actors)
        chunks = [shard_range(n, w, k) for w in range(k)]
        calls = [self.actors[w].score.remote([samples[i] for i in r], [completions[i] for i in r],
                                             self.timeout_s)
                 for w, r in enumerate(chunks) if len(r)]  # fmt: skip
        return [res for part in ray.get(calls) for res in part]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["local"], name)
