"""Verifiable rewards: the reward contract, math and countdown graders, code tests in a sandbox.

Light on purpose: `import reasonrl.rewards` imports only the contract (`api.py`). `REWARDS`
(`registry.py`: name -> built-in reward, each a plain `(sample, completion) -> RewardResult | None`
callable) and `grade_answer` (`math/`) are loaded on first use, and math-verify itself only ever
runs in a worker process. The parts:

- `api.py`: the contract (`call_reward`, `normalize_reward_output`, `combine_rewards`,
  `RewardStats`, `RewardFn`, the reward type of the project);
- `registry.py`: `REWARDS`;
- `math/`: answer extraction and grading (`grade_answer`, `math_reward`, `MathGrader`);
- `countdown.py`: the countdown checker;
- `code_tests.py`: unit tests on code, run in `sandbox/` (`run_python`, `SandboxLimits`);
- `pool.py`: concurrent sandbox runs and rewards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reasonrl.exports import lazy_exports
from reasonrl.rewards.api import (
    RewardFn,
    RewardStats,
    call_reward,
    combine_rewards,
    normalize_reward_output,
)

if TYPE_CHECKING:
    from reasonrl.rewards.math import grade_answer
    from reasonrl.rewards.registry import REWARDS

# name -> module that defines it, imported on first access (PEP 562)
_LAZY = {"REWARDS": "reasonrl.rewards.registry", "grade_answer": "reasonrl.rewards.math"}


__getattr__, __dir__ = lazy_exports(globals(), _LAZY)

__all__ = [
    "REWARDS",
    "RewardFn",
    "RewardStats",
    "call_reward",
    "combine_rewards",
    "grade_answer",
    "normalize_reward_output",
]
