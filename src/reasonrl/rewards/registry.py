"""`REWARDS`: the built-in rewards by name, each a plain `(sample, completion)` callable.

Importing this module imports every built-in reward (and with them the sandbox and the math
grader); `reasonrl.rewards` therefore imports it only when `REWARDS` is first used.
"""

from __future__ import annotations

from reasonrl.rewards.api import RewardFn
from reasonrl.rewards.code_tests import code_tests_all_reward, code_tests_reward
from reasonrl.rewards.countdown import countdown_reward
from reasonrl.rewards.math import math_reward

REWARDS: dict[str, RewardFn] = {
    "math": math_reward,
    "countdown": countdown_reward,
    "code_tests": code_tests_reward,
    "code_tests_all": code_tests_all_reward,
}

__all__ = ["REWARDS"]
