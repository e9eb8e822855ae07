"""Reward terms for tool-using episodes: pure functions of the outcome and the episode's counts.

Three optional terms, applied to the task reward of a finished episode (rl/envs.py
`with_tool_reward` reads them from `env:`):

- failed-call penalty: R - penalty * n_failed (a call whose tool answered ok=False: syntax,
  exception, timeout, ...); a plain shaping term of this project, on the task's own scale.
- AgentMath's correctness-gated tool reward (arXiv 2512.20745 §3.3):
      R_total = R_acc + 1[R_acc = 1] * min(R_max, alpha + beta * N_code)
  so tool use is rewarded only on correct answers; alpha, beta, R_max were not published (the
  defaults here are 0 = off).
- Demystifying's tool-turn credit (arXiv 2510.11701, Open-AgentRL `recipe/demystify/reward.py`):
      base = +1 (correct) or -1 (wrong)
      R = base                                         if base >= 0
      R = min(-0.6, base + 0.1 * (num_turns - 2) / 2)  otherwise
  where num_turns counts chat messages (prompt + assistant turns + tool answers), so a
  tool-free answer has num_turns = 2 and each tool call adds 2 (`messages_of`): a failed
  attempt earns 0.1 per tool call, capped at -0.6.
"""

from __future__ import annotations

TCR_TURN_CREDIT = 0.1  # per (num_turns - 2) / 2, i.e. per tool call
TCR_CAP = -0.6  # a wrong answer never scores above this


def failed_call_penalty(reward: float, failed_calls: float, penalty: float) -> float:
    """`reward - penalty * failed_calls` (penalty >= 0)."""
    return reward - penalty * failed_calls


def gated_tool_reward(
    acc: float, n_code: float, *, alpha: float, beta: float, r_max: float
) -> float:
    """AgentMath: `acc + 1[acc == 1] * min(r_max, alpha + beta * n_code)`; acc in {0, 1}."""
    return acc + (min(r_max, alpha + beta * n_code) if acc == 1.0 else 0.0)


def messages_of(tool_calls: float) -> float:
    """Demystifying's num_turns for an episode with `tool_calls` calls: 2 + 2 * calls."""
    return 2.0 + 2.0 * tool_calls


def tcr_reward(correct: bool, num_turns: float) -> float:
    """Demystifying's outcome reward with tool-turn credit (module docstring): +1 when correct,
    else min(-0.6, -1 + 0.1 * (num_turns - 2) / 2)."""
    if correct:
        return 1.0
    return min(TCR_CAP, -1.0 + TCR_TURN_CREDIT * (num_turns - 2.0) / 2.0)
