"""Verifiable rewards: the reward contract, math and countdown graders, code tests in a sandbox.

Light on purpose: nothing heavy is imported here (math-verify runs in a worker process and is
imported there). `REWARDS` names the built-in rewards; each value is a plain
`(sample, completion) -> RewardResult | None` callable.
"""

from __future__ import annotations

from typing import Any

from reasonrl.rewards.api import (
    RewardFn,
    RewardStats,
    call_reward,
    combine_rewards,
    normalize_reward_output,
)


def _builtin() -> dict[str, Any]:
    from reasonrl.rewards.code_reward import code_tests_all_reward, code_tests_reward
    from reasonrl.rewards.countdown import countdown_reward
    from reasonrl.rewards.math_grader import math_reward

    return {
        "math": math_reward,
        "countdown": countdown_reward,
        "code_tests": code_tests_reward,
        "code_tests_all": code_tests_all_reward,
    }


REWARDS: dict[str, Any] = _builtin()

__all__ = [
    "REWARDS",
    "RewardFn",
    "RewardStats",
    "call_reward",
    "combine_rewards",
    "normalize_reward_output",
]
