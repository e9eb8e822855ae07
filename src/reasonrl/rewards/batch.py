"""Batched reward calls: one call per rollout batch for rewards that score many at once.

A reward may carry an optional `batch(samples, completions) -> list[float | RewardResult | None]`
attribute (a learned reward model runs one forward per batch instead of one per sample); every
other reward is called once per sample. `call_reward_batch` is the one entry point the RL loop
uses: each output goes through `normalize_reward_output`, and a batch call that raises, returns
the wrong number of results, or is absent falls back to `call_reward` per sample, so the
contract of `api.call_reward` (never raises; a failure costs one sample) holds for both paths.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from reasonrl.rewards.api import call_reward, normalize_reward_output
from reasonrl.types import Completion, RewardResult, Sample


def call_reward_batch(
    fn: Callable[[Sample, Completion], object],
    samples: Sequence[Sample],
    completions: Sequence[Completion],
    *,
    timeout_s: float | None = None,
) -> list[RewardResult]:
    """Results of `fn` on the aligned `samples[i]`, `completions[i]`; `fn.batch` when it has one
    (no timeout: the batch runs in the caller's thread), else `call_reward` per pair."""
    batch = getattr(fn, "batch", None)
    if callable(batch) and samples:
        try:
            values = list(batch(list(samples), list(completions)))
        except KeyboardInterrupt:
            raise
        except Exception:  # a broken batch path: score one by one, where failures are counted
            values = []
        if len(values) == len(samples):
            return [normalize_reward_output(v) for v in values]
    return [
        call_reward(fn, s, c, timeout_s=timeout_s)
        for s, c in zip(samples, completions, strict=True)
    ]


__all__ = ["call_reward_batch"]
